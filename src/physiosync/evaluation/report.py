"""Prediction tables, the ``results`` structure, and the run report (report.md / results.json / .csv / PNGs).

Everything a run reports is derived from per-fold prediction tables, so ``physiosync evaluate`` and
``report`` can be re-run from a run directory without touching a model. Every file is written atomically.

Prediction table (``<run_dir>/predictions/predictions_fold<k>_<label>.csv``, one row per test window)::

    fold, subject, trial, stimulus, window, y_true, y_pred, y_majority, p_0 .. p_{K-1}

``subject`` is the cache's subject index; ``y_majority`` is the fold's training-majority class (the
majority baseline on the same folds); ``p_*`` are class probabilities (empty if only labels were given).

``results`` (a plain JSON-able dict, built by :func:`make_results`, written to ``results.json``)::

    {
      "format_version": 1,
      "protocol": {"name", "leaky": bool, "official": bool, "description", "n_folds"},
      "ddof": 0,                                   # std across folds and subjects (population, as the paper)
      "labels": {
        "<label>": {                               # a task name: arousal | valence | four | liking | ...
          "n_classes": int, "class_names": [str] (when the task is known), "f1_kind": "binary" | "weighted",
          "folds": [{"fold", "n", "accuracy", "balanced_accuracy", "f1", "f1_macro", "f1_weighted",
                     "confusion": K×K counts, "trial_vote_accuracy", "majority_class",
                     "majority_accuracy", "majority_balanced_accuracy", "majority_f1"}, ...],
          "summary": {"<metric>": {"mean", "std", "n", "ddof"}, ..., "n_folds", "ddof"},
          "subjects": {"per_subject": [{"subject": int, "n", "accuracy", ..., "majority_accuracy"}],
                       "summary": {"<metric>": {"mean", "std", "n", "ddof"}, "n_subjects", "ddof"}},
          "confusion": K×K counts pooled over folds,
          "chance": {"observed", "chance_mean", "chance_std", "p_value", "n_permutations", "seed", "method"},
        }, ...                                     # "chance" only when a seed was given (see statistics.chance_block)
      },
      "history": {"<stage>": {"<series id>": {"panel": str, "folds": [int], "window_s": float (pretrain),
                                              "curves": {"<curve>": [float per epoch]}}}},  # for the plots
    }

Metrics are fractions in ``results`` and percentages in ``report.md``. ``meta`` (passed to
:func:`write_report`, stored in ``results.json`` under ``"meta"``) describes the run: ``dataset``,
``data_origin`` (``release`` = the official DEAP/DREAMER files, ``user``, ``synthetic``; the paper's published
table is shown only for ``release``), ``preset``, ``seed``, ``device``, ``precision``, ``run_name``, ``cache_hash``
and ``subjects`` (subject ids, indexed by the ``subject`` column).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from physiosync.atomic import atomic_path, write_json_atomic, write_text_atomic
from physiosync.data.labels import Task
from physiosync.data.protocols import LEAKY_PROTOCOLS, describe_protocol
from physiosync.data.table import WindowTable
from physiosync.errors import DataFormatError
from physiosync.evaluation.formatting import dataset_label, format_pct, format_stat
from physiosync.evaluation.metrics import (
    DDOF,
    aggregate,
    f1_kind,
    fold_metrics,
    subject_metrics,
    trial_vote_accuracy,
)
from physiosync.evaluation.paper_results import paper_reference
from physiosync.evaluation.statistics import chance_block

RESULTS_FORMAT_VERSION = 1
PREDICTION_COLUMNS = ("fold", "subject", "trial", "stimulus", "window", "y_true", "y_pred", "y_majority")
RESULTS_CSV_COLUMNS = (
    "label", "n_classes", "f1_kind",
    "accuracy_mean", "accuracy_std", "balanced_accuracy_mean", "balanced_accuracy_std",
    "f1_mean", "f1_std", "f1_macro_mean", "f1_macro_std",
    "trial_vote_accuracy_mean", "trial_vote_accuracy_std", "majority_accuracy_mean", "majority_accuracy_std",
    "chance_mean", "chance_std", "chance_p",
    "subject_accuracy_mean", "subject_accuracy_std", "n_folds", "n_subjects", "ddof",
)
REPORT_DIGITS = 2  # decimals of the percentages in report.md (the per-subject table: 1)
_PRED_NAME = re.compile(r"predictions_fold(\d+)_([a-z][a-z0-9_]*)\.csv$")


# --------------------------------------------------------------------------------------------------
# prediction tables


def prediction_path(run_dir: str | Path, fold: int, label: str) -> Path:
    return Path(run_dir) / "predictions" / f"predictions_fold{fold}_{label}.csv"


def write_predictions(
    run_dir: str | Path,
    fold: int,
    label: str,
    test_table: WindowTable,
    y_pred_or_proba: np.ndarray,
    majority_class: int,
    n_classes: int | None = None,
) -> Path:
    """Write one fold's test predictions for one label task (atomically).

    Args:
        test_table: The fold's test rows (``table.select(fold.test)``); supplies ids and ``y_true``.
        y_pred_or_proba: Predicted labels, Shape: (n,), or class probabilities, Shape: (n, K).
        majority_class: The fold's training-majority class (majority baseline on the same fold).
        n_classes: K, for the (empty) probability columns when only labels are given; None = the largest
            label seen + 1.
    """
    a = np.asarray(y_pred_or_proba)
    if a.shape[0] != len(test_table):
        raise ValueError(f"{a.shape[0]} predictions for {len(test_table)} test rows")
    proba = a if a.ndim == 2 else None
    y_pred = a.argmax(axis=1) if proba is not None else a.astype(np.int64)
    if proba is not None:
        k = proba.shape[1]
    else:
        k = n_classes or int(max(y_pred.max(initial=0), test_table.label(label).max(initial=0))) + 1
    path = prediction_path(run_dir, fold, label)
    cols = [
        np.full(len(test_table), fold), test_table.subject, test_table.trial, test_table.stimulus,
        test_table.window, test_table.label(label), y_pred, np.full(len(test_table), majority_class),
    ]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*PREDICTION_COLUMNS, *(f"p_{c}" for c in range(k))])
        probs = proba.tolist() if proba is not None else [[""] * k] * len(test_table)
        for row, p in zip(zip(*(c.tolist() for c in cols), strict=True), probs, strict=True):
            w.writerow([*row, *(f"{x:.6g}" if x != "" else "" for x in p)])
    return path


def read_predictions(path: str | Path) -> dict[str, Any]:
    """Columns of a prediction table as int arrays (``proba`` Shape: (n, K) float, or None)."""
    path = Path(path)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0][: len(PREDICTION_COLUMNS)]) != PREDICTION_COLUMNS:
        raise DataFormatError(path, "header", rows[0] if rows else "empty file", ", ".join(PREDICTION_COLUMNS))
    header, body = rows[0], rows[1:]
    out: dict[str, Any] = {
        name: np.array([int(r[i]) for r in body], dtype=np.int64) for i, name in enumerate(PREDICTION_COLUMNS)
    }
    p_cols = [i for i, h in enumerate(header) if h.startswith("p_")]
    has_p = bool(body) and bool(p_cols) and all(r[i] != "" for r in body for i in p_cols)
    out["proba"] = np.array([[float(r[i]) for i in p_cols] for r in body]) if has_p else None
    out["n_classes"] = len(p_cols)
    return out


def find_predictions(run_dir: str | Path) -> dict[str, list[Path]]:
    """Label -> prediction files of a run directory, in fold order."""
    found: dict[str, list[tuple[int, Path]]] = {}
    for p in (Path(run_dir) / "predictions").glob("predictions_fold*_*.csv"):
        m = _PRED_NAME.search(p.name)
        if m:
            found.setdefault(m.group(2), []).append((int(m.group(1)), p))
    return {lab: [p for _, p in sorted(v)] for lab, v in found.items()}


# --------------------------------------------------------------------------------------------------
# results


def summarise_label(
    predictions: list[dict[str, Any]],
    n_classes: int,
    ddof: int = DDOF,
    chance_seed: int | None = None,
    class_names: list[str] | tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The ``results["labels"][label]`` block from per-fold prediction columns (as :func:`read_predictions`).

    Metrics are computed per fold over all its test rows, then summarised across folds; per-subject
    metrics come from the predictions of all folds concatenated. With ``chance_seed`` the block also
    carries ``chance`` (:func:`physiosync.evaluation.statistics.chance_block`), so every consumer (run report,
    ``compare``) shows the same estimate computed the same way. ``class_names`` (the task's) go into the block
    for plots and readers.
    """
    if class_names is not None and len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} classes")
    folds = []
    for p in predictions:
        m = fold_metrics(p["y_true"], p["y_pred"], n_classes)
        groups = np.stack([p["subject"], p["trial"]], axis=1)
        m["trial_vote_accuracy"] = trial_vote_accuracy(p["y_true"], p["y_pred"], groups)
        base = fold_metrics(p["y_true"], p["y_majority"], n_classes)
        m.update(
            majority_class=int(p["y_majority"][0]) if len(p["y_majority"]) else None,
            majority_accuracy=base["accuracy"], majority_balanced_accuracy=base["balanced_accuracy"],
            majority_f1=base["f1"],
        )
        folds.append({"fold": int(p["fold"][0]) if len(p["fold"]) else len(folds), **m})
    cat = {k: np.concatenate([p[k] for p in predictions]) for k in ("y_true", "y_pred", "y_majority", "subject", "trial")}
    summary = aggregate([{k: v for k, v in f.items() if k != "majority_class"} for f in folds], ddof)
    block: dict[str, Any] = {"n_classes": n_classes}
    if class_names is not None:
        block["class_names"] = [str(c) for c in class_names]
    block.update({
        "f1_kind": f1_kind(n_classes),
        "folds": folds,
        "summary": summary,
        "subjects": subject_metrics(
            cat["y_true"], cat["y_pred"], cat["subject"], n_classes, trial=cat["trial"],
            y_majority=cat["y_majority"], ddof=ddof,
        ),
        "confusion": np.sum([f["confusion"] for f in folds], axis=0).astype(int).tolist(),
    })
    if chance_seed is not None:
        block["chance"] = chance_block(predictions, chance_seed)
    return block


def make_results(
    protocol: str,
    labels: dict[str, dict[str, Any]],
    official: bool = False,
    history: dict[str, Any] | None = None,
    ddof: int = DDOF,
) -> dict[str, Any]:
    """Assemble the ``results`` dict (see the module docstring) from per-label blocks."""
    n_folds = max((len(b["folds"]) for b in labels.values()), default=0)
    return {
        "format_version": RESULTS_FORMAT_VERSION,
        "protocol": {
            "name": protocol, "leaky": protocol in LEAKY_PROTOCOLS, "official": bool(official),
            "description": describe_protocol(protocol), "n_folds": n_folds,
        },
        "ddof": ddof,
        "labels": labels,
        "history": history or {},
    }


def results_from_predictions(
    run_dir: str | Path,
    protocol: str,
    official: bool = False,
    history: dict[str, Any] | None = None,
    chance_seed: int | None = None,
    tasks: dict[str, Task] | None = None,
) -> dict[str, Any]:
    """Recompute ``results`` from a run directory's prediction tables (``physiosync evaluate``).

    ``chance_seed`` (the run's seed) adds the permutation estimate of chance to every label block.
    ``tasks`` (the cache's) give each label's class count and names and the block order (the tasks'
    order); a table of another label is summarised from its own columns and listed after them.
    """
    tasks = tasks or {}
    blocks = {}
    found = find_predictions(run_dir)
    order = [lab for lab in tasks if lab in found] + sorted(set(found) - set(tasks))
    for label, paths in ((lab, found[lab]) for lab in order):
        preds = [read_predictions(p) for p in paths]
        task = tasks.get(label)
        blocks[label] = summarise_label(preds, task.n_classes if task else preds[0]["n_classes"],
                                        chance_seed=chance_seed, class_names=task.class_names if task else None)
    return make_results(protocol, blocks, official=official, history=history)


# --------------------------------------------------------------------------------------------------
# report


def chance_cells(chance: dict[str, Any] | None, digits: int = 2) -> tuple[str, str]:
    """Report cells for a ``chance`` block: "mean ± std" over permutations (%) and the p-value."""
    if not chance or chance.get("chance_mean") is None:
        return "—", "—"
    return format_pct(chance["chance_mean"], chance["chance_std"], digits), f"{chance['p_value']:.3g}"


def chance_legend(n_permutations: int | None, what: str = "the run's") -> str:
    """One line saying what the permutation-chance and majority columns are (report.md, comparison.md)."""
    n = f"{n_permutations} seeded" if n_permutations else "seeded"
    return (f"*Permutation chance*: accuracy of {what} own test predictions (all folds pooled) against the true "
            f"labels shuffled between whole test trials (subject, trial), {n} permutations, mean ± std over "
            "permutations; *p (perm.)*: share of permutations, the observed labelling included, at least as "
            "accurate as the pooled observed accuracy. *Majority baseline*: each fold's training-majority class "
            "predicted for all its test windows.")


def _csv_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, b in results["labels"].items():
        s, subj = b["summary"], b["subjects"]["summary"]
        row: dict[str, Any] = {"label": label, "n_classes": b["n_classes"], "f1_kind": b["f1_kind"]}
        for m in ("accuracy", "balanced_accuracy", "f1", "f1_macro", "trial_vote_accuracy", "majority_accuracy"):
            row[f"{m}_mean"] = (s.get(m) or {}).get("mean")
            row[f"{m}_std"] = (s.get(m) or {}).get("std")
        chance = b.get("chance") or {}
        row.update(chance_mean=chance.get("chance_mean"), chance_std=chance.get("chance_std"),
                   chance_p=chance.get("p_value"))
        row["subject_accuracy_mean"] = (subj.get("accuracy") or {}).get("mean")
        row["subject_accuracy_std"] = (subj.get("accuracy") or {}).get("std")
        row.update(n_folds=s["n_folds"], n_subjects=subj["n_subjects"], ddof=results["ddof"])
        rows.append(row)
    return rows


def _subject_name(meta: dict[str, Any], index: int) -> str:
    names = meta.get("subjects") or []
    return str(names[index]) if 0 <= index < len(names) else f"#{index}"


def render_markdown(results: dict[str, Any], meta: dict[str, Any], plots: list[str]) -> str:
    """The text of ``report.md``: protocol first (with a LEAKY banner for ``paper``), then the numbers."""
    proto = results["protocol"]

    def pct(stat: dict[str, Any] | None) -> str:
        return format_stat(stat, REPORT_DIGITS)

    def paper_pct(v: tuple[float, float | None] | None) -> str:  # the paper's numbers are already in %
        return format_pct(*(v or (None, None)), digits=REPORT_DIGITS, scale=1.0)

    lines = [f"# PhysioSync report — {meta.get('run_name', 'run')}", ""]
    if proto["leaky"]:
        lines += [
            "> **⚠ LEAKY PROTOCOL (`paper`).** Test windows share trials (same subject, same label, adjacent",
            "> seconds) with training windows, so these numbers largely measure trial identification, not",
            "> emotion recognition. Use them only to compare with the published table; see `stimulus-kfold`,",
            "> `subject-trial-kfold` or `loso` for honest estimates.",
            "",
        ]
    lines += [
        "## Protocol", "",
        f"**{proto['name']}**{' (official folds)' if proto.get('official') else ''}, {proto['n_folds']} folds. "
        f"{proto['description']}", "",
        f"Std is the population std (ddof = {results['ddof']}) across folds, and across subjects for the "
        "per-subject figures. Metrics are computed over all test windows of a fold (never per batch).", "",
        "## Run", "",
        "| dataset | data origin | preset | seed | device | precision | cache |", "|---|---|---|---|---|---|---|",
        f"| {dataset_label(meta)} | {meta.get('data_origin', '—')} | {meta.get('preset') or '—'} | "
        f"{meta.get('seed', '—')} | {meta.get('device', '—')} | {meta.get('precision', '—')} | "
        f"{str(meta.get('cache_hash') or '—')[:12]} |", "",
    ]
    if meta.get("data_origin") == "synthetic":
        lines += ["*Synthetic data: these numbers exercise the pipeline and say nothing about emotion recognition.*", ""]

    lines += [
        "## Results per label (%, mean ± std over folds)", "",
        "| label | accuracy | balanced acc. | F1 | macro F1 | trial-vote acc. | majority baseline | "
        "permutation chance | p (perm.) | accuracy over subjects | folds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    n_perm = None
    for label, b in results["labels"].items():
        s = b["summary"]
        macro = format_stat(s.get("f1_macro"), REPORT_DIGITS) if b["n_classes"] > 2 else "—"
        chance, p_perm = chance_cells(b.get("chance"))
        n_perm = n_perm or (b.get("chance") or {}).get("n_permutations")
        lines.append(
            f"| {label} | {pct(s.get('accuracy'))} | {pct(s.get('balanced_accuracy'))} | "
            f"{pct(s.get('f1'))} ({b['f1_kind']}) | {macro} | {pct(s.get('trial_vote_accuracy'))} | "
            f"{pct(s.get('majority_accuracy'))} | {chance} | {p_perm} | "
            f"{pct(b['subjects']['summary'].get('accuracy'))} | {s['n_folds']} |"
        )
    lines += ["", chance_legend(n_perm), ""]

    labels = list(results["labels"])
    if labels:
        lines += [
            "## Per-subject accuracy (%, test predictions of all folds concatenated)", "",
            "| subject | " + " | ".join(f"{lab} | {lab} majority" for lab in labels) + " |",
            "|---" * (1 + 2 * len(labels)) + "|",
        ]
        per = {lab: {r["subject"]: r for r in results["labels"][lab]["subjects"]["per_subject"]} for lab in labels}
        for s in sorted({s for lab in labels for s in per[lab]}):
            cells = []
            for lab in labels:
                r = per[lab].get(s)
                cells += [format_pct(r["accuracy"]) if r else "—",
                          format_pct(r["majority_accuracy"]) if r and "majority_accuracy" in r else "—"]
            lines.append(f"| {_subject_name(meta, s)} | " + " | ".join(cells) + " |")
        lines.append("")

    ref = paper_reference(str(meta.get("dataset", "")), proto["name"])
    origin = meta.get("data_origin")
    if ref and origin != "release":
        # the paper's numbers are about the official recordings; beside anything else they mislead
        lines += [f"*The published numbers ({ref['table']}) are not shown: the data origin is `{origin}`; they are "
                  "shown only for `dataset.origin: release` (the official DEAP/DREAMER files).*", ""]
    if ref and origin == "release":
        lines += [
            f"## Published numbers ({ref['table']})", "",
            f"Source: {ref['source']}. **Comparability:** {ref['note']}", "",
            "| label | ours accuracy | paper accuracy | ours F1 | paper F1 |", "|---|---|---|---|---|",
        ]
        for label, b in results["labels"].items():
            paper = ref["ours"].get(label)
            if paper:
                lines.append(
                    f"| {label} | {pct(b['summary'].get('accuracy'))} | {paper_pct(paper['accuracy'])} | "
                    f"{pct(b['summary'].get('f1'))} | {paper_pct(paper['f1'])} |"
                )
        lines += ["", "Paper F1 is binary for arousal/valence and weighted for four classes, averaged over test "
                  "batches (D11); ours is computed over whole folds.", ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def _save_figure(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def confusion_figure(label: str, confusion: list[list[int]], class_names: list[str] | None = None) -> Any:
    """Row-normalised confusion matrix with counts, class names and a labelled colour bar (a ``Figure``).

    ``class_names`` are the task's (``results`` blocks carry them); without them classes show as 0..K-1.
    """
    from matplotlib.figure import Figure  # Figure + Agg canvas: no pyplot global state, no display needed

    cm = np.asarray(confusion, dtype=float)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(3.2 + 0.4 * len(cm), 2.8 + 0.4 * len(cm)))
    ax = fig.add_subplot()
    im = ax.imshow(rows, vmin=0, vmax=1, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{100 * rows[i, j]:.0f}%\n{int(v)}", ha="center", va="center", fontsize=8,
                color="white" if rows[i, j] > 0.5 else "black")
    names = list(class_names) if class_names is not None else [str(c) for c in range(len(cm))]
    ax.set(xlabel="predicted", ylabel="true", title=f"{label}: confusion (row %, pooled folds)")
    ax.set_xticks(range(len(cm)), names)
    ax.set_yticks(range(len(cm)), names)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    return fig


def _plot_confusion(path: Path, label: str, confusion: list[list[int]], class_names: list[str] | None) -> None:
    _save_figure(confusion_figure(label, confusion, class_names), path)


def subjects_figure(label: str, block: dict[str, Any], meta: dict[str, Any]) -> Any:
    """Accuracy per subject (bars) with each subject's majority baseline; legend outside (a ``Figure``)."""
    from matplotlib.figure import Figure

    per = block["subjects"]["per_subject"]
    names = [_subject_name(meta, r["subject"]) for r in per]
    acc = [100 * r["accuracy"] for r in per]
    # the legend sits outside the axes: inside, it hides bars whatever corner it takes
    fig = Figure(figsize=(max(4.0, 0.3 * len(per) + 2) + 2.0, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(range(len(per)), acc, color="tab:blue", label="accuracy")
    maj = [100 * r["majority_accuracy"] for r in per if "majority_accuracy" in r]
    if len(maj) == len(per):
        ax.scatter(range(len(per)), maj, color="black", marker="_", s=120, label="majority baseline", zorder=3)
        ax.axhline(float(np.mean(maj)), color="tab:red", ls="--", lw=1, label="mean majority baseline")
    many = len(per) > 12
    ax.set_xticks(range(len(per)), names, rotation=90 if many else 0, fontsize=7 if many else 8)
    ax.set(ylim=(0, 100), xlabel="subject (test predictions of all folds)", ylabel="accuracy (%)",
           title=f"{label}: accuracy per subject")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False)
    return fig


def _plot_subjects(path: Path, label: str, block: dict[str, Any], meta: dict[str, Any]) -> None:
    _save_figure(subjects_figure(label, block, meta), path)


_STAGE_TITLES = {"pretrain": "pre-training", "finetune": "fine-tuning"}
_STAGE_LOSS = {"pretrain": "loss (weighted sum of NT-Xent terms)", "finetune": "loss (cross-entropy)"}
_MAX_FOLD_COLOURS = 10  # beyond this, folds are drawn in one grey (a legend of 32 colours is unreadable)


def _fold_text(folds: list[int], fallback: str) -> str:
    if not folds:
        return fallback
    return f"fold {folds[0]}" if len(folds) == 1 else "folds " + ", ".join(str(f) for f in sorted(folds))


def _curve_style(curve: str) -> str:
    return "--" if curve.startswith("val") else "-"


_MARK_UP_TO = 3  # curves this short get point markers: a line through one or two points is invisible


def curves_figure(stage: str, series: dict[str, dict[str, Any]], panel_order: list[str] | None = None) -> Any:
    """Loss curves of one stage: one panel per ``panel`` (window length or label), folds thin, mean bold.

    Args:
        stage: ``pretrain`` or ``finetune`` (titles and axis labels).
        series: ``results["history"][stage]``: series id -> ``{"panel", "folds", "curves": {name: values}}``.
            Series ids (directory keys) are never shown; lines are labelled by their fold numbers.
        panel_order: Panel names in the order to draw them after the window length (the report passes its
            labels' order); other panels follow by name.

    Returns:
        A matplotlib ``Figure`` (Agg canvas, no pyplot state), with one legend outside the panels.
    """
    import warnings

    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    panels: dict[str, list[dict[str, Any]]] = {}
    for sid, item in series.items():
        panels.setdefault(str(item.get("panel") or stage), []).append({"id": sid, **item})
    rank = {p: i for i, p in enumerate(panel_order or [])}
    order = sorted(panels, key=lambda p: (min(float(x.get("window_s") or 0.0) for x in panels[p]),
                                          rank.get(p, len(rank)), p))
    all_folds = sorted({min(x.get("folds") or [-1]) for xs in panels.values() for x in xs})
    coloured = len(all_folds) <= _MAX_FOLD_COLOURS
    colour = {f: (f"C{i % 10}" if coloured else "0.55") for i, f in enumerate(all_folds)}

    fig = Figure(figsize=(1.6 + 4.0 * len(order), 3.6), layout="constrained")
    axes = fig.subplots(1, max(1, len(order)), squeeze=False)[0]
    fold_handles: dict[str, Any] = {}
    curve_names: list[str] = []
    for ax, panel in zip(axes, order, strict=False):
        members = sorted(panels[panel], key=lambda x: min(x.get("folds") or [-1]))
        for x in members:
            c = colour[min(x.get("folds") or [-1])]
            label = _fold_text(x.get("folds") or [], str(x["id"])) if coloured else f"each fold ({len(all_folds)})"
            for curve, values in x["curves"].items():
                ax.plot(range(1, len(values) + 1), values, color=c, lw=1.0, alpha=0.85, ls=_curve_style(curve),
                        marker="o" if len(values) <= _MARK_UP_TO else None, ms=3)  # a 1-epoch line is a dot
                curve_names += [curve] if curve not in curve_names else []
            fold_handles.setdefault(label, Line2D([], [], color=c, lw=1.0, label=label))
        if len(members) > 1:
            for curve in dict.fromkeys(cv for x in members for cv in x["curves"]):
                rows = [x["curves"][curve] for x in members if curve in x["curves"]]
                grid = np.full((len(rows), max(len(r) for r in rows)), np.nan)
                for i, r in enumerate(rows):
                    grid[i, : len(r)] = r
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no fold reached: NaN, not drawn
                    mean = np.nanmean(grid, axis=0)
                ax.plot(range(1, grid.shape[1] + 1), mean, color="black", lw=2.4, ls=_curve_style(curve),
                        marker="o" if grid.shape[1] <= _MARK_UP_TO else None, ms=4)
        ax.set(xlabel="epoch", ylabel=_STAGE_LOSS.get(stage, "loss"), title=f"{_STAGE_TITLES.get(stage, stage)}: {panel}")
        n_epochs = max((len(v) for x in members for v in x["curves"].values()), default=1)
        ax.set_xlim(0.5, n_epochs + 0.5)  # whole epochs, also for a single one (matplotlib would zoom to ±0.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    style_handles = [Line2D([], [], color="black", lw=1.0, ls=_curve_style(cv), label=cv) for cv in curve_names]
    if any(len(v) > 1 for v in panels.values()):
        style_handles.append(Line2D([], [], color="black", lw=2.4, label="mean of the thin lines (bold)"))
    # one legend for all panels, outside them (no suptitle: a centred figure title would run into it)
    fig.legend(handles=[*fold_handles.values(), *style_handles], loc="outside right upper", fontsize=8,
               frameon=False, title="thin: one line per fold", title_fontsize=8)
    return fig


def _plot_curves(path: Path, stage: str, series: dict[str, dict[str, Any]], panel_order: list[str]) -> None:
    _save_figure(curves_figure(stage, series, panel_order), path)


def write_report(run_dir: str | Path, results: dict[str, Any], meta: dict[str, Any]) -> dict[str, Path]:
    """Write ``report.md``, ``results.json``, ``results.csv`` and PNG plots into ``run_dir`` (atomically).

    Returns:
        Name -> path of every file written.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plots: list[str] = []
    for label, block in results["labels"].items():
        _plot_confusion(run_dir / f"confusion_{label}.png", label, block["confusion"], block.get("class_names"))
        _plot_subjects(run_dir / f"subjects_{label}.png", label, block, meta)
        plots += [f"confusion_{label}.png", f"subjects_{label}.png"]
    for stage, series in (results.get("history") or {}).items():
        if series:
            name = f"curves_{stage}.png"
            _plot_curves(run_dir / name, stage, series, list(results["labels"]))
            plots.append(name)
    written.update({p: run_dir / p for p in plots})

    doc = {**results, "meta": meta}
    write_json_atomic(run_dir / "results.json", doc)
    with atomic_path(run_dir / "results.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(RESULTS_CSV_COLUMNS))
        w.writeheader()
        for row in _csv_rows(results):
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    write_text_atomic(run_dir / "report.md", render_markdown(results, meta, plots))
    written.update({n: run_dir / n for n in ("results.json", "results.csv", "report.md")})
    return written

