"""Readers of the raw dataset files (contract 1) and their registry.

:data:`READERS` maps a dataset name to a :class:`Reader`: two operations, *list* (subject ids and source
files, without loading signals: for hashing and progress) and *read one subject* (into the
:class:`~physiosync.data.recording.SubjectRecording` contract). Everything else — which dataset, the
subject selection (:func:`~physiosync.data.readers.subjects.select_subjects`, one place for every reader),
streaming the subjects in order — is done here, so the cache only calls :func:`list_subjects` and
:func:`read_subjects` and never tests a dataset name. Adding a dataset = a reader registered here + a facts
file ``data/datasets/<name>.yaml`` + a synthetic twin in ``physiosync.synth`` (``docs/datasets.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from physiosync.data.facts import DatasetFacts, dataset_facts
from physiosync.data.readers import deap as _deap
from physiosync.data.readers import dreamer as _dreamer
from physiosync.data.readers import recordings as _recordings
from physiosync.data.readers.deap import list_deap_subjects, read_deap, read_deap_subject
from physiosync.data.readers.dreamer import list_dreamer_subjects, read_dreamer
from physiosync.data.readers.safe_pickle import load_pickle
from physiosync.data.readers.subjects import canonical_subject_id, select_subjects
from physiosync.data.recording import SubjectRecording
from physiosync.errors import ConfigError

if TYPE_CHECKING:
    from physiosync.config import DatasetConfig

Listing = list[tuple[str, Path]]


@dataclass(frozen=True)
class Reader:
    """How one dataset's raw files are read.

    Attributes:
        name: The dataset name (``dataset.name``; also the facts file ``data/datasets/<name>.yaml``).
        list_subjects: ``(ds) -> [(subject id, source file)]``: every subject the files hold, in storage
            order, without loading signals. No selection: :func:`list_subjects` applies ``ds.subjects``.
        read_subject: ``(ds, subject id, source file) -> SubjectRecording``: one validated subject.
        read_subjects: Optional ``(ds, listing) -> iterator`` for formats where reading subjects one call
            at a time would parse a shared file again for each (DREAMER: one ``.mat`` for all subjects).
        data_dir_help: What ``dataset.data_dir`` must point at (CLI help, messages).
        facts: Optional ``(ds, resolve_channels) -> DatasetFacts | None`` for datasets whose facts come from
            the user's dataset file rather than ``data/datasets/<name>.yaml`` (own recordings); None when
            the file cannot be located yet (no ``data_dir``/``file``). Without it: the shipped facts file.
        input_files: Optional ``(ds, listing) -> files`` the cache hash covers, where they are more than the
            listing's source files (own recordings: every recording file, the trials table, the dataset file).
    """

    name: str
    list_subjects: Callable[[DatasetConfig], Listing]
    read_subject: Callable[[DatasetConfig, str, Path], SubjectRecording]
    read_subjects: Callable[[DatasetConfig, Listing], Iterator[SubjectRecording]] | None = None
    data_dir_help: str = ""
    facts: Callable[[DatasetConfig, bool], DatasetFacts | None] | None = None
    input_files: Callable[[DatasetConfig, Listing], list[Path]] | None = None


READERS: dict[str, Reader] = {
    "deap": Reader(
        name="deap", list_subjects=_deap.list_all, read_subject=_deap.read_subject,
        data_dir_help="DEAP folder with sNN.dat/sNN.mat (or its data_preprocessed_* parent)",
    ),
    "dreamer": Reader(
        name="dreamer", list_subjects=_dreamer.list_all, read_subject=_dreamer.read_subject,
        read_subjects=_dreamer.read_subjects, data_dir_help="DREAMER: DREAMER.mat or the folder containing it",
    ),
    "recordings": Reader(
        name="recordings", list_subjects=_recordings.list_all, read_subject=_recordings.read_subject,
        facts=_recordings.facts, input_files=_recordings.input_files,
        data_dir_help="recordings: the folder of recording files (EDF/BDF/FIF/BrainVision/EEGLAB/GDF) that the "
                      "trials table's file column is relative to",
    ),
}


def facts_of(ds: DatasetConfig, required: bool = True, resolve_channels: bool = False) -> DatasetFacts | None:
    """The facts of the configured dataset: the shipped ``datasets/<name>.yaml``, or the reader's (own
    recordings: the dataset file ``ds.file``, default ``data_dir/dataset.yaml``).

    Args:
        required: Raise when the facts cannot be located yet (own recordings without ``data_dir``/``file``);
            with ``False`` return None then (config validation checks what it can).
        resolve_channels: Resolve channel ``pattern`` entries into ``ch_names`` (reads one file header).

    Raises:
        ConfigError: unknown dataset, an invalid dataset file (naming it and the key), or (``required``) none.
    """
    reader = get_reader(ds.name)
    if reader.facts is None:
        return dataset_facts(ds.name)
    facts = reader.facts(ds, resolve_channels)
    if facts is None and required:
        raise ConfigError(f"dataset.name {ds.name!r}: no dataset file: set dataset.data_dir (the file defaults to "
                          "<data_dir>/dataset.yaml) or dataset.file")
    return facts


def input_files(ds: DatasetConfig, listing: Listing) -> list[Path]:
    """Every file the cache content hash covers, in a stable order (default: the listing's source files)."""
    reader = get_reader(ds.name)
    if reader.input_files is not None:
        return reader.input_files(ds, listing)
    return list(dict.fromkeys(Path(f) for _, f in listing))


def get_reader(name: str) -> Reader:
    """The registered reader of a dataset.

    Raises:
        ConfigError: no reader of that name (listing the registered ones).
    """
    reader = READERS.get(name)
    if reader is None:
        raise ConfigError(f"dataset.name: unknown dataset {name!r}; registered: {', '.join(sorted(READERS))}")
    return reader


def _data_dir(ds: DatasetConfig) -> Path:
    if ds.data_dir is None:
        raise ConfigError("dataset.data_dir is not set (use --data-dir or dataset.data_dir in the config)")
    return Path(ds.data_dir)


def list_subjects(ds: DatasetConfig) -> Listing:
    """``(subject id, source file)`` of the selected subjects (``ds.subjects``), in storage order.

    Raises:
        ConfigError: unknown dataset or no ``data_dir``.
        DataFormatError: unreadable files, or requested subjects that the source does not hold (naming the
            file or folder and listing the valid ids).
    """
    reader = get_reader(ds.name)
    data_dir = _data_dir(ds)
    listing = list(reader.list_subjects(ds))
    files = {p for _, p in listing}
    source = next(iter(files)) if len(files) == 1 else data_dir  # one file for all subjects: name it
    return select_subjects(source, listing, ds.subjects)


def read_subjects(ds: DatasetConfig, listing: Listing | None = None) -> Iterator[SubjectRecording]:
    """The selected subjects one at a time, in ``listing`` order (default: :func:`list_subjects`)."""
    reader = get_reader(ds.name)
    if listing is None:
        listing = list_subjects(ds)
    if reader.read_subjects is not None:
        return reader.read_subjects(ds, listing)
    return (reader.read_subject(ds, sid, path) for sid, path in listing)


def read_subject(ds: DatasetConfig, subject: str, path: Path) -> SubjectRecording:
    """One subject of a listing, read by the dataset's reader."""
    return get_reader(ds.name).read_subject(ds, subject, path)


__all__ = [
    "READERS",
    "Reader",
    "canonical_subject_id",
    "facts_of",
    "input_files",
    "get_reader",
    "list_deap_subjects",
    "list_dreamer_subjects",
    "list_subjects",
    "load_pickle",
    "read_deap",
    "read_deap_subject",
    "read_dreamer",
    "read_subject",
    "read_subjects",
    "select_subjects",
]
