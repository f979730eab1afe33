"""Time the synthetic generators: seconds per DEAP subject (40 trials) and per DREAMER subject.

Usage: .venv/bin/python benchmarks/bench_synth.py [--subjects 4] [--out /tmp/bench_synth]
Prints per-subject seconds and the extrapolation to the full datasets (DEAP 32 x 40, DREAMER 23 x 18).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from physiosync.synth import write_synthetic_deap, write_synthetic_dreamer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_synth"))
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    t = time.perf_counter()
    paths = write_synthetic_deap(args.out / "deap", n_subjects=args.subjects, n_trials=40)
    per = (time.perf_counter() - t) / args.subjects
    size = sum(p.stat().st_size for p in paths) / args.subjects / 1e6
    print(f"DEAP: {per:.2f} s/subject (40 trials, {size:.0f} MB each); full 32 subjects ≈ {32 * per:.0f} s")
    n = max(1, args.subjects // 2)
    t = time.perf_counter()
    path = write_synthetic_dreamer(args.out / "dreamer", n_subjects=n, n_trials=18, clip_seconds=(65.0, 390.0))
    per = (time.perf_counter() - t) / n
    print(f"DREAMER: {per:.2f} s/subject (18 clips of 65-390 s, {path.stat().st_size / n / 1e6:.0f} MB each); "
          f"full 23 subjects ≈ {23 * per:.0f} s")
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
