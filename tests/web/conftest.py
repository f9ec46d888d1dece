"""Clinic fixtures (defined in support.py, shared with the browser and load tests)."""

from web.support import clinic, database_url, sqlite_clinic, sqlite_url

__all__ = ["clinic", "database_url", "sqlite_clinic", "sqlite_url"]
