"""The reader registry (issue 9 §2): one interface for every dataset, subject selection in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from physiosync.config import DatasetConfig, load_config, registered_datasets
from physiosync.data import readers
from physiosync.data.facts import facts_names
from physiosync.data.readers import READERS, get_reader, list_subjects, read_subjects
from physiosync.data.readers import deap as deap_reader
from physiosync.data.readers import dreamer as dreamer_reader
from physiosync.errors import ConfigError, DataFormatError
from physiosync.synth import SYNTHETIC, write_synthetic_deap, write_synthetic_dreamer


@pytest.fixture(scope="module")
def deap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deap")
    write_synthetic_deap(out, n_subjects=3, n_trials=2, seed=0)
    return out


@pytest.fixture(scope="module")
def dreamer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dreamer")
    write_synthetic_dreamer(out / "DREAMER.mat", n_subjects=3, n_trials=2, seed=0, clip_seconds=(60.0, 61.0))
    return out  # the folder: the DREAMER reader accepts the file or the folder containing it


def ds(name: str, data_dir: Path, subjects: list[str] | None = None) -> DatasetConfig:
    return DatasetConfig(name=name, data_dir=data_dir, subjects=subjects)


def test_every_registered_dataset_has_facts_and_a_synthetic_twin() -> None:
    assert sorted(READERS) == registered_datasets() == ["deap", "dreamer", "recordings"]
    for name, reader in READERS.items():
        assert reader.name == name
        # facts: a shipped facts file, or (own recordings) the user's dataset file read by the reader
        assert (name in facts_names()) != (reader.facts is not None) and name in SYNTHETIC


def test_unknown_dataset_is_a_config_error_listing_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'seed'; registered: deap, dreamer, recordings"):
        get_reader("seed")
    with pytest.raises(ConfigError) as e:
        load_config(overrides=["dataset.name=seed"])
    assert "dataset.name" in str(e.value) and "registered: deap, dreamer, recordings" in str(e.value)
    assert load_config(overrides=["dataset.name=dreamer"]).dataset.name == "dreamer"


def test_listing_loads_no_signal(deap_dir: Path, dreamer_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        pytest.fail("a signal was loaded while listing")

    monkeypatch.setattr(deap_reader, "_load_arrays", fail)
    monkeypatch.setattr(dreamer_reader, "_read_subject", fail)  # the struct is parsed, no subject is built
    listing = list_subjects(ds("deap", deap_dir))
    assert [s for s, _ in listing] == ["s01", "s02", "s03"]
    assert [p.name for _, p in listing] == ["s01.dat", "s02.dat", "s03.dat"]
    listing = list_subjects(ds("dreamer", dreamer_dir, ["s3", "s01"]))
    assert listing == [("s01", dreamer_dir / "DREAMER.mat"), ("s03", dreamer_dir / "DREAMER.mat")]


@pytest.mark.parametrize("name", ["deap", "dreamer"])
def test_subjects_are_read_one_at_a_time_in_listing_order(name: str, deap_dir: Path, dreamer_dir: Path) -> None:
    cfg = ds(name, deap_dir if name == "deap" else dreamer_dir, ["s03", "s01"])
    stream = read_subjects(cfg)
    first = next(stream)
    assert first.subject == "s01" and first.n_trials == 2
    assert [r.subject for r in stream] == ["s03"]
    one = readers.read_subject(cfg, "s03", list_subjects(cfg)[1][1])
    assert one.subject == "s03" and one.n_trials == 2


def test_dreamer_file_is_parsed_once_for_all_subjects(dreamer_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = dreamer_reader.load_dreamer_struct
    monkeypatch.setattr(dreamer_reader, "load_dreamer_struct", lambda p: calls.append(p) or real(p))
    cfg = ds("dreamer", dreamer_dir)
    listing = list_subjects(cfg)
    calls.clear()
    assert [r.subject for r in read_subjects(cfg, listing)] == ["s01", "s02", "s03"]
    assert len(calls) == 1


@pytest.mark.parametrize("name", ["deap", "dreamer"])
def test_unknown_subject_names_the_source_and_lists_the_valid_ids(name: str, deap_dir: Path,
                                                                  dreamer_dir: Path) -> None:
    data_dir = deap_dir if name == "deap" else dreamer_dir
    with pytest.raises(DataFormatError) as e:
        list_subjects(ds(name, data_dir, ["s02", "s07"]))
    source = data_dir if name == "deap" else data_dir / "DREAMER.mat"
    assert e.value.path == source and e.value.field == "subjects"
    assert "missing ['s07']" in str(e.value) and "one of [s01, s02, s03]" in str(e.value)


def test_selection_is_shared_by_the_readers_own_functions(deap_dir: Path, dreamer_dir: Path) -> None:
    # read_deap / read_dreamer (the per-format functions) select through the same code and messages
    for call in (lambda: readers.read_deap(deap_dir, subjects=["s09"]),
                 lambda: readers.read_dreamer(dreamer_dir / "DREAMER.mat", subjects=["s09"])):
        with pytest.raises(DataFormatError, match=r"missing \['s09'\]; expected one of \[s01, s02, s03\]"):
            call()
    with pytest.raises(DataFormatError, match="ids like 's01'"):
        readers.select_subjects("x", [("s01", None)], ["x1"])


def test_missing_data_dir_and_dreamer_folder_without_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset.data_dir is not set"):
        list_subjects(DatasetConfig(name="deap"))
    with pytest.raises(DataFormatError, match="a directory without DREAMER.mat"):
        list_subjects(ds("dreamer", tmp_path))
