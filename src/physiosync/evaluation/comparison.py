"""The comparison's outputs: its flat table, ``comparison.md`` / ``.csv`` / ``.json`` / ``.png`` and the console table.

Input is the ``comparison.json`` document :func:`physiosync.experiments.compare.run_compare` assembles:
``protocol``, ``rows`` (status per row), ``results`` (row -> ``results`` dict of
:mod:`physiosync.evaluation.report`), ``table`` (:func:`comparison_table`) and ``meta``. Rendering only reads
it, so every output says the same numbers; the protocol comes first in each (a leaky protocol is the first
thing a reader must know). Percentages are :func:`physiosync.evaluation.formatting.format_pct` with one
decimal. Files are written atomically.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from physiosync.atomic import atomic_path, write_json_atomic, write_text_atomic
from physiosync.evaluation.formatting import dataset_label, format_pct
from physiosync.evaluation.report import chance_cells, chance_legend
from physiosync.evaluation.statistics import MIN_FOLD_PAIRS, paired_test

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


def comparison_table(results: dict[str, dict[str, Any]], kinds: dict[str, str], reference: str) -> list[dict[str, Any]]:
    """One flat line (the :data:`CSV_COLUMNS`) per (row, label), in the order of ``results``.

    Args:
        results: row -> ``results`` dict (its ``labels`` blocks, :func:`physiosync.evaluation.report.summarise_label`).
        kinds: row -> ``baseline`` / ``physiosync`` / ``ablation`` (the plot's colours).
        reference: The row every other row is tested against (:func:`physiosync.evaluation.statistics.paired_test`).
    """
    ref = results.get(reference)
    table = []
    for r, res in results.items():
        for label, b in res["labels"].items():
            s, subj = b["summary"], b["subjects"]["summary"]
            line: dict[str, Any] = {"row": r, "label": label, "kind": kinds[r], "n_classes": b["n_classes"],
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
            line.update(n_folds=s["n_folds"], n_subjects=subj["n_subjects"], ddof=res["ddof"])
            if r == reference or ref is None or label not in ref["labels"]:
                why = "reference row" if r == reference else f"{reference} row not run"
                line.update(test_unit=None, wilcoxon_statistic=None, wilcoxon_p=None, wilcoxon_n=None, note=why)
            else:
                t = paired_test(b, ref["labels"][label])
                line.update(test_unit=t["unit"], wilcoxon_statistic=t["statistic"], wilcoxon_p=t["p_value"],
                            wilcoxon_n=t["n"], note=t["note"])
            table.append(line)
    return table


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
        lines.append(f"{x['row']:<17} {x['label']:<{w}} {format_pct(x['accuracy_mean'], x['accuracy_std']):>12} "
                     f"{format_pct(x['balanced_accuracy_mean'], x['balanced_accuracy_std']):>12} "
                     f"{format_pct(x['f1_mean'], x['f1_std']):>12} "
                     f"{format_pct(x['trial_vote_accuracy_mean'], x['trial_vote_accuracy_std']):>12} "
                     f"{format_pct(x['majority_accuracy_mean'], x['majority_accuracy_std']):>12} "
                     f"{format_pct(x.get('chance_mean'), x.get('chance_std')):>12}  {_p(x)}")
    for r, st in doc["rows"].items():
        if st["status"] == "skipped":
            lines.append(f"{r}: {st['note']}")
    return "\n".join(lines)


def render_markdown(doc: dict[str, Any], plot: str | None) -> str:
    """Text of ``comparison.md``."""
    p, meta = doc["protocol"], doc["meta"]
    lines = ["# PhysioSync comparison — baselines and ablations under the same folds", ""]
    if p["leaky"]:
        lines += ["> **⚠ LEAKY PROTOCOL (`paper`).** Test windows share trials with training windows; these",
                  "> numbers largely measure trial identification. Use them only against the published table.", ""]
    lines += ["## Protocol", "", *protocol_header(doc), "", p["description"], "",
              f"Folds: `{p['folds_file']}` (folds {p['folds_run']} run), identical for every row "
              "(checked on each row's test windows).", "",
              f"Dataset {dataset_label(meta)} ({meta['data_origin']}), preset {meta['preset'] or '—'}, seed "
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
            f"| {x['row']} | {x['label']} | {format_pct(x['accuracy_mean'], x['accuracy_std'])} | "
            f"{format_pct(x['balanced_accuracy_mean'], x['balanced_accuracy_std'])} | "
            f"{format_pct(x['f1_mean'], x['f1_std'])} ({x['f1_kind']}) | {format_pct(x['f1_macro_mean'], x['f1_macro_std'])} | "
            f"{format_pct(x['trial_vote_accuracy_mean'], x['trial_vote_accuracy_std'])} | "
            f"{format_pct(x['subject_accuracy_mean'], x['subject_accuracy_std'])} | "
            f"{format_pct(x['majority_accuracy_mean'], x['majority_accuracy_std'])} | {chance_cell} | {p_cell} | {_p(x)} |")
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
