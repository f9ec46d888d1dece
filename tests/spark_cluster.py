"""A standalone Spark cluster on loopback: one master and N workers in their own processes,
started the way Spark's own sbin scripts start them (`spark-class` with the Master and Worker
classes of the PySpark installation). Shared by tests/test_spark_cluster.py and
benchmarks/spark_cluster_bench.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyspark


def free_port() -> int:
    """A loopback port nobody listens on at the moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Cluster:
    """Where the master listens, and the processes to stop."""

    master: str
    # What a driver on this machine needs to reach the cluster without name lookups.
    driver_env: dict[str, str]
    status_url: str
    processes: list[subprocess.Popen[bytes]]
    logs: Path

    def status(self) -> dict[str, object]:
        """The master's JSON status (workers, applications)."""
        with urllib.request.urlopen(self.status_url, timeout=5) as answer:
            found: dict[str, object] = json.load(answer)
            return found

    def log_tail(self) -> str:
        """The end of every process's log, for a failure message."""
        return "\n".join(
            f"== {log.name}\n{log.read_text(errors='replace')[-2000:]}"
            for log in sorted(self.logs.glob("*.log"))
        )


def _spark_class() -> Path:
    return Path(pyspark.__file__).parent / "bin" / "spark-class"


@contextmanager
def standalone_cluster(workers: int, work: Path, cores: int = 1) -> Iterator[Cluster]:
    """A master and `workers` workers on 127.0.0.1, stopped (and their processes killed) after."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise AssertionError("Java (17 or later) is required for the Spark cluster")
    work.mkdir(parents=True, exist_ok=True)
    # Spark names hosts by looking them up unless told the name: with no DNS reachable the
    # lookup hangs for minutes. Everything here is 127.0.0.1.
    local = {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOCAL_HOSTNAME": "127.0.0.1"}
    env = {
        **os.environ,
        **local,
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_LOG_DIR": str(work),
        "PYSPARK_PYTHON": sys.executable,
    }
    port, ui = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *arguments: str) -> None:
        with (work / f"{name}.log").open("wb") as sink:
            processes.append(
                subprocess.Popen(
                    [str(_spark_class()), *arguments],
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    cluster = Cluster(
        master, {**local, "SARCOKIT_SPARK_MASTER": master}, f"http://127.0.0.1:{ui}/json/",
        processes, work,
    )  # fmt: skip
    try:
        start(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui),
        )  # fmt: skip
        _wait(cluster, lambda status: True)
        for number in range(workers):
            start(
                f"worker-{number}",
                "org.apache.spark.deploy.worker.Worker",
                "--host", "127.0.0.1", "--cores", str(cores), "--memory", "1g",
                "--webui-port", str(free_port()), "--work-dir", str(work / f"w{number}"),
                master,
            )  # fmt: skip
        _wait(cluster, lambda status: status.get("aliveworkers") == workers)
        yield cluster
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait(cluster: Cluster, ready: object, limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in cluster.processes):
            break
        try:
            if callable(ready) and ready(cluster.status()):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the Spark cluster did not come up:\n{cluster.log_tail()}")


def executors_by_worker(work: Path) -> dict[str, int]:
    """How many executors each worker started (its work directory holds one folder each)."""
    return {
        folder.name: sum(1 for app in folder.glob("app-*") for _ in app.iterdir())
        for folder in sorted(work.glob("w*"))
        if folder.is_dir()
    }
