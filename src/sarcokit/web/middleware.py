"""ASGI middleware: security headers, a body-size limit, an access log free of patient data."""

from __future__ import annotations

import contextlib
import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("sarcokit.web.access")

# No inline script or style anywhere, so the policy can forbid both.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CSP_HEADER = b"content-security-policy"
SECURITY_HEADERS = [
    (CSP_HEADER, CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def route_template(scope: Scope) -> str:
    """The matched route's template (/patients/{patient_id}), never the concrete path, which
    may carry a record number."""
    return str(getattr(scope.get("route"), "path", "(unmatched)"))


class BodyTooLarge(Exception):
    """The request body exceeded the limit while being read."""


class ClinicMiddleware:
    """Adds security headers, refuses oversized bodies (413) and logs route, status and time.

    The access log names the route template (/patients/{patient_id}), never the concrete path
    or query string, which could carry a name or record number.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            self._log(scope, 413, started)
            return
        received = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if exceeded:
                # FastAPI turns any error while reading a body into its own 400; the client
                # must get the 413 below instead.
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                # A route with a policy of its own (the API documentation) keeps it.
                own_policy = any(name.lower() == CSP_HEADER for name, _ in headers)
                message["headers"] = [
                    *headers,
                    *(h for h in SECURITY_HEADERS if not (own_policy and h[0] == CSP_HEADER)),
                ]
            await send(message)

        try:
            with contextlib.suppress(BodyTooLarge):
                await self.app(scope, limited_receive, send_with_headers)
            if exceeded:
                status = 413
                await self._too_large(send)
        finally:
            self._log(scope, status, started)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": {
                    "field": "body",
                    "value": None,
                    "expected": f"a request body of at most {self.max_body_bytes} bytes",
                    "message": f"the request body exceeds {self.max_body_bytes} bytes",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), *SECURITY_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        template = route_template(scope)
        elapsed = (time.perf_counter() - started) * 1000
        access_log.info("%s %s %d %.1fms", scope.get("method"), template, status, elapsed)
