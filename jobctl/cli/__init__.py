"""``jobctl``: run and operate the scheduled jobs, locally and on AWS (docs/operate.md).

Local commands work on ``--database-url`` / ``DATABASE_URL``, or on the embedded Postgres
when neither is set. AWS commands use the usual AWS environment and the stack's names
(``--prefix`` / ``JOBCTL_PREFIX``). Every command that prints data takes ``--json``.
Errors are one line on stderr and a non-zero exit: 2 for a usage error (unknown job,
bad cron, bad time, bad event), 1 for a failure.

One module per command group, each a ``typer.Typer()`` named ``app`` merged into the root
app below. To add a command, add it to its group's module: ``@app.command()`` above
``@errors`` (:mod:`jobctl.cli.common`), options from the aliases there (``JobArg``,
``AsOfOpt``, ``DryRunOpt``, ``ForceOpt``, ``JsonOpt``, ...), a body of a few lines that
calls the module doing the work (SQL in a ``.sql`` file, loaded with
``shared.queries.load``) and a renderer in :mod:`jobctl.output`. To add a group, write
``jobctl/cli/<group>.py`` the same way and append it to ``GROUPS``.
"""

from __future__ import annotations

import typer

from jobctl.cli import adoption, database, demo, deployed, healing, runs
from jobctl.cli.common import DatabaseUrlOpt, state

#: The command groups, in the order ``jobctl --help`` lists their commands.
GROUPS = (database, runs, deployed, healing, adoption, demo)

app = typer.Typer(
    name="jobctl",
    help="Run and operate the language-exchange app's scheduled jobs, locally and on AWS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(ctx: typer.Context, database_url_opt: DatabaseUrlOpt = None) -> None:
    """Run and operate the scheduled jobs, locally (embedded Postgres) and on AWS."""
    state(ctx)["database_url"] = database_url_opt


for group in GROUPS:
    app.add_typer(group.app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
