"""The researcher's page: the de-identified export and its data dictionary."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sarcokit.web import export
from sarcokit.web.deps import Db, research_table
from sarcokit.web.export import ExportKind
from sarcokit.web.pages.common import Researcher
from sarcokit.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/research")
def research(request: Request, principal: Researcher) -> HTMLResponse:
    """The researcher's page: what the de-identified export holds."""
    return render(request, "research.html", principal)


@router.get("/research/export.{kind}")
def research_export(request: Request, db: Db, principal: Researcher, kind: ExportKind) -> Response:
    """Every visit, de-identified, as a typed CSV or Parquet file."""
    frame, _ = research_table(request, db, principal)
    return export.file_response(frame, kind)


@router.get("/research/dictionary.csv")
def research_dictionary(request: Request, db: Db, principal: Researcher) -> Response:
    """The export's data dictionary as CSV."""
    _, columns = research_table(request, db, principal)
    return Response(
        export.dictionary_csv(columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sarcokit-dictionary.csv"'},
    )
