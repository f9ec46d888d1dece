"""The clinic application: storage, middleware, error handling and routes put together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from sarcokit import __version__
from sarcokit.fields import InputError
from sarcokit.web import api, api_docs, cds_hooks, fhir_api, pages, smart, smart_store
from sarcokit.web.config import Settings, secret_file, settings_from_env
from sarcokit.web.db import session_factory, transaction
from sarcokit.web.deps import LoginRequired, Principal, session_principal
from sarcokit.web.guard import GuardMiddleware
from sarcokit.web.middleware import route_template
from sarcokit.web.startup import open_store
from sarcokit.web.store import Conflict, count_users
from sarcokit.web.templating import render

log = logging.getLogger("sarcokit.web")

# Requests holding a database session at once, per process: below the connection pool and
# below the server's worker threads (40), see deps.database.
DB_SLOTS = 16


class ErrorResponse(JSONResponse):
    """An error in the documented shape; a value that JSON cannot carry is escaped."""

    def render(self, content: Any) -> bytes:
        """JSON with non-ASCII escaped (a refused lone surrogate cannot be UTF-8)."""
        return json.dumps(content, ensure_ascii=True, default=str).encode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bool | None):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _error(
    status: int,
    field: str | None,
    value: Any,
    expected: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    problem = {"field": field, "value": _jsonable(value), "expected": expected, "message": message}
    return ErrorResponse(
        {"error": {**problem, "problems": [problem]}}, status_code=status, headers=headers
    )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _signed_in(request: Request) -> Principal | None:
    # Error pages keep the signed-in user's language and navigation.
    with transaction(request.app.state.sessions) as db:
        return session_principal(request, db)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(InputError)
    async def input_error(request: Request, error: InputError) -> Response:
        problems = [_jsonable(p.to_dict()) for p in error.problems]
        return ErrorResponse({"error": {**problems[0], "problems": problems}}, status_code=422)

    @app.exception_handler(Conflict)
    async def conflict(request: Request, error: Conflict) -> Response:
        return _error(409, error.field, error.value, error.expected, str(error))

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, error: RequestValidationError) -> Response:
        problems = []
        for found in error.errors():
            location = [str(part) for part in found.get("loc", ()) if part not in ("body",)]
            # A body that is not JSON is located at ("body", character offset): name the body.
            invalid_json = found.get("type") == "json_invalid"
            name = "body" if invalid_json else ".".join(location) or "body"
            value = found.get("input")
            value = value if isinstance(value, str | int | float | bool | None) else None
            problems.append(
                {
                    "field": name,
                    "value": _jsonable(value),
                    "expected": str(found.get("msg", "")),
                    "message": f"{name}: {found.get('msg', '')}",
                }
            )
        first = problems[0] if problems else {"field": "body", "value": None}
        return ErrorResponse({"error": {**first, "problems": problems}}, status_code=422)

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, error: SQLAlchemyError) -> Response:
        # The transaction was rolled back: nothing of the request was stored, and a read whose
        # audit row could not be written is not served (the audit trail is fail-closed).
        log.error("database error on %s: %s", route_template(request.scope), type(error).__name__)
        message = "the database could not complete the request; nothing was stored"
        if _is_api(request):
            return _error(503, "database", None, "a database that accepts writes", message)
        principal = None
        with contextlib.suppress(SQLAlchemyError):
            principal = await run_in_threadpool(_signed_in, request)
        return render(request, "error.html", principal, status_code=503, detail=message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        # Starlette's own errors (an unknown route, a method not allowed) come here too, so
        # no route answers in FastAPI's {"detail": ...} shape.
        if _is_api(request):
            return _error(
                error.status_code,
                getattr(error, "field", None),
                None,
                getattr(error, "expected", ""),
                str(error.detail),
                error.headers,
            )
        principal = await run_in_threadpool(_signed_in, request)
        return render(
            request, "error.html", principal, status_code=error.status_code, detail=error.detail
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The clinic on its database, migrated to the newest schema."""
    from sarcokit.web.middleware import ClinicMiddleware

    chosen = settings or settings_from_env()
    engine = open_store(chosen)
    app = FastAPI(
        title="sarcokit clinic",
        version=__version__,
        description=(
            "Sarcopenia clinic: patients, visits and results under the consensus definitions. "
            "Every result is computed by the sarcokit engine; see /api/v1/assess."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = chosen
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.db_slots = asyncio.Semaphore(DB_SLOTS)
    app.state.definitions_cache = None
    app.state.smart_config = smart_store.config_from_env()
    _install_handlers(app)
    # Added first, so it runs inside the body-size limit of ClinicMiddleware.
    app.add_middleware(GuardMiddleware)
    app.add_middleware(ClinicMiddleware, max_body_bytes=chosen.max_body_bytes)
    app.mount(
        "/static",
        StaticFiles(directory=str(files("sarcokit.web").joinpath("static"))),
        name="static",
    )
    api_docs.install(app)
    app.include_router(api.router)
    app.include_router(fhir_api.router)
    app.include_router(cds_hooks.router)
    app.include_router(pages.router)
    app.include_router(smart.router)
    with transaction(app.state.sessions) as db:
        if count_users(db) == 0:
            code = secret_file(chosen.setup_code_path, 12)
            log.warning(
                "First run: no administrator yet. Open /setup in the browser and enter the "
                "setup code %s (also kept in %s).",
                code,
                chosen.setup_code_path,
            )
    return app


def serving_app() -> FastAPI:
    """The clinic as `sarcokit clinic serve` runs it: created, then its start-up objects frozen.

    Everything built at start-up (the app, compiled pipelines, criteria, catalogues, Polars and
    SQLAlchemy state) lives as long as the process. Left in the collector's oldest generation,
    it is traversed again by every full collection, and those pauses made the tail of the
    latency: on PostgreSQL at 50 clients, p99 of /assess 102-120 ms and of visits 243-311 ms
    with medians of 8 and 20 ms; frozen, 33-38 ms and 90-96 ms (benchmarks/RESULTS.md).
    """
    app = create_app()
    gc.collect()
    gc.freeze()
    return app
