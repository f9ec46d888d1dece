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
    from sarcokit.web.db import StoreError

    # Check and migrate once here, so that worker processes start on a current schema, and a
    # damaged or vanished database stops the clinic with a message instead of being served.
    try:
        create_app().state.engine.dispose()
    except StoreError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    settings = settings_from_env()
    typer.echo(f"sarcokit clinic: http://{host}:{port}/ (Ctrl+C stops it)")
    if settings.setup_code_path.exists():
        code = settings.setup_code_path.read_text().strip()
        typer.echo(
            f"First run: open http://{host}:{port}/setup, enter the setup code {code} "
            "and create the administrator."
        )
    uvicorn.run(
        "sarcokit.web.app:serving_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        proxy_headers=False,
    )


@clinic_app.command()
def migrate(
    grant_to: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL: the role the clinic runs as; it may then only add to the audit log."
        ),
    ] = None,
) -> None:
    """Bring the schema to the newest migration (as SARCOKIT_MIGRATION_DATABASE_URL if set)."""
    from sarcokit.web.db import StoreError, grant_runtime, make_engine
    from sarcokit.web.db import migrate as run_migrations

    settings = settings_from_env()
    engine = make_engine(settings.migration_url or settings.database_url)
    try:
        run_migrations(engine)
        typer.echo("database is at the newest schema")
        if grant_to:
            grant_runtime(engine, grant_to)
            typer.echo(f"{grant_to} may use the clinic's tables and only add to the audit log")
    except StoreError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


@clinic_app.command("verify-audit")
def verify_audit() -> None:
    """Check the audit log's hash chain; exit 1 naming the first broken link."""
    from sarcokit.web.audit import verify
    from sarcokit.web.db import make_engine, session_factory

    engine = make_engine(settings_from_env().database_url)
    try:
        with session_factory(engine)() as db:
            report = verify(db)
    finally:
        engine.dispose()
    if report.intact:
        typer.echo(f"audit log intact: {report.rows} rows, every link holds")
        return
    typer.echo(f"audit log BROKEN: {report.reason}", err=True)
    raise typer.Exit(1)


@clinic_app.command("create-user")
def create_user(
    username: str,
    roles: Annotated[str, typer.Option(help="Comma-separated: admin, clinician, researcher.")],
    display_name: Annotated[str, typer.Option(help="Full name.")] = "",
    language: Annotated[str, typer.Option(help="en or zh-CN.")] = "en",
) -> None:
    """Create an account; the password is read from SARCOKIT_PASSWORD or asked for."""
    from sarcokit.fields import InputError
    from sarcokit.web.db import StoreError, session_factory, transaction
    from sarcokit.web.startup import open_store
    from sarcokit.web.store import Conflict
    from sarcokit.web.store import create_user as store_create_user

    password = os.environ.get("SARCOKIT_PASSWORD") or getpass.getpass("Password: ")
    try:
        engine = open_store(settings_from_env())
    except StoreError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    try:
        with transaction(session_factory(engine)) as db:
            user = store_create_user(
                db, None, username, display_name, password, roles.split(","), language
            )
            typer.echo(f"created {user.username} ({user.roles})")
    except (InputError, Conflict) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
