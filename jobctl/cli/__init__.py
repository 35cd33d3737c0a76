"""``jobctl``: run and operate the scheduled jobs, locally and on AWS (docs/operate.md).

One module per command group, each a ``typer.Typer()`` named ``app`` merged into the root app
below; how to add a command or a group: README, "Develop".
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
