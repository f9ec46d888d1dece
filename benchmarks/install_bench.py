"""Time a fresh install: a new clone, `make run` until the clinic answers, and the venv sizes.

Run with the machine's Python (nothing of sarcokit's is needed):
    python3 benchmarks/install_bench.py --rev main --cache warm
    python3 benchmarks/install_bench.py --rev main --cache cold --also-test

`--cache cold` gives uv and pip empty caches of their own, so every wheel (and uv itself) is
downloaded; `warm` uses the user's caches as they are. Port 8000 must be free (`make run`
serves on it).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CLINIC = "http://127.0.0.1:8000/"


def answers(url: str) -> bool:
    """True once the server sends any HTTP response."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def port_free(port: int) -> bool:
    """True when nothing listens on the loopback port."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def size_mb(path: Path) -> float:
    """Bytes on disk under path (hard links to uv's cache counted once per tree), in MB."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 1024


def time_run(clone: Path, env: dict[str, str], limit: float) -> float:
    """Seconds from `make run` to the clinic's first answer; the server is stopped after."""
    log = (clone / "make-run.log").open("w")
    start = time.perf_counter()
    # A session of its own, so that the server make started is stopped with it.
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while not answers(CLINIC):
            if proc.poll() is not None:
                sys.exit(f"make run exited with {proc.returncode}; see {clone / 'make-run.log'}")
            if time.perf_counter() - start > limit:
                sys.exit(f"the clinic did not answer within {limit:.0f} s")
            time.sleep(0.2)
        return time.perf_counter() - start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def main() -> None:
    """Clone, time `make run` (and optionally the test install), print one Markdown row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".", help="the repository to clone")
    parser.add_argument("--rev", default="HEAD", help="branch or commit to clone")
    parser.add_argument("--cache", choices=("warm", "cold"), default="warm")
    parser.add_argument(
        "--also-test", action="store_true", help="then time `make .venv/.installed`"
    )
    parser.add_argument("--limit", type=float, default=900.0, help="give up after this many s")
    parser.add_argument("--keep", action="store_true", help="keep the clone")
    args = parser.parse_args()
    if not port_free(8000):
        sys.exit("port 8000 is in use; `make run` needs it")

    work = Path(tempfile.mkdtemp(prefix="install-bench-"))
    clone = work / "sarcokit"
    subprocess.run(["git", "clone", "-q", args.repo, str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", args.rev], cwd=clone, check=True)
    env = dict(os.environ)
    if args.cache == "cold":
        # Empty caches: uv's wheels, the bootstrapped uv (both under XDG_CACHE_HOME) and pip's.
        env["XDG_CACHE_HOME"] = str(work / "cache")
        env["UV_CACHE_DIR"] = str(work / "cache" / "uv")
        env["PIP_NO_CACHE_DIR"] = "1"
    seconds = time_run(clone, env, args.limit)
    run_mb = size_mb(clone / ".venv")
    print(
        f"| {args.rev} | {args.cache} | make run → clinic answers | {seconds:.1f} s |"
        f" {run_mb:.0f} MB |",
        flush=True,
    )
    if args.also_test:
        start = time.perf_counter()
        subprocess.run(
            ["make", ".venv/.installed"], cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL
        )
        seconds = time.perf_counter() - start
        test_mb = size_mb(clone / ".venv")
        print(
            f"| {args.rev} | {args.cache} | then the test install | {seconds:.1f} s |"
            f" {test_mb:.0f} MB |",
            flush=True,
        )
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=True)


if __name__ == "__main__":
    main()
