"""CDS Hooks 2.0 in the clinic: discovery, a patient-view service with prefetch templates,
cards, and feedback; every call authenticated by the EHR's signed JWT (ES384 or RS384, `aud`
checked, issuers allow-listed).

Issuers are configured in a JSON file named by SARCOKIT_CDS_CLIENTS:
`{"issuers": {"<iss>": {"jwks": {"keys": [<public JWK>, ...]}}}, "audience": ["<url>", ...]}`.
`audience` is optional: by default the service's own URL is the only audience accepted.
Keys are never fetched from a `jku` at call time: only allow-listed keys verify a call.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from sarcokit.api import assess
from sarcokit.definitions import DefinitionRef, resolve
from sarcokit.fhir.client import entries
from sarcokit.fhir.inbound import read_resources
from sarcokit.fhir.mapping import fhir_mapping
from sarcokit.fhir.outbound import result_resources
from sarcokit.i18n import catalogue
from sarcokit.screening import instruments
from sarcokit.web import store

log = logging.getLogger("sarcokit.web.cds")
# The CDS Hooks routes follow the CDS Hooks specification (discovery describes the service), so
# they stay out of the clinic's OpenAPI document.
router = APIRouter()
ALGORITHMS = ("ES384", "RS384")
CLIENTS_ENV = "SARCOKIT_CDS_CLIENTS"


@dataclass
class CdsClients:
    """Allow-listed issuers with their public keys, the accepted audiences, seen JWT ids."""

    issuers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    audience: list[str] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_file(cls, path: Path) -> CdsClients:
        """Read the JSON configuration file."""
        raw = json.loads(path.read_text("utf-8"))
        issuers = {iss: list(entry["jwks"]["keys"]) for iss, entry in raw["issuers"].items()}
        return cls(issuers, list(raw.get("audience", [])))

    def replayed(self, jti: str, expires: float) -> bool:
        """Whether this JWT id was used before (remembered until the token expires)."""
        now = time.time()
        with self.lock:
            for old in [k for k, until in self.seen.items() if until < now]:
                del self.seen[old]
            if jti in self.seen:
                return True
            self.seen[jti] = expires
            return False


def _settings() -> dict[str, Any]:
    raw = tomllib.loads(files("sarcokit").joinpath("reference/fhir.toml").read_text("utf-8"))
    return dict(raw["cds"])


def _clients(request: Request) -> CdsClients:
    found: CdsClients | None = getattr(request.app.state, "cds_clients", None)
    if found is None:
        path = os.environ.get(CLIENTS_ENV)
        found = CdsClients.from_file(Path(path)) if path else CdsClients()
        request.app.state.cds_clients = found
    return found


def _refuse(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)


def authenticate(request: Request) -> JSONResponse | None:
    """None when the call carries a valid JWT from an allow-listed issuer; else a 401."""
    import jwt

    clients = _clients(request)
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return _refuse(401, "a CDS client JWT is required (Authorization: Bearer)")
    token = header[7:].strip()
    try:
        head = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        return _refuse(401, f"the JWT cannot be read: {error}")
    if head.get("alg") not in ALGORITHMS:
        return _refuse(401, f"JWT alg {head.get('alg')!r}; expected one of {', '.join(ALGORITHMS)}")
    issuer = unverified.get("iss")
    keys = clients.issuers.get(str(issuer))
    if not keys:
        return _refuse(401, f"issuer {issuer!r} is not allow-listed")
    candidates = [k for k in keys if head.get("kid") in (None, k.get("kid"))]
    audience = clients.audience or [
        str(request.url.remove_query_params(list(request.query_params)))
    ]
    for key in candidates:
        try:
            claims = jwt.decode(
                token,
                jwt.PyJWK(key).key,
                algorithms=[head["alg"]],
                audience=audience,
                issuer=str(issuer),
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as error:
            return _refuse(401, f"the JWT was refused: {error}")
        if clients.replayed(str(claims["jti"]), float(claims["exp"])):
            return _refuse(401, "the JWT id (jti) was already used")
        return None
    return _refuse(401, "the JWT signature matches no allow-listed key of its issuer")


def prefetch_templates() -> dict[str, str]:
    """The FHIR queries the service needs, as CDS Hooks prefetch templates."""
    mapping = fhir_mapping()
    codes = ",".join(f"{c.system}|{c.code}" for item in mapping.inputs for c in item.codes)
    return {
        "patient": "Patient/{{context.patientId}}",
        "observations": f"Observation?patient={{{{context.patientId}}}}&code={codes}",
        "sarcf": (
            "QuestionnaireResponse?patient={{context.patientId}}"
            f"&questionnaire={mapping.questionnaire_url}"
        ),
    }


@router.get("/cds-services", summary="CDS Hooks discovery", include_in_schema=False)
def discovery() -> dict[str, Any]:
    """The services this clinic offers to an EHR (CDS Hooks 2.0)."""
    settings = _settings()
    return {
        "services": [
            {
                "hook": "patient-view",
                "id": settings["service_id"],
                "title": settings["title"],
                "description": settings["description"],
                "prefetch": prefetch_templates(),
                "usageRequirements": "Observations need LOINC or sarcokit codes and UCUM units "
                "(see the sarcokit CodeSystem).",
            }
        ]
    }


class PrefetchMissing(Exception):
    """Required prefetch data is missing and the FHIR server cannot be queried."""


def _query(body: Mapping[str, Any], query: str) -> Any:
    """One FHIR read or search on the EHR's server (following `next` links), or raise."""
    from sarcokit.fhir.client import FhirClient, FhirClientError

    server = body.get("fhirServer")
    if not isinstance(server, str) or not server:
        raise PrefetchMissing("no fhirServer to query")
    auth = body.get("fhirAuthorization")
    token = auth.get("access_token") if isinstance(auth, Mapping) else None
    try:
        return FhirClient(server, str(token) if token else None).read(query)
    except FhirClientError as error:
        raise PrefetchMissing(f"the FHIR server could not be queried: {error}") from None


def _fill(body: Mapping[str, Any], patient_id: str) -> list[Mapping[str, Any]]:
    prefetch = body.get("prefetch") if isinstance(body.get("prefetch"), Mapping) else {}
    assert isinstance(prefetch, Mapping)
    templates = prefetch_templates()
    found: dict[str, Any] = {}
    for key, template in templates.items():
        value = prefetch.get(key)
        if value is None:
            value = _query(body, template.replace("{{context.patientId}}", patient_id))
        found[key] = value
    patient = found["patient"]
    if not isinstance(patient, Mapping) or patient.get("resourceType") != "Patient":
        raise PrefetchMissing("prefetch 'patient' is not a Patient resource")
    return [patient, *entries(found["observations"]), *entries(found["sarcf"])]


def _card_summary(text: str, limit: int) -> str:
    return text if len(text) < limit else text[: limit - 2] + "…"


def cards_for(
    resources: list[Mapping[str, Any]], lead: DefinitionRef, clinic_url: str, patient_id: str
) -> list[dict[str, Any]]:
    """The cards for one patient: none unless the lead definition's answer is actionable."""
    settings = _settings()
    words = catalogue("en")
    read = read_resources(resources, datetime.now(UTC).date())
    result = assess(read.record, definitions=[lead])
    if not result.ok:
        return []
    chosen = resolve(lead)
    answer = result.definitions[chosen.id]
    indicator = settings["indicators"].get(answer.category or "")
    sarc_f = result.screening.get("sarc_f", {})
    label = words.get(f"category.{answer.category}", str(answer.category))
    if indicator is not None:
        summary = f"{chosen.name}: {label}"
        source: dict[str, Any] = {"label": chosen.citation}
        if chosen.doi:
            source["url"] = f"https://doi.org/{chosen.doi}"
    elif answer.category == "indeterminate" and sarc_f.get("positive"):
        indicator = settings["screening_indicator"]
        instrument = instruments()["sarc_f"]
        summary = f"SARC-F {sarc_f.get('total')} (positive): assess sarcopenia under {chosen.name}"
        source = {"label": instrument.citation}
    else:
        return []
    detail = [f"- {reason}" for reason in answer.reasons]
    detail += [f"- Next: {words.get(f'next.{step}', step)}" for step in answer.next_steps]
    used = [f"{u.field} from {u.resource} ({u.date})" for u in read.used]
    if used:
        detail.append("\nRead from the record: " + "; ".join(used))
    resources_out = result_resources(
        result,
        f"Patient/{patient_id}",
        read.as_of.isoformat(),
        f"{patient_id}/{read.as_of.isoformat()}",
        sorted({u.resource.split("#")[0] for u in read.used if u.resource.startswith("Obs")}),
    )
    observation = next(r for r in resources_out if "method" in r)
    return [
        {
            "uuid": str(uuid.uuid4()),
            "summary": _card_summary(summary, int(settings["summary_max"])),
            "indicator": indicator,
            "detail": "\n".join(detail),
            "source": source,
            "selectionBehavior": "at-most-one",
            "suggestions": [
                {
                    "label": "Record the sarcopenia assessment",
                    "uuid": str(uuid.uuid4()),
                    "isRecommended": True,
                    "actions": [
                        {
                            "type": "create",
                            "description": f"Record the {chosen.name} assessment",
                            "resource": observation,
                        }
                    ],
                }
            ],
            "links": [
                {
                    "label": "Open the sarcokit clinic",
                    "url": f"{clinic_url.rstrip('/')}/patients?q={patient_id}",
                    "type": "absolute",
                }
            ],
        }
    ]


def _lead_definition(request: Request) -> DefinitionRef:
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory() as db:
        return store.clinic_chosen(db)[0]


async def _admitted_body(service_id: str, request: Request) -> Any:
    """The JSON body of a call to this service by an authenticated client, or the refusal."""
    if service_id != _settings()["service_id"]:
        return _refuse(404, f"no CDS service {service_id!r}")
    refused = authenticate(request)
    if refused is not None:
        return refused
    try:
        return json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _refuse(400, "the body is not JSON")


@router.post(
    "/cds-services/{service_id}", summary="CDS Hooks service call", include_in_schema=False
)
async def call_service(service_id: str, request: Request) -> JSONResponse:
    """Cards for the patient in context; 412 when prefetch is missing and cannot be fetched."""
    body = await _admitted_body(service_id, request)
    if isinstance(body, JSONResponse):
        return body
    context = body.get("context") if isinstance(body, Mapping) else None
    if body.get("hook") != "patient-view" or not isinstance(context, Mapping):
        return _refuse(400, "expected a patient-view hook request with a context")
    patient_id = context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        return _refuse(400, "context.patientId is required")

    def work() -> list[dict[str, Any]]:
        resources = _fill(body, patient_id)
        return cards_for(resources, _lead_definition(request), str(request.base_url), patient_id)

    try:
        cards = await run_in_threadpool(work)
    except PrefetchMissing as error:
        return _refuse(412, str(error))
    return JSONResponse({"cards": cards})


@router.post(
    "/cds-services/{service_id}/feedback", summary="CDS Hooks feedback", include_in_schema=False
)
async def feedback(service_id: str, request: Request) -> JSONResponse:
    """Accept the EHR's feedback on cards (accepted or overridden)."""
    body = await _admitted_body(service_id, request)
    if isinstance(body, JSONResponse):
        return body
    items = body.get("feedback") if isinstance(body, Mapping) else None
    if not isinstance(items, list) or not all(
        isinstance(i, Mapping)
        and isinstance(i.get("card"), str)
        and i.get("outcome") in ("accepted", "overridden")
        for i in items
    ):
        return _refuse(400, "expected feedback: [{card, outcome: accepted|overridden}, ...]")
    for item in items:
        log.info("CDS feedback on card %s: %s", item["card"], item["outcome"])
    return JSONResponse({})
