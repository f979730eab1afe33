"""``physiosync predict``: apply a model bundle to new recordings, prepared exactly as its training data.

What "exactly as" means: the bundle's reader (its ``dataset.name``), its dataset facts, its resolved
preprocessing (plan + config) and its window lengths; only the data location changes. Before anything is
predicted the new data are checked against the bundle's data contract, and every difference is listed in
one error — nothing is guessed, resampled differently or reordered silently:

- the dataset facts this installation would prepare the data with vs. the bundle's (a changed facts file);
- after preparation: the preprocessing plan, the prepared modalities (names, roles, channel names and
  order, prepared rate), the prepared trial length, and what the files held before resampling — channel
  names per modality and native sampling rates (each new rate must be one the training files had).

Labels are not needed: predictions are computed from the signals only. Where the data carry the task's
ratings, the tables add the true class (``<task>_true``); where they do not, that column is left out. (Own
recordings: a trials table without the rating columns is read through a private copy whose missing
ratings are placeholders the reader accepts — never used, never written out: :func:`_table_without_ratings`.)

Outputs (CSV, each written atomically), one column group per task of the bundle:

- windows (``--out``, default ``predictions.csv``): ``subject, trial, stimulus, window, start_s, stop_s``
  (seconds within the prepared trial), then per task ``<task>_predicted`` (class name),
  ``<task>_p_<class>`` (probabilities, full float64 precision) and ``<task>_true`` when known;
- trials (``<stem>_trials.csv`` beside it): ``subject, trial, stimulus, n_windows``, then per task the
  **mean of the trial's window probabilities** and its arg-max class (a trial's prediction is the average
  of its windows' class probabilities, not a vote).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from physiosync.atomic import write_text_atomic
from physiosync.config import RunConfig, resolve_config, validate_config
from physiosync.errors import ConfigError, DataFormatError, shorten
from physiosync.experiments.bundle import Bundle, load_bundle

log = logging.getLogger("physiosync")

# facts keys that name where this copy of the data is, not what the data are
_LOCATION_KEYS = (("recordings", "trials_table"),)


@dataclass(frozen=True)
class Predictions:
    """What :func:`predict` computed and wrote.

    Attributes:
        windows_csv, trials_csv: The written tables.
        cache: The prepared new data (:class:`~physiosync.data.cache.WindowCache`).
        table: Their windows at the bundle's window length; row ``i`` is ``proba[task][i]``.
        proba: Task -> window class probabilities, Shape: (n_windows, n_classes) float64.
        trial_proba: Task -> trial probabilities (mean over each trial's windows), Shape:
            (n_subjects * n_trials, n_classes), subject-major.
    """

    windows_csv: Path
    trials_csv: Path
    cache: Any
    table: Any
    proba: dict[str, np.ndarray]
    trial_proba: dict[str, np.ndarray]


def trials_csv_path(out: Path) -> Path:
    """Where the per-trial table of a per-window table ``out`` goes: ``<stem>_trials.csv`` beside it."""
    return out.with_name(f"{out.stem}_trials{out.suffix or '.csv'}")


# --------------------------------------------------------------------------------------------------
# configuration: the bundle's, with the new data's location


def _has_recordings(facts: dict[str, Any]) -> bool:
    return isinstance(facts.get("recordings"), dict)


def _table_without_ratings(table: Path, facts: dict[str, Any], work: Path) -> tuple[Path, list[str]]:
    """The trials table of new recordings, with placeholder values in the rating columns it lacks.

    Why: the recordings reader reads a table's ratings to make labels, but prediction needs none. A table
    without them is copied under ``work`` with those columns set to the low end of the rating scale — values
    that are never used: predictions come from the signals only, and the outputs leave out the true class
    of every task that reads a missing rating. Returns (the table to read, the missing rating columns).
    """
    rec = facts.get("recordings") or {}
    if rec.get("trials_from", "table") != "table":
        return table, []  # annotation trials: their ratings come from the dataset file's mapping
    text = table.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    header = [h.strip() for h in lines[0].split("\t")] if lines else []
    missing = [r for r in facts.get("ratings", []) if r not in header]
    if not missing:
        return table, []
    low = float(facts["rating_scale"][0])
    body = [line + "".join(f"\t{low:g}" for _ in missing) if line.strip() else line for line in lines[1:]]
    copy = "\n".join(["\t".join(header + missing), *body]) + "\n"
    path = work / f"trials-{hashlib.sha256(copy.encode()).hexdigest()[:16]}.tsv"
    if not path.is_file() or path.read_text() != copy:
        write_text_atomic(path, copy)
    return path, missing


def _dataset_file_for(bundle: Bundle, data_dir: Path, trials: Path | None, cache_dir: Path) -> tuple[Path, list[str]]:
    """A dataset file that is the bundle's facts, with the trials table of the new data (own recordings).

    Written under ``cache_dir/predict`` (content-named, so the same new data reuse one cache); the table
    path in it is absolute, since it is not beside this file. Returns (the file, rating columns the table
    lacks: :func:`_table_without_ratings`).
    """
    import yaml

    facts = json.loads(json.dumps(bundle.facts))
    default = facts["recordings"].get("trials_table") or "trials.tsv"
    table = Path(trials) if trials is not None else Path(data_dir) / Path(default).name
    if not table.is_file():
        raise DataFormatError(table, "<file>", "no such file",
                              "the trials table of the new recordings (--trials TABLE, default "
                              f"<data-dir>/{Path(default).name})")
    work = Path(cache_dir) / "predict"
    table, missing = _table_without_ratings(table, facts, work)
    facts["recordings"]["trials_table"] = str(table.resolve())
    text = ("# written by `physiosync predict`: the dataset facts of the model bundle\n# "
            f"{bundle.path.resolve()}, with the new data's trials table\n"
            + yaml.safe_dump(facts, sort_keys=False, allow_unicode=True))
    path = work / f"dataset-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    if not path.is_file() or path.read_text() != text:
        write_text_atomic(path, text)
    return path, missing


def prediction_config(
    bundle: Bundle, data_dir: str | Path, trials: str | Path | None = None, cache_dir: str | Path | None = None,
    device: str | None = None, subjects: list[str] | None = None,
) -> tuple[RunConfig, list[str]]:
    """The bundle's resolved config with the new data's location (and every subject found there), and the
    rating columns the new data lack (own recordings whose table has none: their true class is unknown).

    Raises:
        ConfigError: ``--trials`` for a dataset without a trials table.
    """
    data = bundle.config.model_dump(mode="json")
    data["dataset"]["data_dir"] = str(data_dir)
    data["dataset"]["subjects"] = subjects
    if cache_dir is not None:
        data["cache_dir"] = str(cache_dir)
    if device is not None:
        data["device"] = device
    if _has_recordings(bundle.facts):
        if "file" not in data["dataset"]:
            raise ConfigError(f"{bundle.path}: a bundle of own recordings needs the recordings reader "
                              "(dataset.file), which this installation lacks")
        file, missing = _dataset_file_for(bundle, Path(data_dir), None if trials is None else Path(trials),
                                          Path(data["cache_dir"]))
        data["dataset"]["file"] = str(file)
    elif trials is not None:
        raise ConfigError(f"--trials: the bundle's dataset {bundle.dataset!r} reads no trials table (its files "
                          "say what each trial is); --trials applies to own recordings")
    else:
        missing = []
    cfg = resolve_config(validate_config(data, f"{bundle.path / 'config.yaml'} (for new data in {data_dir})"))
    return cfg, missing


# --------------------------------------------------------------------------------------------------
# checks: the new data against the bundle's data contract


def _strip(d: dict[str, Any], keys: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    d = json.loads(json.dumps(d))
    for path in keys:
        node = d
        for p in path[:-1]:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return d


def facts_differences(bundle: Bundle, cfg: RunConfig) -> list[str]:
    """Differences between the bundle's dataset facts and those the new data would be prepared with."""
    from physiosync.experiments.fit import current_facts
    from physiosync.experiments.rundir import config_differences

    now = current_facts(cfg.dataset).model_dump(mode="json")
    diffs = config_differences(_strip(bundle.facts, _LOCATION_KEYS), _strip(now, _LOCATION_KEYS))
    return [f"facts {d.replace(' there, ', ' in the bundle, ')}" for d in diffs]


def _channel_differences(what: str, want: list[str], have: list[str]) -> list[str]:
    out = []
    missing = [c for c in want if c not in have]
    extra = [c for c in have if c not in want]
    if missing:
        out.append(f"{what}: missing {shorten(missing, 160)}")
    if extra:
        out.append(f"{what}: not in the bundle {shorten(extra, 160)}")
    if not missing and not extra and want != have:
        moved = [c for i, c in enumerate(have) if want[i] != c]
        out.append(f"{what}: another order ({len(moved)} channels moved, first {moved[0]!r} at position "
                   f"{have.index(moved[0])}, bundle {want.index(moved[0])})")
    return out


def data_differences(bundle: Bundle, cache: Any) -> list[str]:
    """Differences between the prepared new data (``cache``) and the bundle's data contract (module docstring)."""
    from physiosync.experiments.rundir import config_differences

    out: list[str] = []
    data = bundle.manifest["data"]
    plan = bundle.manifest["preprocess"].get("plan")
    if plan is not None and cache.manifest.get("preprocess") != plan:
        out += [f"preprocess.{d.replace(' there, ', ' in the bundle, ')}"
                for d in config_differences(plan, cache.manifest.get("preprocess") or {})]
    want = {m.name: m for m in bundle.contract.modalities}
    have = {m.name: m for m in cache.contract.modalities}
    for name in want.keys() - have.keys():
        out.append(f"modality {name!r} ({want[name].role}): missing")
    for name in have.keys() - want.keys():
        out.append(f"modality {name!r} ({have[name].role}): not in the bundle")
    for name in [n for n in want if n in have]:
        a, b = want[name], have[name]
        if a.role != b.role:
            out.append(f"modality {name!r}: role {b.role} (bundle: {a.role})")
        out += _channel_differences(f"{name} channels (prepared)", list(a.ch_names), list(b.ch_names))
        if a.sfreq != b.sfreq:
            out.append(f"{name}: prepared at {b.sfreq:g} Hz (bundle: {a.sfreq:g} Hz)")
    if int(cache.n_samples) != int(data["n_samples"]) or float(cache.sfreq) != float(data["sfreq"]):
        out.append(f"prepared trials of {cache.n_samples} samples at {cache.sfreq:g} Hz (bundle: {data['n_samples']} "
                   f"at {data['sfreq']:g} Hz)")
    rec_want: dict[str, Any] = data.get("recorded") or {}
    rec_have: dict[str, Any] = cache.manifest.get("recorded") or {}
    for name, w in rec_want.items():
        h = rec_have.get(name)
        if h is None:
            continue  # a cache built before channels were noted: its prepared contract was compared above
        out += _channel_differences(f"{name} channels (files)", list(w["ch_names"]), list(h["ch_names"]))
        for other in h.get("other_ch_names", []):
            out += _channel_differences(f"{name} channels (some files)", list(w["ch_names"]), list(other))
        rates = [float(r) for r in h.get("sfreq", [])]
        known = [float(r) for r in w.get("sfreq", [])]
        new = [r for r in rates if known and r not in known]
        if new:
            out.append(f"{name}: recorded at {', '.join(f'{r:g}' for r in new)} Hz (bundle's training files: "
                       f"{', '.join(f'{r:g}' for r in known)} Hz)")
    return out


# --------------------------------------------------------------------------------------------------
# prediction


def _labels_known(cache: Any, task: Any, missing: list[str]) -> bool:
    """Whether the new data carry this task's ratings (all finite), so the true class can be stated."""
    if any(c in missing for c in task.columns):
        return False
    cols = [c for c in task.columns if c in cache.trials]
    if len(cols) != len(task.columns) or task.column not in cache.trials:
        return False
    return all(np.isfinite(np.asarray(cache.trials[c], dtype=np.float64)).all() for c in cols)


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def predict(
    bundle: str | Path | Bundle,
    data_dir: str | Path,
    trials: str | Path | None = None,
    out: str | Path = "predictions.csv",
    cache_dir: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
) -> Predictions:
    """Prepare ``data_dir`` as the bundle's training data were prepared and predict every window.

    Args:
        bundle: A bundle directory (or a loaded :class:`~physiosync.experiments.bundle.Bundle`).
        data_dir: The new data: a folder in the layout of the bundle's dataset (DEAP ``sNN.dat``, DREAMER
            ``DREAMER.mat``, own recordings with their trials table).
        trials: Own recordings: the trials table (default ``<data_dir>/trials.tsv``); rating columns are
            not needed.
        out: The per-window CSV; the per-trial one goes beside it (:func:`trials_csv_path`).
        cache_dir: Where the new data's window cache goes (default: the bundle config's ``cache_dir``).
        device: ``auto``, ``cpu``, ``cuda``…; default the bundle config's.

    Raises:
        DataFormatError: the new data differ from the bundle's data contract (every difference listed), or
            a bad bundle / input file.
        ConfigError: bad options.
    """
    from physiosync.experiments.pipeline import prepare
    from physiosync.training.finetune import predict_rows
    from physiosync.training.runtime import resolve_device, set_threads

    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    cfg, missing = prediction_config(b, data_dir, trials, cache_dir, device)
    diffs = facts_differences(b, cfg)
    if diffs:
        raise DataFormatError(b.path / "bundle.json", "facts", "; ".join(diffs),
                              f"the {b.dataset} dataset facts the model was trained with",
                              hint="prepare the data with the physiosync version that wrote the bundle, or fit again")
    data = prepare(cfg, progress=progress)
    cache, table = data.cache, data.table
    diffs = data_differences(b, cache)
    if diffs:
        raise DataFormatError(data_dir, "channels/rates", "; ".join(diffs),
                              f"the data contract of the model bundle {b.path} (nothing is guessed: convert the "
                              "recordings, or fit a model on data like these)")
    if abs(float(table.window_s) - b.window_s) > 1e-9:  # resolutions are the bundle's: a programming error
        raise RuntimeError(f"window {table.window_s} s, bundle {b.window_s} s")
    set_threads(cfg.n_threads)
    dev = resolve_device(cfg.device)
    rows = np.arange(len(table), dtype=np.int64)
    proba: dict[str, np.ndarray] = {}
    for name in b.tasks:
        model = b.model(name, dev)
        proba[name] = predict_rows(model, cache, table, rows, cfg, dev, cfg.finetune.batch_size)
        del model
    n_win = int(table.n_windows)
    trial_proba = {name: p.reshape(-1, n_win, p.shape[1]).mean(axis=1) for name, p in proba.items()}

    out = Path(out)
    trials_out = trials_csv_path(out)
    known = {name: _labels_known(cache, task, missing) for name, task in b.tasks.items()}
    subj = [cache.subjects[i] for i in table.subject]
    head = ["subject", "trial", "stimulus", "window", "start_s", "stop_s"]
    cols: list[list[Any]] = [subj, table.trial.tolist(), table.stimulus.tolist(), table.window.tolist(),
                             (table.window * table.window_s).tolist(), ((table.window + 1) * table.window_s).tolist()]
    first = np.arange(0, len(table), n_win)  # the first window row of every trial
    t_head = ["subject", "trial", "stimulus", "n_windows"]
    t_cols: list[list[Any]] = [[subj[i] for i in first], table.trial[first].tolist(), table.stimulus[first].tolist(),
                               [n_win] * len(first)]
    for name, task in b.tasks.items():
        names = list(task.class_names)
        for level_head, level_cols, p, idx in ((head, cols, proba[name], rows), (t_head, t_cols, trial_proba[name], first)):
            level_head += [f"{name}_predicted", *(f"{name}_p_{c}" for c in names)]
            level_cols.append([names[k] for k in p.argmax(axis=1)])
            level_cols += [p[:, k].tolist() for k in range(len(names))]
            if known[name]:
                level_head.append(f"{name}_true")
                level_cols.append([names[k] for k in table.label(name)[idx]])
    write_text_atomic(out, _csv_text(head, [list(r) for r in zip(*cols, strict=True)]))
    write_text_atomic(trials_out, _csv_text(t_head, [list(r) for r in zip(*t_cols, strict=True)]))
    return Predictions(windows_csv=out, trials_csv=trials_out, cache=cache, table=table, proba=proba,
                       trial_proba=trial_proba)


__all__ = ["Predictions", "data_differences", "facts_differences", "predict", "prediction_config", "trials_csv_path"]
