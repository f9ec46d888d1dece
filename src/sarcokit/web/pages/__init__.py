"""The clinic's server-rendered pages, one router module per resource. Every form carries a
CSRF token, checked by the form's dependency (pages.common); all writes are POSTs."""

from __future__ import annotations

from fastapi import APIRouter

from sarcokit.web.pages import account, admin, patients, research, session, visits

router = APIRouter(include_in_schema=False)
for _module in (session, patients, visits, research, admin, account):
    router.include_router(_module.router)
