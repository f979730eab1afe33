"""The window cache (architecture contract 2): preprocessed signals as float32 memmaps plus metadata.

``build_cache`` streams one subject at a time from the reader through :mod:`physiosync.data.preprocess` straight
into raw float32 stores ``<modality>.f32`` of Shape: (n_subjects, n_trials, n_chans, n_samples) (read back
as memmaps), then writes ``trials.npz`` and, last, ``manifest.json``. The whole directory is built under a
temporary name and renamed into place, so a crash or a bad input file leaves nothing that looks
like a cache. Every window length is a reshape of the same stored array, so there is exactly one copy of
the data (method-spec §2.4, §8.2).

Reuse is decided by a content hash over: the sha256 of every input file, the *resolved* preprocessing plan
(so ``official=true`` and the equivalent explicit switches share a cache), the dataset, the subject list
and :data:`FORMAT_VERSION`. Hashing 3.3 GB of DEAP pickles costs seconds, so a file's sha256 recorded in
an existing manifest under the same cache root is trusted when the file's path, size and ``mtime_ns`` are
unchanged (the same shortcut ``make`` and ``rsync`` take); any change to size or mtime forces a re-hash.
Bump :data:`FORMAT_VERSION` whenever preprocessing output changes for the same inputs and settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from physiosync.atomic import TEMP_SUFFIX, clean_stale_temps, temp_prefix
from physiosync.config import RunConfig, dataset_ratings, window_problem
from physiosync.data.contract import DataContract
from physiosync.data.facts import prepared_contract
from physiosync.data.labels import Task, make_tasks
from physiosync.data.preprocess import (
    TARGET_SFREQ,
    PreprocessPlan,
    preprocess_recording,
    resolve_plan,
)
from physiosync.data.recording import SubjectRecording
from physiosync.data.table import WindowTable
from physiosync.errors import ConfigError, DataFormatError, shorten
from physiosync.training.runtime import keep_freed_memory

# 2: trials.npz holds every rating column and one label_<task> column per task; the manifest lists them
FORMAT_VERSION = 2
_HASH_BLOCK = 1 << 23  # 8 MiB reads: large enough that hashlib releases the GIL and reads stay sequential


class WindowCache:
    """Read-only view of a built cache directory; everything downstream of preprocessing uses only this.

    Attributes:
        path: The cache directory ``<cache_dir>/<dataset>-<hash[:12]>``.
        hash: Full content hash (hex sha256).
        manifest: The parsed ``manifest.json``.
        contract: The :class:`DataContract` of the prepared data.
        subjects: Subject ids in storage order.
        trials: ``trials.npz`` columns, each Shape: (n_subjects, n_trials).
        reused: True when :func:`build_cache` found this cache instead of building it.
    """

    def __init__(self, path: str | Path, manifest: dict[str, Any], reused: bool = False) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.hash: str = manifest["hash"]
        self.contract = DataContract.from_dict(manifest["contract"])
        self.subjects: list[str] = list(manifest["subjects"])
        self.n_trials: int = int(manifest["n_trials"])
        self.n_samples: int = int(manifest["n_samples"])
        self.sfreq: float = float(manifest.get("sfreq", TARGET_SFREQ))
        self.reused = reused
        with np.load(self.path / "trials.npz") as z:
            self.trials: dict[str, np.ndarray] = {k: z[k] for k in z.files}
        self._signals: dict[str, np.memmap] = {}
        self._tables: dict[float, WindowTable] = {}

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    @property
    def dataset(self) -> str:
        return str(self.manifest["dataset"])

    @property
    def modalities(self) -> list[str]:
        return [m.name for m in self.contract.modalities]

    @property
    def ratings(self) -> list[str]:
        """The rating columns stored in ``trials.npz`` (the dataset's, in file order)."""
        return list(self.manifest["ratings"])

    @cached_property
    def _task_map(self) -> dict[str, Task]:
        return make_tasks(self.manifest["tasks"])

    @property
    def tasks(self) -> dict[str, Task]:
        """The label tasks this cache's window tables carry, by name (as the manifest records them)."""
        return dict(self._task_map)

    def task(self, name: str) -> Task:
        """One label task by name (its class names, count and table column)."""
        tasks = self.tasks
        if name not in tasks:
            raise ConfigError(f"unknown label task {name!r}; this cache defines {sorted(tasks)}")
        return tasks[name]

    def signals(self, modality: str) -> np.memmap:
        """The stored stimulus signals, read-only. Shape: (n_subjects, n_trials, n_chans, n_samples) float32."""
        if modality not in self._signals:
            shape = tuple(self.manifest["shapes"][modality]) if modality in self.manifest["shapes"] else None
            if shape is None:
                raise KeyError(f"no modality {modality!r} in cache (have {self.modalities})")
            self._signals[modality] = np.memmap(self.path / f"{modality}.f32", dtype=np.float32, mode="r",
                                                shape=shape)
        return self._signals[modality]

    def window_samples(self, window_s: float) -> int:
        """Samples per window of ``window_s`` seconds at the prepared rate (must divide a trial)."""
        n = window_s * self.sfreq
        if abs(n - round(n)) > 1e-6 or round(n) <= 0 or self.n_samples % round(n):
            raise ValueError(f"window of {window_s} s does not tile a {self.n_samples}-sample trial at {self.sfreq} Hz")
        return int(round(n))

    def n_windows(self, window_s: float) -> int:
        """Windows per trial (60 for 1 s, 12 for 5 s on 60 s trials)."""
        return self.n_samples // self.window_samples(window_s)

    def windows(self, window_s: float) -> WindowTable:
        """One row per (subject, trial, window) of length ``window_s``; cached per length."""
        key = float(window_s)
        if key not in self._tables:
            t = self.trials
            self._tables[key] = WindowTable.from_trials(
                stimulus=t["stimulus"], ratings={r: t[r] for r in self.ratings},
                labels={name: t[task.column] for name, task in self.tasks.items()},
                n_windows=self.n_windows(key), window_s=key,
            )
        return self._tables[key]

    def get_windows(
        self, modality: str, window_s: float, subject: np.ndarray, trial: np.ndarray, window: np.ndarray
    ) -> np.ndarray:
        """Gather a batch of windows with one vectorised fancy index into a reshaped view.

        Shape: subject, trial, window (B,) int (broadcastable) -> (B, n_chans, n_times) float32.
        """
        w = self.window_samples(window_s)
        x = self.signals(modality)
        s, k, c, n = x.shape
        view = x.reshape(s, k, c, n // w, w)  # (S, K, C, n_win, W), a view: no data is read here
        idx = [np.asarray(a, dtype=np.intp) for a in (subject, trial, window)]
        # Advanced indices separated by a slice put the broadcast batch axis first: (B, C, W).
        return np.asarray(view[idx[0], idx[1], :, idx[2], :])

    def size_bytes(self) -> int:
        """Bytes on disk of all files in the cache directory."""
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())


# --------------------------------------------------------------------------------------------------
# hashing


def hash_file(path: str | Path) -> str:
    """sha256 of a file's bytes, read in large blocks."""
    h = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as fh:
            buf = bytearray(_HASH_BLOCK)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                h.update(view[:n])
    except OSError as e:
        raise DataFormatError(path, "<file>", f"unreadable ({e.strerror or type(e).__name__})",
                              "a readable input file") from None
    return h.hexdigest()


def _known_hashes(cache_dir: Path, dataset: str) -> dict[tuple[str, int, int], str]:
    """(file, size, mtime_ns) -> sha256 from the manifests of existing caches of this dataset."""
    known: dict[tuple[str, int, int], str] = {}
    if not cache_dir.is_dir():
        return known
    for manifest in cache_dir.glob(f"{dataset}-*/manifest.json"):
        try:
            entries = json.loads(manifest.read_text()).get("inputs", [])
            for e in entries:
                known[(e["file"], int(e["size"]), int(e["mtime_ns"]))] = str(e["sha256"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # an unreadable manifest only costs a re-hash
    return known


def describe_inputs(
    files: list[Path], cache_dir: Path, dataset: str, hash_missing: bool = True
) -> list[dict[str, Any]]:
    """Manifest entries (file, size, mtime_ns, sha256) for the input files, hashing only what changed.

    A sha256 recorded by an existing manifest is trusted when path, size and mtime_ns are unchanged.
    With ``hash_missing=False`` unknown digests stay ``None`` (the caller hashes them concurrently);
    otherwise they are computed on two threads (hashlib releases the GIL on large blocks).
    """
    known = _known_hashes(cache_dir, dataset)
    entries: list[dict[str, Any]] = []
    todo: list[int] = []
    for f in files:
        f = f.resolve()
        try:
            st = f.stat()
        except OSError as e:
            raise DataFormatError(f, "<file>", f"unreadable ({e.strerror})", "a readable input file") from None
        entry = {"file": str(f), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": None}
        entry["sha256"] = known.get((entry["file"], st.st_size, st.st_mtime_ns))
        if entry["sha256"] is None:
            todo.append(len(entries))
        entries.append(entry)
    if todo and hash_missing:
        with ThreadPoolExecutor(max_workers=min(2, len(todo))) as pool:
            for i, digest in zip(todo, pool.map(hash_file, [entries[i]["file"] for i in todo]), strict=True):
                entries[i]["sha256"] = digest
    return entries


def compute_cache_hash(
    dataset: str, plan: dict[str, Any], subjects: list[str], inputs: list[dict[str, Any]]
) -> str:
    """Content hash of everything that determines the cache's bytes (paths and mtimes excluded)."""
    payload = {
        "format_version": FORMAT_VERSION,
        "dataset": dataset,
        "preprocess": plan,
        "subjects": subjects,
        "inputs": [[Path(e["file"]).name, e["sha256"]] for e in inputs],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# readers: the registry (physiosync.data.readers) knows every dataset; nothing here tests a name


def list_inputs(cfg: RunConfig) -> list[tuple[str, Path]]:
    """(subject id, source file) pairs of the selected subjects in storage order, without loading signals."""
    from physiosync.data.readers import list_subjects

    return list_subjects(cfg.dataset)


def read_recordings(cfg: RunConfig, listing: list[tuple[str, Path]] | None = None) -> Iterator[SubjectRecording]:
    """The reader's lazy stream of the selected subjects (``listing``: from :func:`list_inputs`)."""
    from physiosync.data.readers import read_subjects

    return read_subjects(cfg.dataset, listing)


# --------------------------------------------------------------------------------------------------
# build / open


def open_cache(path: str | Path, reused: bool = False) -> WindowCache:
    """Open a built cache directory, checking its manifest and file sizes.

    Raises:
        DataFormatError: missing/unreadable manifest, another format version, or truncated files.
    """
    path = Path(path)
    mpath = path / "manifest.json"
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise DataFormatError(mpath, "<file>", "missing", "a cache directory built by build_cache") from None
    except ValueError as e:
        raise DataFormatError(mpath, "<file>", f"invalid JSON ({e})", "a manifest written by build_cache") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataFormatError(mpath, "format_version", manifest.get("format_version"), FORMAT_VERSION)
    for mod, shape in manifest.get("shapes", {}).items():
        f = path / f"{mod}.f32"
        expected = int(np.prod(shape)) * 4
        size = f.stat().st_size if f.is_file() else None
        if size != expected:
            raise DataFormatError(f, "size", size, f"{expected} bytes for float32 {tuple(shape)}")
    if not (path / "trials.npz").is_file():
        raise DataFormatError(path / "trials.npz", "<file>", "missing", "per-trial metadata")
    for key in ("ratings", "tasks"):
        if not isinstance(manifest.get(key), (list, dict)):
            raise DataFormatError(mpath, key, manifest.get(key), "the rating columns and label tasks of the cache")
    cache = WindowCache(path, manifest, reused=reused)
    try:
        tasks = cache.tasks  # parsed once here, so a damaged definition is a data error of the manifest
    except ValueError as e:
        raise DataFormatError(mpath, "tasks", shorten(str(e), 200), "task definitions written by build_cache") from None
    missing = [c for c in ("stimulus", *cache.ratings, *(t.column for t in tasks.values()))
               if c not in cache.trials]
    if missing:
        raise DataFormatError(path / "trials.npz", "columns", f"{missing} missing", "every column the manifest lists")
    return cache


def cache_path(cfg: RunConfig, cache_hash: str) -> Path:
    return Path(cfg.cache_dir) / f"{cfg.dataset.name}-{cache_hash[:12]}"


def _is_valid_cache(path: Path, cache_hash: str) -> WindowCache | None:
    if not (path / "manifest.json").is_file():
        return None
    try:
        cache = open_cache(path, reused=True)
    except DataFormatError:
        return None  # damaged or from another format version: rebuilt
    return cache if cache.hash == cache_hash else None


def _append_subject(files: dict[str, Any], buffers: dict[str, np.ndarray]) -> None:
    for mod, fh in files.items():
        fh.write(memoryview(buffers[mod]).cast("B"))


def _count_cropped(rec: SubjectRecording, facts: Any, cropped: dict[str, Any]) -> None:
    """Count the trials longer than the kept ``stimulus_s`` (cropped to it; the prepare summary says so)."""
    if facts.stimulus_segment == "whole":
        return
    eeg = facts.eeg
    for trial in rec.trials:
        rate = float((trial.sfreq or rec.sfreq).get(eeg, 0.0) or rec.sfreq.get(eeg, 0.0))
        n = np.shape(trial.signal.get(eeg, np.empty((0, 0))))[-1]
        seconds = n / rate if rate else 0.0
        cropped["of"] += 1
        if seconds > facts.stimulus_s + 0.5 / max(rate, 1.0):
            cropped["trials"] += 1
            cropped["longest_s"] = max(cropped["longest_s"], round(seconds, 3))


def _note_recorded(rec: SubjectRecording, recorded: dict[str, dict[str, Any]]) -> None:
    """Add what the reader returned for ``rec`` (channel names, native rates) to ``recorded``.

    Why: the prepared contract says what the model sees; this says what the *files* held before
    resampling, so ``physiosync predict`` can refuse new recordings whose channels or rates differ from
    a model's training data instead of silently preparing them another way.
    """
    for mod, names in rec.ch_names.items():
        entry = recorded.setdefault(mod, {"ch_names": list(names), "sfreq": []})
        rates = {float(rec.sfreq[mod])} if mod in rec.sfreq else set()
        for trial in rec.trials:  # readers whose files may differ in rate give one per trial
            per_trial = getattr(trial, "sfreq", None)
            if isinstance(per_trial, dict) and mod in per_trial:
                rates.add(float(per_trial[mod]))
        entry["sfreq"] = sorted(set(entry["sfreq"]) | rates)
        if list(names) != entry["ch_names"]:
            entry.setdefault("other_ch_names", [])
            if list(names) not in entry["other_ch_names"]:
                entry["other_ch_names"].append(list(names))


def _write_subjects(
    cfg: RunConfig, plan: PreprocessPlan, contract: DataContract, subjects: list[str], out_dir: Path, progress: bool,
    meta_cropped: dict[str, Any] | None = None,
    recorded: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, list[int]], dict[str, np.ndarray], int]:
    """Stream every subject through preprocessing into ``<modality>.f32`` files under ``out_dir``.

    Each subject is preprocessed into one reused float32 buffer per modality and appended to the store
    with a plain write, so the resident set stays ≈ one subject. ``meta_cropped`` (if given) receives how
    many trials were longer than the kept ``stimulus_s`` (trials of varying length are cropped to it).
    ``recorded`` (if given) receives the channel names and native rates the reader returned, per modality
    (:func:`_note_recorded`).

    Returns:
        (shapes per modality, per-trial metadata arrays Shape: (n_subjects, n_trials), n_trials).
    """
    from tqdm.auto import tqdm

    plan_ratings = dataset_ratings(plan.dataset_facts)
    shapes: dict[str, list[int]] = {}
    meta: dict[str, np.ndarray] = {}
    # Two sets of one-subject buffers, alternating: subject s is written by a background thread (the write
    # syscall releases the GIL) while subject s+1 is read and preprocessed. Writing the float32 store is
    # disk-bound (≈ 260 MB/s here: 1.3 GB ≈ 5 s for DEAP), as long as all the compute, so overlap matters.
    buffer_sets: list[dict[str, np.ndarray]] = [{}, {}]
    files: dict[str, Any] = {}
    writer = ThreadPoolExecutor(max_workers=1)
    pending: list[Any] = [None, None]
    n_trials = n_read = 0
    cropped: dict[str, Any] = {"trials": 0, "of": 0, "longest_s": 0.0}
    facts = plan.dataset_facts
    n_samples = facts.samples(facts.stimulus_s)
    bar = tqdm(total=len(subjects), desc=f"prepare {plan.dataset}", unit="subject", disable=not progress)
    try:
        for s, rec in enumerate(read_recordings(cfg)):
            if s >= len(subjects) or rec.subject != subjects[s]:
                raise DataFormatError(rec.source, "subject", rec.subject,
                                      subjects[s] if s < len(subjects) else "no more subjects")
            if not shapes:
                n_trials = rec.n_trials
                for m in contract.modalities:
                    shapes[m.name] = [len(subjects), n_trials, m.n_chans, n_samples]
                    for bufs in buffer_sets:
                        bufs[m.name] = np.empty(shapes[m.name][1:], dtype=np.float32)
                    files[m.name] = open(out_dir / f"{m.name}.f32", "wb")  # noqa: SIM115 - closed below
                meta = {"stimulus": np.zeros((len(subjects), n_trials), dtype=np.int64)}
                meta.update({r: np.zeros((len(subjects), n_trials), dtype=np.float64) for r in plan_ratings})
                meta.update({t.column: np.zeros((len(subjects), n_trials), dtype=np.int64)
                             for t in plan.tasks.values()})
            if rec.n_trials != n_trials:
                raise DataFormatError(rec.source, "n_trials", f"{rec.n_trials} for subject {rec.subject}",
                                      f"{n_trials} (as {subjects[0]})",
                                      hint="the cache stores (subjects, trials, …): every subject needs the same "
                                           "trials; leave others out with --set dataset.subjects=[...]")
            _count_cropped(rec, facts, cropped)
            if recorded is not None:
                _note_recorded(rec, recorded)
            slot = s % 2
            if pending[slot] is not None:
                pending[slot].result()  # this buffer set's previous write has finished (errors surface here)
            buffers = buffer_sets[slot]
            prepared = preprocess_recording(rec, plan, out=buffers)
            meta["stimulus"][s] = prepared.stimulus
            for k, v in {**prepared.ratings, **prepared.labels}.items():
                meta[k][s] = v
            # Subjects arrive in order, so each store is a sequential append: plain writes from reused
            # buffers are cheaper than faulting in fresh memmap pages; the resident set stays ≈ two subjects.
            pending[slot] = writer.submit(_append_subject, files, buffers)
            del rec, prepared  # release the subject before the reader loads the next one
            n_read += 1
            bar.update(1)
        for job in pending:
            if job is not None:
                job.result()
    finally:
        bar.close()
        writer.shutdown(wait=True)
        for fh in files.values():
            fh.close()
    if n_read != len(subjects):
        raise DataFormatError(cfg.dataset.data_dir, "subjects", f"{n_read} read", f"{len(subjects)} listed")
    if cropped["trials"]:
        meta_cropped.update(cropped, kept_s=facts.stimulus_s, segment=plan.segment)
    return shapes, meta, n_trials


def check_cache_dir(cache_dir: Path) -> None:
    """Fail fast, before any input is read, when the cache root cannot be a writable directory.

    ``cache_dir`` must be a directory this user may write and enter, or not exist yet below one (it is
    then created). ``os.access`` answers for the real user; root passes it everywhere except read-only
    file systems, and the creation of the build directory is still guarded (see :func:`build_cache`).

    Raises:
        DataFormatError: naming ``cache_dir`` (a file, or not writable).
    """
    probe = cache_dir
    try:
        while not probe.exists():
            if probe.is_symlink():
                raise DataFormatError(cache_dir, "cache_dir", f"{probe} is a broken symbolic link", "a directory")
            if probe.parent == probe:
                break
            probe = probe.parent
        if probe.exists() and not probe.is_dir():
            found = "a file" if probe == cache_dir else f"a path below the file {probe}"
            raise DataFormatError(cache_dir, "cache_dir", found, "a directory (created if missing)")
        if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
            raise DataFormatError(cache_dir, "cache_dir", f"{probe} is not writable by this user",
                                  "a writable directory")
    except OSError as e:
        raise DataFormatError(cache_dir, "cache_dir", f"inaccessible ({e.strerror or type(e).__name__})",
                              "a writable directory") from None


def _cache_write_error(cache_dir: Path, e: OSError) -> DataFormatError:
    where = f" {e.filename}" if e.filename else ""
    return DataFormatError(cache_dir, "cache_dir", f"cannot write{where} ({e.strerror or type(e).__name__})",
                           "a writable directory with free space")


def build_cache(cfg: RunConfig, progress: bool = True) -> WindowCache:
    """Prepare ``cfg.dataset`` into ``cfg.cache_dir`` (or reuse a cache whose hash matches).

    Streams one subject at a time: peak memory ≈ one loaded subject, its float64 working set and two
    float32 output buffers (one being written in the background).
    Input files whose sha256 is not already known are hashed on a second thread *while* the cache is
    built (on real DEAP hashing costs about as much as preprocessing); the build happens in a hidden
    temporary directory that is renamed to ``<dataset>-<hash[:12]>`` once complete (the final name is
    only known at the end). Should the finished hash name a valid existing cache, that one is reused.
    Temporary directories that killed builds left in ``cache_dir`` are removed first, stale ones only
    (:func:`physiosync.atomic.clean_stale_temps`: a concurrent build's directory is kept).

    Raises:
        DataFormatError: any bad input file; no cache directory is left behind.
        ConfigError: no data directory configured.
    """
    from physiosync.data.readers import facts_of, input_files

    dataset = cfg.dataset.name
    facts = facts_of(cfg.dataset, resolve_channels=True)
    assert facts is not None
    plan = resolve_plan(dataset, cfg.preprocess, cfg.tasks, facts)  # the tasks decide the stored label columns
    check_cache_dir(Path(cfg.cache_dir))
    listing = list_inputs(cfg)
    subjects = [sid for sid, _ in listing]
    # DREAMER: one file for every subject; own recordings: recordings + trials table + dataset file
    files = input_files(cfg.dataset, listing)
    cache_dir = Path(cfg.cache_dir)
    clean_stale_temps(cache_dir)  # half-built caches of killed builds (atomic.py: which ones are stale)
    inputs = describe_inputs(files, cache_dir, dataset, hash_missing=False)
    todo = [e for e in inputs if e["sha256"] is None]
    if not todo:  # every digest known: the hash, and so a reusable cache, can be found before reading
        known_hash = compute_cache_hash(dataset, plan.to_dict(), subjects, inputs)
        cache = _is_valid_cache(cache_path(cfg, known_hash), known_hash)
        if cache is not None:
            return cache

    # The window lengths the contract offers: 1 s and 5 s (DEAP, DREAMER) and the dataset's defaults, those
    # that tile a prepared trial (own recordings: any stimulus_s)
    n_samples = facts.samples(facts.stimulus_s)
    windows = tuple(w for w in sorted({1.0, 5.0, *facts.default_resolutions})
                    if window_problem([w], n_samples, facts.target_sfreq) is None)
    contract = prepared_contract(facts, windows)
    # Each subject unpickles ~100 MB arrays: without this, glibc maps and page-faults them afresh per
    # subject (measured on full-size DEAP: prepare 4.4 s -> 3.0 s). Process-wide, as training wants it too.
    keep_freed_memory()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(dataset), suffix=TEMP_SUFFIX, dir=cache_dir))
    except OSError as e:
        raise _cache_write_error(cache_dir, e) from None
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        digests = [pool.submit(hash_file, e["file"]) for e in todo]
        cropped: dict[str, Any] = {}
        recorded: dict[str, dict[str, Any]] = {}
        shapes, meta, n_trials = _write_subjects(cfg, plan, contract, subjects, tmp, progress, cropped, recorded)
        for e, d in zip(todo, digests, strict=True):
            e["sha256"] = d.result()
        cache_hash = compute_cache_hash(dataset, plan.to_dict(), subjects, inputs)
        path = cache_path(cfg, cache_hash)
        existing = _is_valid_cache(path, cache_hash)
        if existing is not None:
            return existing  # e.g. inputs touched but unchanged; the fresh build is discarded
        with open(tmp / "trials.npz", "wb") as fh:
            np.savez(fh, **meta)
        manifest = {
            "format_version": FORMAT_VERSION,
            "hash": cache_hash,
            "dataset": dataset,
            "data_dir": str(cfg.dataset.data_dir),
            "inputs": inputs,
            "preprocess": plan.to_dict(),
            "preprocess_config": cfg.preprocess.model_dump(mode="json"),
            "ratings": dataset_ratings(plan.dataset_facts),
            "tasks": {name: t.to_dict() for name, t in plan.tasks.items()},
            "contract": contract.to_dict(),
            "subjects": subjects,
            "n_trials": n_trials,
            "n_samples": facts.samples(facts.stimulus_s),
            "sfreq": facts.target_sfreq,
            "shapes": shapes,
            "dtype": "float32",
            **({"cropped": cropped} if cropped else {}),
            "recorded": recorded,  # channels and native rates as read (what `predict` checks new data against)
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))  # last: marks the build complete
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        if path.exists():
            shutil.rmtree(path)  # not a valid cache (checked above): a damaged leftover
        os.replace(tmp, path)
    except OSError as e:  # inputs' read errors are DataFormatErrors already: this is the cache side
        raise _cache_write_error(cache_dir, e) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return open_cache(path, reused=False)


# --------------------------------------------------------------------------------------------------
# summary


def _format_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"


def summarize_cache(cache: WindowCache) -> str:
    """Human-readable summary of a cache: sizes, class shares and per-subject majority baselines.

    The majority baseline of a subject is the accuracy of always predicting that subject's most frequent
    class; its mean over subjects is the floor a subject-dependent classifier has to beat.
    """
    t = cache.trials
    lines = [
        f"cache:      {cache.path}",
        f"hash:       {cache.hash[:12]} ({'reused' if cache.reused else 'built'})",
        f"dataset:    {cache.dataset}; modalities: "
        + ", ".join(f"{m.name} {m.n_chans} ch @ {m.sfreq:g} Hz" for m in cache.contract.modalities),
        f"subjects:   {cache.n_subjects} ({cache.subjects[0]}..{cache.subjects[-1]})",
        f"trials:     {cache.n_subjects * cache.n_trials} ({cache.n_trials} per subject)",
        "windows:    " + ", ".join(
            f"{w:g} s: {cache.n_subjects * cache.n_trials * cache.n_windows(w)} ({cache.n_windows(w)} per trial)"
            for w in cache.contract.window_s
        ),
    ]
    lines.append("labels:     class shares (all trials) | per-subject majority baseline mean [min, max]")
    tasks = cache.tasks
    width = max([8, *(len(name) for name in tasks)])
    for label, task in tasks.items():
        y = t[task.column]  # (S, K)
        counts = np.stack([(y == c).sum(axis=1) for c in range(task.n_classes)], axis=1)  # (S, n_classes)
        shares = counts.sum(axis=0) / counts.sum()
        majority = counts.max(axis=1) / counts.sum(axis=1)
        share_txt = " ".join(f"{c}={s:.2f}" for c, s in zip(task.class_names, shares, strict=True))
        lines.append(f"  {label:<{width}} {share_txt} | {majority.mean():.3f} [{majority.min():.3f}, "
                     f"{majority.max():.3f}]")
    cropped = cache.manifest.get("cropped")
    if cropped:
        lines.append(f"cropped:    {cropped['trials']} of {cropped['of']} trials longer than {cropped['kept_s']:g} s "
                     f"(up to {cropped['longest_s']:g} s): kept the {cropped['segment']} {cropped['kept_s']:g} s of each")
    if (t["stimulus"] < 0).any():
        lines.append("stimuli:    unknown (no stimulus column): protocols and pre-training pairing that pool "
                     "stimuli across subjects are refused")
    lines.append(f"size:       {_format_bytes(cache.size_bytes())} on disk")
    return "\n".join(lines)
