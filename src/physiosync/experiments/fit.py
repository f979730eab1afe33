"""``physiosync fit``: one final model trained on all the data a config selects, written as a model bundle.

A protocol run (``physiosync run``) *estimates* how well the method generalises, by training one model per
fold and testing it on held-out data. ``fit`` trains the model you then *use*: one model on every window
of every selected subject and trial, with no test fold —

- pre-training (if ``pretrain.enabled``) on all subjects and all stimulus moments at every fused window
  length, with the config's pre-training settings;
- fine-tuning of every task in ``labels`` on all rows of the fine-tuning table.

No validation share is held out. Why: nothing in physiosync selects on validation (the reported and the
bundled model is always the last epoch, D26; there is no early stopping), so a validation share would only
produce a monitoring curve at the price of training data. The training-loss curves are kept in the bundle.
The ``protocol`` section of the config does not apply (it describes an evaluation) and ``val_fraction``
is not used.

Work directory: ``runs_dir/<name>-fit/`` — ``config.yaml`` (refusing another configuration, like a run
directory), ``folds.json`` (the one all-data "fold"), ``pretrain/`` and ``finetune/<task>/fold00/`` (each
resumable per epoch and skipped once finished, exactly as in a run, via the same stage code), then the
bundle (default ``runs_dir/<name>-fit/bundle``, see :mod:`physiosync.experiments.bundle`). Re-running the
same command after an interruption continues where it stopped and rewrites the bundle.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from physiosync.config import RunConfig

log = logging.getLogger("physiosync")

FIT_PROTOCOL = "fit"  # the protocol name of the all-data "fold" (folds.json of the fit directory)
MODEL_NAME = "model.pt"  # the fine-tuned weights finetune_fold writes for fit (next to done.json)


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` produced."""

    bundle: Path
    fit_dir: Path
    tasks: tuple[str, ...]


def fit_dir_of(cfg: RunConfig) -> Path:
    """``runs_dir/<name>-fit``: the fit's work directory (beside, never inside, a run of the same name)."""
    return Path(cfg.runs_dir) / f"{cfg.name}-fit"


def all_data_fold(data: Any) -> Any:
    """The one "fold" of a fit: every row trains, nothing is validated or tested.

    Pre-training splits: every stimulus moment × every subject at each fused window length.
    """
    from physiosync.data.protocols import Fold, PretrainSplit

    cache, table = data.cache, data.table
    subjects = np.arange(cache.n_subjects)
    none = np.zeros(0, np.int64)
    pretrain = {float(w): PretrainSplit(float(w), np.arange(cache.n_trials * cache.n_windows(w)), none, subjects,
                                        none)
                for w in data.resolutions}
    return Fold(index=0, protocol=FIT_PROTOCOL, leaky=False, train=np.arange(len(table)), val=none, test=none,
                pretrain=pretrain, train_subjects=table.subject, test_subjects=none)


def current_facts(ds: Any) -> Any:
    """The :class:`~physiosync.data.facts.DatasetFacts` the reader prepares ``ds`` with.

    The registry's ``facts_of`` (own recordings: the dataset file, channel patterns resolved) where the
    registry has it, else the shipped facts file of the dataset.
    """
    from physiosync.data import readers
    from physiosync.data.facts import dataset_facts

    facts_of = getattr(readers, "facts_of", None)
    if facts_of is not None:
        return facts_of(ds, resolve_channels=True)
    return dataset_facts(ds.name)


def recorded_spec(cache: Any, facts: Any) -> dict[str, dict[str, Any]]:
    """Per modality, the channel names and native rates of the training files.

    From the cache manifest (``recorded``, noted while the cache was built); a cache built before that
    was noted falls back to the dataset facts (names, and the rate where the facts fix one).
    """
    recorded = cache.manifest.get("recorded")
    if recorded:
        return {mod: {"ch_names": list(e["ch_names"]), "sfreq": [float(r) for r in e["sfreq"]]}
                for mod, e in recorded.items()}
    out = {}
    for mod, spec in facts.modalities.items():
        rate = getattr(spec, "sfreq", None)
        out[mod] = {"ch_names": list(spec.ch_names or []), "sfreq": [float(rate)] if rate else []}
    return out


def fit(cfg: RunConfig, out: str | Path | None = None, progress: bool = True, executor: Any = None) -> FitResult:
    """Train the final model of ``cfg`` on all its data and write the model bundle (module docstring).

    Args:
        out: The bundle directory; default ``runs_dir/<name>-fit/bundle``.
        executor: Where the pre-training and fine-tuning jobs run (as for :func:`physiosync.run_pipeline`):
            an executor, an :class:`~physiosync.config.ExecutorConfig`, or None = ``cfg.executor``.

    Returns:
        The bundle path, the work directory and the task names.

    Raises:
        ConfigError / DataFormatError: as :func:`physiosync.run_pipeline` (bad settings, bad data, a work
            directory made with another configuration), or ``out`` is an existing non-bundle path.
    """
    from physiosync.experiments.bundle import creation_info, task_entry, write_bundle
    from physiosync.experiments.executors import make_executor
    from physiosync.experiments.jobs import JobGraph, add_run_jobs
    from physiosync.experiments.pipeline import (
        RunContext,
        finetune_dir,
        load_histories,
        make_run_folds,
        prepare,
        start_run,
    )
    from physiosync.training.runtime import seed_everything, set_threads, tune_cpu_runtime

    set_threads(cfg.n_threads)
    seed_everything(cfg.seed)
    fit_dir = fit_dir_of(cfg)
    cfg, device = start_run(cfg, run_dir=fit_dir)
    if device.type == "cpu":
        tune_cpu_runtime()
    data = prepare(cfg, progress=progress)
    fold = all_data_fold(data)
    make_run_folds(cfg, data, fit_dir, folds=[fold])
    # the stages see only the all-data fold (protocol.folds selects among a protocol's folds: not here)
    stage_cfg = cfg.model_copy(update={"protocol": cfg.protocol.model_copy(update={"folds": None})})
    ctx = RunContext(cfg=stage_cfg, run_dir=fit_dir, cache=data.cache, table=data.table,
                     resolutions=data.resolutions, folds=[fold], device=device)
    # The same jobs as `run` (pre-trainings, then one fine-tuning per task on the all-data fold), on the
    # configured executor; each fine-tuning also saves its final weights for the bundle.
    for label in cfg.labels:
        d = finetune_dir(ctx, label, fold.index)
        if (d / "done.json").is_file() and not (d / MODEL_NAME).is_file():
            from physiosync.errors import DataFormatError

            raise DataFormatError(d / MODEL_NAME, "<file>", "missing next to a finished fine-tuning",
                                  "the fine-tuned weights fit saves", hint=f"delete {d} to fine-tune again")
    graph = JobGraph(fit_dir / "logs")
    add_run_jobs(graph, ctx, save_model=MODEL_NAME)
    make_executor(executor, stage_cfg).run(graph, progress=progress)
    weights: dict[str, Path] = {}
    finetune_history: dict[str, Any] = {}
    for label in cfg.labels:
        d = finetune_dir(ctx, label, fold.index)
        weights[label] = d / MODEL_NAME
        finetune_history[label] = json.loads((d / "done.json").read_text())["history"]

    cache = data.cache
    facts = current_facts(cfg.dataset)
    histories = load_histories(ctx)
    manifest = {
        "created": creation_info(device, cfg.precision),
        "data": {
            "contract": cache.contract.to_dict(),
            "recorded": recorded_spec(cache, facts),
            "sfreq": float(cache.sfreq),
            "n_samples": int(cache.n_samples),
            "trial_s": float(cache.n_samples) / float(cache.sfreq),
            "resolutions": [float(w) for w in data.resolutions],
            "window_s": float(data.table.window_s),
            "windows_per_trial": int(cache.n_windows(data.table.window_s)),
        },
        "preprocess": {"plan": cache.manifest.get("preprocess"), "config": cache.manifest.get("preprocess_config")},
        "facts": facts.model_dump(mode="json"),
        "training": {
            "dataset": cfg.dataset.name,
            "origin": cfg.dataset.origin,
            "data_dir": str(cfg.dataset.data_dir),
            "subjects": list(cache.subjects),
            "n_trials": int(cache.n_trials),
            "n_windows": int(len(data.table)),
            "cache_hash": cache.hash,
            "inputs": [{"file": Path(e["file"]).name, "sha256": e["sha256"]} for e in cache.manifest.get("inputs", [])],
            "pretrain": {"enabled": cfg.pretrain.enabled, "epochs": cfg.pretrain.epochs,
                         "pairing": cfg.pretrain.pairing,
                         "history": {k: v["curves"] for k, v in histories["pretrain"].items()}},
            "finetune": {"epochs": cfg.finetune.epochs,
                         "history": {k: [{"epoch": h["epoch"], "train": h.get("train")} for h in v]
                                     for k, v in finetune_history.items()}},
            "validation": "none: every row trains (nothing selects on validation; the last epoch is kept)",
        },
        "tasks": {label: task_entry(cache.task(label)) for label in cfg.labels},
    }
    bundle = write_bundle(fit_dir / "bundle" if out is None else Path(out), manifest, cfg, weights)
    log.info("model bundle: %s", bundle)
    return FitResult(bundle=bundle, fit_dir=fit_dir, tasks=tuple(cfg.labels))


__all__ = ["FitResult", "all_data_fold", "fit", "fit_dir_of"]
