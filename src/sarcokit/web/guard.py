"""ASGI middleware: strict JSON bodies under /api/, and no caching of anything but static files."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sarcokit.fields import Problem
from sarcokit.web.strict_json import body_problems

NO_STORE = (b"cache-control", b"no-store")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# API routes that also take a file as multipart/form-data (the route bounds and checks it).
MULTIPART_PATHS = frozenset({"/api/v1/definitions"})


def error_body(problems: list[Problem]) -> bytes:
    """The documented error shape for refused values, as JSON (non-ASCII escaped)."""
    listed = [p.to_dict() for p in problems]
    return json.dumps({"error": {**listed[0], "problems": listed}}, ensure_ascii=True).encode()


class GuardMiddleware:
    """Refuses API bodies that are not strict JSON (422) and marks responses `no-store`.

    Every page, JSON document and PDF may carry patient data, so no response but the static
    files may be kept by a browser or proxy cache.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        cacheable = path.startswith("/static/")

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start" and not cacheable:
                headers = [h for h in message.get("headers", []) if h[0].lower() != NO_STORE[0]]
                message["headers"] = [*headers, NO_STORE]
            await send(message)

        if not (path.startswith("/api/") and scope.get("method") in _WITH_BODY) or (
            path in MULTIPART_PATHS and _is_multipart(scope)
        ):
            await self.app(scope, receive, send_marked)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before sending the body.
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problems = body_problems(body) if body.strip() else []
        if problems:
            await _refuse(send_marked, problems)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_marked)


def _is_multipart(scope: Scope) -> bool:
    content_type: bytes = dict(scope.get("headers", [])).get(b"content-type", b"")
    return content_type.lower().startswith(b"multipart/form-data")


async def _refuse(send: Any, problems: list[Problem]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": error_body(problems)})
