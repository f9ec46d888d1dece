"""FHIR R4 in the clinic API: POST /api/v1/assess/fhir assesses one patient's Bundle."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from sarcokit.definitions import DEFINITION_IDS
from sarcokit.web import store
from sarcokit.web.assessment import invalid
from sarcokit.web.deps import Principal, api_user
from sarcokit.web.i18n import CORE_LANG

router = APIRouter(prefix="/api/v1")


def _definitions(request: Request, requested: str | None) -> list[str]:
    if requested:
        chosen = requested.split(",")
        if any(d not in DEFINITION_IDS for d in chosen):
            raise invalid("definitions", requested, f"ids among {', '.join(DEFINITION_IDS)}")
        return chosen
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory() as db:
        return store.clinic_definitions(db)


def _assess(
    request: Request,
    body: Any,
    definitions: str | None,
    language: str,
    as_of: date | None,
    bundle: bool,
) -> dict[str, Any]:
    from sarcokit.fhir.service import assess_bundle

    chosen = _definitions(request, definitions)
    assessed = assess_bundle(body, definitions=chosen, lang=CORE_LANG[language], as_of=as_of)
    if not assessed.result.ok:
        from sarcokit.fields import InputError

        raise InputError(assessed.result.problems)
    out = assessed.to_dict()
    if bundle:
        out["transaction"] = assessed.write_back()
    return out


@router.post(
    "/assess/fhir",
    summary="Assess one patient's FHIR R4 Bundle (stateless; nothing is stored)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["resourceType"],
                        "properties": {
                            "resourceType": {"type": "string", "enum": ["Bundle"]},
                            "entry": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                }
            },
        }
    },
)
async def assess_fhir(
    request: Request,
    principal: Annotated[Principal, Depends(api_user)],
    definitions: Annotated[
        str | None, Query(description="comma-separated definition ids; the clinic's by default")
    ] = None,
    lang: Annotated[str | None, Query(description="en or zh-CN")] = None,
    as_of: Annotated[date | None, Query(description="assessment date; today by default")] = None,
    bundle: Annotated[
        bool, Query(description="also return the result as a FHIR transaction Bundle")
    ] = False,
) -> dict[str, Any]:
    """The result contract plus a `fhir` block: the record read, every observation used (id and
    date) and every one ignored with why; a refused Bundle is a 422 naming the field."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise invalid("body", None, f"a FHIR Bundle as JSON ({error})") from None
    language = store.check_language(lang) if lang else principal.user.language
    return await run_in_threadpool(_assess, request, body, definitions, language, as_of, bundle)
