"""A local FHIR R4 server for the tests: sekmet-fhir (PyPI), started on loopback and stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a fresh sekmet-fhir server on 127.0.0.1, stopped after the module."""
    pytest.importorskip("sekmet")
    folder: Path = tmp_path_factory.mktemp("fhir-server")
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    config = folder / "settings.yaml"
    config.write_text(
        f"base_url: {base}\nhost: 127.0.0.1\nport: {port}\ndata_dir: {folder / 'data'}\n"
        f"own_private_key_path: {folder / 'keys' / 'private.pem'}\n"
        "simulator:\n  enabled: false\n",
        "utf-8",
    )
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "sekmet.main:app_factory", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "SEKMET_CONFIG": str(config)},
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the FHIR server did not start; see {folder / 'server.log'}")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def search(base: str, query: str) -> list[dict[str, Any]]:
    """Every resource a search finds, following `next` links."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{base}/{query}"
    while url:
        page = httpx.get(url, timeout=30).json()
        found += [
            e["resource"]
            for e in page.get("entry") or []
            if e.get("search", {}).get("mode", "match") == "match"
        ]
        links = page.get("link") or []
        url = next((link["url"] for link in links if link["relation"] == "next"), None)
    return found


def post_transaction(base: str, bundle: dict[str, Any]) -> dict[str, Any]:
    """POST a transaction Bundle; the transaction-response."""
    response = httpx.post(
        base, json=bundle, headers={"Content-Type": "application/fhir+json"}, timeout=60
    )
    assert response.status_code == 200, response.text[:2000]
    answer: dict[str, Any] = response.json()
    return answer
