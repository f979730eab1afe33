"""Command ``compare``: baselines and PhysioSync ablations under one protocol and one set of folds.

A PhysioSync number means little on its own: evaluation-protocols.md §4 asks that it clear the majority
class and a differential-entropy (DE) + linear row *on the same folds*, and that every component of the
method (pre-training, the peripheral modality, each contrastive term, each resolution, the confidence
weights) be shown to matter by removing it. This command runs all of those rows against one cache and one
``folds.json`` and reports them side by side with a paired test against the full method.

Layout (``runs_dir/<name>-compare/``)::

    config.yaml          the resolved configuration (a later call with another config is refused)
    folds.json           the protocol's folds, made once; every row uses exactly these
    rows/<row>/          one directory per row: predictions/predictions_fold<k>_<label>.csv, results.json
                         (PhysioSync rows are ordinary run directories: config.yaml, folds.json, finetune/...)
                         (the eegnet row trains resumably in train/<label>/foldNN/: checkpoint.pt, eegnet.pt)
    pretrain/            pre-trainings shared by the PhysioSync rows (keyed by split + pre-training config,
                         so e.g. ``eeg-only`` and ``no-confidence`` reuse the ``physiosync`` encoders)
    comparison.md, comparison.csv, comparison.json, comparison.png

Rows (fixed names, run in this order; ``--only`` picks a subset):

    majority            DummyClassifier(most_frequent) fitted on each fold's training rows
    de-logreg           DE per EEG channel and band + StandardScaler + LogisticRegression
    de-svm              the same features + StandardScaler + RBF-SVM
    bandpower-logreg    log Welch band power + StandardScaler + LogisticRegression
    de-logreg+pps       DE + peripheral features (GSR on DEAP, ECG heart rate/HRV on DREAMER) + LogReg
    eegnet              EEGNet-8,2 on the raw EEG windows (epochs/batch size/lr from ``finetune``)
    physiosync          the full method: the pipeline with the configuration as given
    no-pretrain         pretrain.enabled=false (same encoders, supervised only)
    eeg-only            model.fusion=eeg-only (peripheral encoders dropped from the classifier)
    no-cmca             pretrain.cross_modal=false (no cross-modal contrastive terms)
    no-temporal         pretrain.temporal=false (no inter-subject temporal contrastive terms)
    short-only          model.resolutions=[shortest window]
    long-only           model.resolutions=[longest window]
    no-confidence       model.confidence_weighting=false

Baseline rows compute features on the fine-tuning windows (the longest resolution) and index them with the
comparison's fold rows directly. PhysioSync rows get the comparison's folds written into their run
directory before the pipeline starts, so the pipeline reuses them instead of drawing its own. The one row
whose fine-tuning table differs is ``short-only`` (its windows are the short ones): its folds are the
comparison's folds expanded to the short windows inside each long window (the same trials, subjects and
seconds of signal; contract 2: 5 s window ``w`` = 1 s windows ``5w .. 5w+4``), and its metrics are per
short window. After every row the test windows of its prediction tables are checked against the
comparison's folds; any difference is an error. ``short-only`` and ``long-only`` are skipped (and the
report says so) when the configuration has a single resolution (DREAMER's default).

Resuming: a row is finished when its completion marker — the last file it writes: ``results.json`` for a
baseline row, ``report.md`` for a PhysioSync row — and its prediction tables for every requested fold and
label exist; a finished row is not run again, an unfinished PhysioSync row resumes through the pipeline's
own checkpoints. Stale temporary files of killed processes under the comparison directory are removed
when it starts (:func:`physiosync.atomic.clean_stale_temps`).

Paired test: for each row and label, ``scipy.stats.wilcoxon`` on per-fold accuracy against the
``physiosync`` row, paired by fold; with fewer than 6 folds (too few pairs for the signed-rank test to
reach p < 0.05) the pairs are per-subject accuracies instead, and the report names the unit.

This module is the orchestration only (rows, their order, resume). It reaches the pipeline through its
public API (:mod:`physiosync.experiments.pipeline`: ``start_run``, ``prepare``, ``make_run_folds``,
``open_run(cfg, folds=...)`` + the run's jobs from :func:`physiosync.experiments.jobs.add_run_jobs`); the folds at another window length are
:mod:`physiosync.data.fold_windows`, the statistics :mod:`physiosync.evaluation.statistics`, the outputs
:mod:`physiosync.evaluation.comparison`, the command line :mod:`physiosync.cli.compare`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from physiosync.atomic import write_json_atomic
from physiosync.config import RunConfig, deep_merge, resolve_config, validate_config
from physiosync.data.fold_windows import folds_at_window, same_folds
from physiosync.data.table import WindowTable
from physiosync.errors import ConfigError, DataFormatError

log = logging.getLogger("physiosync")

COMPARISON_FORMAT_VERSION = 1
__all__ = ["ROWS", "Comparison", "compare_dir_of", "open_comparison", "run_compare"]


@dataclass(frozen=True)
class BaselineRow:
    """A row fitted outside the PhysioSync pipeline.

    Attributes:
        name: Row name.
        features: ``de`` / ``bandpower`` (hand-crafted), ``raw`` (EEG windows, EEGNet), ``none`` (majority).
        classifier: ``majority``, ``logreg``, ``svm-rbf`` (sklearn pipelines) or ``eegnet``.
        peripheral: Append GSR/ECG features (needs a peripheral modality).
        description: One line for the report.
    """

    name: str
    features: Literal["de", "bandpower", "raw", "none"]
    classifier: str
    peripheral: bool = False
    description: str = ""


@dataclass(frozen=True)
class PipelineRow:
    """A PhysioSync row: the pipeline with a config overlay (``overlay(shortest, longest)`` -> dict)."""

    name: str
    overlay: Callable[[float, float], dict[str, Any]]
    description: str = ""
    needs_two_resolutions: bool = False


ROWS: dict[str, BaselineRow | PipelineRow] = {r.name: r for r in (
    BaselineRow("majority", "none", "majority", description="training-majority class (DummyClassifier)"),
    BaselineRow("de-logreg", "de", "logreg", description="DE features + StandardScaler + LogisticRegression"),
    BaselineRow("de-svm", "de", "svm-rbf", description="DE features + StandardScaler + RBF-SVM"),
    BaselineRow("bandpower-logreg", "bandpower", "logreg",
                description="log band power + StandardScaler + LogisticRegression"),
    BaselineRow("de-logreg+pps", "de", "logreg", peripheral=True,
                description="DE + peripheral (GSR / ECG HR, HRV) features + StandardScaler + LogisticRegression"),
    BaselineRow("eegnet", "raw", "eegnet", description="EEGNet-8,2 on raw EEG windows (finetune epochs/batch/lr)"),
    PipelineRow("physiosync", lambda lo, hi: {}, "the full method, configuration as given"),
    PipelineRow("no-pretrain", lambda lo, hi: {"pretrain": {"enabled": False}},
                "pretrain.enabled=false: same encoders, supervised fine-tuning only"),
    PipelineRow("eeg-only", lambda lo, hi: {"model": {"fusion": "eeg-only"}},
                "model.fusion=eeg-only: the classifier sees EEG features only"),
    PipelineRow("no-cmca", lambda lo, hi: {"pretrain": {"cross_modal": False}},
                "pretrain.cross_modal=false: no EEG↔peripheral contrastive alignment (CM-CA)"),
    PipelineRow("no-temporal", lambda lo, hi: {"pretrain": {"temporal": False}},
                "pretrain.temporal=false: no inter-subject temporal contrastive terms"),
    PipelineRow("short-only", lambda lo, hi: {"model": {"resolutions": [lo]}},
                "model.resolutions=[shortest]: only the short windows", needs_two_resolutions=True),
    PipelineRow("long-only", lambda lo, hi: {"model": {"resolutions": [hi]}},
                "model.resolutions=[longest]: only the long windows", needs_two_resolutions=True),
    PipelineRow("no-confidence", lambda lo, hi: {"model": {"confidence_weighting": False}},
                "model.confidence_weighting=false: plain (unweighted) hierarchical fusion"),
)}
REFERENCE_ROW = "physiosync"

# --------------------------------------------------------------------------------------------------
# the comparison


@dataclass
class Comparison:
    """State shared by the rows of one comparison."""

    cfg: RunConfig
    dir: Path
    cache: Any
    table: WindowTable  # fine-tuning (longest-window) table; fold rows index it
    resolutions: tuple[float, ...]  # ascending
    folds: list[Any]  # every fold of the protocol
    selected: list[Any]  # the folds to run (protocol.folds)
    device: Any = None
    _features: dict[tuple[str, bool], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def feature_rows(self) -> np.ndarray:
        """Table rows some selected fold trains or tests on (validation rows are not used here)."""
        return np.unique(np.concatenate([np.concatenate([f.train, f.test]) for f in self.selected]))

    def features(self, kind: str, peripheral: bool) -> tuple[np.ndarray, np.ndarray]:
        """(features, rows), extracted once per kind for all rows that need them.

        Shape: features (n_rows, n_features); rows (n_rows,) indices into ``table``.
        """
        key = (kind, peripheral)
        if key not in self._features:
            from physiosync.baselines.features import extract_features

            rows = self.feature_rows()
            if kind == "none":
                x = np.zeros((len(rows), 1))
            else:
                tic = time.perf_counter()
                x = extract_features(self.cache, self.table.window_s, rows, kind=kind, peripheral=peripheral)
                log.info("%s features%s: %s in %.1f s", kind, " + peripheral" if peripheral else "", x.shape,
                         time.perf_counter() - tic)
            self._features[key] = (x, rows)
        return self._features[key]


def compare_dir_of(cfg: RunConfig) -> Path:
    return Path(cfg.runs_dir) / f"{cfg.name}-compare"


def open_comparison(cfg: RunConfig, progress: bool = True, cdir: Path | None = None) -> Comparison:
    """Prepare the cache once and make (or reload) the comparison's folds in ``compare_dir/folds.json``.

    The comparison directory is opened like a run directory (:func:`physiosync.experiments.pipeline.start_run`):
    the config is resolved first, so baseline rows, PhysioSync rows and the saved ``config.yaml`` all see the
    same window lengths and dataset defaults (on DREAMER: 1 s only) and the same precision; an unusable
    device or a missing data directory is refused before anything is written; another configuration in
    the same directory is refused; stale temporary files of killed rows are removed.
    """
    from physiosync.experiments.pipeline import make_run_folds, prepare, select_folds, start_run

    cdir = compare_dir_of(cfg) if cdir is None else Path(cdir)
    cfg, device = start_run(cfg, cdir)
    data = prepare(cfg, progress=progress)
    folds = make_run_folds(cfg, data, cdir)  # the pipeline's own folds logic, so the rows' copies match
    return Comparison(cfg=cfg, dir=cdir, cache=data.cache, table=data.table, resolutions=data.resolutions,
                      folds=list(folds), selected=select_folds(cfg, folds), device=device)


def row_dir(comp: Comparison, row: str) -> Path:
    return comp.dir / "rows" / row


def skip_reason(comp: Comparison, row: str) -> str | None:
    """Why a requested row cannot run on this configuration (None = it can)."""
    spec = ROWS[row]
    if isinstance(spec, PipelineRow) and spec.needs_two_resolutions and len(comp.resolutions) < 2:
        only = ", ".join(f"{w:g} s" for w in comp.resolutions)
        return f"skipped: a single resolution ({only}), so {row} would be the physiosync row"
    if isinstance(spec, BaselineRow) and spec.peripheral and comp.cache.contract.peripheral is None:
        return "skipped: the dataset has no peripheral modality"
    return None


def row_is_finished(comp: Comparison, row: str) -> bool:
    """A row is done when its completion marker and every requested (fold, label) prediction table exist.

    The marker is the last file the row writes: ``results.json`` for a baseline row; for a PhysioSync row
    ``report.md`` (its ``results.json`` is written by ``evaluate``, before the report, so a kill during the
    report would otherwise leave a row that is never completed).
    """
    from physiosync.evaluation.report import prediction_path

    d = row_dir(comp, row)
    # results.json is what the comparison reads, so it must be there too (e.g. not deleted by hand)
    markers = ("results.json", "report.md") if isinstance(ROWS[row], PipelineRow) else ("results.json",)
    return all((d / m).is_file() for m in markers) and all(
        prediction_path(d, f.index, label).is_file() for f in comp.selected for label in comp.cfg.labels
    )


def run_compare(cfg: RunConfig, rows: list[str] | None = None, progress: bool = True,
                executor: Any = None) -> dict[str, Any]:
    """Run (or resume) the requested rows and write the comparison files; returns ``comparison.json``'s doc.

    The rows are jobs (:func:`add_compare_jobs`) run by ``executor`` (default ``cfg.executor``). With
    ``cfg.seeds`` the comparison is repeated per seed and summarised over seeds
    (:func:`physiosync.experiments.seeds.run_compare_seeds`).
    """
    rows = list(ROWS) if rows is None else rows
    bad = [r for r in rows if r not in ROWS]
    if bad:
        raise ConfigError(f"unknown row(s) {bad}; valid rows: {', '.join(ROWS)}")
    if cfg.seeds is not None:
        from physiosync.experiments.seeds import run_compare_seeds

        return run_compare_seeds(cfg, rows, progress=progress, executor=executor)
    from physiosync.experiments.executors import make_executor
    from physiosync.experiments.jobs import JobGraph

    comp = open_comparison(cfg, progress=progress)
    graph = JobGraph(comp.dir / "logs")
    out: dict[str, Any] = {}
    add_compare_jobs(graph, comp, rows, out, progress=progress)
    make_executor(executor, comp.cfg).run(graph, progress=progress)
    return out["doc"]


def add_compare_jobs(graph: Any, comp: Comparison, rows: list[str], out: dict[str, Any], progress: bool = True,
                     group: str = "") -> str:
    """Add a comparison's jobs: per baseline row, fold and task; the PhysioSync rows' runs; the tables.

    The order is the order ``compare`` always ran its rows in (canonical row order; within a baseline row
    task by task, fold by fold). Finished rows (:func:`row_is_finished`) add no job. The last job (on the
    driver) checks every row's folds and writes the comparison files; its doc goes to ``out["doc"]``.

    Returns:
        The id of the comparison's report job.
    """
    from physiosync.experiments.jobs import Job, add_run_jobs, cfg_doc, register_context
    from physiosync.experiments.pipeline import finish_run, open_run

    register_context("compare", comp.dir, comp)
    base = {"cfg": cfg_doc(comp.cfg), "compare_dir": str(comp.dir), "cache": str(comp.cache.path)}
    status: dict[str, dict[str, Any]] = {}
    row_jobs: dict[str, list[str]] = {}
    all_ids: list[str] = []
    for row in rows:
        reason = skip_reason(comp, row)
        if reason:
            log.warning("%s: %s", row, reason)
            status[row] = {"status": "skipped", "note": reason}
            continue
        if row_is_finished(comp, row):
            log.info("%s: finished earlier, not re-run", row)
            status[row] = {"status": "resumed", "seconds": None}
            continue
        status[row] = {"status": "ran", "seconds": None}
        spec = ROWS[row]
        ids: list[str] = []
        if isinstance(spec, BaselineRow):
            d = row_dir(comp, row)
            feat_id, feat_path = None, None
            if spec.classifier != "eegnet" and spec.features != "none":
                feat_path = features_path(comp, spec.features, spec.peripheral)
                feat_id = graph.add(Job(
                    id=f"features:{feat_path}", kind="features", group=group or row, outputs=(str(feat_path),),
                    args={**base, "features": spec.features, "peripheral": spec.peripheral, "path": str(feat_path)},
                )).id
                ids.append(feat_id)
            for label in comp.cfg.labels:
                for fold in comp.selected:
                    from physiosync.evaluation.report import prediction_path

                    ckpt = d / "train" / label / f"fold{fold.index:02d}" / "checkpoint.pt"
                    tidy = (str(ckpt),) if spec.classifier == "eegnet" and not comp.cfg.finetune.keep_checkpoint else ()
                    ids.append(graph.add(Job(
                        id=f"baseline:{d}/{label}/fold{fold.index:02d}", kind="baseline", group=group or row,
                        deps=(feat_id,) if feat_id else (), outputs=(str(prediction_path(d, fold.index, label)),),
                        absent=tidy,
                        args={**base, "row": row, "label": label, "fold": int(fold.index),
                              "features_path": None if feat_path is None else str(feat_path)},
                    )).id)
            ids.append(graph.add(Job(id=f"report:{d}", kind="report", group=group or row, args={},
                                     outputs=(str(d / "results.json"),), deps=tuple(ids), driver=True,
                                     local_fn=lambda row=row: finish_baseline_row(comp, row))).id)
        else:
            log.info("%s: opening the row's run", row)
            row_cfg = row_config(comp, row)
            ctx = open_run(row_cfg, folds=row_folds(comp, row_cfg), progress=progress)
            ids = add_run_jobs(graph, ctx, group=group or row, report=lambda ctx=ctx: finish_run(ctx))
        row_jobs[row] = ids
        all_ids += ids

    def report() -> None:
        from physiosync.evaluation.comparison import write_comparison

        for row in rows:
            if status[row]["status"] == "skipped":
                continue
            if status[row]["status"] == "ran":
                own = [graph.jobs[i] for i in row_jobs[row] if graph.jobs[i].group == (group or row)]
                status[row]["seconds"] = round(sum((j.result or {}).get("seconds", 0.0) for j in own), 2)
            status[row]["folds_check"] = check_row_folds(comp, row)
        doc = build_comparison(comp, rows, status)
        write_comparison(comp.dir, doc)
        out["doc"] = doc

    return graph.add(Job(id=f"report:{comp.dir}", kind="report", group=group, args={}, outputs=(),
                         deps=tuple(dict.fromkeys(all_ids)), driver=True, local_fn=report)).id


def features_path(comp: Comparison, kind: str, peripheral: bool) -> Path:
    """Where the features job of a comparison keeps one kind (keyed by the rows it covers)."""
    import hashlib

    rows = comp.feature_rows()
    digest = hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest()[:12]
    return comp.dir / "features" / f"{kind}{'+pps' if peripheral else ''}-{digest}.npz"


# --------------------------------------------------------------------------------------------------
# baseline rows


def _eegnet_fold(comp: Comparison, label: str, labels: np.ndarray, n_classes: int, progress: bool,
                 train_dir: Path, fold: Any) -> Any:
    """EEGNet on one fold, trained resumably in ``train_dir/foldNN/`` (the shared loop), predicting its test rows."""
    from physiosync.baselines.classical import FoldPrediction
    from physiosync.baselines.eegnet import predict_proba, train_eegnet
    from physiosync.data.batches import TableWindows

    ft = comp.cfg.finetune
    eeg = comp.cache.contract.eeg
    x_train = TableWindows(comp.cache, eeg.name, comp.table, fold.train)
    model = train_eegnet(x_train, labels[fold.train], epochs=ft.epochs, batch_size=ft.batch_size, lr=ft.lr,
                         seed=comp.cfg.seed, device=str(comp.device), n_classes=n_classes, sfreq=eeg.sfreq,
                         out_dir=train_dir / f"fold{fold.index:02d}", progress=progress,
                         meta={"cache_hash": comp.cache.hash, "label": label, "fold": int(fold.index)},
                         keep_checkpoint=ft.keep_checkpoint)
    proba = predict_proba(model, TableWindows(comp.cache, eeg.name, comp.table, fold.test))
    proba = proba[:, :n_classes]
    if progress:
        log.info("eegnet: fold %d done (last-epoch loss %.3f)", fold.index, model.train_losses[-1])
    return FoldPrediction(fold=int(fold.index), rows=np.asarray(fold.test), y_true=labels[fold.test],
                          y_pred=proba.argmax(axis=1), proba=proba)


def baseline_fold(comp: Comparison, row: str, label: str, fold: Any, features_file: str | Path | None = None,
                  progress: bool = True) -> str:
    """One job of a baseline row: fit on one fold and task, write its prediction table (the marker, last).

    Every fold gets a fresh, seeded estimator (:func:`physiosync.baselines.classical.run_classical`,
    EEGNet seeded by ``seed``), so a fold computed alone equals the same fold computed in a loop.

    Returns:
        The fold's note (e.g. a one-class training set), also kept in ``notes/<task>_fold<k>.txt``.
    """
    from physiosync.atomic import write_text_atomic
    from physiosync.baselines.classical import run_classical
    from physiosync.evaluation.metrics import majority_class
    from physiosync.evaluation.report import write_predictions

    spec = ROWS[row]
    assert isinstance(spec, BaselineRow)
    d = row_dir(comp, row)
    y = comp.table.label(label)
    k = comp.cache.task(label).n_classes
    if spec.classifier == "eegnet":
        pred = _eegnet_fold(comp, label, y, k, progress, d / "train" / label, fold)
    else:
        if features_file is not None:
            from physiosync.experiments.jobs import load_features

            x, rows = load_features(comp, spec.features, spec.peripheral, str(features_file))
        else:
            x, rows = comp.features(spec.features, spec.peripheral)
        pred = run_classical(x, y[rows], [fold], spec.classifier, seed=comp.cfg.seed, rows=rows, n_classes=k)[0]
    note_path = d / "notes" / f"{label}_fold{fold.index}.txt"
    if pred.note:
        note_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(note_path, pred.note)
    else:
        note_path.unlink(missing_ok=True)
    write_predictions(d, fold.index, label, comp.table.select(pred.rows), pred.proba, majority_class(y[fold.train]))
    return pred.note


def finish_baseline_row(comp: Comparison, row: str) -> Path:
    """The report job of a baseline row: its ``results.json`` (the row's marker) from its prediction tables."""
    spec = ROWS[row]
    d = row_dir(comp, row)
    notes = []
    for label in comp.cfg.labels:
        for fold in comp.selected:
            p = d / "notes" / f"{label}_fold{fold.index}.txt"
            if p.is_file():
                notes.append(f"{label} fold {fold.index}: {p.read_text()}")
    blocks = summarise_row(comp, row)
    results = _make_results(comp, blocks)
    meta = {"row": row, "description": spec.description, "folds": [f.index for f in comp.selected], "notes": notes}
    write_json_atomic(d / "results.json", {**results, "meta": meta})
    return d




# --------------------------------------------------------------------------------------------------
# PhysioSync rows


def row_config(comp: Comparison, row: str) -> RunConfig:
    """The row's run config: the comparison's, plus the row's overlay, in ``compare_dir/rows/<row>``."""
    spec = ROWS[row]
    assert isinstance(spec, PipelineRow)
    data = deep_merge(comp.cfg.model_dump(mode="json"), spec.overlay(min(comp.resolutions), max(comp.resolutions)))
    data["name"] = row
    data["runs_dir"] = str(comp.dir / "rows")
    if comp.cfg.pretrain_store is None:
        data["pretrain_store"] = str(comp.dir / "pretrain")
    return resolve_config(validate_config(data, f"compare row {row!r}"))


def row_folds(comp: Comparison, row_cfg: RunConfig) -> list[Any]:
    """The comparison's folds as the row's pipeline must see them (same trials; only its resolutions)."""
    assert row_cfg.model.resolutions is not None  # row_config derives from the resolved comparison config
    res = tuple(sorted(row_cfg.model.resolutions))
    return folds_at_window(comp.folds, comp.table, comp.cache.windows(max(res)), res)




# --------------------------------------------------------------------------------------------------
# checks and metrics


def check_row_folds(comp: Comparison, row: str) -> str:
    """Verify that a row's test predictions are exactly the comparison's test windows, fold by fold.

    Returns a short statement for the report; raises ``DataFormatError`` on any difference.
    """
    from physiosync.evaluation.report import prediction_path, read_predictions

    d = row_dir(comp, row)
    t = comp.table
    expanded = False
    for fold in comp.selected:
        want = np.stack([t.subject[fold.test], t.trial[fold.test], t.window[fold.test]], axis=1)
        for label in comp.cfg.labels:
            path = prediction_path(d, fold.index, label)
            p = read_predictions(path)
            have = np.stack([p["subject"], p["trial"], p["window"]], axis=1)
            if len(have) != len(want):  # short-only: r short windows per long window
                r = len(have) // max(1, len(want))
                if r * len(want) != len(have) or r < 2:
                    raise DataFormatError(path, "rows", f"{len(have)} test windows",
                                          f"{len(want)} (the comparison's fold {fold.index})")
                have = np.unique(np.stack([p["subject"], p["trial"], p["window"] // r], axis=1), axis=0)
                expanded = True
            have = have[np.lexsort(have.T[::-1])]
            if not np.array_equal(have, want[np.lexsort(want.T[::-1])]):
                raise DataFormatError(path, "subject/trial/window", "test windows that differ",
                                      f"the comparison's fold {fold.index} test rows ({comp.dir / 'folds.json'})")
    if isinstance(ROWS[row], PipelineRow):
        from physiosync.data.protocols import load_folds

        rfolds = load_folds(row_dir(comp, row) / "folds.json", comp.cache.hash)
        res = tuple(sorted(rfolds[0].pretrain)) if rfolds else comp.resolutions
        want_folds = folds_at_window(comp.folds, comp.table, comp.cache.windows(max(res)), res)
        if not same_folds(rfolds, want_folds):
            raise DataFormatError(row_dir(comp, row) / "folds.json", "folds", "folds that differ",
                                  f"the comparison's folds ({comp.dir / 'folds.json'})")
    return "identical test windows" + (" (short windows inside the same long windows)" if expanded else "")


def summarise_row(comp: Comparison, row: str) -> dict[str, dict[str, Any]]:
    """label -> ``report.summarise_label`` block from the row's prediction tables of the selected folds.

    Each block carries the row's permutation estimate of chance (``chance``), computed exactly as a run's
    report computes it (same function, the configuration's seed).
    """
    from physiosync.evaluation.report import prediction_path, read_predictions, summarise_label

    d = row_dir(comp, row)
    return {label: summarise_label([read_predictions(prediction_path(d, f.index, label)) for f in comp.selected],
                                   comp.cache.task(label).n_classes, chance_seed=comp.cfg.seed,
                                   class_names=comp.cache.task(label).class_names) for label in comp.cfg.labels}


def _make_results(comp: Comparison, blocks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from physiosync.evaluation.report import make_results

    return make_results(comp.cfg.protocol.name, blocks, official=comp.cfg.protocol.official)


# --------------------------------------------------------------------------------------------------
# output


def build_comparison(comp: Comparison, rows: list[str], status: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``comparison.json`` document: per-row ``results``, the flat table, status and metadata."""
    from physiosync.data.protocols import LEAKY_PROTOCOLS, describe_protocol
    from physiosync.evaluation.comparison import comparison_table
    from physiosync.evaluation.statistics import MIN_FOLD_PAIRS
    from physiosync.experiments.pipeline import dataset_name

    ran = [r for r in rows if status[r]["status"] != "skipped"]
    results = {r: _make_results(comp, summarise_row(comp, r)) for r in ran}
    kinds = {r: "baseline" if isinstance(ROWS[r], BaselineRow) else ("physiosync" if r == REFERENCE_ROW else "ablation")
             for r in ran}
    table = comparison_table(results, kinds, REFERENCE_ROW)
    cfg = comp.cfg
    proto = cfg.protocol.name

    return {
        "format_version": COMPARISON_FORMAT_VERSION,
        "protocol": {"name": proto, "leaky": proto in LEAKY_PROTOCOLS, "official": cfg.protocol.official,
                     "description": describe_protocol(proto), "n_folds": len(comp.folds),
                     "folds_run": [f.index for f in comp.selected], "folds_file": str(comp.dir / "folds.json")},
        "ddof": 0,
        "paired_test": {"test": "scipy.stats.wilcoxon (two-sided signed-rank) on accuracy vs physiosync",
                        "pairs": f"folds; subjects when fewer than {MIN_FOLD_PAIRS} folds"},
        "rows": {r: {**status[r], "kind": "baseline" if isinstance(ROWS[r], BaselineRow) else "pipeline",
                     "description": ROWS[r].description, "dir": str(row_dir(comp, r))} for r in rows},
        "table": table,
        "results": results,
        "meta": {
            "compare_dir": str(comp.dir), "dataset": cfg.dataset.name, "dataset_name": dataset_name(cfg),
            "data_origin": cfg.dataset.origin,
            "preset": cfg.preset, "seed": cfg.seed, "device": str(comp.device), "precision": cfg.precision,
            "cache_hash": comp.cache.hash,
            "subjects": list(comp.cache.subjects), "window_s": float(comp.table.window_s),
            "resolutions": list(comp.resolutions), "labels": list(cfg.labels),
        },
    }
