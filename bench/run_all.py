"""Run every bench in ``bench/`` in sequence and print their tables (``make bench``).

    python bench/run_all.py [--scale 1.0] [--only NAME,...] [--skip NAME,...]

Each bench is a script ``bench/<name>.py`` run as its own process from the repository root;
helpers (``_common``, ``run_all``) and the contenders ``bench/compare.py`` starts itself
(``floor``, ``naive``, ``dlt_rest_api``) are not benches. ``--scale`` goes to ``compare.py``
(0.05 for a CI-sized run). A bench that fails is reported and the rest still run; the exit code
is 1 when any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_BENCHES = {"_common", "run_all", "floor", "naive", "dlt_rest_api"}
LAST = ("compare",)  # the long one goes last


def benches() -> list[str]:
    names = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in NOT_BENCHES)
    return [n for n in names if n not in LAST] + [n for n in LAST if n in names]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", type=float, default=None, help="passed to compare.py")
    ap.add_argument("--only", default="", help="comma-separated bench names")
    ap.add_argument("--skip", default="", help="comma-separated bench names")
    args = ap.parse_args(argv)
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    failed: list[str] = []
    for name in benches():
        if (only and name not in only) or name in skip:
            continue
        cmd = [sys.executable, str(ROOT / "bench" / f"{name}.py")]
        if name == "compare" and args.scale is not None:
            cmd += ["--scale", str(args.scale)]
        print(f"\n=== bench/{name}.py ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        print(f"--- bench/{name}.py: exit {code} in {time.perf_counter() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
