"""A small SMART on FHIR authorisation server for the tests only, in front of the local FHIR
server: `.well-known/smart-configuration`, an authorize endpoint issuing a code bound to the
PKCE challenge, a token endpoint checking the S256 verifier, and a proxy to the FHIR server that
refuses any request without one of its bearer tokens. Written from RFC 6749, RFC 7636 and the
SMART App Launch guide, independently of sarcokit.fhir.smart, so the clinic is checked against
it. Served by uvicorn on a loopback port in a thread; stopped with the test module."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from interop.server import _free_port

CLIENT_ID = "sarcokit-test-client"
REDIRECT_URI = "http://testserver/smart/callback"
MRN = "http://hospital.example/fhir/mrn"


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass
class AuthServer:
    """The server's state, and switches the tests turn to make it fail."""

    base: str
    upstream: str
    redirect_uri: str = REDIRECT_URI
    launches: dict[str, str] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    # Every FHIR request through the proxy: (method, path, the bearer token it carried).
    fhir_requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    discovery_requests: int = 0
    # "error": the token endpoint answers 500; "no_patient": a token response without patient.
    token_failure: str | None = None
    # "refuse": transactions answered 503 unread; "lose": written, then answered 502.
    write_failure: str | None = None
    # Overrides of the smart-configuration document.
    configuration: dict[str, Any] = field(default_factory=dict)
    granted_scope: str | None = None

    @property
    def fhir(self) -> str:
        """The FHIR base URL: the `iss` of launches."""
        return f"{self.base}/fhir"

    def new_launch(self, patient: str) -> str:
        """A launch id for the patient, as the EHR makes when the clinician opens the app."""
        launch = secrets.token_hex(8)
        self.launches[launch] = patient
        return launch

    def reset(self) -> None:
        """Forget requests and switches (launches, codes and tokens stay valid)."""
        self.fhir_requests.clear()
        self.discovery_requests = 0
        self.token_failure = self.write_failure = self.granted_scope = None
        self.configuration = {}


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def build_app(server: AuthServer) -> Starlette:
    """The authorisation server and FHIR proxy as a Starlette app."""

    def smart_configuration(request: Request) -> Response:
        server.discovery_requests += 1
        document = {
            "issuer": server.base,
            "authorization_endpoint": f"{server.base}/authorize",
            "token_endpoint": f"{server.base}/token",
            "grant_types_supported": ["authorization_code"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["launch", "patient/*.rs", "patient/*.c"],
            "capabilities": ["launch-ehr", "client-public", "context-ehr-patient", "permission-v2"],
        }
        document.update(server.configuration)
        return JSONResponse(document)

    def authorize(request: Request) -> Response:
        q = request.query_params
        checks = {
            "response_type": q.get("response_type") == "code",
            "client_id": q.get("client_id") == CLIENT_ID,
            "redirect_uri": q.get("redirect_uri") == server.redirect_uri,
            "code_challenge_method": q.get("code_challenge_method") == "S256",
            "code_challenge": len(q.get("code_challenge", "")) == 43,
            "aud": q.get("aud") == server.fhir,
            "launch": q.get("launch") in server.launches,
            "scope": "launch" in q.get("scope", "").split(),
            "state": bool(q.get("state")),
        }
        wrong = [name for name, ok in checks.items() if not ok]
        if wrong:
            # Never redirected: the redirect URI itself may be the wrong parameter.
            return _oauth_error("invalid_request", f"wrong parameters: {', '.join(wrong)}")
        code = secrets.token_urlsafe(24)
        server.codes[code] = {
            "challenge": q["code_challenge"],
            "patient": server.launches[q["launch"]],
            "scope": q["scope"],
            "expires": time.time() + 60,
            "used": False,
        }
        answer = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{server.redirect_uri}?{answer}", status_code=302)

    async def token(request: Request) -> Response:
        form = await request.form()
        if server.token_failure == "error":
            return _oauth_error("server_error", "the test server was told to fail", 500)
        code = str(form.get("code", ""))
        grant = server.codes.get(code)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return _oauth_error("invalid_grant", "unknown code")
        # A code is single use, whether or not the attempt succeeds (RFC 6749 §4.1.2).
        used, grant["used"] = grant["used"], True
        if used or grant["expires"] < time.time():
            return _oauth_error("invalid_grant", "code already used or expired")
        if form.get("client_id") != CLIENT_ID or form.get("redirect_uri") != server.redirect_uri:
            return _oauth_error("invalid_grant", "client_id or redirect_uri differ")
        if s256(str(form.get("code_verifier", ""))) != grant["challenge"]:
            return _oauth_error("invalid_grant", "PKCE verification failed")
        access = secrets.token_urlsafe(32)
        server.tokens[access] = grant["patient"]
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": server.granted_scope or grant["scope"],
            "patient": grant["patient"],
        }
        if server.token_failure == "no_patient":
            del body["patient"]
        return JSONResponse(body)

    async def fhir(request: Request) -> Response:
        path = request.path_params.get("path", "")
        header = request.headers.get("authorization", "")
        bearer = header[7:] if header.lower().startswith("bearer ") else None
        server.fhir_requests.append((request.method, path, bearer))
        if bearer not in server.tokens:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        if request.method == "POST" and server.write_failure == "refuse":
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=503)
        url = f"{server.upstream}/{path}" if path else server.upstream
        forwarded = httpx.request(
            request.method,
            url,
            params=list(request.query_params.multi_items()),
            content=await request.body(),
            headers={"Content-Type": request.headers.get("content-type", "application/json")},
            timeout=60,
        )
        if request.method == "POST" and server.write_failure == "lose":
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=502)
        text = forwarded.text.replace(server.upstream, server.fhir)
        return Response(text, forwarded.status_code, media_type="application/fhir+json")

    def ehr_page(request: Request) -> Response:
        # The EHR's chart page: a link that launches the app (`app` is its launch URL).
        app, launch = request.query_params["app"], request.query_params["launch"]
        target = f"{app}?{urlencode({'iss': server.fhir, 'launch': launch})}"
        body = (
            '<!doctype html><title>EHR</title><link rel="icon" href="data:,">'
            f'<a id="launch" href="{target}">Open</a>'
        )
        return Response(body, media_type="text/html")

    return Starlette(
        routes=[
            Route("/ehr", ehr_page),
            Route("/fhir/.well-known/smart-configuration", smart_configuration),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/fhir/{path:path}", fhir, methods=["GET", "POST"]),
            Route("/fhir", fhir, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def auth_server(fhir_server: str) -> Iterator[AuthServer]:
    """The test authorisation server and FHIR proxy on 127.0.0.1, stopped after the module."""
    import uvicorn

    port = _free_port()
    server = AuthServer(f"http://127.0.0.1:{port}", fhir_server)
    config = uvicorn.Config(build_app(server), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test authorisation server did not start")
        time.sleep(0.05)
    try:
        yield server
    finally:
        running.should_exit = True
        thread.join(timeout=20)
