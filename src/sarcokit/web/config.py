"""Clinic settings, read from the environment once at start-up."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

DATABASE_URL_VARIABLE = "SARCOKIT_DATABASE_URL"
# The owner's connection for migrations, where the clinic itself runs as a role that may not
# change the schema (PostgreSQL; see `sarcokit clinic migrate --grant-to`).
MIGRATION_URL_VARIABLE = "SARCOKIT_MIGRATION_DATABASE_URL"


@dataclass(frozen=True)
class Settings:
    """Where the clinic keeps its data and how it treats connections."""

    database_url: str
    data_dir: Path
    # Cookies carry the Secure flag behind HTTPS; plain loopback HTTP needs it off.
    cookie_secure: bool = False
    session_hours: int = 12
    max_body_bytes: int = 256 * 1024
    login_attempts: int = 5
    login_window_minutes: int = 15
    # Where migrations run from; None runs them on database_url.
    migration_url: str | None = None

    @property
    def setup_code_path(self) -> Path:
        """The file holding the one-time code that creates the first administrator."""
        return self.data_dir / "setup-code"

    @property
    def clinic_id_path(self) -> Path:
        """The file naming the clinic whose database this data directory belongs to."""
        return self.data_dir / "clinic-id"

    @property
    def export_key_path(self) -> Path:
        """The file holding the key that pseudonymises patients in research exports."""
        return self.data_dir / "export-key"


def settings_from_env(data_dir: Path | None = None) -> Settings:
    """Settings from SARCOKIT_* variables; SQLite under ./var by default."""
    directory = data_dir or Path(os.environ.get("SARCOKIT_DATA_DIR", "var"))
    # The data directory holds the database and secrets: readable by the owner only.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    default_url = f"sqlite:///{(directory / 'sarcokit.db').as_posix()}"
    return Settings(
        database_url=os.environ.get(DATABASE_URL_VARIABLE, default_url),
        data_dir=directory,
        cookie_secure=os.environ.get("SARCOKIT_COOKIE_SECURE", "0") == "1",
        migration_url=os.environ.get(MIGRATION_URL_VARIABLE) or None,
    )


def private_file(path: Path, content: str) -> None:
    """Write a new file readable by the owner only, durably (fsync of file and directory)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def secret_file(path: Path, nbytes: int = 32) -> str:
    """A random secret kept in a file readable by the owner only, created on first use."""
    if not path.exists():
        private_file(path, secrets.token_urlsafe(nbytes))
    return path.read_text().strip()
