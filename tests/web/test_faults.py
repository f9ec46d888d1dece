"""Fault injection against a real clinic server (both databases): SIGKILL mid-load, a full
disk, writes failing inside the database (some only at COMMIT), and PostgreSQL connections cut.
After each, every acknowledged visit is stored exactly as acknowledged, no id was reused, audit
and data agree and the audit chain holds. Bounded: a few seconds of load per fault."""

from __future__ import annotations

import random
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from web.faults import (
    ClinicServer,
    Ledger,
    acknowledged_more,
    can_mount,
    check,
    cut_connections,
    failing_writes,
    fill,
    kill_cycles,
    patients,
    small_filesystem,
    token,
    wait_for,
    writers,
)
from web.support import POSTGRES_URL

CLIENTS = 8


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ClinicServer]:
    """A clinic server with a clinician account, on each database."""
    clinic = ClinicServer(tmp_path / "var", database_url)
    clinic.create_clinician()
    clinic.start()
    yield clinic
    clinic.stop()


def test_sigkill_mid_load_loses_no_acknowledged_visit(server: ClinicServer) -> None:
    bearer = token(server.url)
    ids = patients(server.url, bearer, 6)
    ledger = Ledger()
    kill_cycles(server, bearer, ids, ledger, cycles=3, clients=CLIENTS, rng=random.Random(7))
    # Writing goes on after the last restart: a new visit must not take an acknowledged id.
    with writers(server.url, bearer, ids, ledger, CLIENTS):
        acknowledged_more(ledger, 5, 60.0)
    server.stop()
    findings = check(server.database_url, ledger)
    assert findings.acknowledged >= 20, ledger
    assert findings.clean, findings


def test_writes_failing_in_the_database_are_never_acknowledged(server: ClinicServer) -> None:
    bearer = token(server.url)
    ids = patients(server.url, bearer, 4)
    ledger = Ledger()
    remove = failing_writes(server.database_url, every=4)
    try:
        with writers(server.url, bearer, ids, ledger, CLIENTS):
            wait_for(lambda: len(ledger.acknowledged) >= 10 and ledger.refused.total() >= 5, 60.0)
    finally:
        remove()
    server.stop()
    findings = check(server.database_url, ledger)
    assert findings.acknowledged >= 10 and ledger.refused, ledger
    # Each refusal is the named 503 of a write that was rolled back, never a success.
    assert set(ledger.refused) == {"503"}, ledger.refused
    assert findings.clean, findings


def test_cut_postgresql_connections_lose_no_acknowledged_visit(tmp_path: Path) -> None:
    from web.support import _postgres_schema_url

    urls = _postgres_schema_url()
    application = f"sk_fault_{secrets.token_hex(4)}"
    url = next(urls) + f"&application_name={application}"
    try:
        clinic = ClinicServer(tmp_path / "var", url)
        clinic.create_clinician()
        clinic.start()
        try:
            bearer = token(clinic.url)
            ids = patients(clinic.url, bearer, 4)
            ledger = Ledger()
            cuts = cut_connections(clinic, bearer, ids, ledger, POSTGRES_URL, application, CLIENTS)
        finally:
            clinic.stop()
        findings = check(url, ledger)
        assert cuts >= 3 and findings.acknowledged >= 10, (cuts, ledger)
        assert findings.clean, findings
    finally:
        for _ in urls:
            pass


def test_a_full_disk_loses_no_acknowledged_visit(tmp_path: Path) -> None:
    if not can_mount():
        pytest.fail("this test needs root and tmpfs mounts, as CI has them")
    mount = tmp_path / "small"
    with small_filesystem(mount, 3072) as data:
        clinic = ClinicServer(data / "var", f"sqlite:///{(data / 'var' / 'clinic.db').as_posix()}")
        clinic.log = tmp_path / "server.log"
        clinic.create_clinician()
        clinic.start()
        try:
            bearer = token(clinic.url)
            ids = patients(clinic.url, bearer, 4)
            # Fill the disk, then free a little: the clinic runs out of space while writing.
            fill(data)
            ballast = data / "ballast"
            with ballast.open("r+b") as handle:
                handle.truncate(max(0, ballast.stat().st_size - 96 * 1024))
            ledger = Ledger()
            with writers(clinic.url, bearer, ids, ledger, CLIENTS):
                wait_for(lambda: ledger.refused.total() >= 10, 60.0)
            assert ledger.refused and ledger.acknowledged, ledger
            assert set(ledger.refused) == {"503"}, ledger.refused
            # Space comes back: the same clinic starts again and holds every acknowledged visit.
            clinic.kill()
            ballast.unlink()
            clinic.start()
            clinic.stop()
            findings = check(clinic.database_url, ledger)
        finally:
            clinic.kill()
    assert findings.clean, findings
    shutil.rmtree(mount, ignore_errors=True)
