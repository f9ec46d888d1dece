"""The clinic under test: an app on SQLite or PostgreSQL, users of every role, clients."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from sarcokit.web.app import create_app
from sarcokit.web.config import Settings
from sarcokit.web.db import transaction
from sarcokit.web.security import issue_api_token
from sarcokit.web.store import create_user

POSTGRES_URL = os.environ.get(
    "SARCOKIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PASSWORD = "correct horse battery staple"
ROLE_SETS = {
    "admin": ["admin"],
    "clinician": ["clinician"],
    "researcher": ["researcher"],
}

# The AWGS 2019 worked example (Chen et al. JAMDA 2020;21:300, Figure 1): a woman with grip
# < 18 kg, 6-m gait speed < 1.0 m/s and DXA ASMI < 5.4 kg/m² has severe sarcopenia.
# ASMI = 11.9 kg / 1.5² m² = 5.29 kg/m².
SEVERE_WOMAN: dict[str, Any] = {
    "grip_kg_trials": [15.5, 16.0],
    "gait_speed_m_s": 0.7,
    "height_cm": 150,
    "asm_kg": 11.9,
    "asm_method": "dxa",
}
"""Measurements of the AWGS 2019 worked example: severe sarcopenia in a woman."""


def _postgres_schema_url() -> Iterator[str]:
    """A fresh schema in the PostgreSQL test database, dropped afterwards.

    An unreachable server fails the test: the storage checks must run on both databases.
    """
    schema = f"sarcokit_test_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage-dependent test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'clinic.db').as_posix()}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database for tests whose subject is not storage."""
    return f"sqlite:///{(tmp_path / 'clinic.db').as_posix()}"


def make_app(url: str, data_dir: Path) -> FastAPI:
    """The clinic on a database, with its secrets under data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return create_app(Settings(database_url=url, data_dir=data_dir))


@dataclass
class Clinic:
    """An app with one user per role, each with an API token."""

    app: FastAPI
    tokens: dict[str, str]
    usernames: dict[str, str]

    def client(self) -> TestClient:
        """An anonymous client."""
        return TestClient(self.app)

    def api(self, role: str) -> TestClient:
        """A client sending the role's bearer token."""
        client = TestClient(self.app)
        client.headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return client

    def browser(self, role: str) -> tuple[TestClient, str]:
        """A client signed in through the login form as the role, and its CSRF token."""
        client = TestClient(self.app)
        page = client.get("/login")
        token = csrf_of(page.text)
        response = client.post(
            "/login",
            data={"csrf_token": token, "username": self.usernames[role], "password": PASSWORD},
        )
        assert response.status_code == 200, response.text
        return client, csrf_of(response.text)


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF token"
    return found.group(1)


def build_clinic(url: str, data_dir: Path) -> Clinic:
    """An app on the database with an admin, a clinician and a researcher."""
    app = make_app(url, data_dir)
    tokens, names = {}, {}
    with transaction(app.state.sessions) as db:
        for role, roles in ROLE_SETS.items():
            user = create_user(db, None, f"{role}_user", role.title(), PASSWORD, roles)
            tokens[role] = issue_api_token(db, user, "tests")
            names[role] = user.username
    return Clinic(app, tokens, names)


@pytest.fixture
def clinic(database_url: str, tmp_path: Path) -> Iterator[Clinic]:
    """A clinic on each database."""
    built = build_clinic(database_url, tmp_path / "var")
    yield built
    built.app.state.engine.dispose()


@pytest.fixture
def sqlite_clinic(sqlite_url: str, tmp_path: Path) -> Iterator[Clinic]:
    """A clinic on SQLite only."""
    built = build_clinic(sqlite_url, tmp_path / "var")
    yield built
    built.app.state.engine.dispose()


def add_patient(
    api: TestClient,
    record_number: str = "A1",
    name: str = "Li Hua",
    sex: str = "female",
    date_of_birth: str = "1945-01-01",
) -> dict[str, Any]:
    """Register a patient through the API and return the created record."""
    response = api.post(
        "/api/v1/patients",
        json={
            "record_number": record_number,
            "name": name,
            "sex": sex,
            "date_of_birth": date_of_birth,
        },
    )
    assert response.status_code == 201, response.text
    patient: dict[str, Any] = response.json()
    return patient


def add_visit(
    api: TestClient,
    patient_id: int,
    measurements: dict[str, Any] | None = None,
    visit_date: str = "2026-01-10",
) -> dict[str, Any]:
    """Record a visit (the AWGS 2019 worked example by default) and return the created visit."""
    response = api.post(
        f"/api/v1/patients/{patient_id}/visits",
        json={
            "visit_date": visit_date,
            "measurements": SEVERE_WOMAN if measurements is None else measurements,
        },
    )
    assert response.status_code == 201, response.text
    visit: dict[str, Any] = response.json()
    return visit
