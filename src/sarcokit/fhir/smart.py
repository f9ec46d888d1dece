"""SMART on FHIR App Launch (EHR launch) as a client: discovery, PKCE S256, the authorisation
request, and the code exchange. No web framework here; the clinic's routes are web/smart.py."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode, urlsplit

from sarcokit.fhir.client import timeouts

WELL_KNOWN = ".well-known/smart-configuration"
# SMART 2.0 permissions: a non-empty subsequence of c r u d s, in that order.
_V2 = re.compile(r"(?=.)c?r?u?d?s?")


class SmartError(Exception):
    """A launch step failed: the HTTP status the clinic answers, and the field, value and
    expectation that were not met."""

    def __init__(self, status: int, field: str, value: Any, expected: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.value = value
        self.expected = expected


@cache
def smart_settings() -> dict[str, Any]:
    """The [smart] section of reference/fhir.toml: scopes and lifetimes."""
    raw = tomllib.loads(files("sarcokit").joinpath("reference/fhir.toml").read_text("utf-8"))
    return dict(raw["smart"])


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7636 appendix A)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def code_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier: BASE64URL(SHA256(ASCII(verifier)))."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_verifier() -> str:
    """A PKCE code verifier: 86 characters of the unreserved set (RFC 7636 asks 43 to 128)."""
    return secrets.token_urlsafe(64)


def same_url(a: str, b: str) -> bool:
    """Whether two base URLs name the same server (a trailing slash aside)."""
    return a.rstrip("/") == b.rstrip("/")


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(field: str, url: Any) -> str:
    """An endpoint URL from discovery: HTTPS, or plain HTTP on this machine only."""
    if not isinstance(url, str) or not url:
        raise SmartError(502, field, url, "an absolute URL", f"{field} is missing")
    parts = urlsplit(url)
    if (parts.scheme == "https" and parts.hostname) or (
        parts.scheme == "http" and _loopback(parts.hostname)
    ):
        return url
    raise SmartError(
        502,
        field,
        url,
        "an https:// URL (http:// only on a loopback address)",
        f"{field} = {url!r} is not an https:// URL",
    )


@dataclass(frozen=True)
class SmartConfiguration:
    """What the EHR's `.well-known/smart-configuration` says the clinic needs."""

    authorization_endpoint: str
    token_endpoint: str
    capabilities: frozenset[str]

    @property
    def scopes(self) -> str:
        """The scopes to ask for: SMART 2.0 forms when the server supports them, else 1.0."""
        settings = smart_settings()
        chosen = settings["scopes_v2" if "permission-v2" in self.capabilities else "scopes_v1"]
        return " ".join(chosen)


def _listed(document: Mapping[str, Any], field: str, needed: str, optional: bool) -> None:
    found = document.get(field)
    if found is None and optional:
        return
    if not isinstance(found, list) or needed not in found:
        raise SmartError(
            502,
            field,
            found,
            f"a list holding {needed!r}",
            f"the EHR's SMART configuration: {field} = {found!r} does not offer {needed!r}",
        )


def configuration(document: Any, where: str) -> SmartConfiguration:
    """Check a smart-configuration document: authorisation code with PKCE S256 is supported."""
    if not isinstance(document, Mapping):
        raise SmartError(
            502, "smart-configuration", None, "a JSON object", f"{where} is not a JSON object"
        )
    _listed(document, "code_challenge_methods_supported", "S256", optional=False)
    _listed(document, "response_types_supported", "code", optional=True)
    _listed(document, "grant_types_supported", "authorization_code", optional=True)
    capabilities = document.get("capabilities") or []
    return SmartConfiguration(
        check_endpoint("authorization_endpoint", document.get("authorization_endpoint")),
        check_endpoint("token_endpoint", document.get("token_endpoint")),
        frozenset(str(c) for c in capabilities if isinstance(c, str)),
    )


def _get_json(method: str, url: str, what: str, **kwargs: Any) -> tuple[int, Any]:
    import httpx

    try:
        with httpx.Client(timeout=timeouts(), follow_redirects=False) as client:
            response = client.request(method, url, **kwargs)
    except httpx.HTTPError as error:
        raise SmartError(
            502, what, url, "an answer", f"{what} at {url} could not be reached: {error}"
        ) from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def discover(iss: str) -> SmartConfiguration:
    """Fetch and check `{iss}/.well-known/smart-configuration`."""
    url = f"{iss.rstrip('/')}/{WELL_KNOWN}"
    status, document = _get_json("GET", url, "smart-configuration", headers={"Accept": "json"})
    if status != 200:
        raise SmartError(
            502,
            "smart-configuration",
            status,
            "HTTP 200",
            f"the EHR's SMART configuration at {url} answered HTTP {status}",
        )
    return configuration(document, url)


def authorize_url(
    found: SmartConfiguration,
    *,
    client_id: str,
    redirect_uri: str,
    launch: str,
    state: str,
    iss: str,
    challenge: str,
) -> str:
    """The authorisation request the browser is sent to (response_type=code, PKCE S256)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "launch": launch,
            "scope": found.scopes,
            "state": state,
            "aud": iss,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if urlsplit(found.authorization_endpoint).query else "?"
    return f"{found.authorization_endpoint}{separator}{query}"


@dataclass(frozen=True)
class TokenResponse:
    """The parts of the token response the clinic uses."""

    access_token: str
    patient: str
    scope: str
    expires_in: int | None


def exchange_code(
    token_endpoint: str,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
    client_id: str,
    client_secret: str | None = None,
) -> TokenResponse:
    """Exchange the authorisation code (with the PKCE verifier) for an access token."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": client_id,
    }
    auth = (client_id, client_secret) if client_secret else None
    status, body = _get_json(
        "POST", token_endpoint, "token_endpoint", data=form, auth=auth,
        headers={"Accept": "application/json"},
    )  # fmt: skip
    if status != 200:
        error = body.get("error") if isinstance(body, Mapping) else None
        described = body.get("error_description") if isinstance(body, Mapping) else None
        why = f": {error}" if error else ""
        why += f" ({described})" if described else ""
        raise SmartError(
            502,
            "token_endpoint",
            status,
            "HTTP 200 with an access token",
            f"the EHR's token endpoint {token_endpoint} answered HTTP {status}{why}",
        )
    return token_response(body, token_endpoint)


def token_response(body: Any, where: str) -> TokenResponse:
    """Check a token response: a bearer access token and the patient in context."""

    def refused(field: str, value: Any, expected: str) -> SmartError:
        shown = value if isinstance(value, str | int | None) else type(value).__name__
        message = f"the token response of {where}: {field} = {shown!r}; expected {expected}"
        return SmartError(502, field, shown, expected, message)

    if not isinstance(body, Mapping):
        raise refused("body", None, "a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise refused("access_token", None, "a token")
    kind = body.get("token_type")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise refused("token_type", kind, "Bearer")
    patient = body.get("patient")
    if not isinstance(patient, str) or not patient or "/" in patient:
        raise refused("patient", patient, "the id of the Patient in context")
    expires = body.get("expires_in")
    if expires is not None and (not isinstance(expires, int) or expires <= 0):
        raise refused("expires_in", expires, "a positive number of seconds")
    scope = body.get("scope")
    return TokenResponse(token, patient, str(scope) if isinstance(scope, str) else "", expires)


def granted(scope: str, requested: str, resource: str, permission: str) -> bool:
    """Whether a granted scope (or, when the response named none, the requested one) allows a
    permission (`c`reate, `r`ead, `u`pdate, `s`earch) on a patient resource, in either scope
    form."""
    names = (scope or requested).split()
    v1 = {"c": "write", "r": "read", "u": "write", "s": "read"}[permission]
    for name in names:
        context, _, rest = name.partition("/")
        kind, _, allowed = rest.partition("?")[0].partition(".")
        if context not in ("patient", "user") or kind not in (resource, "*"):
            continue
        if allowed in (v1, "*") or (_V2.fullmatch(allowed) and permission in allowed):
            return True
    return False
