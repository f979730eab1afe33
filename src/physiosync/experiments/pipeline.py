"""The one module that wires the stages together: prepare → folds → pre-train → fine-tune → evaluate → report.

A run lives in ``runs_dir/name/``::

    config.yaml                     resolved configuration (what produced everything below)
    folds.json                      the protocol's folds, bound to the cache hash
    pretrain/<w>s-<key>/            one pre-training per distinct (window length, pre-training split):
        checkpoint.pt (while running), history.json, encoders.pt (last: marks it finished); shared by
        every fold with that split and by every label dimension
    finetune/<label>/fold<k>/       checkpoint.pt (while running), predictions.npz, done.json (last); <label> = task
    predictions/                    per fold and label CSV tables (subject, trial, window, truth, probabilities)
    report.md, results.json, results.csv, plots/

Public API (what ``physiosync run``, ``compare`` and library users call; re-exported by ``physiosync``):
:func:`start_run` (resolve the config, choose device and precision, save or check ``config.yaml``),
:func:`prepare` (the window cache and the fused window lengths, as :class:`PreparedData`),
:func:`make_run_folds` / :func:`select_folds` (``folds.json``: drawn once, or given by the caller) and
:func:`run_pipeline` (all of the above, then the stages). The ``stage_*`` functions and
:class:`RunContext` are this module's internals.

Every stage is resumable: finished pre-trainings and folds are skipped, unfinished ones continue from their
last per-epoch checkpoint, so re-running the same command after an interruption (even SIGKILL) completes
the run with the same numbers as an uninterrupted one. Each stage writes its completion marker last
(``encoders.pt``, ``done.json``), so a kill between two of its files is redone, never skipped. Resume
checkpoints of finished stages are deleted (``pretrain.keep_checkpoint`` / ``finetune.keep_checkpoint``
keep them), and temporary files that a killed process left in the run directory and the pre-training
store are removed when the next run starts (stale ones only: :func:`physiosync.atomic.clean_stale_temps`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from physiosync.atomic import write_json_atomic
from physiosync.config import RunConfig, resolve_config, window_problem
from physiosync.errors import ConfigError, DataFormatError
from physiosync.experiments.rundir import (  # re-exported: part of the pipeline's public API
    config_differences,
    load_run_config,
    require_data_dir,
    resolve_run_precision,
    run_dir_of,
    write_run_config,
)

log = logging.getLogger("physiosync")

__all__ = [  # the public API (the rest are the stages' internals)
    "STAGES", "PreparedData", "config_differences", "folds_meta", "load_run_config", "make_run_folds", "prepare",
    "pretrain_signature", "require_data_dir", "open_run", "finish_run", "resolve_run_precision", "run_dir_of", "run_pipeline", "select_folds",
    "start_run", "write_run_config",
]

STAGES = ("prepare", "folds", "pretrain", "finetune", "evaluate", "report")


@dataclass(frozen=True)
class PreparedData:
    """A prepared dataset as a run sees it: the window cache and the window lengths it fuses.

    Attributes:
        cache: The :class:`~physiosync.data.cache.WindowCache` (built or reused).
        resolutions: The resolved ``model.resolutions``, ascending.
        table: The fine-tuning table (windows of the longest resolution); fold rows index it.
    """

    cache: Any
    resolutions: tuple[float, ...]
    table: Any


@dataclass
class RunContext:
    """Objects shared by the stages of one run (internal: callers use the public functions above)."""

    cfg: RunConfig
    run_dir: Path
    cache: Any = None
    table: Any = None  # WindowTable of the fine-tuning (longest) window length
    resolutions: tuple[float, ...] = ()
    folds: list[Any] | None = None
    device: Any = None

    @property
    def data(self) -> PreparedData:
        return PreparedData(cache=self.cache, resolutions=self.resolutions, table=self.table)


# --------------------------------------------------------------------------------------------------
# stages


def start_run(cfg: RunConfig, run_dir: Path | None = None) -> tuple[RunConfig, Any]:
    """Open a run directory: the config every stage will see, and the device it runs on.

    Resolves the config (:func:`physiosync.config.resolve_config`), picks the device and replaces
    ``precision: auto`` by what runs there (:func:`resolve_run_precision`), refuses a run without data
    before anything is written, saves ``config.yaml`` — refusing a directory made with another
    configuration (:func:`write_run_config`) — and removes the stale temporary files of killed processes
    from the directory and the pre-training store.

    Args:
        run_dir: Where the run lives; default ``runs_dir/name`` (``compare`` passes its own directory).

    Returns:
        ``(resolved config, torch device)``.
    """
    from physiosync.atomic import clean_stale_temps
    from physiosync.training.runtime import resolve_device

    cfg = resolve_config(cfg)  # every dataset default filled once, before any stage sees the config
    run_dir = run_dir_of(cfg) if run_dir is None else Path(run_dir)
    device = resolve_device(cfg.device)
    cfg = resolve_run_precision(cfg, run_dir, device)  # auto -> what runs here (saved)
    require_data_dir(cfg)  # bad settings are refused before the run directory is made
    write_run_config(cfg, run_dir)
    # Only stale temps (clean_stale_temps): other processes may be writing into a shared store at the same
    # time (folds fanned out over machines).
    clean_stale_temps(run_dir, recursive=True)
    if cfg.pretrain_store is not None:
        clean_stale_temps(cfg.pretrain_store, recursive=True)
    return cfg, device


def prepare(cfg: RunConfig, progress: bool = True) -> PreparedData:
    """Build or reuse the window cache; the fused window lengths are the resolved ``model.resolutions``.

    Raises:
        ConfigError: no data directory, or windows that do not tile the prepared trials.
    """
    from physiosync.data.cache import build_cache

    require_data_dir(cfg)
    if cfg.model.resolutions is None:  # a programming error: entry points resolve first
        raise RuntimeError("prepare needs a config filled by physiosync.config.resolve_config")
    cache = build_cache(cfg, progress=progress)
    resolutions = tuple(sorted(cfg.model.resolutions))
    # The schema checked the windows against the dataset facts; the prepared trials are what counts.
    problem = window_problem(list(resolutions), int(cache.n_samples), float(cache.sfreq))
    if problem:
        raise ConfigError(f"model.resolutions {list(resolutions)}: {problem} (cache {cache.path})")
    if cache.contract.peripheral is None:
        off = [what for what, on in (("model.fusion=cross-modal fuses the EEG alone (eeg-only mode)",
                                      cfg.model.fusion == "cross-modal"),
                                     ("pretrain.cross_modal: no CM-CA terms, temporal contrast only",
                                      cfg.pretrain.enabled and cfg.pretrain.cross_modal)) if on]
        if off:
            log.warning("EEG-only data (no peripheral modality): %s", "; ".join(off))
    return PreparedData(cache=cache, resolutions=resolutions, table=cache.windows(max(resolutions)))


def stage_prepare(ctx: RunContext, progress: bool = True) -> None:
    data = prepare(ctx.cfg, progress=progress)
    ctx.cache, ctx.resolutions, ctx.table = data.cache, data.resolutions, data.table


def folds_meta(cfg: RunConfig, data: PreparedData) -> dict[str, Any]:
    """The settings a run's ``folds.json`` must match to be reused."""
    return {
        "protocol": cfg.protocol.model_dump(mode="json", exclude={"folds"}),
        "seed": cfg.seed,
        "window_s": float(data.table.window_s),
        "pretrain_window_s": [float(w) for w in data.resolutions],
        "val_fraction": cfg.pretrain.val_fraction,
    }


def make_run_folds(cfg: RunConfig, data: PreparedData, run_dir: Path, folds: list[Any] | None = None) -> list[Any]:
    """The run's folds: ``run_dir/folds.json`` if it exists, else drawn by the protocol and saved there.

    Args:
        folds: Folds chosen by the caller (rows of ``data.table``; ``compare`` gives every row the
            comparison's folds): saved as the run's ``folds.json``, unless an identical copy is already
            there (a differing one is replaced, with a warning), then used like drawn ones.

    Raises:
        DataFormatError: a saved ``folds.json`` drawn for other data or settings.
    """
    from physiosync.data.protocols import load_folds, make_folds, save_folds

    meta = folds_meta(cfg, data)
    path = Path(run_dir) / "folds.json"
    if folds is not None:
        _save_given_folds(path, folds, data.cache.hash, meta)
    if path.exists():
        try:
            return load_folds(path, data.cache.hash, meta)
        except DataFormatError as e:
            # The run's config matched (write_run_config), so the data or the preprocessing changed since
            # these folds were drawn: say so, and what to do, rather than ask for a file the user never made.
            raise DataFormatError(
                path, e.field, e.found, e.expected,
                hint=f"the folds saved in {run_dir} were drawn for other data or settings, so this run "
                     f"cannot be resumed; delete {run_dir} or choose another name (--set name=...)",
            ) from None
    drawn = make_folds(data.table, cfg.protocol, cfg.seed, pretrain_window_s=data.resolutions,
                       n_windows={w: data.cache.n_windows(w) for w in data.resolutions},
                       val_fraction=cfg.pretrain.val_fraction)
    save_folds(drawn, path, data.cache.hash, meta)
    return drawn


def _save_given_folds(path: Path, folds: list[Any], cache_hash: str, meta: dict[str, Any]) -> None:
    from physiosync.data.fold_windows import same_folds
    from physiosync.data.protocols import load_folds, save_folds

    if path.is_file():
        try:
            have = load_folds(path, cache_hash, meta)
        except DataFormatError:
            have = None
        if have is not None and same_folds(have, folds):
            return
        log.warning("%s: replacing folds.json that differs from the given folds", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_folds(folds, path, cache_hash, meta)


def stage_folds(ctx: RunContext, folds: list[Any] | None = None) -> None:
    ctx.folds = make_run_folds(ctx.cfg, ctx.data, ctx.run_dir, folds)


def select_folds(cfg: RunConfig, folds: list[Any]) -> list[Any]:
    """The folds to run: ``protocol.folds`` (indices) of ``folds``, or all of them.

    Raises:
        ConfigError: an index the protocol does not have.
    """
    wanted = cfg.protocol.folds
    if wanted is None:
        return list(folds)
    by_index = {f.index: f for f in folds}
    missing = [k for k in wanted if k not in by_index]
    if missing:
        raise ConfigError(f"protocol.folds: no fold(s) {missing}; this protocol has folds 0..{len(folds) - 1}")
    return [by_index[k] for k in wanted]


def selected_folds(ctx: RunContext) -> list[Any]:
    assert ctx.folds is not None
    return select_folds(ctx.cfg, ctx.folds)


# ModelConfig fields that do not change a pre-trained encoder (classifier and fusion only)
def pretrain_signature(cfg: RunConfig, cache_hash: str) -> str:
    """Hash of everything besides the split that determines a pre-training's result."""
    model = cfg.model.pretrain_view()
    pre = cfg.pretrain.model_dump(mode="json", exclude={"enabled", "keep_checkpoint"})
    doc = {"model": model, "pretrain": pre, "seed": cfg.seed, "precision": cfg.precision, "cache": cache_hash}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


def pretrain_dir(ctx: RunContext, window_s: float, key: str) -> Path:
    root = Path(ctx.cfg.pretrain_store) if ctx.cfg.pretrain_store is not None else ctx.run_dir / "pretrain"
    return root / f"{window_s:g}s-{key[:16]}-{pretrain_signature(ctx.cfg, ctx.cache.hash)}"



def _check_pretrain_subjects(cfg: RunConfig, fold: Any, split: Any, stimuli_unknown: bool = False) -> None:
    """Group pairing contrasts two halves of the training subjects: refuse a fold that leaves fewer than 2.

    Why here: it depends on the protocol *and* the number of subjects in the data (e.g. ``loso`` on 3
    subjects: 2 training subjects, one of them held out for validation), so the schema cannot see it.
    """
    n = len(split.train_subjects)
    if cfg.pretrain.pairing == "groups" and stimuli_unknown:
        raise ConfigError(
            "pretrain.pairing=groups contrasts subjects at the same stimulus moment, and these data do not say "
            "which stimulus each trial showed (the trials table has no 'stimulus' column): add one, or use "
            "pretrain.pairing=augviews or pretrain.enabled=false")
    if cfg.pretrain.pairing == "groups" and n < 2:
        held = f", {len(split.val_subjects)} more held out for validation" if len(split.val_subjects) else ""
        raise ConfigError(
            f"protocol {cfg.protocol.name!r}, fold {fold.index}: {n} pre-training subject{'s' * (n != 1)}{held}; "
            "pretrain.pairing=groups contrasts two halves of the training subjects and needs at least 2 "
            "(use more subjects, pretrain.pairing=augviews, or pretrain.enabled=false)")


def fold_encoder_states(ctx: RunContext, fold: Any) -> dict[tuple[str, float], Any] | None:
    from physiosync.training.pretrain import load_encoder_states

    if not ctx.cfg.pretrain.enabled:
        return None
    paths = []
    for w in ctx.resolutions:
        p = pretrain_dir(ctx, w, fold.pretrain[w].key()) / "encoders.pt"
        if not p.is_file():
            raise ConfigError(f"fold {fold.index}: pre-trained encoders missing ({p}); run the pretrain stage first")
        paths.append(p)
    return load_encoder_states(paths)


def finetune_dir(ctx: RunContext, label: str, fold_index: int) -> Path:
    return ctx.run_dir / "finetune" / label / f"fold{fold_index:02d}"



def write_fold_predictions(ctx: RunContext) -> None:
    """Turn each finished fold's ``predictions.npz`` into the report's prediction table (CSV)."""
    from physiosync.evaluation.metrics import majority_class
    from physiosync.evaluation.report import prediction_path, write_predictions
    from physiosync.training.finetune import load_predictions

    for label in ctx.cfg.labels:
        labels = ctx.table.label(label)
        for fold in selected_folds(ctx):
            src = finetune_dir(ctx, label, fold.index) / "predictions.npz"
            dst = prediction_path(ctx.run_dir, fold.index, label)
            if not src.is_file() or (dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime):
                continue
            pred = load_predictions(src)
            write_predictions(ctx.run_dir, fold.index, label, ctx.table.select(pred["rows"]), pred["proba"],
                              majority_class(labels[np.asarray(fold.train, dtype=np.int64)]))


def stage_evaluate(ctx: RunContext) -> dict[str, Any]:
    """Metrics of every label from the prediction tables (+ a label-permutation estimate of chance)."""
    from physiosync.evaluation.report import results_from_predictions

    write_fold_predictions(ctx)
    results = results_from_predictions(ctx.run_dir, ctx.cfg.protocol.name, official=ctx.cfg.protocol.official,
                                       history=load_histories(ctx), chance_seed=ctx.cfg.seed,
                                       tasks=ctx.cache.tasks)
    doc = {**results, "meta": run_meta(ctx)}
    write_json_atomic(ctx.run_dir / "results.json", doc)
    return results


def stage_report(ctx: RunContext, results: dict[str, Any] | None = None) -> Path:
    from physiosync.evaluation.report import write_report

    if results is None:
        results = stage_evaluate(ctx)
    write_report(ctx.run_dir, results, run_meta(ctx))
    return ctx.run_dir / "report.md"


def load_histories(ctx: RunContext) -> dict[str, Any]:
    """Pre-training and fine-tuning loss curves (per epoch) for the report's plots.

    Each series says which panel it belongs to (pre-training: its window length; fine-tuning: its label)
    and which folds it serves, so the plots can label curves with fold numbers instead of directory keys.
    A pre-training shared by several folds (equal splits) is one series listing all of them.
    """
    import re

    def curves(history: list[dict[str, Any]]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for part in ("train", "val"):
            vals = [h.get(part, {}).get("loss") for h in history]
            if any(v is not None for v in vals):
                out[f"{part} loss"] = [float("nan") if v is None else float(v) for v in vals]
        return out

    pre: dict[str, dict[str, Any]] = {}
    for fold in selected_folds(ctx) if ctx.cfg.pretrain.enabled else []:
        for w in ctx.resolutions:
            p = pretrain_dir(ctx, w, fold.pretrain[w].key()) / "history.json"
            if not p.is_file():
                continue
            if p.parent.name in pre:
                pre[p.parent.name]["folds"].append(int(fold.index))
            else:
                pre[p.parent.name] = {"panel": f"{w:g} s windows", "window_s": float(w), "folds": [int(fold.index)],
                                      "curves": curves(json.loads(p.read_text()))}
    fine: dict[str, dict[str, Any]] = {}
    for p in sorted((ctx.run_dir / "finetune").glob("*/fold*/done.json")):
        m = re.fullmatch(r"fold(\d+)", p.parent.name)
        fine[f"{p.parent.parent.name}/{p.parent.name}"] = {
            "panel": p.parent.parent.name, "folds": [int(m.group(1))] if m else [],
            "curves": curves(json.loads(p.read_text()).get("history", [])),
        }
    return {"pretrain": pre, "finetune": fine}


def dataset_name(cfg: RunConfig) -> str:
    """The dataset's own name, its facts' ``name``: for own recordings the ``dataset.yaml``'s, not the reader's."""
    from physiosync.data.readers import facts_of

    facts = facts_of(cfg.dataset, required=False)
    return facts.name if facts is not None else cfg.dataset.name


def run_meta(ctx: RunContext) -> dict[str, Any]:
    """Facts about the run that every report states next to the numbers."""
    cfg = ctx.cfg
    return {
        "run_name": cfg.name,
        "run_dir": str(ctx.run_dir),
        "dataset": cfg.dataset.name,
        "dataset_name": dataset_name(cfg),
        "data_origin": cfg.dataset.origin,
        "data_dir": str(cfg.dataset.data_dir),
        "preset": cfg.preset,
        "seed": cfg.seed,
        "device": str(ctx.device),
        "precision": cfg.precision,
        "cache_hash": ctx.cache.hash if ctx.cache is not None else None,
        "subjects": list(ctx.cache.subjects) if ctx.cache is not None else [],
        "window_s": float(ctx.table.window_s) if ctx.table is not None else None,
        "resolutions": list(ctx.resolutions),
        "pretrain_enabled": cfg.pretrain.enabled,
        "pairing": cfg.pretrain.pairing,
        "fusion": cfg.model.fusion,
        "pretrain_epochs": cfg.pretrain.epochs,
        "finetune_epochs": cfg.finetune.epochs,
    }



# --------------------------------------------------------------------------------------------------
# entry point


def open_run(cfg: RunConfig, folds: list[Any] | None = None, progress: bool = True,
             run_dir: Path | None = None) -> RunContext:
    """``prepare`` of the job graph: start the run, build or reuse the cache, make or load the folds.

    Runs in the driver (the folds decide which jobs exist). Sets the process up as every run always did
    (threads, global seeds, CPU runtime).
    """
    from physiosync.training.runtime import seed_everything, set_threads, tune_cpu_runtime

    set_threads(cfg.n_threads)
    seed_everything(cfg.seed)
    cfg, device = start_run(cfg, run_dir)
    ctx = RunContext(cfg=cfg, run_dir=run_dir_of(cfg) if run_dir is None else Path(run_dir), device=device)
    if ctx.device.type == "cpu":
        tune_cpu_runtime()  # reuse large per-step buffers, flush denormals (runtime docstrings)
    stage_prepare(ctx, progress=progress)
    stage_folds(ctx, folds)
    return ctx


def finish_run(ctx: RunContext, stages: tuple[str, ...] = ("evaluate", "report")) -> dict[str, Any]:
    """The ``report`` job of a run: evaluate the prediction tables and write the report (driver side)."""
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for stage in ("evaluate", "report"):
        if stage not in stages:
            continue
        tic = time.perf_counter()
        if stage == "evaluate":
            results = stage_evaluate(ctx)
        else:
            results.setdefault("report_path", str(stage_report(ctx, results or None)))
        timings[stage] = time.perf_counter() - tic
    results["timings"] = timings
    return results


def run_pipeline(
    cfg: RunConfig,
    stages: tuple[str, ...] = STAGES,
    progress: bool = True,
    folds: list[Any] | None = None,
    executor: Any = None,
) -> dict[str, Any]:
    """Run the given stages of a run (all by default); returns results when ``evaluate`` ran.

    Stages after ``prepare`` and ``folds`` need those two, so they always run (cheap when cached). The
    pre-trainings and fine-tunings are jobs (:mod:`physiosync.experiments.jobs`) run by ``executor``
    (default: ``cfg.executor``; ``local`` = in this process, in the order the stages always ran). With
    ``cfg.seeds`` the whole run is repeated per seed (:func:`physiosync.experiments.seeds.run_seeds`).

    Args:
        folds: Use these folds (rows of the run's fine-tuning table) instead of drawing the protocol's:
            see :func:`make_run_folds`. ``compare`` runs its PhysioSync rows on its own folds this way.
        executor: An executor object or an :class:`~physiosync.config.ExecutorConfig`; None = ``cfg.executor``.
    """
    from physiosync.experiments.executors import make_executor
    from physiosync.experiments.jobs import JobGraph, add_run_jobs

    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; expected some of {list(STAGES)}")
    if cfg.seeds is not None:
        if folds is not None:
            raise ConfigError("seeds: a run over several seeds draws its own folds per seed; given folds need one seed")
        from physiosync.experiments.seeds import run_seeds

        return run_seeds(cfg, stages=stages, progress=progress, executor=executor)
    t0 = time.perf_counter()
    ctx = open_run(cfg, folds, progress=progress)
    graph = JobGraph(ctx.run_dir / "logs")
    add_run_jobs(graph, ctx, stages=stages)
    make_executor(executor, ctx.cfg).run(graph, progress=progress)
    timings: dict[str, float] = {}
    for stage in ("pretrain", "finetune"):
        if stage in stages:
            timings[stage] = sum((j.result or {}).get("seconds", 0.0) for j in graph if j.kind == stage)
    results = finish_run(ctx, stages)
    timings.update(results.pop("timings"))
    timings["total"] = time.perf_counter() - t0
    results["timings"] = timings
    results["run_dir"] = str(ctx.run_dir)
    return results
