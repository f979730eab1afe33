"""The paper's published result tables (method-spec §9.1) as data, to print beside our numbers.

The numbers live in the dataset facts files (``paper_results``: source, then one table per setting): the
README of GitHub ``MSA-LMC/PhysioSync`` (result images, also in the paper: Cui et al., arXiv 2504.17163,
IEEE TCSS 2025), as transcribed in method-spec.md §9.1 (Tables A, B, C). Values are percent,
``(mean, std)``; ``None`` where the table prints "—" (no value or no std). ``starred`` marks the methods
printed with "*" (no legend; presumably re-run by the authors).

Comparability: the subject-dependent tables (A, B) come from the authors' pooled-subject 10-fold over
shuffled windows — our ``paper`` protocol, which leaks trial identity (D5); DEAP cross-subject (Table C)
used 10 subject folds with LOSO pre-training checkpoints (D7), DREAMER cross-subject was LOSO at both stages.
"""

from __future__ import annotations

from typing import Any

from physiosync.data.facts import dataset_facts, facts_names

OURS = "Ours (PhysioSync)"

Value = tuple[float, float | None] | None
Row = tuple[str, str | None, bool, tuple[Value, ...]]  # method, modalities, starred, values per column


def paper_tables() -> dict[tuple[str, str], dict[str, Any]]:
    """Every published table, keyed ``(dataset, setting)`` (setting ``dependent`` or ``cross``).

    Read from the ``paper_results`` section of each dataset's facts file (the numbers belong to the
    dataset, with their source there), so a dataset without published numbers simply has none.
    """
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    for name in facts_names():
        results = dataset_facts(name).paper_results
        if results is None:
            continue
        for setting in ("dependent", "cross"):
            t = getattr(results, setting)
            if t is not None:
                rows = [(r.method, r.modalities, r.starred, tuple(r.values)) for r in t.rows]
                tables[(name, setting)] = {"title": t.title, "columns": tuple(t.columns), "rows": rows,
                                           "source": results.source}
    return tables


TABLES: dict[tuple[str, str], dict[str, Any]] = paper_tables()

# Which published setting a protocol of ours corresponds to, and how comparable the numbers are.
_SETTING = {
    "paper": ("dependent", "Same protocol as the paper (pooled-subject 10-fold over shuffled windows): comparable, "
              "and equally LEAKY — both numbers largely measure trial identification."),
    "stimulus-kfold": ("dependent", "NOT comparable: the paper's subject-dependent numbers come from the leaky "
                       "window-level split; ours hold out whole stimuli, where published models fall to ~51-66 %."),
    "subject-trial-kfold": ("dependent", "NOT comparable: the paper's subject-dependent numbers come from the leaky "
                            "window-level split; ours hold out whole trials per subject."),
    "loso": ("cross", "Roughly comparable: same cross-subject setting (DEAP paper numbers: 10 subject folds whose "
             "pre-training had seen most test subjects, D7; DREAMER: LOSO)."),
    "subject-kfold": ("cross", "Roughly comparable: cross-subject setting (DEAP paper numbers: 10 subject folds "
                      "whose pre-training had seen most test subjects, D7; DREAMER: LOSO)."),
}


def paper_reference(dataset: str, protocol: str) -> dict[str, Any] | None:
    """The paper's PhysioSync numbers for a dataset and protocol, with the table and a comparability note.

    Returns None for datasets whose facts file has no published table for that setting (or no facts).
    Otherwise ``{"table", "source", "note", "ours": {label: {"accuracy": (m, s), "f1": (m, s)}}}``
    in percent (labels ``arousal``, ``valence``, and ``four`` for the subject-dependent tables).
    """
    if protocol not in _SETTING:
        raise KeyError(f"unknown protocol {protocol!r}")
    setting, note = _SETTING[protocol]
    table = TABLES.get((dataset, setting))
    if table is None:
        return None
    values = next(dict(zip(table["columns"], r[3], strict=True)) for r in table["rows"] if r[0] == OURS)
    labels = dict.fromkeys(c.rsplit("_", 1)[0] for c in table["columns"])  # in column order
    ours = {lab: {"accuracy": values[f"{lab}_acc"], "f1": values[f"{lab}_f1"]} for lab in labels}
    return {"table": table["title"], "source": table["source"], "note": note, "ours": ours}
