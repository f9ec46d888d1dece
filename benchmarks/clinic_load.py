"""Load on the clinic's HTTP API: concurrent clinicians recording visits and assessing records.

Run (starts its own clinic on a temporary SQLite database and a free loopback port):

    .venv/bin/python benchmarks/clinic_load.py --start-server --workers 2 --clients 50 --duration 60

or against a running clinic (`make run`), with an existing clinician account:

    SARCOKIT_PASSWORD=... .venv/bin/python benchmarks/clinic_load.py --username alice

Setup (not timed): a clinician account (created with `sarcokit clinic create-user` when the
script starts the server), a bearer token from POST /api/v1/auth/token and one patient per client.
Timed phase: each client is a closed loop (the next request leaves when the previous answer
arrived, after the optional think time) of POST /api/v1/patients/{id}/visits with varied,
valid measurements followed by POST /api/v1/assess with a varied subject record. Any non-2xx
answer or exception counts as an error. The phase ends at --duration seconds or after
--max-requests requests, whichever comes first; requests in flight at the deadline finish and
are counted. Afterwards every visit acknowledged with 201 is looked up through
GET /api/v1/patients/{id}/visits (and, when the script owns the database, in the visits table
after the server stopped): the identifier sets must be equal.

Only loopback addresses are accepted: this is a local benchmark, never a load test of someone
else's server.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import create_engine, text

from sarcokit.screening import sarc_f_items

USERNAME = "load_clinician"
VISITS = "POST /api/v1/patients/{id}/visits"
ASSESS = "POST /api/v1/assess"
RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Clinic load (benchmarks/clinic_load.py)"


# -- arguments and the loopback guard --------------------------------------------------------


def loopback_only(url: str) -> str:
    """The URL, if its host is a loopback address; anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemExit(f"error: {url!r} is not an http(s) URL")
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(parts.hostname, None)}
    except socket.gaierror as error:
        raise SystemExit(f"error: cannot resolve {parts.hostname!r}: {error}") from None
    # Every address must be loopback: a name resolving to one public address is refused too.
    if not addresses or not all(
        ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses
    ):
        raise SystemExit(f"error: {parts.hostname!r} is not a loopback host; refusing to load it")
    return url.rstrip("/")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="loopback clinic URL")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60.0, help="timed phase, seconds")
    parser.add_argument(
        "--max-requests", type=int, default=200_000, help="hard cap on timed requests"
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean pause after each answer (uniform in 0.5-1.5 times this; the first request "
        "waits uniform 0-1 times this); 0 = none",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic records")
    parser.add_argument(
        "--start-server",
        action="store_true",
        help="start the clinic on a temporary data folder and a free port, stop it afterwards",
    )
    parser.add_argument("--workers", type=int, default=1, help="server workers (--start-server)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL (--start-server): a fresh schema is created in it and dropped",
    )
    parser.add_argument(
        "--username", default=USERNAME, help="clinician account (without --start-server)"
    )
    parser.add_argument("--write", action="store_true", help=f"append the results to {RESULTS}")
    parser.add_argument("--note", default="", help="a remark added to the written results")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.max_requests < 1 or args.think_ms < 0:
        parser.error("--clients, --duration and --max-requests must be positive")
    if args.database_url and not args.start_server:
        parser.error("--database-url needs --start-server")
    if args.database_url:
        loopback_only(args.database_url.replace("postgresql+psycopg://", "http://", 1))
    if not args.start_server:
        args.url = loopback_only(args.url)
    return args


# -- the server under test --------------------------------------------------------------------


@dataclass
class Server:
    """Where the clinic listens and what it stores into."""

    url: str
    database_url: str | None
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None


def free_port() -> int:
    """A loopback port nobody listens on (the usual small race is acceptable here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def sarcokit_command() -> str:
    """The sarcokit executable of this interpreter's environment."""
    beside = Path(sys.executable).parent / "sarcokit"
    found = str(beside) if beside.exists() else shutil.which("sarcokit")
    if found is None:
        raise SystemExit("error: the sarcokit command is not installed")
    return found


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL database, dropped afterwards; yields its URL."""
    schema = f"sarcokit_load_{secrets.token_hex(6)}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def started_server(workers: int, password: str, postgres_url: str | None) -> Iterator[Server]:
    """The clinic in a child process on a temporary data folder, with a clinician account."""
    with tempfile.TemporaryDirectory(prefix="sarcokit-load-") as folder:
        data_dir = Path(folder)
        with postgres_schema(postgres_url) if postgres_url else _nothing() as schema_url:
            database_url = schema_url or f"sqlite:///{(data_dir / 'sarcokit.db').as_posix()}"
            env = {
                **os.environ,
                "SARCOKIT_DATA_DIR": str(data_dir),
                "SARCOKIT_DATABASE_URL": database_url,
                "SARCOKIT_PASSWORD": password,
            }
            command = sarcokit_command()
            subprocess.run(
                [command, "clinic", "create-user", USERNAME, "--roles", "clinician"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            port = free_port()
            log = data_dir / "server.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [
                        command,
                        "clinic",
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--workers",
                        str(workers),
                    ],
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    # Its own process group, so that stopping it also reaches uvicorn's workers.
                    start_new_session=True,
                )
            server = Server(f"http://127.0.0.1:{port}", database_url, process, log)
            try:
                wait_until_up(server)
                yield server
            finally:
                stop(process)
                # The data folder goes away; the server's log is kept for the errors it explains.
                kept = Path(tempfile.gettempdir()) / f"sarcokit-load-server-{port}.log"
                shutil.copyfile(log, kept)
                print(f"server log: {kept}", file=sys.stderr)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def wait_until_up(server: Server, limit: float = 60.0) -> None:
    """Return once the clinic answers; fail with its log if it dies or does not answer."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            break
        try:
            if httpx.get(f"{server.url}/api/v1/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    tail = server.log.read_text()[-3000:] if server.log and server.log.exists() else ""
    raise SystemExit(f"error: the clinic did not start within {limit:.0f} s\n{tail}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the clinic gracefully (SIGINT, as Ctrl+C), then by force."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def process_tree_cpu(root: int) -> float:
    """User + system CPU seconds of a process and all its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces; fields after it are space-separated.
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in times.items():
        ancestor = pid
        while ancestor not in (0, 1, root):
            ancestor = parents.get(ancestor, 0)
        if ancestor == root:
            total += seconds
    return total


# -- synthetic patients and records -----------------------------------------------------------


@dataclass
class Person:
    """A synthetic older adult whose visits scatter around stable values."""

    sex: str
    born: date
    height_cm: float
    weight_kg: float
    grip_kg: float
    gait_m_s: float
    asm_kg: float
    calf_cm: float

    @staticmethod
    def draw(rng: random.Random) -> Person:
        """A plausible person aged 60 to 92."""
        male = rng.random() < 0.5
        age_days = int(rng.uniform(60, 92) * 365.25)
        height = rng.gauss(168 if male else 155, 7)
        return Person(
            sex="male" if male else "female",
            born=date.today() - timedelta(days=age_days),
            height_cm=clip(height, 140, 195),
            weight_kg=clip(rng.gauss(68 if male else 56, 11), 38, 120),
            grip_kg=clip(rng.gauss(30 if male else 19, 7), 6, 60),
            gait_m_s=clip(rng.gauss(1.0, 0.25), 0.3, 1.6),
            asm_kg=clip(rng.gauss(19 if male else 13.5, 3), 8, 32),
            calf_cm=clip(rng.gauss(34, 3.5), 24, 45),
        )

    def age_on(self, day: date) -> int:
        """Completed years on a day."""
        return day.year - self.born.year - ((day.month, day.day) < (self.born.month, self.born.day))


def clip(value: float, low: float, high: float) -> float:
    """The value within [low, high]."""
    return min(max(value, low), high)


def measurements(person: Person, rng: random.Random) -> dict[str, Any]:
    """One visit's measurements: noisy, in mixed units, with some left out, always valid."""
    grip = [round(clip(person.grip_kg + rng.gauss(0, 1.5), 1, 90), 1) for _ in range(3)]
    found: dict[str, Any] = {}
    if rng.random() < 0.2:
        found["height_m"] = round(person.height_cm / 100, 3)
    else:
        found["height_cm"] = round(person.height_cm, 1)
    found["weight_kg"] = round(clip(person.weight_kg + rng.gauss(0, 1.0), 30, 150), 1)
    if rng.random() < 0.1:
        found["grip_lb"] = round(max(grip) * 2.20462, 1)
    else:
        found["grip_kg_trials"] = grip[: rng.choice((2, 3))]
    if rng.random() < 0.7:
        found["gait_speed_m_s"] = round(clip(person.gait_m_s + rng.gauss(0, 0.08), 0.1, 2.5), 2)
    else:
        distance = rng.choice((4.0, 6.0))
        speed = clip(person.gait_m_s + rng.gauss(0, 0.08), 0.1, 2.5)
        found["walk_distance_m"] = distance
        found["walk_time_s"] = round(distance / speed, 2)
    if rng.random() < 0.08:
        found["chair_stand_unable"] = True
    elif rng.random() < 0.85:
        found["chair_stand_5x_s"] = round(clip(rng.gauss(13, 4), 5, 60), 1)
    if rng.random() < 0.6:
        found["sppb"] = rng.randint(3, 12)
    if rng.random() < 0.75:
        found["asm_kg"] = round(clip(person.asm_kg + rng.gauss(0, 0.5), 5, 50), 2)
        found["asm_method"] = "dxa" if rng.random() < 0.6 else "bia"
    if rng.random() < 0.7:
        found["calf_cm"] = round(clip(person.calf_cm + rng.gauss(0, 0.6), 18, 60), 1)
    if rng.random() < 0.8:
        for item in sarc_f_items():
            found[item] = rng.choices((0, 1, 2), weights=(6, 3, 1))[0]
    return found


def subject_record(rng: random.Random, number: int) -> dict[str, Any]:
    """A stateless subject record for POST /assess: a fresh person each time."""
    person = Person.draw(rng)
    return {
        "id": f"load-{number}",
        "sex": person.sex,
        "age": person.age_on(date.today()),
        **measurements(person, rng),
    }


def visit_day(person: Person, rng: random.Random) -> date:
    """A day in the last three years (never before birth, never in the future)."""
    return max(person.born, date.today() - timedelta(days=rng.randint(0, 3 * 365)))


# -- the load -----------------------------------------------------------------------------------


@dataclass
class Sample:
    """One timed request."""

    endpoint: str
    status: int  # 0 for an exception
    seconds: float
    error: str = ""


@dataclass
class Run:
    """What the clients did and what the server acknowledged."""

    samples: list[Sample] = field(default_factory=list)
    acknowledged: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    issued: int = 0
    elapsed: float = 0.0


async def client_loop(
    http: httpx.AsyncClient,
    patient_id: int,
    person: Person,
    rng: random.Random,
    run: Run,
    deadline: float,
    max_requests: int,
    think_ms: float,
) -> None:
    """One clinician: record a visit, assess a record, repeat until the deadline or the cap."""
    number = 0
    if think_ms:
        # Clinicians do not all press "save" at the same instant: spread the first requests
        # over one think time instead of opening with a burst of every client at once.
        await asyncio.sleep(rng.uniform(0, think_ms) / 1000)
    while time.monotonic() < deadline:
        for endpoint in (VISITS, ASSESS):
            if time.monotonic() >= deadline or run.issued >= max_requests:
                return
            run.issued += 1
            number += 1
            if endpoint == VISITS:
                path = f"/api/v1/patients/{patient_id}/visits"
                body: dict[str, Any] = {
                    "visit_date": visit_day(person, rng).isoformat(),
                    "measurements": measurements(person, rng),
                }
            else:
                path = "/api/v1/assess"
                body = subject_record(rng, patient_id * 1_000_000 + number)
            started = time.perf_counter()
            try:
                answer = await http.post(path, json=body)
            except httpx.HTTPError as error:
                seconds = time.perf_counter() - started
                run.samples.append(Sample(endpoint, 0, seconds, type(error).__name__))
            else:
                seconds = time.perf_counter() - started
                ok = 200 <= answer.status_code < 300
                run.samples.append(
                    Sample(endpoint, answer.status_code, seconds, "" if ok else answer.text[:300])
                )
                if endpoint == VISITS and answer.status_code == 201:
                    run.acknowledged[patient_id].add(int(answer.json()["id"]))
            if think_ms:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)


async def token_for(url: str, username: str, password: str) -> str:
    """A bearer token for the account."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        answer = await http.post(
            "/api/v1/auth/token", json={"username": username, "password": password, "name": "load"}
        )
        if answer.status_code != 201:
            raise SystemExit(f"error: no token for {username}: {answer.status_code} {answer.text}")
        token: str = answer.json()["token"]
        return token


async def register(http: httpx.AsyncClient, person: Person, tag: str) -> int:
    """A new patient for the person."""
    answer = await http.post(
        "/api/v1/patients",
        json={
            "record_number": f"LOAD-{tag}",
            "name": f"Load Test {tag}",
            "sex": person.sex,
            "date_of_birth": person.born.isoformat(),
        },
    )
    if answer.status_code != 201:
        raise SystemExit(f"error: cannot register a patient: {answer.status_code} {answer.text}")
    ident: int = answer.json()["id"]
    return ident


def _client(url: str, token: str, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def load(url: str, token: str, args: argparse.Namespace, run: Run) -> list[int]:
    """Set up the patients, run the timed phase, and return the patient ids."""
    rng = random.Random(args.seed)
    run_tag = secrets.token_hex(4)
    people = [Person.draw(rng) for _ in range(args.clients)]
    clients = [_client(url, token, args.timeout) for _ in range(args.clients)]
    try:
        patient_ids = [
            await register(clients[i], people[i], f"{run_tag}-{i}") for i in range(args.clients)
        ]
        # Warm each worker's engine (the first assessment compiles its expressions) untimed.
        for i in range(min(args.clients, 8)):
            await clients[i].post("/api/v1/assess", json=subject_record(rng, -1 - i))
        started = time.monotonic()
        deadline = started + args.duration
        await asyncio.gather(
            *(
                client_loop(
                    clients[i],
                    patient_ids[i],
                    people[i],
                    random.Random(args.seed * 1000 + i),
                    run,
                    deadline,
                    args.max_requests,
                    args.think_ms,
                )
                for i in range(args.clients)
            )
        )
        run.elapsed = time.monotonic() - started
    finally:
        for http in clients:
            await http.aclose()
    return patient_ids


async def stored_visits(url: str, token: str, patient_ids: list[int]) -> dict[int, set[int]]:
    """The visit ids the API lists for each patient (a few lookups at a time)."""
    found: dict[int, set[int]] = {}
    gate = asyncio.Semaphore(4)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300
    ) as http:

        async def one(patient_id: int) -> None:
            async with gate:
                answer = await http.get(f"/api/v1/patients/{patient_id}/visits")
            answer.raise_for_status()
            found[patient_id] = {int(v["id"]) for v in answer.json()}

        await asyncio.gather(*(one(p) for p in patient_ids))
    return found


def visits_in_database(database_url: str, patient_ids: list[int]) -> dict[int, set[int]]:
    """The visit ids in the visits table, read directly after the server stopped."""
    engine = create_engine(database_url)
    found: dict[int, set[int]] = {p: set() for p in patient_ids}
    try:
        with engine.connect() as connection:
            for visit_id, patient_id in connection.execute(
                text("SELECT id, patient_id FROM visits")
            ):
                if patient_id in found:
                    found[patient_id].add(int(visit_id))
    finally:
        engine.dispose()
    return found


@dataclass(frozen=True)
class Check:
    """Acknowledged visits against stored ones."""

    where: str
    acknowledged: int
    found: int
    missing: int
    unacknowledged: int

    @property
    def ok(self) -> bool:
        """Every acknowledged visit is stored."""
        return self.missing == 0

    def line(self) -> str:
        """One line for the report."""
        verdict = "**all present**" if self.ok else f"**{self.missing} MISSING**"
        extra = (
            f"; {self.unacknowledged} stored visit(s) were never acknowledged (failed requests)"
            if self.unacknowledged
            else ""
        )
        return (
            f"Verification ({self.where}): {self.acknowledged:,} visits acknowledged with 201, "
            f"{self.found:,} stored for the load's patients: {verdict}{extra}."
        )


def compare(where: str, acknowledged: dict[int, set[int]], stored: dict[int, set[int]]) -> Check:
    """Acknowledged visit ids that are not stored, and stored ones never acknowledged."""
    ack = set().union(*acknowledged.values()) if acknowledged else set()
    have = set().union(*stored.values()) if stored else set()
    # Per patient as well: a visit stored under another patient is missing where it belongs.
    missing = sum(len(ids - stored.get(p, set())) for p, ids in acknowledged.items())
    return Check(where, len(ack), len(have), missing, len(have - ack))


# -- the report ---------------------------------------------------------------------------------


def percentiles(seconds: list[float]) -> tuple[float, float, float, float]:
    """p50, p90, p99 and max, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    if len(ms) == 1:
        return ms[0], ms[0], ms[0], ms[0]
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return cuts[49], cuts[89], cuts[98], max(ms)


def table(run: Run) -> str:
    """The Markdown table: one row per endpoint and one for all requests."""
    rows = [
        "| endpoint | requests | throughput (req/s) | p50 ms | p90 ms | p99 ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups = [(e, [s for s in run.samples if s.endpoint == e]) for e in (VISITS, ASSESS)]
    groups.append(("all", run.samples))
    for name, samples in groups:
        if not samples:
            rows.append(f"| {name} | 0 | 0 | | | | | 0 |")
            continue
        p50, p90, p99, top = percentiles([s.seconds for s in samples])
        errors = sum(1 for s in samples if not 200 <= s.status < 300)
        rows.append(
            f"| {name} | {len(samples):,} | {len(samples) / run.elapsed:.1f} | {p50:.1f} | "
            f"{p90:.1f} | {p99:.1f} | {top:.1f} | {errors} |"
        )
    return "\n".join(rows)


def error_summary(run: Run) -> str:
    """The kinds of errors seen, most frequent first."""
    kinds: dict[str, int] = defaultdict(int)
    for s in run.samples:
        if not 200 <= s.status < 300:
            kinds[f"{s.endpoint}: {s.status or ''} {s.error[:120]}".strip()] += 1
    ordered = sorted(kinds.items(), key=lambda kv: -kv[1])
    return "\n".join(f"- {count} × {kind}" for kind, count in ordered[:10])


def machine() -> str:
    """Cores, RAM, CPU model, OS and Python."""
    cores = len(os.sched_getaffinity(0))
    ram_kib = 0
    model = platform.processor() or "unknown CPU"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            ram_kib = int(line.split()[1])
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{cores} cores ({model}), {ram_kib / 1024 / 1024:.1f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def database_name(database_url: str | None) -> str:
    """SQLite or PostgreSQL with its version, or unknown for an external server."""
    if database_url is None:
        return "as configured in the running clinic"
    if database_url.startswith("sqlite"):
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL), temporary file"
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
    finally:
        engine.dispose()
    return f"PostgreSQL {version} on loopback, fresh schema"


def report(
    args: argparse.Namespace,
    run: Run,
    checks: list[Check],
    database: str,
    load_before: float,
    cpu: tuple[float, float] | None,
) -> str:
    """The run described in Markdown: settings, table, verification."""
    think = (
        f"{args.think_ms:g} ms mean (uniform {args.think_ms * 0.5:g}-{args.think_ms * 1.5:g} ms "
        f"after each answer; first request after a uniform 0-{args.think_ms:g} ms delay)"
        if args.think_ms
        else "none (closed loop, next request as soon as the answer arrives)"
    )
    stopped = (
        f"; stopped by --max-requests {args.max_requests:,}"
        if run.issued >= args.max_requests
        else ""
    )
    lines = [
        f"### {datetime.now().strftime('%Y-%m-%d %H:%M')}: "
        f"{database.split(' ')[0]}, {args.workers} worker(s), {args.clients} clients, "
        f"think {args.think_ms:g} ms",
        "",
        f"- Machine: {machine()}; the load generator (one Python process, asyncio + httpx) ran "
        f"on the same cores as the server. Load average before the run: {load_before:.2f}.",
        f"- Server: `sarcokit clinic serve --workers {args.workers}` on loopback"
        f"{' (started by the script)' if args.start_server else ''}; database: {database}.",
        f"- Load: {args.clients} clients, one patient each, one HTTP connection each; each loops "
        f"POST visit → POST assess; think time: {think}; timed phase {run.elapsed:.1f} s "
        f"(--duration {args.duration:g}{stopped}).",
    ]
    if cpu is not None:
        server_cpu, client_cpu = cpu
        lines.append(
            f"- CPU during the timed phase: server {server_cpu:.1f} s, load generator "
            f"{client_cpu:.1f} s, of {run.elapsed * len(os.sched_getaffinity(0)):.0f}"
            " core-seconds available."
        )
    if args.note:
        lines.append(f"- Note: {args.note}")
    lines += ["", table(run), ""]
    lines += [f"{c.line()}" for c in checks]
    errors = error_summary(run)
    if errors:
        lines += ["", "Errors:", errors]
    return "\n".join(lines) + "\n"


def append_results(text_block: str) -> None:
    """Append under the clinic-load section of RESULTS.md, adding the heading once."""
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    prefix = "" if SECTION in existing else f"\n{SECTION}\n"
    with RESULTS.open("a") as handle:
        handle.write(f"{prefix}\n{text_block}")


# -- main -----------------------------------------------------------------------------------


def benchmark(
    args: argparse.Namespace, server: Server, password: str, owned: bool
) -> tuple[str, bool]:
    """Run the load against the server; its description, and whether it met zero errors and
    complete storage."""
    load_before = os.getloadavg()[0]
    database = database_name(server.database_url if owned else None)
    token = asyncio.run(token_for(server.url, args.username, password))
    run = Run()
    cpu_start = (
        process_tree_cpu(server.process.pid) if server.process else 0.0,
        time.process_time(),
    )
    # The patients are set up inside `load`; their CPU share is small against the timed phase.
    patient_ids = asyncio.run(load(server.url, token, args, run))
    cpu = (
        (
            process_tree_cpu(server.process.pid) - cpu_start[0],
            time.process_time() - cpu_start[1],
        )
        if server.process
        else None
    )
    checks = [
        compare("API", run.acknowledged, asyncio.run(stored_visits(server.url, token, patient_ids)))
    ]
    if owned and server.process is not None and server.database_url:
        stop(server.process)
        checks.append(
            compare(
                "database after the server stopped",
                run.acknowledged,
                visits_in_database(server.database_url, patient_ids),
            )
        )
    passed = all(c.ok for c in checks) and all(200 <= s.status < 300 for s in run.samples)
    return report(args, run, checks, database, load_before, cpu), passed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally append) the report."""
    args = parse_args(argv)
    if args.start_server:
        password = secrets.token_urlsafe(18)
        with started_server(args.workers, password, args.database_url) as server:
            text_block, passed = benchmark(args, server, password, owned=True)
    else:
        password = os.environ.get("SARCOKIT_PASSWORD", "")
        if not password:
            raise SystemExit("error: set SARCOKIT_PASSWORD to the clinician's password")
        text_block, passed = benchmark(args, Server(args.url, None), password, owned=False)
    print(text_block)
    if args.write:
        append_results(text_block)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
