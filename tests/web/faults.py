"""A fault campaign against a real clinic server: writers record visits while the server is
killed, its disk fills or its database connections are cut; afterwards every acknowledged write
must be stored exactly as acknowledged, and audit and data must agree.

Shared by tests/web/test_faults.py (short, bounded runs) and benchmarks/clinic_faults.py (longer
campaigns). Traffic goes to loopback only.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select, text

from sarcokit.web.audit import verify
from sarcokit.web.db import session_factory
from sarcokit.web.models import AuditEvent, Visit

PASSWORD = "fault campaign passphrase"
USERNAME = "fault_clinician"


def sarcokit_command() -> str:
    """The sarcokit executable of this interpreter's environment."""
    beside = Path(sys.executable).parent / "sarcokit"
    found = str(beside) if beside.exists() else shutil.which("sarcokit")
    assert found is not None, "the sarcokit command is not installed"
    return found


def free_port() -> int:
    """A loopback port nobody listens on at the moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ClinicServer:
    """`sarcokit clinic serve` in a child process group, which can be killed and restarted."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SARCOKIT_DATA_DIR": str(data_dir),
            "SARCOKIT_DATABASE_URL": database_url,
            "SARCOKIT_PASSWORD": PASSWORD,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"fault-server-{self.port}.log"

    def create_clinician(self) -> None:
        """The account the writers use."""
        subprocess.run(
            [sarcokit_command(), "clinic", "create-user", USERNAME, "--roles", "clinician"],
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start(self, limit: float = 90.0) -> None:
        """Start the server and wait until it answers."""
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sarcokit_command(), "clinic", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/api/v1/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the clinic did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no handler, no clean-up, no final commit."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Stop gracefully, as Ctrl+C does, then by force."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Ledger:
    """What the writers were told: every acknowledged visit with what it was sent."""

    acknowledged: dict[int, tuple[int, float]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def token(url: str) -> str:
    """A bearer token for the writers' account."""
    answer = httpx.post(
        f"{url}/api/v1/auth/token",
        json={"username": USERNAME, "password": PASSWORD, "name": "faults"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    value: str = answer.json()["token"]
    return value


def patients(url: str, bearer: str, count: int) -> list[int]:
    """Register the patients the writers record visits for."""
    ids = []
    with httpx.Client(headers={"Authorization": f"Bearer {bearer}"}, timeout=30) as http:
        for number in range(count):
            answer = http.post(
                f"{url}/api/v1/patients",
                json={
                    "record_number": f"F-{secrets.token_hex(4)}-{number}",
                    "name": f"Fault {number}",
                    "sex": "female" if number % 2 else "male",
                    "date_of_birth": "1944-03-02",
                },
            )
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
    return ids


def _writer(
    url: str, bearer: str, patient_ids: list[int], ledger: Ledger, stop: threading.Event, seed: int
) -> None:
    rng = random.Random(seed)
    with httpx.Client(headers={"Authorization": f"Bearer {bearer}"}, timeout=10) as http:
        while not stop.is_set():
            patient = rng.choice(patient_ids)
            # A value unique to this request: the stored visit must carry exactly it.
            grip = round(rng.uniform(10.0, 50.0), 3)
            with ledger.lock:
                ledger.attempts += 1
            try:
                answer = http.post(
                    f"{url}/api/v1/patients/{patient}/visits",
                    json={"visit_date": "2026-01-10", "measurements": {"grip_kg": grip}},
                )
            except httpx.TransportError as error:
                with ledger.lock:
                    ledger.refused[type(error).__name__] += 1
                time.sleep(0.05)
                continue
            with ledger.lock:
                if answer.status_code == 201:
                    ledger.acknowledged[answer.json()["id"]] = (patient, grip)
                else:
                    ledger.refused[str(answer.status_code)] += 1


@contextmanager
def writers(
    url: str, bearer: str, patient_ids: list[int], ledger: Ledger, clients: int
) -> Iterator[None]:
    """Writer threads recording visits until the block ends."""
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_writer, args=(url, bearer, patient_ids, ledger, stop, seed), daemon=True
        )
        for seed in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


@dataclass
class Findings:
    """What the database holds against what the writers were told."""

    acknowledged: int
    found: int
    lost: list[int]
    changed: list[int]
    unaudited: list[int]
    audited_but_missing: list[int]
    chain: str

    @property
    def clean(self) -> bool:
        """No acknowledged write lost or changed, audit and data agreeing, the chain intact."""
        return not (
            self.lost or self.changed or self.unaudited or self.audited_but_missing or self.chain
        )


def check(database_url: str, ledger: Ledger) -> Findings:
    """Compare the stored visits and audit rows with the ledger."""
    engine = create_engine(database_url)
    try:
        with session_factory(engine)() as db:
            stored = {
                v.id: (v.patient_id, v.measurements.get("grip_kg"))
                for v in db.scalars(select(Visit))
            }
            audited = set(
                db.scalars(select(AuditEvent.entity_id).where(AuditEvent.action == "visit.create"))
            )
            report = verify(db)
    finally:
        engine.dispose()
    acknowledged = ledger.acknowledged
    lost = sorted(i for i in acknowledged if i not in stored)
    changed = sorted(
        i
        for i, (patient, grip) in acknowledged.items()
        if i in stored and (stored[i][0] != patient or stored[i][1] != grip)
    )
    return Findings(
        acknowledged=len(acknowledged),
        found=sum(1 for i in acknowledged if i in stored),
        lost=lost,
        changed=changed,
        unaudited=sorted(set(stored) - audited),
        audited_but_missing=sorted(i for i in audited if i is not None and i not in stored),
        chain=report.reason,
    )


# -- faults -----------------------------------------------------------------------------------


def kill_cycles(
    server: ClinicServer,
    bearer: str,
    patient_ids: list[int],
    ledger: Ledger,
    cycles: int,
    clients: int,
    rng: random.Random,
) -> int:
    """Kill the server with SIGKILL mid-load `cycles` times, restarting it each time."""
    for _ in range(cycles):
        with writers(server.url, bearer, patient_ids, ledger, clients):
            # Kill once writes flow (a slow machine takes longer), at a random moment after.
            acknowledged_more(ledger, 5, 60.0)
            time.sleep(rng.uniform(0.0, 1.0))
            server.kill()
        server.start()
    return cycles


def acknowledged_more(ledger: Ledger, count: int, limit: float) -> None:
    """Return once `count` more visits were acknowledged, or after `limit` seconds."""
    target = len(ledger.acknowledged) + count
    wait_for(lambda: len(ledger.acknowledged) >= target, limit)


def wait_for(condition: Callable[[], bool], limit: float) -> None:
    """Return when the condition holds, or after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def cut_connections(
    server: ClinicServer,
    bearer: str,
    patient_ids: list[int],
    ledger: Ledger,
    admin_url: str,
    application: str,
    clients: int,
    at_least: int = 10,
    limit: float = 60.0,
) -> int:
    """PostgreSQL: terminate the clinic's database connections again and again under load,
    until `at_least` cuts were made and `at_least` visits acknowledged (or `limit` seconds)."""
    admin = create_engine(admin_url)
    cuts = 0
    try:
        with writers(server.url, bearer, patient_ids, ledger, clients):
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline and (
                cuts < at_least or len(ledger.acknowledged) < at_least
            ):
                time.sleep(0.2)
                with admin.begin() as connection:
                    cuts += len(
                        connection.execute(
                            text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = :name"
                            ),
                            {"name": application},
                        ).all()
                    )
    finally:
        admin.dispose()
    return cuts


def failing_writes(database_url: str, every: int) -> Callable[[], None]:
    """Make one write in `every` fail inside the database, some only at COMMIT.

    The failures are raised by triggers as the database raises a full disk (PostgreSQL's
    SQLSTATE 53100): on inserts into visits and audit rows, and, on PostgreSQL, in a deferred
    constraint trigger that fires at COMMIT, where an answer sent before the commit would lie.
    Returns the function that removes them.
    """
    engine = create_engine(database_url)
    if engine.dialect.name == "sqlite":
        statements = [
            f"CREATE TRIGGER fault_{table} BEFORE INSERT ON {table} "
            f"WHEN abs(random()) % {every} = 0 "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full (injected)'); END"
            for table in ("visits", "audit_log")
        ]
        removals = ["DROP TRIGGER fault_visits", "DROP TRIGGER fault_audit_log"]
    else:
        statements = [
            "CREATE FUNCTION fault_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF random() < {1 / every} THEN RAISE EXCEPTION 'could not extend file: "
            "No space left on device (injected)' USING ERRCODE = '53100'; END IF; "
            "RETURN NEW; END $$",
            "CREATE TRIGGER fault_visits BEFORE INSERT ON visits "
            "FOR EACH ROW EXECUTE FUNCTION fault_full()",
            "CREATE CONSTRAINT TRIGGER fault_commit AFTER INSERT ON audit_log "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fault_full()",
        ]
        removals = [
            "DROP TRIGGER fault_visits ON visits",
            "DROP TRIGGER fault_commit ON audit_log",
            "DROP FUNCTION fault_full()",
        ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))

    def remove() -> None:
        with engine.begin() as connection:
            for statement in removals:
                connection.execute(text(statement))
        engine.dispose()

    return remove


@contextmanager
def small_filesystem(where: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of `size_kb` KiB mounted at `where` (needs root; the machine must allow it)."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(where)],
        check=True,
        capture_output=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def can_mount() -> bool:
    """Whether this process may mount a tmpfs (root in a sandbox that allows it)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path(f"/tmp/sarcokit-mount-probe-{secrets.token_hex(4)}")
    try:
        with small_filesystem(probe, 64):
            return True
    except subprocess.CalledProcessError:
        return False
    finally:
        probe.rmdir() if probe.exists() else None


def fill(directory: Path) -> int:
    """Fill a filesystem with a ballast file until it refuses another byte; the bytes written."""
    written = 0
    descriptor = os.open(directory / "ballast", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        block = b"\0" * 4096
        while True:
            try:
                written += os.write(descriptor, block)
            except OSError:
                break
    finally:
        os.close(descriptor)
    return written


def run_summary(findings: Findings, faults: int, ledger: Ledger) -> dict[str, Any]:
    """One row of the campaign's table."""
    return {
        "faults": faults,
        "attempts": ledger.attempts,
        "acknowledged": findings.acknowledged,
        "found": findings.found,
        "lost": len(findings.lost),
        "changed": len(findings.changed),
        "refused": sum(ledger.refused.values()),
        "audit_agrees": not (findings.unaudited or findings.audited_but_missing),
        "chain_intact": not findings.chain,
    }
