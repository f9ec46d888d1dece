"""`evaluate(frame)` on a Polars frame in memory, this code against an earlier one, alternately.

Run: .venv/bin/python benchmarks/frame_ab.py --baseline-src /tmp/old/src --rows 1000000
     (after `git archive <rev> src | tar -x -C /tmp/old`)

The synthetic cohort of `cohort_bench.py` (measure (a)) is generated once and written to a
temporary Parquet file; each code then runs in its own child process (`PYTHONPATH` selects the
code), which reads the file, evaluates once to compile and warm up, then times --repeats runs.
The codes alternate --alternations times, so both share the machine's load. Wall and CPU time
(`time.process_time`, all threads) are printed as medians; on a shared machine the CPU time is
the steadier of the two.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import os, statistics, sys, time
import polars as pl
import sarcokit
frame = pl.read_parquet(sys.argv[1])
sarcokit.evaluate(frame)
walls, cpus = [], []
for _ in range(int(sys.argv[2])):
    cpu, wall = time.process_time(), time.perf_counter()
    result = sarcokit.evaluate(frame)
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
    del result
print(f"{statistics.median(walls):.3f} {statistics.median(cpus):.3f} {os.getloadavg()[0]:.1f}")
"""


def run(src: str, path: Path, repeats: int) -> tuple[float, float, float]:
    """Median wall and CPU seconds of one code, and the load average after its runs."""
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(repeats)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    wall, cpu, load = map(float, out[-3:])
    return wall, cpu, load


def main() -> None:
    """Generate the cohort, then time both codes alternately and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-src", required=True, help="src folder of the earlier code")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per child")
    parser.add_argument("--alternations", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from cohort_bench import generate

    here = str(Path(__file__).resolve().parent.parent / "src")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cohort.parquet"
        generate(args.rows).write_parquet(path)
        print("| alternation | code | wall s (median) | CPU s (median) | load after |")
        print("|---|---|---:|---:|---:|")
        for index in range(1, args.alternations + 1):
            for name, src in (("baseline", args.baseline_src), ("this", here)):
                wall, cpu, load = run(src, path, args.repeats)
                print(f"| {index} | {name} | {wall:.2f} | {cpu:.2f} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    main()
