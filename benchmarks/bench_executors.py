"""Executors: a small ``compare`` grid on 1 vs 2 local Ray workers, and a cluster projection for the paper.

    .venv/bin/python benchmarks/bench_executors.py                       # measure + project
    .venv/bin/python benchmarks/bench_executors.py --no-measure \\
        --job-seconds pretrain=3600,finetune=900,baseline=60,features=300   # project with your own per-job times

1. Measure: synthetic DEAP (``--subjects`` × ``--trials``), smoke preset with a few epochs, rows majority,
   de-logreg, eegnet, physiosync, no-pretrain, no-cmca on ``stimulus-kfold`` (2 folds), run with
   ``--executor ray`` on a fresh local instance with ``num_cpus`` = 1 and then 2 (each job 1 CPU, cache
   reused, run directories fresh). Prints the wall times and the mean measured seconds per job kind.
2. Project: the job graph of the paper's DEAP protocol (``paper``, 10 folds, 1 s + 5 s pre-training,
   tasks arousal / valence / four, every row, 3 seeds) built from the real fold maker on a DEAP-shaped
   table (32 subjects × 40 trials), its number of jobs by kind, its critical path, and the wall time of a
   greedy list schedule on K workers (K GPUs or nodes, one job each at a time) from per-job seconds
   (measured, or ``--job-seconds``). Driver-side report jobs count as zero.

The machine this was written on has 2 cores shared with other work: the measured numbers are indicative.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from run_all import cpu_model  # benchmarks/ is a folder of scripts: the one CPU-name helper


class Recording:
    """Wraps an executor and keeps the graph it ran (per-job seconds)."""

    def __init__(self, inner):
        self.inner, self.graph = inner, None

    def run(self, graph, progress=True, on_job_done=None):
        self.graph = self.inner.run(graph, progress=progress, on_job_done=on_job_done)
        return self.graph


def measure(args: argparse.Namespace) -> dict[str, float]:
    import ray

    from physiosync.config import deep_merge, load_config, validate_config
    from physiosync.experiments import compare
    from physiosync.experiments.executors import RayExecutor
    from physiosync.synth import write_synthetic_deap

    root = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    write_synthetic_deap(root / "data", n_subjects=args.subjects, n_trials=args.trials, seed=0, effect=1.0)
    rows = ["majority", "de-logreg", "eegnet", "physiosync", "no-pretrain", "no-cmca"]
    per_kind: dict[str, list[float]] = {}
    try:
        for workers in (1, 2):
            base = {"name": f"w{workers}", "dataset": {"name": "deap", "data_dir": str(root / "data"),
                                                       "origin": "synthetic"},
                    "cache_dir": str(root / "cache"), "runs_dir": str(root / "runs"), "n_threads": 1,
                    "device": "cpu", "precision": "fp32"}
            cfg = load_config(None, preset="smoke", base=base)
            cfg = validate_config(deep_merge(cfg.model_dump(mode="json"), {
                "protocol": {"name": "stimulus-kfold", "n_folds": 2}, "labels": ["arousal", "valence"],
                "pretrain": {"epochs": args.epochs}, "finetune": {"epochs": args.epochs}}))
            if workers == 1:  # build the cache outside the timing
                from physiosync.config import resolve_config
                from physiosync.data.cache import build_cache

                build_cache(resolve_config(cfg), progress=False)
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            try:
                ex = Recording(RayExecutor(cfg.executor.model_copy(update={"name": "ray"})))
                tic = time.perf_counter()
                compare.run_compare(cfg, rows, progress=False, executor=ex)
                wall = time.perf_counter() - tic
            finally:
                ray.shutdown()
            jobs = [j for j in ex.graph if not j.driver]
            print(f"{workers} local Ray worker(s): {len(jobs)} jobs, wall {wall:.1f} s")
            for j in jobs:
                per_kind.setdefault(j.kind, []).append((j.result or {}).get("seconds", 0.0))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    means = {k: float(np.mean(v)) for k, v in per_kind.items()}
    print("measured seconds per job (mean):", ", ".join(f"{k} {v:.2f}" for k, v in sorted(means.items())))
    return means


def paper_graph(seeds=(0, 1, 2)):
    """The job graph of ``compare`` on DEAP with the ``paper`` protocol, all rows, 3 seeds (no data needed)."""
    from physiosync.config import FINETUNE_ONLY_MODEL_KEYS, ProtocolConfig
    from physiosync.data.protocols import make_folds
    from physiosync.data.table import WindowTable
    from physiosync.experiments.compare import ROWS, BaselineRow
    from physiosync.experiments.jobs import Job, JobGraph

    n_sub, n_tr, wins = 32, 40, (1.0, 5.0)
    n5 = 12
    rng = np.random.default_rng(0)
    s, t, w = np.meshgrid(np.arange(n_sub), np.arange(n_tr), np.arange(n5), indexing="ij")
    lab = rng.integers(0, 2, s.shape)
    table = WindowTable(subject=s.ravel(), trial=t.ravel(), stimulus=t.ravel(), window=w.ravel(),
                        valence=lab.ravel() * 5.0, arousal=lab.ravel() * 5.0, label_arousal=lab.ravel(),
                        label_valence=lab.ravel(), label_four=lab.ravel() * 2, window_s=5.0, n_windows=n5)
    tasks = ("arousal", "valence", "four")
    del FINETUNE_ONLY_MODEL_KEYS  # (documents why rows share pre-trainings: only these keys differ)
    # rows whose pre-training differs from the full method's (the rest only change fine-tuning keys)
    own_pretrain = {"no-cmca": "no-cmca", "no-temporal": "no-temporal"}
    graph = JobGraph(Path("."))
    for seed in seeds:
        folds = make_folds(table, ProtocolConfig(name="paper"), seed, pretrain_window_s=wins,
                           n_windows={1.0: 60, 5.0: 12})
        report_deps = []
        for name, spec in ROWS.items():
            if isinstance(spec, BaselineRow):
                feat = None
                if spec.features in ("de", "bandpower"):
                    feat = graph.add(Job(id=f"s{seed}/features/{spec.features}{spec.peripheral}", kind="features",
                                         args={}, outputs=())).id
                for task in tasks:
                    for f in folds:
                        kind = "eegnet" if spec.classifier == "eegnet" else "baseline"
                        report_deps.append(graph.add(Job(id=f"s{seed}/{name}/{task}/{f.index}", kind=kind, args={},
                                                         outputs=(), deps=(feat,) if feat else ())).id)
                continue
            sig = own_pretrain.get(name, "full")
            res = {"short-only": (1.0,), "long-only": (5.0,)}.get(name, wins)
            for f in folds:
                deps = ()
                if name != "no-pretrain":
                    deps = tuple(graph.add(Job(id=f"s{seed}/pretrain/{sig}/{win}/{f.pretrain[win].key()}",
                                               kind="pretrain", args={}, outputs=())).id for win in res)
                for task in tasks:
                    report_deps.append(graph.add(Job(id=f"s{seed}/{name}/ft/{task}/{f.index}", kind="finetune",
                                                     args={}, outputs=(), deps=deps)).id)
        graph.add(Job(id=f"s{seed}/report", kind="report", args={}, outputs=(), deps=tuple(report_deps), driver=True))
    return graph


def list_schedule(graph, seconds: dict[str, float], k: int) -> float:
    """Wall time of a list schedule on ``k`` identical workers: whenever a worker is free it takes the
    first ready job in graph order (what the Ray executor does: it submits every ready job)."""
    import heapq

    jobs = list(graph)
    index = {j.id: i for i, j in enumerate(jobs)}
    waiting = {j.id: len(set(j.deps)) for j in jobs}
    children: dict[str, list[str]] = {j.id: [] for j in jobs}
    for j in jobs:
        for d in set(j.deps):
            children[d].append(j.id)
    ready = [index[j.id] for j in jobs if waiting[j.id] == 0]
    heapq.heapify(ready)
    events: list[tuple[float, int]] = []
    t, free = 0.0, k
    while ready or events:
        while ready and free:
            j = jobs[heapq.heappop(ready)]
            dur = 0.0 if j.driver else seconds.get(j.kind, 0.0)
            free -= 1
            heapq.heappush(events, (t + dur, index[j.id]))
        t, i = heapq.heappop(events)
        free += 1
        for c in children[jobs[i].id]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, index[c])
    return t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subjects", type=int, default=3)
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--no-measure", action="store_true")
    p.add_argument("--job-seconds", default=None, help="kind=seconds,... (pretrain, finetune, baseline, eegnet, features)")
    p.add_argument("--workers", default="1,2,4,8,16,32,64")
    args = p.parse_args()
    print(f"CPU: {cpu_model()}")
    seconds: dict[str, float] = {}
    if not args.no_measure:
        seconds = measure(args)
        seconds.setdefault("eegnet", seconds.get("baseline", 0.0))
    if args.job_seconds:
        for item in args.job_seconds.split(","):
            k, v = item.split("=")
            seconds[k.strip()] = float(v)
    if "eegnet" not in seconds:
        seconds["eegnet"] = seconds.get("baseline", 0.0)
    graph = paper_graph()
    kinds: dict[str, int] = {}
    for j in graph:
        kinds[j.kind] = kinds.get(j.kind, 0) + 1
    total = sum(0.0 if j.driver else seconds.get(j.kind, 0.0) for j in graph)
    crit, chain = graph.critical_path({k: v for k, v in seconds.items()} | {"report": 0.0})
    print(f"paper DEAP protocol, all rows, 3 seeds: {len(graph)} jobs ("
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")")
    print("per-job seconds used: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(seconds.items())))
    print(f"total work {total / 3600:.2f} h; critical path {crit / 3600:.3f} h ({len(chain)} jobs: "
          f"{' -> '.join(c.split('/', 2)[-1] for c in chain[:3])}{' ...' if len(chain) > 3 else ''})")
    for k in (int(x) for x in args.workers.split(",")):
        print(f"  K={k:>3} workers: projected wall {list_schedule(graph, seconds, k) / 3600:.3f} h")


if __name__ == "__main__":
    main()
