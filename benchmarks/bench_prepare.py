"""Benchmark `physiosync prepare` on full-size synthetic DEAP (32 subjects x 40 trials, ≈3.3 GB of pickles).

Prints: time to merely unpickle the 32 files (plain ``pickle`` and the project's restricted unpickler),
``prepare`` wall time and peak RSS (run in a subprocess, read from ``RUSAGE_CHILDREN``), the time of a
second ``prepare`` that reuses the cache, and the cache size. Targets (issue 2): peak RSS ≤ 1.5 GB,
wall ≤ 2x unpickle time, cache ≤ 1.3 GB for EEG + GSR.

Usage:
    .venv/bin/python benchmarks/bench_prepare.py [--data-dir DIR] [--subjects 32] [--trials 40] [--keep]

Without ``--data-dir`` the dataset is generated into a temporary folder (removed afterwards unless
``--keep``). All timings are taken with the files in the page cache (one read pass first), so they compare
CPU work, not the disk.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def read_all(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def time_unpickle(files: list[Path], restricted: bool) -> float:
    """Seconds to merely unpickle ``files`` (page cache warm), timed inside a fresh Python process.

    Why a fresh process: like ``prepare`` (also timed in its own process), and with the allocator a user's
    script has. In a process that already ran :func:`physiosync.training.runtime.keep_freed_memory` (any training
    benchmark), freed 100 MB arrays are reused instead of page-faulted afresh, which makes unpickling look
    up to 7x faster than it is for a plain script.
    """
    code = (
        "import pickle, sys, time\n"
        "from physiosync.data.readers.safe_pickle import load_pickle\n"
        f"files, restricted = {[str(f) for f in files]!r}, {restricted!r}\n"
        "t0 = time.perf_counter()\n"
        "for f in files:\n"
        "    if restricted:\n"
        "        obj = load_pickle(f)\n"
        "    else:\n"
        "        with open(f, 'rb') as fh:\n"
        "            obj = pickle.load(fh, encoding='latin1')\n"
        "    del obj\n"
        "print(time.perf_counter() - t0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def run_prepare(data_dir: Path, cache_dir: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of `physiosync prepare` in a fresh process."""
    code = (
        "import sys; from physiosync.cli import main; "
        f"sys.exit(main(['prepare', '--dataset', 'deap', '--data-dir', {str(data_dir)!r}, "
        f"'--cache', {str(cache_dir)!r}, '--no-progress']))"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far (Linux: kB)
    if peak_kb < before:
        peak_kb = before
    return wall, peak_kb * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--subjects", type=int, default=32)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--keep", action="store_true", help="keep the generated data and cache")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    try:
        data_dir = args.data_dir
        if data_dir is None:
            from physiosync.synth.deap import write_synthetic_deap

            data_dir = work / "deap"
            t0 = time.perf_counter()
            write_synthetic_deap(data_dir, n_subjects=args.subjects, n_trials=args.trials, seed=0)
            print(f"generated {args.subjects} x {args.trials} synthetic DEAP in {time.perf_counter() - t0:.1f} s")
        files = sorted(data_dir.glob("s*.dat"))
        size = sum(f.stat().st_size for f in files)
        print(f"input: {len(files)} files, {size / 1e9:.2f} GB in {data_dir}")
        read_all(files)  # page cache warm for every measurement below

        t_plain = time_unpickle(files, restricted=False)
        t_safe = time_unpickle(files, restricted=True)
        print(f"unpickle (pickle.load):          {t_plain:7.2f} s")
        print(f"unpickle (restricted unpickler): {t_safe:7.2f} s")

        cache_dir = work / "cache"
        wall, peak = run_prepare(data_dir, cache_dir)
        [built] = list(cache_dir.iterdir())
        cache_size = sum(f.stat().st_size for f in built.iterdir())
        wall_reuse, _ = run_prepare(data_dir, cache_dir)
        print(f"prepare wall:                    {wall:7.2f} s  ({wall / t_plain:.2f}x plain, "
              f"{wall / t_safe:.2f}x restricted unpickle; target <= 2x)")
        print(f"prepare peak RSS:                {peak / 1e9:7.2f} GB (target <= 1.5 GB)")
        print(f"cache size:                      {cache_size / 1e9:7.3f} GB (target <= 1.3 GB)")
        print(f"prepare again (reuse):           {wall_reuse:7.2f} s")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
