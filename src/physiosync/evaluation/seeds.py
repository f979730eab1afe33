"""Results over seeds: mean ± std over (seed, fold) pairs, per-seed tables, paired tests over (seed, fold).

Why pooled pairs: each seed re-draws the folds its protocol draws and re-initialises every model, so a
(seed, fold) pair is one independent-ish evaluation of the configuration; the spread over all of them
shows both sources of variation. The spread of the per-seed means (``between_seeds``) is given beside it,
so a reader sees how much of it is seed-to-seed. Standard deviations use ``ddof`` 0 like every other
summary of this project (:data:`physiosync.evaluation.metrics.DDOF`).

Paired tests (``compare`` over seeds): a row against the ``physiosync`` row, Wilcoxon signed-rank on
accuracy paired by (seed, fold) — both rows of a seed use the same folds. With fewer than
:data:`~physiosync.evaluation.statistics.MIN_FOLD_PAIRS` pairs the pairs are (seed, subject) accuracies
instead; the unit is named in every result.
"""

from __future__ import annotations

from typing import Any

from physiosync.evaluation.formatting import format_pct, format_stat
from physiosync.evaluation.metrics import DDOF, aggregate, summarise
from physiosync.evaluation.statistics import MIN_FOLD_PAIRS, paired_test

SEEDS_FORMAT_VERSION = 1
TABLE_METRICS = ("accuracy", "balanced_accuracy", "f1", "trial_vote_accuracy", "majority_accuracy")
_NOT_METRICS = ("fold", "seed", "n", "majority_class", "confusion")


def seed_label_block(blocks: dict[int, dict[str, Any]], ddof: int = DDOF) -> dict[str, Any]:
    """One task over seeds, from each seed's ``results["labels"][task]`` block.

    Returns:
        ``summary`` (:func:`~physiosync.evaluation.metrics.aggregate` over every (seed, fold) pair; its
        ``n_folds`` is the number of pairs), ``per_seed`` (seed -> that seed's summary over its folds),
        ``between_seeds`` (metric -> mean ± std of the per-seed means), ``folds`` (the pairs, with
        ``seed``), ``n_classes``, ``unit``.
    """
    seeds = sorted(blocks)
    pairs = [{"seed": s, **f} for s in seeds for f in blocks[s]["folds"]]
    pooled = aggregate([{k: v for k, v in p.items() if k not in _NOT_METRICS} for p in pairs], ddof)
    per_seed = {s: blocks[s]["summary"] for s in seeds}
    between: dict[str, Any] = {}
    for m in TABLE_METRICS:
        means = [(per_seed[s].get(m) or {}).get("mean") for s in seeds]
        if all(v is not None for v in means):
            between[m] = summarise(means, ddof)
    first = blocks[seeds[0]]
    return {"n_classes": first.get("n_classes"), "unit": "(seed, fold) pairs", "summary": pooled,
            "per_seed": per_seed, "between_seeds": between,
            "folds": [{k: v for k, v in p.items() if k != "confusion"} for p in pairs]}


def seed_results(results_by_seed: dict[int, dict[str, Any]], ddof: int = DDOF) -> dict[str, Any]:
    """A run over seeds: per task :func:`seed_label_block` of the seeds' ``results.json`` documents."""
    seeds = sorted(results_by_seed)
    first = results_by_seed[seeds[0]]
    labels = [lab for lab in first["labels"] if all(lab in results_by_seed[s]["labels"] for s in seeds)]
    return {
        "format_version": SEEDS_FORMAT_VERSION,
        "seeds": seeds,
        "ddof": ddof,
        "unit": "(seed, fold) pairs",
        "protocol": {**first["protocol"], "n_folds": max(len(r["labels"][lab]["folds"]) for r in results_by_seed.values()
                                                         for lab in labels) if labels else 0},
        "labels": {lab: seed_label_block({s: results_by_seed[s]["labels"][lab] for s in seeds}, ddof)
                   for lab in labels},
    }


def _pair_block(blocks: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A label block whose folds and subjects are keyed by seed, for :func:`paired_test`."""
    return {"folds": [{"fold": (s, f["fold"]), "accuracy": f["accuracy"]} for s, b in blocks.items() for f in b["folds"]],
            "subjects": {"per_subject": [{"subject": (s, p["subject"]), "accuracy": p["accuracy"]}
                                         for s, b in blocks.items() for p in b["subjects"]["per_subject"]]}}


def seed_paired_test(row: dict[int, dict[str, Any]], ref: dict[int, dict[str, Any]],
                     min_pairs: int = MIN_FOLD_PAIRS) -> dict[str, Any]:
    """Wilcoxon of a row against the reference over (seed, fold) pairs, or (seed, subject) pairs when fewer
    than ``min_pairs`` (seed, fold) pairs are common."""
    common = sorted(set(row) & set(ref))
    t = paired_test(_pair_block({s: row[s] for s in common}), _pair_block({s: ref[s] for s in common}), min_pairs)
    t["unit"] = "(seed, fold) pairs" if t["unit"] == "folds" else "(seed, subject) pairs"
    return t


def seed_comparison(docs_by_seed: dict[int, dict[str, Any]], reference: str = "physiosync") -> dict[str, Any]:
    """A ``compare`` over seeds from each seed's ``comparison.json`` document.

    Returns:
        ``rows`` (row -> task -> :func:`seed_label_block` + ``test`` against ``reference``), ``table``
        (flat lines: row, task, accuracy and balanced accuracy over (seed, fold) pairs, per-seed accuracy,
        the test), ``seeds``, ``unit``, ``paired_test``.
    """
    seeds = sorted(docs_by_seed)
    rows: list[str] = []
    for s in seeds:
        rows += [r for r in docs_by_seed[s]["results"] if r not in rows]
    out_rows: dict[str, dict[str, Any]] = {}
    table = []
    for r in rows:
        have = {s: docs_by_seed[s]["results"][r] for s in seeds if r in docs_by_seed[s]["results"]}
        out_rows[r] = {}
        for label in next(iter(have.values()))["labels"]:
            blocks = {s: res["labels"][label] for s, res in have.items() if label in res["labels"]}
            block = seed_label_block(blocks)
            refs = {s: docs_by_seed[s]["results"][reference]["labels"][label] for s in seeds
                    if reference in docs_by_seed[s]["results"] and label in docs_by_seed[s]["results"][reference]["labels"]}
            block["test"] = None if r == reference or not refs else seed_paired_test(blocks, refs)
            out_rows[r][label] = block
            line = {"row": r, "label": label, "n_seeds": len(blocks), "n_pairs": block["summary"]["n_folds"]}
            for m in ("accuracy", "balanced_accuracy"):
                st = block["summary"].get(m) or {}
                line[f"{m}_mean"], line[f"{m}_std"] = st.get("mean"), st.get("std")
            line["per_seed_accuracy"] = {str(s): (block["per_seed"][s].get("accuracy") or {}).get("mean")
                                         for s in sorted(blocks)}
            t = block["test"] or {}
            line.update(test_unit=t.get("unit"), wilcoxon_statistic=t.get("statistic"), wilcoxon_p=t.get("p_value"),
                        wilcoxon_n=t.get("n"), note=t.get("note", "reference row" if r == reference else ""))
            table.append(line)
    return {"format_version": SEEDS_FORMAT_VERSION, "seeds": seeds, "ddof": DDOF, "unit": "(seed, fold) pairs",
            "paired_test": {"test": f"scipy.stats.wilcoxon (two-sided signed-rank) on accuracy vs {reference}",
                            "pairs": f"(seed, fold) pairs; (seed, subject) pairs when fewer than {MIN_FOLD_PAIRS}"},
            "rows": out_rows, "table": table}


def render_seed_results(doc: dict[str, Any]) -> str:
    """``seeds.md`` of a run over seeds: pooled table, then one per-seed table per task."""
    seeds = doc["seeds"]
    lines = [f"# Results over seeds {', '.join(map(str, seeds))}", "",
             f"Mean ± std (%, ddof {doc['ddof']}) over {doc['unit']}; `between seeds` is the spread of the "
             "per-seed means. Each seed is its own run directory (`seed<k>/`) with its own folds.", ""]
    head = "| task | " + " | ".join(TABLE_METRICS) + " | accuracy between seeds |"
    lines += [head, "|" + "---|" * (len(TABLE_METRICS) + 2)]
    for label, b in doc["labels"].items():
        cells = [format_stat(b["summary"].get(m)) for m in TABLE_METRICS]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {format_stat(b['between_seeds'].get('accuracy'))} |")
    for label, b in doc["labels"].items():
        lines += ["", f"## {label}: per seed (mean ± std over folds)", "",
                  "| seed | " + " | ".join(TABLE_METRICS) + " |", "|" + "---|" * (len(TABLE_METRICS) + 1)]
        for s, summ in b["per_seed"].items():
            lines.append(f"| {s} | " + " | ".join(format_stat(summ.get(m)) for m in TABLE_METRICS) + " |")
    return "\n".join(lines) + "\n"


def render_seed_comparison(doc: dict[str, Any]) -> str:
    """``comparison-seeds.md``: one line per (row, task) with the pooled accuracy, per-seed accuracy, test."""
    seeds = doc["seeds"]
    lines = [f"# Comparison over seeds {', '.join(map(str, seeds))}", "",
             f"Accuracy mean ± std (%, ddof {doc['ddof']}) over {doc['unit']}; per-seed columns: mean over that "
             f"seed's folds. Paired test: {doc['paired_test']['test']}, pairs: {doc['paired_test']['pairs']}.", "",
             "| row | task | accuracy | balanced acc. | " + " | ".join(f"seed {s}" for s in seeds) + " | p (unit, n) |",
             "|" + "---|" * (5 + len(seeds))]
    for line in doc["table"]:
        per = [format_pct(line["per_seed_accuracy"].get(str(s))) for s in seeds]
        p = line["wilcoxon_p"]
        test = (f"{p:.3g} ({line['test_unit']}, n={line['wilcoxon_n']})" if p is not None
                else (line["note"] or "—"))
        lines.append(f"| {line['row']} | {line['label']} | {format_pct(line['accuracy_mean'], line['accuracy_std'])} | "
                     f"{format_pct(line['balanced_accuracy_mean'], line['balanced_accuracy_std'])} | "
                     + " | ".join(per) + f" | {test} |")
    return "\n".join(lines) + "\n"
