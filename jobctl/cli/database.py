"""Commands: the embedded server (``db start|stop|url``), ``migrate`` and ``seed``."""

from __future__ import annotations

from typing import Annotated

import typer

from jobctl import output
from jobctl.cli.common import JsonOpt, connect, database_url, errors, pgdata, time_opt
from shared.errors import redact
from shared.events import iso

app = typer.Typer()
db_app = typer.Typer(help="The embedded Postgres server (used when DATABASE_URL is unset).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("start")
@errors
def db_start() -> None:
    """Start the embedded Postgres (data in .pgdata/) and create the app database."""
    from jobctl import embedded

    url = embedded.start(pgdata()).ensure_database()
    output.note(f"embedded Postgres running (data in {pgdata()})")
    print(url)


@db_app.command("stop")
@errors
def db_stop() -> None:
    """Stop the embedded Postgres."""
    from jobctl import embedded

    if not embedded.is_running(pgdata()):
        output.note("embedded Postgres is not running")
        return
    embedded.start(pgdata()).stop()
    output.note("embedded Postgres stopped")


@db_app.command("url")
@errors
def db_url(ctx: typer.Context) -> None:
    """Print the database URL jobctl uses (password redacted)."""
    print(redact(database_url(ctx)))


@app.command()
@errors
def migrate(
    ctx: typer.Context,
    app_schema: Annotated[
        bool,
        typer.Option(
            "--app-schema",
            help="Apply the reference app schema only (the app's own tables: for a new database, "
            "the demo and the tests), instead of the jobs layer.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply the jobs layer's pending migrations, after checking the app against the contract."""
    from shared.migrations import discover_app
    from shared.migrations import migrate as run_migrations

    with connect(ctx) as conn:
        applied = run_migrations(conn, discover_app()) if app_schema else run_migrations(conn)
    if as_json:
        output.print_json({"applied": applied})
    elif applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("database is up to date")


@app.command()
@errors
def seed(
    ctx: typer.Context,
    users: Annotated[int, typer.Option("--users", min=1, help="How many users to create.")] = 10_000,
    as_of: Annotated[str | None, typer.Option("--as-of", help="The app's 'now' (ISO-8601, UTC); default now.")] = None,
    seed_value: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 42,
    as_json: JsonOpt = False,
) -> None:
    """Fill the app with realistic synthetic data (generated in SQL)."""
    from jobctl import local
    from jobctl.seed import seed_with_progress

    moment = time_opt(as_of) or local.utcnow()
    with connect(ctx) as conn:
        counts, seconds = seed_with_progress(conn, users=users, as_of=moment, seed_value=seed_value)
    if as_json:
        output.print_json({"as_of": moment, "seconds": round(seconds, 2), "rows": counts})
    else:
        title = f"Seeded in {seconds:.1f} s (as of {iso(moment)})"
        output.print_table(title, ["table", "rows"], sorted(counts.items()))
