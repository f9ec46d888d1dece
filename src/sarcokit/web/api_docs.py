"""Interactive API documentation at /docs: Swagger UI's own files, served by the clinic.

The clinic's pages allow no script from anywhere but the clinic itself, so Swagger UI cannot
come from a CDN: its files ship in the `swagger-ui-py` package and are served under
/docs/static. The page sends a policy of its own that allows nothing but those files, its
start-up script and the OpenAPI document.
"""

from __future__ import annotations

import importlib.util
from html import escape
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/static"
# Only this origin's files: Swagger UI's script, style and icons, the start-up script in the
# clinic's static folder, and the OpenAPI document fetched from the same origin.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


def swagger_ui_files() -> Path | None:
    """Where the installed Swagger UI files are, or None when the package is missing."""
    # Found, not imported: only the package's static files are used, not its framework glue.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


@router.get(DOCS_PATH)
def docs_page() -> HTMLResponse:
    """Swagger UI over /api/v1/openapi.json."""
    headers = {"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY}
    if swagger_ui_files() is None:
        message = "Swagger UI is not installed: install sarcokit[clinic] (swagger-ui-py)."
        return HTMLResponse(f"<p>{escape(message)}</p>", status_code=503, headers=headers)
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sarcokit clinic API</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="icon" href="{ASSETS_PATH}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi="/api/v1/openapi.json"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""
    return HTMLResponse(page, headers=headers)


def install(app: FastAPI) -> None:
    """Add /docs and, where Swagger UI is installed, its files under /docs/static."""
    found = swagger_ui_files()
    if found is not None:
        app.mount(ASSETS_PATH, StaticFiles(directory=str(found)), name="swagger-ui")
    app.include_router(router)
