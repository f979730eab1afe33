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
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from physiosync.atomic import atomic_path, write_json_atomic, write_text_atomic
from physiosync.config import RunConfig, deep_merge, load_config, resolve_config, validate_config
from physiosync.data.table import WindowTable
from physiosync.errors import ConfigError, DataFormatError

log = logging.getLogger("physiosync")

COMPARISON_FORMAT_VERSION = 1
MIN_FOLD_PAIRS = 6  # below this many folds the paired test uses subjects (n = 5 cannot reach p < 0.05)


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

CSV_COLUMNS = (
    "row", "label", "kind", "n_classes", "f1_kind",
    "accuracy_mean", "accuracy_std", "balanced_accuracy_mean", "balanced_accuracy_std",
    "f1_mean", "f1_std", "f1_macro_mean", "f1_macro_std",
    "trial_vote_accuracy_mean", "trial_vote_accuracy_std",
    "subject_accuracy_mean", "subject_accuracy_std",
    "subject_balanced_accuracy_mean", "subject_balanced_accuracy_std",
    "majority_accuracy_mean", "majority_accuracy_std", "chance_mean", "chance_std", "chance_p",
    "n_folds", "n_subjects", "ddof",
    "test_unit", "wilcoxon_statistic", "wilcoxon_p", "wilcoxon_n", "note",
)


# --------------------------------------------------------------------------------------------------
# command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None, help="YAML config (as for `physiosync run`)")
    p.add_argument("--preset", default=None, help="smoke | demo | cpu | paper (applied under the file)")
    p.add_argument("--only", default=None, metavar="ROW,ROW,...",
                   help=f"rows to run (default: all): {', '.join(ROWS)}")
    from physiosync.cli.run import shared_arguments

    shared_arguments(p)  # --set, --device, --precision, --quiet: the same as `physiosync run`


def parse_rows(text: str | None) -> list[str]:
    """Row names from ``--only`` (comma-separated), in the canonical order; None = every row.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or an empty list.
    """
    if text is None:
        return list(ROWS)
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in ROWS]
    if unknown or not wanted:
        what = f"unknown row(s) {', '.join(repr(u) for u in unknown)}" if unknown else "no rows given"
        raise ConfigError(f"--only: {what}; valid rows: {', '.join(ROWS)}")
    return [r for r in ROWS if r in wanted]


def run(args: argparse.Namespace) -> int:
    from physiosync.cli.run import _setup_logging, cli_overrides

    _setup_logging(args.quiet)
    rows = parse_rows(args.only)  # before any work: a typo should not cost a cache build
    cfg = load_config(args.config, overrides=cli_overrides(args), preset=args.preset)
    doc = run_compare(cfg, rows, progress=not args.quiet)
    print(format_comparison(doc))
    print(f"\ncomparison: {Path(doc['meta']['compare_dir']) / 'comparison.md'}")
    return 0


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


def open_comparison(cfg: RunConfig, progress: bool = True) -> Comparison:
    """Prepare the cache once and make (or reload) the comparison's folds in ``compare_dir/folds.json``.

    The config is resolved first (:func:`physiosync.config.resolve_config`): baseline rows, PhysioSync rows
    and the saved ``config.yaml`` all see the same window lengths and dataset defaults (on DREAMER: 1 s only).
    """
    from physiosync.atomic import clean_stale_temps
    from physiosync.experiments.pipeline import (
        RunContext,
        require_data_dir,
        resolve_run_precision,
        selected_folds,
        stage_folds,
        stage_prepare,
        write_run_config,
    )
    from physiosync.training.runtime import resolve_device

    cfg = resolve_config(cfg)
    cdir = compare_dir_of(cfg)
    # An unusable device or a missing data directory is refused before anything is written.
    device = resolve_device(cfg.device)
    cfg = resolve_run_precision(cfg, cdir, device)  # every row runs (and reports) the same precision
    require_data_dir(cfg)
    write_run_config(cfg, cdir)  # refuses a directory made with another configuration
    clean_stale_temps(cdir, recursive=True)  # leftovers of killed rows (stale ones only)
    ctx = RunContext(cfg=cfg, run_dir=cdir, device=device)
    stage_prepare(ctx, progress=progress)
    stage_folds(ctx)  # the pipeline's own folds logic: same meta, so the rows' copies are reusable
    return Comparison(cfg=cfg, dir=cdir, cache=ctx.cache, table=ctx.table, resolutions=tuple(ctx.resolutions),
                      folds=list(ctx.folds or []), selected=selected_folds(ctx), device=ctx.device)


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


def run_compare(cfg: RunConfig, rows: list[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the requested rows and write the comparison files; returns ``comparison.json``'s doc."""
    rows = list(ROWS) if rows is None else rows
    bad = [r for r in rows if r not in ROWS]
    if bad:
        raise ConfigError(f"unknown row(s) {bad}; valid rows: {', '.join(ROWS)}")
    comp = open_comparison(cfg, progress=progress)
    status: dict[str, dict[str, Any]] = {}
    for row in rows:
        reason = skip_reason(comp, row)
        if reason:
            log.warning("%s: %s", row, reason)
            status[row] = {"status": "skipped", "note": reason}
            continue
        if row_is_finished(comp, row):
            log.info("%s: finished earlier, not re-run", row)
            status[row] = {"status": "resumed", "seconds": None}
        else:
            log.info("%s: running", row)
            tic = time.perf_counter()
            if isinstance(ROWS[row], BaselineRow):
                run_baseline_row(comp, row, progress=progress)
            else:
                run_pipeline_row(comp, row, progress=progress)
            status[row] = {"status": "ran", "seconds": round(time.perf_counter() - tic, 2)}
        status[row]["folds_check"] = check_row_folds(comp, row)
    doc = build_comparison(comp, rows, status)
    write_comparison(comp.dir, doc)
    return doc


# --------------------------------------------------------------------------------------------------
# baseline rows


class TableWindows:
    """Array-like view of the cache windows of some table rows, read on demand (never all in memory).

    What ``train_eegnet``/``predict_proba`` need from ``x``: ``ndim``, ``shape``, ``len`` and indexing by
    an index array or slice. Full DEAP at 5 s is 1.3 GB of EEG; reading per batch keeps RSS at one batch.

    Shape: indexing returns (B, n_chans, n_times) float32.
    """

    def __init__(self, cache: Any, modality: str, table: WindowTable, rows: np.ndarray) -> None:
        self.cache, self.modality, self.table = cache, modality, table
        self.rows = np.asarray(rows, dtype=np.int64)
        spec = cache.contract.modality(modality)
        self.shape = (len(self.rows), spec.n_chans, spec.n_times(table.window_s))
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: Any) -> np.ndarray:
        r = self.rows[idx]
        t = self.table
        return self.cache.get_windows(self.modality, t.window_s, t.subject[r], t.trial[r], t.window[r])


def _eegnet_predictions(comp: Comparison, labels: np.ndarray, n_classes: int, progress: bool) -> list[Any]:
    from physiosync.baselines.classical import FoldPrediction
    from physiosync.baselines.eegnet import predict_proba, train_eegnet

    ft = comp.cfg.finetune
    eeg = comp.cache.contract.eeg
    out = []
    for fold in comp.selected:
        x_train = TableWindows(comp.cache, eeg.name, comp.table, fold.train)
        model = train_eegnet(x_train, labels[fold.train], epochs=ft.epochs, batch_size=ft.batch_size, lr=ft.lr,
                             seed=comp.cfg.seed, device=str(comp.device), n_classes=n_classes, sfreq=eeg.sfreq)
        proba = predict_proba(model, TableWindows(comp.cache, eeg.name, comp.table, fold.test))
        proba = proba[:, :n_classes]
        out.append(FoldPrediction(fold=int(fold.index), rows=np.asarray(fold.test), y_true=labels[fold.test],
                                  y_pred=proba.argmax(axis=1), proba=proba))
        if progress:
            log.info("eegnet: fold %d done (last-epoch loss %.3f)", fold.index, model.train_losses[-1])
    return out


def run_baseline_row(comp: Comparison, row: str, progress: bool = True) -> Path:
    """Fit one baseline row on every selected fold and label; write its prediction tables and results."""
    from physiosync.baselines.classical import run_classical
    from physiosync.evaluation.metrics import majority_class
    from physiosync.evaluation.report import write_predictions

    spec = ROWS[row]
    assert isinstance(spec, BaselineRow)
    d = row_dir(comp, row)
    notes: list[str] = []
    for label in comp.cfg.labels:
        y = comp.table.label(label)
        k = comp.cache.task(label).n_classes
        if spec.classifier == "eegnet":
            preds = _eegnet_predictions(comp, y, k, progress)
        else:
            x, rows = comp.features(spec.features, spec.peripheral)
            preds = run_classical(x, y[rows], comp.selected, spec.classifier, seed=comp.cfg.seed, rows=rows,
                                  n_classes=k)
        for fold, pred in zip(comp.selected, preds, strict=True):
            write_predictions(d, fold.index, label, comp.table.select(pred.rows), pred.proba,
                              majority_class(y[fold.train]))
            if pred.note:
                notes.append(f"{label} fold {fold.index}: {pred.note}")
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


def expand_fold_rows(rows: np.ndarray, long_table: WindowTable, short_table: WindowTable) -> np.ndarray:
    """Rows of ``short_table`` lying inside the given ``long_table`` rows (same subject, trial, seconds).

    Shape: rows (n,) -> (n * r,) sorted, r = long window / short window.
    """
    r = int(round(long_table.window_s / short_table.window_s))
    if abs(r * short_table.window_s - long_table.window_s) > 1e-9:
        raise ConfigError(f"window {long_table.window_s} s is not a whole number of {short_table.window_s} s windows")
    rows = np.asarray(rows, dtype=np.int64)
    n_trials = int(long_table.trial.max()) + 1 if len(long_table) else 0
    base = (long_table.subject[rows] * n_trials + long_table.trial[rows]) * short_table.n_windows
    out = (base[:, None] + long_table.window[rows][:, None] * r + np.arange(r)[None, :]).reshape(-1)
    return np.sort(out)


def folds_for_row(comp: Comparison, row_table: WindowTable, resolutions: tuple[float, ...]) -> list[Any]:
    """The comparison's folds as the row's pipeline must see them (same rows; only its resolutions)."""
    from physiosync.data.protocols import Fold

    same = row_table.window_s == comp.table.window_s

    def rows(a: np.ndarray) -> np.ndarray:
        return np.asarray(a) if same else expand_fold_rows(a, comp.table, row_table)

    return [Fold(index=f.index, protocol=f.protocol, leaky=f.leaky, train=rows(f.train), val=rows(f.val),
                 test=rows(f.test), subject=f.subject, pretrain={w: f.pretrain[w] for w in resolutions},
                 train_subjects=f.train_subjects, test_subjects=f.test_subjects) for f in comp.folds]


def _same_folds(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        x.index == y.index and all(np.array_equal(getattr(x, p), getattr(y, p)) for p in ("train", "val", "test"))
        and x.pretrain_keys() == y.pretrain_keys() for x, y in zip(a, b, strict=True)
    )


def write_row_folds(comp: Comparison, row_cfg: RunConfig) -> Path:
    """Put the comparison's folds into the row's run directory (or check the copy already there)."""
    from physiosync.data.protocols import load_folds, save_folds
    from physiosync.experiments.pipeline import RunContext, folds_meta, run_dir_of

    assert row_cfg.model.resolutions is not None  # row_config derives from the resolved comparison config
    res = tuple(sorted(row_cfg.model.resolutions))
    ctx = RunContext(cfg=row_cfg, run_dir=run_dir_of(row_cfg), cache=comp.cache,
                     table=comp.cache.windows(max(res)), resolutions=res)
    want = folds_for_row(comp, ctx.table, res)
    path = ctx.run_dir / "folds.json"
    if path.is_file():
        try:
            have = load_folds(path, comp.cache.hash, folds_meta(ctx))
        except DataFormatError:
            have = None
        if have is not None and _same_folds(have, want):
            return path
        log.warning("%s: replacing folds.json that differs from the comparison's", path)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    save_folds(want, path, comp.cache.hash, folds_meta(ctx))
    return path


def run_pipeline_row(comp: Comparison, row: str, progress: bool = True) -> Path:
    """Run (or resume) one PhysioSync row through the pipeline, on the comparison's folds."""
    from physiosync.experiments.pipeline import run_dir_of, run_pipeline

    cfg = row_config(comp, row)
    d = run_dir_of(cfg)
    if (d / "config.yaml").is_file():
        from physiosync.experiments.pipeline import write_run_config

        write_run_config(cfg, d)  # a stale row (made with another configuration) is an error, not a mix
    write_row_folds(comp, cfg)
    run_pipeline(cfg, progress=progress)
    return d


# --------------------------------------------------------------------------------------------------
# checks, metrics and the paired test


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
        want_folds = folds_for_row(comp, comp.cache.windows(max(res)), res)
        if not _same_folds(rfolds, want_folds):
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


def paired_test(block: dict[str, Any], ref: dict[str, Any], min_folds: int = MIN_FOLD_PAIRS) -> dict[str, Any]:
    """Wilcoxon signed-rank test of a row's accuracy against the reference row's, paired by fold.

    With fewer than ``min_folds`` common folds the pairs are per-subject accuracies (from the predictions
    of all folds) instead. Returns ``unit`` (``folds``/``subjects``), ``statistic``, ``p_value``, ``n``
    (pairs) and ``note`` (why a number is missing, e.g. every difference is zero).
    """
    from scipy.stats import wilcoxon

    a = {f["fold"]: f["accuracy"] for f in block["folds"]}
    b = {f["fold"]: f["accuracy"] for f in ref["folds"]}
    unit = "folds"
    if len(set(a) & set(b)) < min_folds:
        unit = "subjects"
        a = {s["subject"]: s["accuracy"] for s in block["subjects"]["per_subject"]}
        b = {s["subject"]: s["accuracy"] for s in ref["subjects"]["per_subject"]}
    keys = sorted(set(a) & set(b))
    x, y = np.array([a[k] for k in keys], dtype=float), np.array([b[k] for k in keys], dtype=float)
    out: dict[str, Any] = {"unit": unit, "statistic": None, "p_value": None, "n": len(keys), "note": ""}
    if len(keys) == 0:
        out["note"] = "no common pairs"
    elif np.all(x == y):
        out["note"] = "all paired differences are zero"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = wilcoxon(x, y)
        out.update(statistic=float(res.statistic), p_value=float(res.pvalue))
    return out


# --------------------------------------------------------------------------------------------------
# output


def build_comparison(comp: Comparison, rows: list[str], status: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``comparison.json`` document: per-row ``results``, the flat table, status and metadata."""
    from physiosync.data.protocols import describe_protocol

    ran = [r for r in rows if status[r]["status"] != "skipped"]
    results = {r: _make_results(comp, summarise_row(comp, r)) for r in ran}
    ref = results.get(REFERENCE_ROW)
    table = []
    for r in ran:
        spec = ROWS[r]
        kind = "baseline" if isinstance(spec, BaselineRow) else ("physiosync" if r == REFERENCE_ROW else "ablation")
        for label, b in results[r]["labels"].items():
            s, subj = b["summary"], b["subjects"]["summary"]
            line: dict[str, Any] = {"row": r, "label": label, "kind": kind, "n_classes": b["n_classes"],
                                    "f1_kind": b["f1_kind"]}
            for m in ("accuracy", "balanced_accuracy", "f1", "f1_macro", "trial_vote_accuracy", "majority_accuracy"):
                st = s.get(m) or {}
                keep = m != "f1_macro" or b["n_classes"] > 2
                line[f"{m}_mean"] = st.get("mean") if keep else None
                line[f"{m}_std"] = st.get("std") if keep else None
            chance = b.get("chance") or {}
            line.update(chance_mean=chance.get("chance_mean"), chance_std=chance.get("chance_std"),
                        chance_p=chance.get("p_value"))
            for m in ("accuracy", "balanced_accuracy"):
                line[f"subject_{m}_mean"] = (subj.get(m) or {}).get("mean")
                line[f"subject_{m}_std"] = (subj.get(m) or {}).get("std")
            line.update(n_folds=s["n_folds"], n_subjects=subj["n_subjects"], ddof=results[r]["ddof"])
            if r == REFERENCE_ROW or ref is None or label not in ref["labels"]:
                why = "reference row" if r == REFERENCE_ROW else "physiosync row not run"
                line.update(test_unit=None, wilcoxon_statistic=None, wilcoxon_p=None, wilcoxon_n=None, note=why)
            else:
                t = paired_test(b, ref["labels"][label])
                line.update(test_unit=t["unit"], wilcoxon_statistic=t["statistic"], wilcoxon_p=t["p_value"],
                            wilcoxon_n=t["n"], note=t["note"])
            table.append(line)
    cfg = comp.cfg
    proto = cfg.protocol.name
    from physiosync.data.protocols import LEAKY_PROTOCOLS

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
            "compare_dir": str(comp.dir), "dataset": cfg.dataset.name, "data_origin": cfg.dataset.origin,
            "preset": cfg.preset, "seed": cfg.seed, "device": str(comp.device), "precision": cfg.precision,
            "cache_hash": comp.cache.hash,
            "subjects": list(comp.cache.subjects), "window_s": float(comp.table.window_s),
            "resolutions": list(comp.resolutions), "labels": list(cfg.labels),
        },
    }


def _pct(mean: Any, std: Any = None) -> str:
    if mean is None:
        return "—"
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if std is not None else f"{100 * mean:.1f}"


def _p(line: dict[str, Any]) -> str:
    if line["wilcoxon_p"] is None:
        return "n/a" + (f" ({line['note']})" if line.get("note") else "")
    return f"W={line['wilcoxon_statistic']:g}, p={line['wilcoxon_p']:.3g}, n={line['wilcoxon_n']} {line['test_unit']}"


def protocol_header(doc: dict[str, Any]) -> list[str]:
    """Protocol name, folds and whether it leaks: the first thing every comparison output says."""
    p = doc["protocol"]
    leak = ("LEAKY — test windows share trials with training; numbers measure trial identification"
            if p["leaky"] else "does not leak")
    return [f"protocol: {p['name']}{' (official folds)' if p['official'] else ''} — {leak}; "
            f"{len(p['folds_run'])} of {p['n_folds']} folds run; mean ± std over folds (ddof {doc['ddof']}), %"]


def format_comparison(doc: dict[str, Any]) -> str:
    """Console table: protocol first, then one line per (row, label)."""
    lines = protocol_header(doc)
    w = max([8, *(len(x["label"]) for x in doc["table"])])  # any task name fits its column
    head = (f"{'row':<17} {'label':<{w}} {'accuracy':>12} {'bal. acc.':>12} {'F1':>12} {'trial vote':>12} "
            f"{'majority':>12} {'chance':>12}  paired test vs physiosync")
    lines += [head, "-" * len(head)]
    for x in doc["table"]:
        lines.append(f"{x['row']:<17} {x['label']:<{w}} {_pct(x['accuracy_mean'], x['accuracy_std']):>12} "
                     f"{_pct(x['balanced_accuracy_mean'], x['balanced_accuracy_std']):>12} "
                     f"{_pct(x['f1_mean'], x['f1_std']):>12} "
                     f"{_pct(x['trial_vote_accuracy_mean'], x['trial_vote_accuracy_std']):>12} "
                     f"{_pct(x['majority_accuracy_mean'], x['majority_accuracy_std']):>12} "
                     f"{_pct(x.get('chance_mean'), x.get('chance_std')):>12}  {_p(x)}")
    for r, st in doc["rows"].items():
        if st["status"] == "skipped":
            lines.append(f"{r}: {st['note']}")
    return "\n".join(lines)


def render_markdown(doc: dict[str, Any], plot: str | None) -> str:
    """Text of ``comparison.md``."""
    from physiosync.evaluation.report import chance_cells, chance_legend

    p, meta = doc["protocol"], doc["meta"]
    lines = ["# PhysioSync comparison — baselines and ablations under the same folds", ""]
    if p["leaky"]:
        lines += ["> **⚠ LEAKY PROTOCOL (`paper`).** Test windows share trials with training windows; these",
                  "> numbers largely measure trial identification. Use them only against the published table.", ""]
    lines += ["## Protocol", "", *protocol_header(doc), "", p["description"], "",
              f"Folds: `{p['folds_file']}` (folds {p['folds_run']} run), identical for every row "
              "(checked on each row's test windows).", "",
              f"Dataset {meta['dataset']} ({meta['data_origin']}), preset {meta['preset'] or '—'}, seed "
              f"{meta['seed']}, device {meta['device']} ({meta.get('precision', '—')}), cache {str(meta['cache_hash'])[:12]}, fine-tuning windows "
              f"{meta['window_s']:g} s, resolutions {', '.join(f'{w:g} s' for w in meta['resolutions'])}.", ""]
    if meta["data_origin"] == "synthetic":
        lines += ["*Synthetic data: these numbers exercise the pipeline and say nothing about emotion recognition.*",
                  ""]
    lines += [
        "## Results (%, mean ± std over folds; subjects: mean ± std over subjects; ddof 0)", "",
        "| row | label | accuracy | balanced acc. | F1 | macro F1 | trial-vote acc. | accuracy over subjects | "
        "majority baseline | permutation chance | p (perm.) | paired test vs physiosync |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    n_perm = next((b["chance"].get("n_permutations") for res in doc["results"].values()
                   for b in res["labels"].values() if b.get("chance")), None)
    for x in doc["table"]:
        chance = ({"chance_mean": x["chance_mean"], "chance_std": x["chance_std"], "p_value": x["chance_p"]}
                  if x.get("chance_mean") is not None else None)
        chance_cell, p_cell = chance_cells(chance, digits=1)
        lines.append(
            f"| {x['row']} | {x['label']} | {_pct(x['accuracy_mean'], x['accuracy_std'])} | "
            f"{_pct(x['balanced_accuracy_mean'], x['balanced_accuracy_std'])} | "
            f"{_pct(x['f1_mean'], x['f1_std'])} ({x['f1_kind']}) | {_pct(x['f1_macro_mean'], x['f1_macro_std'])} | "
            f"{_pct(x['trial_vote_accuracy_mean'], x['trial_vote_accuracy_std'])} | "
            f"{_pct(x['subject_accuracy_mean'], x['subject_accuracy_std'])} | "
            f"{_pct(x['majority_accuracy_mean'], x['majority_accuracy_std'])} | {chance_cell} | {p_cell} | {_p(x)} |")
    lines += ["", chance_legend(n_perm, "the row's"), "", "Paired test: two-sided Wilcoxon signed-rank test (`scipy.stats.wilcoxon`) of the row's "
              "accuracy against the `physiosync` row's, paired by fold (by subject when there are fewer than "
              f"{MIN_FOLD_PAIRS} folds; the unit is named in each cell). W is the smaller signed-rank sum, n the "
              "number of pairs. A small p says the two rows differ consistently across folds; it says nothing "
              "about which protocol is honest.", "", "## Rows", "", "| row | status | what it is |", "|---|---|---|"]
    for r, st in doc["rows"].items():
        what = st["status"] if st["status"] != "skipped" else st["note"]
        if st.get("folds_check"):
            what += f"; {st['folds_check']}"
        lines.append(f"| {r} | {what} | {st['description']} |")
    if plot:
        lines += ["", "## Plot", "", f"![{plot}]({plot})"]
    return "\n".join(lines) + "\n"


_KIND_COLOURS = {"baseline": "tab:gray", "physiosync": "tab:green", "ablation": "tab:blue"}


def comparison_figure(doc: dict[str, Any]) -> Any:
    """Per-row accuracy (error bars: std over folds), each row's permutation chance as a diamond and the
    majority baseline as a dashed line; one panel per label, one legend outside the panels.

    Returns:
        A matplotlib ``Figure`` (Agg canvas, no pyplot global state, no display needed).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    labels = list(dict.fromkeys(x["label"] for x in doc["table"]))
    n_rows = len({x["row"] for x in doc["table"]})
    fig = Figure(figsize=(max(5.0, 0.55 * n_rows + 2) + 2.2, 3.6 * max(1, len(labels))), layout="constrained")
    kinds: list[str] = []
    for i, label in enumerate(labels):
        ax = fig.add_subplot(max(1, len(labels)), 1, i + 1)
        lines = [x for x in doc["table"] if x["label"] == label]
        acc = [100 * (x["accuracy_mean"] or 0.0) for x in lines]
        err = [100 * (x["accuracy_std"] or 0.0) for x in lines]
        for x in lines:
            kinds += [x["kind"]] if x["kind"] not in kinds else []
        ax.bar(range(len(lines)), acc, yerr=err, color=[_KIND_COLOURS.get(x["kind"], "tab:blue") for x in lines],
               capsize=3)
        chance = [(j, 100 * x["chance_mean"]) for j, x in enumerate(lines) if x.get("chance_mean") is not None]
        if chance:
            # a diamond, not a tick: a black tick would read as an error-bar cap
            ax.scatter(*zip(*chance, strict=True), color="gold", edgecolors="black", marker="D", s=36, zorder=3)
        maj = [x["majority_accuracy_mean"] for x in lines if x["majority_accuracy_mean"] is not None]
        if maj:
            ax.axhline(100 * float(np.mean(maj)), color="tab:red", ls="--", lw=1)
        ax.set_xticks(range(len(lines)), [x["row"] for x in lines], rotation=45, ha="right", fontsize=8)
        ax.set(ylim=(0, 100), ylabel="accuracy (%)", xlabel="row",
               title=f"{label}: accuracy, mean ± std over folds ({doc['protocol']['name']})")
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=_KIND_COLOURS.get(k, "tab:blue"), label=k) for k in kinds]
    handles += [Line2D([], [], color="gold", mec="black", marker="D", ms=6, ls="none", label="permutation chance"),
                Line2D([], [], color="tab:red", ls="--", lw=1, label="majority baseline")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    return fig


def plot_comparison(path: Path, doc: dict[str, Any]) -> None:
    """Write :func:`comparison_figure` as a PNG (atomically)."""
    fig = comparison_figure(doc)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def write_comparison(cdir: Path, doc: dict[str, Any]) -> dict[str, Path]:
    """Write ``comparison.{md,csv,json,png}`` atomically; returns name -> path."""
    out = {n: cdir / f"comparison.{n}" for n in ("json", "csv", "png", "md")}
    write_json_atomic(out["json"], doc)
    with atomic_path(out["csv"]) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        w.writeheader()
        for line in doc["table"]:
            w.writerow({k: ("" if line.get(k) is None else line[k]) for k in CSV_COLUMNS})
    plot = None
    if doc["table"]:
        plot_comparison(out["png"], doc)
        plot = out["png"].name
    else:
        out.pop("png")
    write_text_atomic(out["md"], render_markdown(doc, plot))
    return out



if __name__ == "__main__":  # pragma: no cover
    from physiosync.cli import main

    sys.exit(main(["compare", *sys.argv[1:]]))
