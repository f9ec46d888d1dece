"""The clinic's fault campaign, run longer than the tests run it: lost writes must be 0.

    .venv/bin/python benchmarks/clinic_faults.py --kills 10 --seconds 30

For each database (SQLite under a temporary folder; PostgreSQL in a fresh schema of
SARCOKIT_TEST_POSTGRES_URL's database) a real `sarcokit clinic serve` takes writer clients
recording visits while faults are injected:
- kill: the server is killed with SIGKILL mid-load, then restarted (`--kills` times);
- failing writes: one insert in four fails inside the database as a full disk does, some only
  at COMMIT (PostgreSQL's deferred trigger), for `--seconds`;
- cut connections (PostgreSQL): the clinic's connections are terminated every 0.2 s;
- full disk (SQLite, root only): the data folder is a small tmpfs that fills up.
Afterwards every visit acknowledged with 201 is looked up in the database: it must be there with
exactly the value sent, each stored visit must have its audit row (and no audit row a missing
visit), and the audit chain must verify. The markdown table goes to standard output.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from web.faults import (
    ClinicServer,
    Ledger,
    can_mount,
    check,
    cut_connections,
    failing_writes,
    fill,
    kill_cycles,
    patients,
    run_summary,
    small_filesystem,
    token,
    writers,
)
from web.support import POSTGRES_URL, _postgres_schema_url


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The campaign's size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs per database")
    parser.add_argument("--seconds", type=float, default=30.0, help="load per other fault")
    parser.add_argument("--clients", type=int, default=16, help="writer clients")
    parser.add_argument("--databases", default="sqlite,postgresql")
    return parser.parse_args(argv)


Campaign = Callable[[ClinicServer, str, list[int], Ledger], int]


def _run(
    url: str, data_dir: Path, fault: Campaign, log: Path | None = None
) -> tuple[dict[str, Any], float]:
    server = ClinicServer(data_dir, url)
    server.log = log or server.log
    server.create_clinician()
    server.start()
    started = time.monotonic()
    try:
        bearer = token(server.url)
        ids = patients(server.url, bearer, 20)
        ledger = Ledger()
        faults = fault(server, bearer, ids, ledger)
    finally:
        server.stop()
    return run_summary(check(url, ledger), faults, ledger), time.monotonic() - started


def main(argv: list[str] | None = None) -> None:
    """Run every fault on every database and print the table."""
    args = parse_args(argv)
    rng = random.Random(2026)
    rows: list[tuple[str, str, dict[str, Any], float]] = []

    def kills(server: ClinicServer, bearer: str, ids: list[int], ledger: Ledger) -> int:
        return kill_cycles(server, bearer, ids, ledger, args.kills, args.clients, rng)

    def failing(server: ClinicServer, bearer: str, ids: list[int], ledger: Ledger) -> int:
        remove = failing_writes(server.database_url, every=4)
        try:
            with writers(server.url, bearer, ids, ledger, args.clients):
                time.sleep(args.seconds)
        finally:
            remove()
        return sum(n for code, n in ledger.refused.items() if code == "503")

    for database in args.databases.split(","):
        campaigns: list[tuple[str, Campaign]] = [("SIGKILL mid-load", kills)]
        campaigns.append(("writes failing in the database", failing))
        for name, campaign in campaigns:
            with tempfile.TemporaryDirectory(prefix="sarcokit-faults-") as folder:
                if database == "sqlite":
                    url = f"sqlite:///{folder}/var/clinic.db"
                    summary, took = _run(url, Path(folder) / "var", campaign)
                else:
                    schemas = _postgres_schema_url()
                    url = next(schemas)
                    try:
                        summary, took = _run(url, Path(folder) / "var", campaign)
                    finally:
                        for _ in schemas:
                            pass
            rows.append((database, name, summary, took))
            print(database, name, summary, file=sys.stderr)
        if database == "postgresql":
            rows.append(("postgresql", "connections cut", *_cut(args)))
            print(rows[-1], file=sys.stderr)
        if database == "sqlite" and can_mount():
            rows.append(("sqlite", "full disk (tmpfs)", *_full_disk(args)))
            print(rows[-1], file=sys.stderr)
    print(table(rows))


def _cut(args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    schemas = _postgres_schema_url()
    application = f"sk_faults_{random.randrange(16**6):06x}"
    url = next(schemas) + f"&application_name={application}"
    try:
        with tempfile.TemporaryDirectory(prefix="sarcokit-faults-") as folder:

            def cut(server: ClinicServer, bearer: str, ids: list[int], ledger: Ledger) -> int:
                return cut_connections(
                    server,
                    bearer,
                    ids,
                    ledger,
                    POSTGRES_URL,
                    application,
                    args.clients,
                    at_least=10**9,
                    limit=args.seconds,
                )

            return _run(url, Path(folder) / "var", cut)
    finally:
        for _ in schemas:
            pass


def _full_disk(args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    with (
        tempfile.TemporaryDirectory(prefix="sarcokit-faults-") as folder,
        small_filesystem(Path(folder) / "small", 4096) as data,
    ):

        def full(server: ClinicServer, bearer: str, ids: list[int], ledger: Ledger) -> int:
            fill(data)
            ballast = data / "ballast"
            with ballast.open("r+b") as handle:
                handle.truncate(max(0, ballast.stat().st_size - 256 * 1024))
            with writers(server.url, bearer, ids, ledger, args.clients):
                time.sleep(args.seconds)
            ballast.unlink()
            return sum(n for code, n in ledger.refused.items() if code == "503")

        url = f"sqlite:///{(data / 'var' / 'clinic.db').as_posix()}"
        return _run(url, data / "var", full, log=Path(folder) / "server.log")


def table(rows: list[tuple[str, str, dict[str, Any], float]]) -> str:
    """The campaign as a markdown table."""
    lines = [
        f"Machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "",
        "| database | fault | faults injected | requests | acknowledged | found | **lost** | "
        "changed | refused | audit = data | chain intact | s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for database, name, s, took in rows:
        lines.append(
            f"| {database} | {name} | {s['faults']} | {s['attempts']} | {s['acknowledged']} | "
            f"{s['found']} | **{s['lost']}** | {s['changed']} | {s['refused']} | "
            f"{'yes' if s['audit_agrees'] else 'NO'} | {'yes' if s['chain_intact'] else 'NO'} | "
            f"{took:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
