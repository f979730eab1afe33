"""``seeds: [0, 1, 2]`` (or ``--seeds 0,1,2``): the whole grid once per seed, then results over seeds.

Layout: a run ``runs_dir/<name>/`` over seeds holds ``config.yaml`` (with ``seeds``), one ordinary run
directory per seed ``seed<k>/`` (``seed = k``; its own ``folds.json``, pre-trainings, fine-tunings and
report) and the summary ``seeds.json`` / ``seeds.md``. A comparison ``runs_dir/<name>-compare/`` over seeds
holds one ordinary comparison directory per seed ``seed<k>/`` and ``comparison-seeds.json`` / ``.md``.
Folds per seed: every seed draws its protocol's folds with that seed (:func:`physiosync.experiments.jobs.seed_configs`).

All seeds' jobs go into one graph, so an executor with several workers runs them side by side; a seed
added later (``seeds`` is a runtime key) only adds its own jobs. Each seed directory is exactly what a run
with ``seed = k`` and no ``seeds`` would produce, so the same seed gives the same numbers whichever
executor ran it, and with or without the other seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from physiosync.atomic import write_json_atomic, write_text_atomic
from physiosync.config import RunConfig


def run_seeds(cfg: RunConfig, stages: tuple[str, ...], progress: bool = True, executor: Any = None) -> dict[str, Any]:
    """A run over ``cfg.seeds``; returns the summary (``seeds.json``'s doc + ``per_seed`` results)."""
    from physiosync.evaluation.seeds import render_seed_results, seed_results
    from physiosync.experiments.executors import make_executor
    from physiosync.experiments.jobs import Job, JobGraph, add_run_jobs, seed_configs
    from physiosync.experiments.pipeline import finish_run, open_run, run_dir_of, start_run

    top = run_dir_of(cfg)
    cfg, _ = start_run(cfg, top)
    graph = JobGraph(top / "logs")
    per_seed: dict[int, dict[str, Any]] = {}
    ids: list[str] = []
    for k, scfg in seed_configs(cfg, top).items():
        ctx = open_run(scfg, progress=progress)
        ids += add_run_jobs(graph, ctx, group=f"seed{k}", stages=stages,
                            report=lambda ctx=ctx, k=k: per_seed.__setitem__(k, finish_run(ctx, stages)))
    out: dict[str, Any] = {"run_dir": str(top)}

    def summary() -> None:
        if not all("labels" in r for r in per_seed.values()):
            return  # evaluate not among the stages
        doc = seed_results({k: r for k, r in per_seed.items()})
        write_json_atomic(top / "seeds.json", doc)
        write_text_atomic(top / "seeds.md", render_seed_results(doc))
        out.update(doc)
        out["report_path"] = str(top / "seeds.md")

    graph.add(Job(id=f"report:{top}", kind="report", args={}, outputs=(), deps=tuple(ids), driver=True,
                  local_fn=summary))
    make_executor(executor, cfg).run(graph, progress=progress)
    out["per_seed"] = per_seed
    return out


def run_compare_seeds(cfg: RunConfig, rows: list[str], progress: bool = True, executor: Any = None) -> dict[str, Any]:
    """A comparison over ``cfg.seeds``; returns ``comparison-seeds.json``'s doc (+ ``per_seed`` docs)."""
    from physiosync.evaluation.seeds import render_seed_comparison, seed_comparison
    from physiosync.experiments.compare import (
        REFERENCE_ROW,
        add_compare_jobs,
        compare_dir_of,
        open_comparison,
    )
    from physiosync.experiments.executors import make_executor
    from physiosync.experiments.jobs import Job, JobGraph, seed_configs
    from physiosync.experiments.pipeline import start_run

    top = compare_dir_of(cfg)
    cfg, _ = start_run(cfg, top)
    graph = JobGraph(top / "logs")
    outs: dict[int, dict[str, Any]] = {}
    ids: list[str] = []
    for k, scfg in seed_configs(cfg, top).items():
        comp = open_comparison(scfg, progress=progress, cdir=top / f"seed{k}")
        outs[k] = {}
        ids.append(add_compare_jobs(graph, comp, rows, outs[k], progress=progress, group=""))
    result: dict[str, Any] = {}

    def summary() -> None:
        docs = {k: o["doc"] for k, o in outs.items()}
        doc = seed_comparison(docs, REFERENCE_ROW)
        doc["meta"] = {"compare_dir": str(top), "seed_dirs": {str(k): str(top / f"seed{k}") for k in docs}}
        write_json_atomic(top / "comparison-seeds.json", doc)
        write_text_atomic(top / "comparison-seeds.md", render_seed_comparison(doc))
        result.update(doc)
        result["per_seed"] = docs

    graph.add(Job(id=f"report:{top}", kind="report", args={}, outputs=(), deps=tuple(ids), driver=True,
                  local_fn=summary))
    make_executor(executor, cfg).run(graph, progress=progress)
    return result


def seed_dir(top: Path, seed: int) -> Path:
    return Path(top) / f"seed{seed}"
