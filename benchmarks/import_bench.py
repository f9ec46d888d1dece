"""Start-up time: `import sarcokit` and `sarcokit --help`, median of fresh processes.

Run: .venv/bin/python benchmarks/import_bench.py [--runs 20] [--src OTHER/src ...] [--no-bytecode]

Each cell is the median wall time and, in brackets, the median CPU time (user + system), which
a busy machine inflates less. Each `--src` is another source tree (a checkout of main, say)
timed in the same run, first on PYTHONPATH so that it shadows the installed sarcokit; the first
column is this venv's own.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The interpreter alone is the floor every command pays.
COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "import sarcokit": ["-c", "import sarcokit"],
    "sarcokit --help": ["-c", "from sarcokit.cli import app; app(['--help'])"],
    "sarcokit assess --help": ["-c", "from sarcokit.cli import app; app(['assess', '--help'])"],
}


def medians(args: list[str], envs: list[dict[str, str]], runs: int) -> list[tuple[float, float]]:
    """Median wall time and median CPU time (user + system) of fresh interpreters, per env."""
    wall: list[list[float]] = [[] for _ in envs]
    cpu: list[list[float]] = [[] for _ in envs]
    for _ in range(runs):
        # Interleaved, so that a busy spell of the machine hits every tree alike.
        for index, env in enumerate(envs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            # --help exits 0; any other exit is a broken command, not a timing.
            subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL)
            wall[index].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[index].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)]


def main() -> None:
    """Print a Markdown table of medians, one column per source tree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--src", action="append", default=[], type=Path)
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE as set: no .pyc written (any already there are read)",
    )
    args = parser.parse_args()
    base = dict(os.environ)
    if not args.no_bytecode:
        # As an ordinary install runs: the first import writes .pyc files, later ones read them.
        base.pop("PYTHONDONTWRITEBYTECODE", None)
    trees: list[tuple[str, dict[str, str]]] = [("this venv", base)]
    for src in args.src:
        trees.append((str(src), dict(base, PYTHONPATH=str(src.resolve()))))
    print("| command | " + " | ".join(name for name, _ in trees) + " |")
    print("|---" * (len(trees) + 1) + "|")
    for label, command in COMMANDS.items():
        medians(command, [env for _, env in trees], 1)  # warm-up: writes the bytecode
        found = medians(command, [env for _, env in trees], args.runs)
        cells = [f"{w * 1000:.0f} ms (CPU {c * 1000:.0f} ms)" for w, c in found]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
