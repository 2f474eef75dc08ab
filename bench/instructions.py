"""salesync's full sync (and 1 % incremental) counted in CPU instructions, build against build.

    python bench/instructions.py [--sizes 5,10] [--builds PATH[,PATH...]] [--incremental]

Wall time on a shared VM drifts by 20 % and more within an hour (docs/benchmarks.md, session 11);
a change worth 2 % cannot be seen in it. This runs ``bench.compare``'s salesync child (the same
``run_sync`` into a fresh SQLite file, 0 ms latency, limits lifted) under ``valgrind
--tool=callgrind`` and reads the instructions it executed in user space: deterministic up to
scheduling (~0.5 % here), blind to time spent in system calls. Each ``--sizes`` entry N serves N
Trello boards x 1,000 cards + N Asana projects x 1,000 tasks; the difference between two sizes
cancels the interpreter's start and the imports, and is printed per 10k tasks. ``--builds``: the
roots of checkouts to compare (e.g. a ``git worktree`` of the base commit), this tree by default;
each runs its own code against the same simulators, in turn. ``--incremental``: after each full
sync, 1 % of the records changed at random and the run repeated on its database, counted too.

Needs ``valgrind`` (Debian: ``apt-get install valgrind``); slow: ~30x the plain run (20k tasks
~1 min, 100k ~5 min).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import Limits, Sims, serve_sims  # noqa: E402
from bench.asana_sync import modify as modify_asana  # noqa: E402
from bench.compare import touch_trello  # noqa: E402

_TOTAL = re.compile(rb"^(?:summary|totals): (\d+)", re.M)


def instructions(sims: Sims, build: Path, db: Path, out: Path) -> int:
    """Run the salesync child of ``build`` under callgrind; the instructions it executed."""
    sims.reset()
    spec = sims.spec(db=str(db))
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    cmd += ["-m", "bench.compare", json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": str(build)}
    proc = subprocess.run(cmd, cwd=build, env=env, capture_output=True, text=True)
    result = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not result or not json.loads(result[-1]).get("ok"):
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"{build}: the run failed: {tail}")
    found = _TOTAL.search(out.read_bytes())
    if found is None:
        raise SystemExit(f"{out}: no instruction total in callgrind's output")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", default="5,10", help="boards (= projects) of 1,000 records, comma separated")
    ap.add_argument("--builds", default=str(ROOT), help="checkout roots, comma separated")
    ap.add_argument("--incremental", action="store_true", help="also a 1 %% random incremental")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind not found: apt-get install valgrind", file=sys.stderr)
        return 2
    sizes = [int(x) for x in args.sizes.split(",")]
    builds = [Path(b).resolve() for b in args.builds.split(",")]
    counts: dict[tuple[str, str, int], int] = {}  # (build, run, size) -> instructions
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            with serve_sims(size, 1000, size, 1000, Limits(trello=None, asana=None)) as sims:
                dbs = {b: Path(tmp) / f"{n}-{size}.db" for n, b in enumerate(builds)}
                for n, build in enumerate(builds):
                    out = Path(tmp) / f"full-{n}-{size}.out"
                    counts[(str(build), "full", size)] = instructions(sims, build, dbs[build], out)
                if args.incremental:
                    touch_trello(sims, 0.01, seed=size)
                    modify_asana(sims.asana, 0.01, seed=size)
                    for n, build in enumerate(builds):
                        out = Path(tmp) / f"incr-{n}-{size}.out"
                        counts[(str(build), "incremental", size)] = instructions(sims, build, dbs[build], out)
    runs = ["full", "incremental"] if args.incremental else ["full"]
    print("| build | run | " + " | ".join(f"{2 * s}k tasks, G" for s in sizes) + " | per 10k tasks, G |")
    print("|---|---|" + "---:|" * (len(sizes) + 1))
    for build in builds:
        for run in runs:
            got = [counts[(str(build), run, s)] for s in sizes]
            per = (got[-1] - got[0]) / (2 * (sizes[-1] - sizes[0])) / 1e9 * 10 if len(sizes) > 1 else None
            cells = " | ".join(f"{g / 1e9:.3f}" for g in got)
            print(f"| {build} | {run} | {cells} | {'-' if per is None else f'{per:.3f}'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
