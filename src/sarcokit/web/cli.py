"""`sarcokit clinic`: start the clinic, migrate its database, create accounts."""

from __future__ import annotations

import getpass
import logging
import os
from typing import Annotated

import typer

from sarcokit.web.config import settings_from_env

clinic_app = typer.Typer(no_args_is_help=True, help="The sarcopenia clinic web app and HTTP API.")


@clinic_app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Start the clinic (SQLite under ./var, or SARCOKIT_DATABASE_URL)."""
    import uvicorn

    from sarcokit.web.app import create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Migrate once here, so that worker processes start on a current schema.
    create_app()
    settings = settings_from_env()
    typer.echo(f"sarcokit clinic: http://{host}:{port}/ (Ctrl+C stops it)")
    if settings.setup_code_path.exists():
        code = settings.setup_code_path.read_text().strip()
        typer.echo(
            f"First run: open http://{host}:{port}/setup, enter the setup code {code} "
            "and create the administrator."
        )
    uvicorn.run(
        "sarcokit.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        proxy_headers=False,
    )


@clinic_app.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    from sarcokit.web.db import make_engine
    from sarcokit.web.db import migrate as run_migrations

    run_migrations(make_engine(settings_from_env().database_url))
    typer.echo("database is at the newest schema")


@clinic_app.command("create-user")
def create_user(
    username: str,
    roles: Annotated[str, typer.Option(help="Comma-separated: admin, clinician, researcher.")],
    display_name: Annotated[str, typer.Option(help="Full name.")] = "",
    language: Annotated[str, typer.Option(help="en or zh-CN.")] = "en",
) -> None:
    """Create an account; the password is read from SARCOKIT_PASSWORD or asked for."""
    from sarcokit.fields import InputError
    from sarcokit.web.db import make_engine, migrate, session_factory, transaction
    from sarcokit.web.store import Conflict
    from sarcokit.web.store import create_user as store_create_user

    password = os.environ.get("SARCOKIT_PASSWORD") or getpass.getpass("Password: ")
    engine = make_engine(settings_from_env().database_url)
    migrate(engine)
    try:
        with transaction(session_factory(engine)) as db:
            user = store_create_user(
                db, None, username, display_name, password, roles.split(","), language
            )
            typer.echo(f"created {user.username} ({user.roles})")
    except (InputError, Conflict) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
