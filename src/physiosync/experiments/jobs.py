"""``run`` and ``compare`` as graphs of idempotent jobs with declared outputs and explicit dependencies.

Why jobs: one DEAP protocol with every baseline, ablation and a few seeds is hundreds of CPU-hours; split
into jobs it can be spread over the GPUs of a workstation or the nodes of a cluster
(:mod:`physiosync.experiments.executors`), and a job that is lost (a node dies, the driver is stopped) is
simply run again, while the finished ones are not.

The jobs (``kind``), per seed (each seed is its own run directory, see :func:`seed_configs`):

- ``prepare`` — the window cache, the folds and the run directories (``config.yaml``, ``folds.json``). It
  runs once, on the driver, *before* the graph is built: the folds it draws decide which jobs exist.
- ``pretrain`` — one per distinct (window length, pre-training split, pre-training signature): its id is
  its directory, so folds with equal splits and ``compare`` rows with equal pre-training settings share
  one job (the dedup of the pre-training store). Output ``encoders.pt``.
- ``finetune`` — fine-tuning + prediction per (row, fold, task). Depends on the fold's ``pretrain`` jobs.
  Outputs ``predictions.npz`` and ``done.json`` (the marker, last).
- ``features`` — hand-crafted features of a ``compare`` (once per kind, for all baseline rows that use them).
- ``baseline`` — one baseline row, fold and task of ``compare``: its prediction table.
- ``report`` — a run's (or a ``compare`` row's) evaluation and report, the comparison's tables, the
  aggregation over seeds. Report jobs run on the driver (they are cheap and read everything).

A job is skipped when all its outputs exist: every output is written atomically
(:mod:`physiosync.atomic`) and the completion marker last, so existence means valid. A job whose
dependency ran in this invocation is not skipped (a report must see new predictions). Jobs resume inside
too: a pre-training or fine-tuning restarts from its last per-epoch checkpoint
(:mod:`physiosync.training.loop`), so a job killed half-way loses at most one epoch and its result equals an
uninterrupted one.

Each job is a plain description (kind, arguments, outputs) that any process can execute with
:func:`execute`: the worker re-opens the run from disk (``config.yaml`` values passed along, the cache by
path, ``folds.json``), so the local executor and a Ray worker run the same code on the same inputs and
produce the same numbers for the same seed (see :mod:`physiosync.experiments.executors` for the threads).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("physiosync")

JOB_KINDS = ("prepare", "pretrain", "finetune", "features", "baseline", "report")
FAULT_ENV = "PHYSIOSYNC_FAULT_KILL_AFTER_EPOCH"  # tests only: see _maybe_fault


@dataclass
class Job:
    """One unit of work.

    Attributes:
        id: Unique, readable id (``pretrain:<dir>``, ``finetune:<run>/<task>/foldNN``, ...); equal ids are
            one job (how shared pre-trainings are deduplicated).
        kind: One of :data:`JOB_KINDS`; selects the resources (``executor.resources``).
        args: What :func:`execute` needs (JSON-able; no live objects, so it travels to a worker).
        outputs: Files whose existence marks the job finished (completion markers).
        deps: Ids of the jobs that must finish first.
        driver: Run in the driver process (report jobs), never on a worker.
        group: What the job belongs to for reports (a ``compare`` row, a seed).
        local_fn: For driver jobs: the callable to run (not sent anywhere).
    """

    id: str
    kind: str
    args: dict[str, Any]
    outputs: tuple[str, ...]
    deps: tuple[str, ...] = ()
    driver: bool = False
    group: str = ""
    local_fn: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    # files whose presence means the job still has tidying to do (a finished stage's resume checkpoint
    # when the config does not keep it: the job's finished path removes it, as every re-run always did)
    absent: tuple[str, ...] = ()
    state: str = "pending"  # pending | skipped | done | failed | blocked (set by the executor)
    result: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    error: str | None = None

    def done(self) -> bool:
        """All outputs exist (each was written atomically, the marker last: existing = valid)."""
        return (bool(self.outputs) and all(Path(p).is_file() for p in self.outputs)
                and not any(Path(p).exists() for p in self.absent))

    def log_path(self, log_dir: Path) -> Path:
        return Path(log_dir) / (re.sub(r"[^A-Za-z0-9._=-]+", "_", self.id).strip("_")[:200] + ".log")

    def payload(self) -> dict[str, Any]:
        """What a worker receives."""
        return {"id": self.id, "kind": self.kind, "args": self.args}


class JobGraph:
    """Jobs in insertion order (a topological order: a job is added after its dependencies)."""

    def __init__(self, log_dir: Path) -> None:
        self.jobs: dict[str, Job] = {}
        self.log_dir = Path(log_dir)

    def add(self, job: Job) -> Job:
        """Add ``job``, or return the job with the same id already there (shared pre-trainings)."""
        have = self.jobs.get(job.id)
        if have is not None:
            if have.outputs != job.outputs:
                raise RuntimeError(f"job {job.id}: two definitions with different outputs")
            return have
        missing = [d for d in job.deps if d not in self.jobs]
        if missing:
            raise RuntimeError(f"job {job.id}: dependencies {missing} were not added first")
        self.jobs[job.id] = job
        return job

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self):
        return iter(self.jobs.values())

    def dependents(self, job_id: str) -> set[str]:
        """Every job that (transitively) depends on ``job_id``."""
        out: set[str] = set()
        for j in self.jobs.values():  # insertion order is topological: one pass suffices
            if job_id in j.deps or out.intersection(j.deps):
                out.add(j.id)
        return out

    def critical_path(self, seconds: dict[str, float]) -> tuple[float, list[str]]:
        """Longest chain of ``seconds[kind or id]`` through the graph: the wall time with unlimited workers."""
        best: dict[str, tuple[float, list[str]]] = {}
        for j in self.jobs.values():
            t = seconds.get(j.id, seconds.get(j.kind, 0.0))
            prev = max((best[d] for d in j.deps), key=lambda x: x[0], default=(0.0, []))
            best[j.id] = (prev[0] + t, [*prev[1], j.id])
        return max(best.values(), key=lambda x: x[0], default=(0.0, []))


# --------------------------------------------------------------------------------------------------
# executing one job (in the driver or a worker)

_CONTEXTS: dict[tuple[str, str], Any] = {}  # per process: (kind, dir) -> RunContext / Comparison


def register_context(kind: str, directory: Path, obj: Any) -> None:
    """Make a context the driver already has (cache open, folds drawn) available to in-process jobs."""
    _CONTEXTS[(kind, str(Path(directory)))] = obj


def forget_contexts() -> None:
    _CONTEXTS.clear()


def _reopen(args: dict[str, Any], dir_key: str) -> tuple[Any, ...]:
    """What a worker needs to rebuild a run or comparison from disk: config, cache, fused resolutions,
    fine-tuning table, the saved folds and the device."""
    from physiosync.config import validate_config
    from physiosync.data.cache import open_cache
    from physiosync.data.protocols import load_folds
    from physiosync.training.runtime import resolve_device

    directory = Path(args[dir_key])
    cfg = validate_config(args["cfg"], f"job config of {directory}")
    cache = open_cache(args["cache"])
    res = tuple(sorted(cfg.model.resolutions or ()))
    folds = load_folds(directory / "folds.json", cache.hash)
    return cfg, directory, cache, res, cache.windows(max(res)), folds, resolve_device(cfg.device)


def _run_context(args: dict[str, Any]) -> Any:
    """The run (a RunContext) a job belongs to: registered by the driver, or re-opened from disk."""
    key = ("run", str(Path(args["run_dir"])))
    if key not in _CONTEXTS:
        from physiosync.experiments.pipeline import RunContext

        cfg, run_dir, cache, res, table, folds, device = _reopen(args, "run_dir")
        ctx = RunContext(cfg=cfg, run_dir=run_dir, cache=cache, table=table, resolutions=res, device=device)
        ctx.folds = folds
        _CONTEXTS[key] = ctx
    return _CONTEXTS[key]


def _comparison(args: dict[str, Any]) -> Any:
    """The comparison a baseline/features job belongs to: registered by the driver, or re-opened from disk."""
    key = ("compare", str(Path(args["compare_dir"])))
    if key not in _CONTEXTS:
        from physiosync.experiments.compare import Comparison
        from physiosync.experiments.pipeline import select_folds

        cfg, cdir, cache, res, table, folds, device = _reopen(args, "compare_dir")
        _CONTEXTS[key] = Comparison(cfg=cfg, dir=cdir, cache=cache, table=table, resolutions=res,
                                    folds=list(folds), selected=select_folds(cfg, folds), device=device)
    return _CONTEXTS[key]


def _fold(folds: list[Any], index: int) -> Any:
    return next(f for f in folds if int(f.index) == int(index))


def _training_runtime(cfg: Any, device: Any, flush_denormal: bool) -> None:
    """The process settings a job's numbers depend on, set the same way in every process.

    Threads follow ``n_threads`` (None = the process default: on Ray, ``OMP_NUM_THREADS`` = the job's CPUs);
    the PhysioSync stages run with denormals flushed (as ``run_pipeline`` always did), EEGNet without (as
    ``compare`` always ran it), whatever ran before in the process.
    """
    import torch

    from physiosync.training.runtime import keep_freed_memory, seed_everything, set_threads

    set_threads(cfg.n_threads)
    seed_everything(cfg.seed)
    if getattr(device, "type", str(device)) == "cpu":
        keep_freed_memory()
        torch.set_flush_denormal(flush_denormal)


def _maybe_fault(job_id: str, run: Callable[[int | None], Any]) -> None:
    """Fault injection for the executor tests: ``PHYSIOSYNC_FAULT_KILL_AFTER_EPOCH=<marker file>``.

    The first job that sees the variable while the marker file is absent trains one epoch (checkpoint
    written), creates the marker and kills its own process with SIGKILL — a worker dying mid-job. The
    retried job resumes from the checkpoint. Unset in normal use: nothing happens.
    """
    marker = os.environ.get(FAULT_ENV)
    if not marker or Path(marker).exists():
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    run(1)
    os.write(fd, job_id.encode())
    os.close(fd)
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def do_pretrain(args: dict[str, Any], progress: bool) -> dict[str, Any]:
    from physiosync.experiments.pipeline import pretrain_dir
    from physiosync.training.pretrain import pretrain_split

    ctx = _run_context(args)
    w = float(args["window_s"])
    split = next(f.pretrain[w] for f in ctx.folds if float(w) in f.pretrain and f.pretrain[w].key() == args["split_key"])
    _training_runtime(ctx.cfg, ctx.device, flush_denormal=True)
    out = pretrain_dir(ctx, w, args["split_key"])
    r = pretrain_split(ctx.cache, split, w, ctx.cfg, ctx.device, out, progress=progress)
    return {"epochs": r.get("epochs_done"), "skipped": r.get("skipped", False)}


def do_finetune(args: dict[str, Any], progress: bool) -> dict[str, Any]:
    from physiosync.experiments.pipeline import finetune_dir, fold_encoder_states
    from physiosync.training.finetune import finetune_fold

    ctx = _run_context(args)
    fold = _fold(ctx.folds, args["fold"])
    label = args["label"]
    _training_runtime(ctx.cfg, ctx.device, flush_denormal=True)
    states = fold_encoder_states(ctx, fold)
    d = finetune_dir(ctx, label, fold.index)
    model_path = d / args["save_model"] if args.get("save_model") else None  # fit: the bundle's weights

    def go(max_epochs: int | None) -> dict[str, Any]:
        return finetune_fold(ctx.cache, ctx.table, fold, label, states, ctx.cfg, ctx.device, d, progress=progress,
                             max_epochs_this_call=max_epochs, model_path=model_path)

    _maybe_fault(args.get("job_id", ""), go)
    r = go(None)
    return {"skipped": r.get("skipped", False)}


def do_features(args: dict[str, Any], progress: bool) -> dict[str, Any]:
    import numpy as np

    from physiosync.atomic import atomic_path

    comp = _comparison(args)
    x, rows = comp.features(args["features"], bool(args["peripheral"]))
    with atomic_path(args["path"]) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, x=x, rows=rows)
    return {"shape": list(x.shape)}


def load_features(comp: Any, kind: str, peripheral: bool, path: str) -> tuple[Any, Any]:
    """A comparison's features: in memory when this process computed them, else from the features job's file."""
    import numpy as np

    key = (kind, peripheral)
    if key not in comp._features:
        with np.load(path, allow_pickle=False) as z:
            comp._features[key] = (z["x"], z["rows"])
    return comp._features[key]


def do_baseline(args: dict[str, Any], progress: bool) -> dict[str, Any]:
    from physiosync.experiments.compare import baseline_fold

    comp = _comparison(args)
    _training_runtime(comp.cfg, comp.device, flush_denormal=False)
    fold = _fold(comp.selected, args["fold"])
    note = baseline_fold(comp, args["row"], args["label"], fold, args.get("features_path"), progress=progress)
    return {"note": note}


JOB_FUNCTIONS: dict[str, Callable[[dict[str, Any], bool], dict[str, Any]]] = {
    "pretrain": do_pretrain, "finetune": do_finetune, "features": do_features, "baseline": do_baseline,
}


class _Forward(logging.Handler):
    """Passes records at or above ``level`` on to the root logger's handlers (the console)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= self.level:
            for h in logging.getLogger().handlers:
                if record.levelno >= h.level:
                    h.handle(record)


def execute(payload: dict[str, Any], log_file: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Run one job (a :meth:`Job.payload`) in this process; its log lines also go to ``log_file``.

    Returns:
        ``id``, ``seconds``, ``pid``, ``host`` and the job function's own fields.
    """
    import socket

    handler = None
    logger = logging.getLogger("physiosync")
    saved = (logger.level, logger.propagate)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        shown = logger.getEffectiveLevel()
        if shown > logging.INFO:  # the file gets INFO; the console keeps showing only what it showed
            logger.setLevel(logging.INFO)
            logger.propagate = False
            forward = _Forward(shown)
            logger.addHandler(forward)
    tic = time.perf_counter()
    try:
        logger.info("job %s (%s) started in pid %d on %s", payload["id"], payload["kind"], os.getpid(),
                    socket.gethostname())
        args = {**payload["args"], "job_id": payload["id"]}
        out = JOB_FUNCTIONS[payload["kind"]](args, progress)
        logger.info("job %s finished in %.1f s", payload["id"], time.perf_counter() - tic)
    except BaseException as e:
        logger.error("job %s failed: %s: %s", payload["id"], type(e).__name__, e)
        raise
    finally:
        if handler is not None:
            for h in [h for h in logger.handlers if h is handler or isinstance(h, _Forward)]:
                logger.removeHandler(h)
            handler.close()
            logger.setLevel(saved[0])
            logger.propagate = saved[1]
    return {"id": payload["id"], "seconds": time.perf_counter() - tic, "pid": os.getpid(),
            "host": socket.gethostname(), **out}


# --------------------------------------------------------------------------------------------------
# building graphs


def cfg_doc(cfg: Any) -> dict[str, Any]:
    return json.loads(json.dumps(cfg.model_dump(mode="json")))


def add_run_jobs(graph: JobGraph, ctx: Any, group: str = "", report: Callable[[], Any] | None = None,
                 stages: tuple[str, ...] = ("pretrain", "finetune"), save_model: str | None = None) -> list[str]:
    """Add a prepared run's pre-training and fine-tuning jobs (and its report job, if given).

    ``ctx`` is a :class:`~physiosync.experiments.pipeline.RunContext` with cache and folds. The order of
    the jobs is the order the stages always ran in: pre-trainings sorted by (window, split), then every
    fold × task. ``save_model`` (a file name, ``fit``'s): each fine-tuning also saves its final weights
    there, next to its marker, and the file is one of the job's outputs. Returns the ids of the run's jobs
    (the report's dependencies).
    """
    from physiosync.experiments.pipeline import (
        _check_pretrain_subjects,
        finetune_dir,
        pretrain_dir,
        selected_folds,
    )
    from physiosync.training.finetune import DONE_NAME, PREDICTIONS_NAME
    from physiosync.training.loop import CHECKPOINT_NAME
    from physiosync.training.pretrain import ENCODERS_NAME, HISTORY_NAME

    cfg = ctx.cfg
    register_context("run", ctx.run_dir, ctx)
    base = {"cfg": cfg_doc(cfg), "run_dir": str(ctx.run_dir), "cache": str(ctx.cache.path)}
    folds = selected_folds(ctx)
    pre_ids: dict[tuple[float, str], str] = {}
    ids: list[str] = []
    if cfg.pretrain.enabled and "pretrain" in stages:
        todo: dict[tuple[float, str], Any] = {}
        stimuli_unknown = bool((ctx.cache.trials["stimulus"] < 0).any())  # own recordings without stimulus ids
        for fold in folds:
            for w in ctx.resolutions:
                split = fold.pretrain[w]
                todo.setdefault((w, split.key()), split)
                _check_pretrain_subjects(cfg, fold, split, stimuli_unknown)
        for (w, key) in sorted(todo):
            d = pretrain_dir(ctx, w, key)
            job = graph.add(Job(id=f"pretrain:{d}", kind="pretrain", group=group,
                                args={**base, "window_s": float(w), "split_key": key},
                                outputs=(str(d / HISTORY_NAME), str(d / ENCODERS_NAME)),
                                absent=() if cfg.pretrain.keep_checkpoint else (str(d / CHECKPOINT_NAME),)))
            pre_ids[(w, key)] = job.id
            ids.append(job.id)
    if "finetune" in stages:
        for fold in folds:
            deps = tuple(pre_ids[(w, fold.pretrain[w].key())] for w in ctx.resolutions
                         if (w, fold.pretrain[w].key()) in pre_ids)
            for label in cfg.labels:
                d = finetune_dir(ctx, label, fold.index)
                saved = (str(d / save_model),) if save_model else ()
                job = graph.add(Job(id=f"finetune:{d}", kind="finetune", group=group, deps=deps,
                                    args={**base, "fold": int(fold.index), "label": label,
                                          **({"save_model": save_model} if save_model else {})},
                                    outputs=(*saved, str(d / PREDICTIONS_NAME), str(d / DONE_NAME)),
                                    absent=() if cfg.finetune.keep_checkpoint else (str(d / CHECKPOINT_NAME),)))
                ids.append(job.id)
    if report is not None:
        rid = graph.add(Job(id=f"report:{ctx.run_dir}", kind="report", group=group, args={}, outputs=(),
                            deps=tuple(ids), driver=True, local_fn=report)).id
        ids.append(rid)
    return ids


# --------------------------------------------------------------------------------------------------
# seeds


def seed_configs(cfg: Any, base_dir: Path) -> dict[int, Any]:
    """One config per seed of ``cfg.seeds``: ``seed = k``, ``seeds = None``, run directory ``base_dir/seed<k>``.

    Folds per seed: each seed draws the protocol's folds with its own seed (``make_folds(seed=k)``), so a
    seed varies the initialisation, the batches *and* the fold assignment wherever the protocol draws
    one (``stimulus-kfold``, ``subject-trial-kfold``, ``subject-kfold``, the pre-training validation
    subjects); ``loso`` test folds are the same for every seed. Pre-trainings are keyed by seed, so no
    two seeds share one.
    """
    from physiosync.config import validate_config

    out = {}
    for k in cfg.seeds or [cfg.seed]:
        data = cfg.model_dump(mode="json")
        data.update(seed=int(k), seeds=None, name=f"seed{k}", runs_dir=str(base_dir))
        out[int(k)] = validate_config(data, f"seed {k}")
    return out
