"""Time `physiosync compare --only de-logreg` end to end on full-size synthetic DEAP (32 subjects × 40 trials).

Target (issue 5): the DE + logistic-regression row under the stimulus-held-out protocol (stimulus-kfold,
10 folds of 4 videos) in ≤ 2 min on 2 CPU cores, on a prepared cache. The dataset is generated into
``--data`` if it is missing (a few minutes, ~3.3 GB) and prepared once into ``--work/cache`` (also timed,
but not part of the target); then the command runs twice in a fresh comparison directory: the first run is
the figure, the second shows that a finished row is not re-run.

    .venv/bin/python benchmarks/bench_compare.py                      # /tmp/bench_deap, /tmp/bench_compare
    .venv/bin/python benchmarks/bench_compare.py --subjects 4         # a quick look (separate data folder)
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def ensure_data(data: Path, n_subjects: int) -> None:
    """Write synthetic DEAP into ``data`` unless all ``n_subjects`` files are there already."""
    if all((data / f"s{s:02d}.dat").is_file() for s in range(1, n_subjects + 1)):
        return
    from physiosync.synth import write_synthetic_deap

    t0 = time.perf_counter()
    write_synthetic_deap(data, n_subjects=n_subjects, n_trials=40, seed=0, effect=1.0)
    print(f"generated {n_subjects} synthetic DEAP subjects in {time.perf_counter() - t0:.0f} s", flush=True)


def physiosync(*args: str) -> tuple[float, float]:
    """Run the CLI in a fresh process (imports included, as a user would); return (wall, CPU) seconds.

    CPU time is reported too: on a shared machine wall time also measures the neighbours.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "physiosync.cli", *args], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return time.perf_counter() - t0, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="synthetic DEAP folder (default /tmp/bench_deap)")
    p.add_argument("--work", type=Path, default=Path("/tmp/bench_compare"), help="cache, config and runs")
    p.add_argument("--subjects", type=int, default=32)
    p.add_argument("--label", default="arousal", choices=["arousal", "valence", "four"])
    args = p.parse_args()
    data = args.data or (Path("/tmp/bench_deap") if args.subjects == 32 else Path(f"/tmp/bench_deap_{args.subjects}"))
    ensure_data(data, args.subjects)
    args.work.mkdir(parents=True, exist_ok=True)
    cfg = args.work / "compare.yaml"
    cfg.write_text(
        f"name: bench\nlabels: [{args.label}]\nseed: 0\n"
        f"dataset: {{name: deap, data_dir: {data}, origin: synthetic, "
        f"subjects: {[f's{s:02d}' for s in range(1, args.subjects + 1)]}}}\n"
        f"cache_dir: {args.work / 'cache'}\nruns_dir: {args.work / 'runs'}\n"
        "protocol: {name: stimulus-kfold}\n"
    )
    t0 = time.perf_counter()
    from physiosync.config import load_config
    from physiosync.data.cache import build_cache

    build_cache(load_config(cfg), progress=False)
    t_prep = time.perf_counter() - t0
    print(f"cache ready in {t_prep:.1f} s (built or reused; not part of the target)", flush=True)

    shutil.rmtree(args.work / "runs" / "bench-compare", ignore_errors=True)
    wall, cpu = physiosync("compare", str(cfg), "--only", "de-logreg", "--quiet")
    print(f"\ncompare --only de-logreg ({args.subjects} subjects × 40 trials, stimulus-kfold, label {args.label}): "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU end to end (target <= 120 s wall)", flush=True)
    again, cpu2 = physiosync("compare", str(cfg), "--only", "de-logreg", "--quiet")
    print(f"second run (row finished, not re-run): {again:.1f} s wall, {cpu2:.1f} s CPU")


if __name__ == "__main__":
    main()
