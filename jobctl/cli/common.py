"""What every command group shares: the ``errors`` decorator, the database and the option aliases."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from jobctl import output
from shared import registry
from shared.cron import CronError
from shared.errors import JobsError, ValidationError, redact, translate

#: Exit codes.
EXIT_FAILED = 1
EXIT_USAGE = 2

# --------------------------------------------------------------------------- option aliases

JobArg = Annotated[str, typer.Argument(help="The job's name (see `jobctl list`).")]
JobsOpt = Annotated[list[str] | None, typer.Option("--job", help="Only this job (repeatable).")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="The occurrence to run (ISO-8601, UTC).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Roll back; report what would change.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Re-run an occurrence that already succeeded.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show the handler's log lines on stderr.")]
PrefixOpt = Annotated[
    str,
    typer.Option("--prefix", envvar="JOBCTL_PREFIX", help="The deployment's name prefix (CDK context namePrefix)."),
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        show_envvar=True,
        help="Postgres to use (default: the embedded server's app database).",
    ),
]

# --------------------------------------------------------------------------- errors


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    # one line: Postgres messages carry LINE/HINT lines and a caret
    output.error_line(" ".join(redact(message).split()))
    raise typer.Exit(code)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except (registry.UnknownJobError, CronError, ValidationError) as exc:
        fail(str(exc), EXIT_USAGE)
    except JobsError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("JOBCTL_DEBUG"):
            raise
        from botocore.exceptions import BotoCoreError, ClientError

        from jobctl import aws

        if isinstance(exc, BotoCoreError | ClientError):
            fail(str(aws.describe_aws_error(exc, what="the AWS call")))
        fail(str(translate(exc, what="jobctl")))


P = ParamSpec("P")
R = TypeVar("R")


def errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn every error of ``command`` into one line on stderr and an exit code; never a traceback.

    Usage: ``@app.command()`` above ``@errors``. ``JOBCTL_DEBUG=1`` lets unexpected
    exceptions through, with their traceback.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _errors():
            return command(*args, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover  (for mypy: _errors re-raises)

    return wrapper


def exit_if_failed(failed: bool) -> None:
    if failed:
        raise typer.Exit(EXIT_FAILED)


# --------------------------------------------------------------------------- the database


def state(ctx: typer.Context) -> dict[str, Any]:
    ctx.ensure_object(dict)
    return ctx.obj  # type: ignore[no-any-return]


def database_url(ctx: typer.Context) -> str:
    """``--database-url``, else ``DATABASE_URL``, else the embedded server's app database."""
    from jobctl import embedded

    values = state(ctx)
    if not values.get("database_url"):
        values["database_url"] = embedded.database_url()
    return values["database_url"]  # type: ignore[no-any-return]


def connect(ctx: typer.Context) -> Any:
    from shared.db import connect as db_connect

    return db_connect(database_url(ctx))


def pgdata() -> Path:
    from jobctl import embedded

    return Path(os.environ.get("JOBCTL_PGDATA") or embedded.DEFAULT_DATA_DIR).resolve()


# --------------------------------------------------------------------------- arguments


def job_arg(name: str) -> registry.Job:
    return registry.get(name)


def select_jobs(names: list[str] | None) -> tuple[registry.Job, ...]:
    """The named jobs (all when none), in registry order: the order of jobs due at the same time."""
    if not names:
        return registry.JOBS
    wanted = {job_arg(name).name for name in names}
    return tuple(job for job in registry.JOBS if job.name in wanted)


def time_opt(text: str | None) -> datetime | None:
    from jobctl import local

    return None if text is None else local.parse_time(text)
