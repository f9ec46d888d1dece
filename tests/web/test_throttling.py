"""Sign-in throttling holds under concurrency: parallel guesses verify at most the limit."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher

from sarcokit.web import security
from web.support import Clinic

GUESSES = 40


class CountingHasher(PasswordHasher):
    """A cheap argon2 hasher that counts verifications and makes each one take a while.

    The pause widens the window between a throttle check and the verification it admits, as
    production-cost hashing does: a check that is not atomic lets many guesses through it.
    """

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024)
        self.verified = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        """Count, pause, verify."""
        with self._lock:
            self.verified += 1
        time.sleep(0.2)
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(security, "_hasher", counting)
    return counting


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(clinic: Clinic) -> Iterator[str]:
    """The clinic served by uvicorn on a loopback port, in this process (so hashing is counted)."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(clinic.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _guess_in_parallel(url: str, path: str, body: dict[str, Any]) -> Counter[int]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(GUESSES)

    def guess() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            start.wait()
            status = client.post(path, json=body).status_code
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=guess) for _ in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_parallel_wrong_passwords_verify_at_most_the_limit(
    clinic: Clinic, hasher: CountingHasher, served: str
) -> None:
    limit = clinic.app.state.settings.login_attempts
    username = clinic.usernames["clinician"]
    statuses = _guess_in_parallel(
        served, "/api/v1/auth/token", {"username": username, "password": "a wrong guess"}
    )
    assert sum(statuses.values()) == GUESSES
    assert set(statuses) <= {401, 429}, statuses
    # Every guess admitted was verified and failed; every other one was refused unchecked.
    # Concurrent attempts may refuse one another (each counts every attempt committed before
    # its count, and a refused one withdraws its row), so the burst may verify fewer than the
    # limit, never more.
    assert hasher.verified <= limit, (hasher.verified, statuses)
    assert statuses[401] == hasher.verified
    # One at a time, the guesses left under the limit are each verified, and then no more.
    wrong = {"username": username, "password": "a wrong guess"}
    for _ in range(limit - hasher.verified):
        assert httpx.post(f"{served}/api/v1/auth/token", json=wrong).status_code == 401
    assert hasher.verified == limit
    assert httpx.post(f"{served}/api/v1/auth/token", json=wrong).status_code == 429
    assert hasher.verified == limit
    # Throttled means throttled, even for the right password, once the guesses are counted.
    right = httpx.post(
        f"{served}/api/v1/auth/token",
        json={"username": username, "password": "correct horse battery staple"},
    )
    assert right.status_code == 429
