"""DREAMER reader: the §1.2 struct layout, round trips, subject subsets and clear errors on bad input."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from physiosync.data.readers import list_dreamer_subjects, read_dreamer
from physiosync.errors import DataFormatError
from physiosync.synth.dreamer import build_dreamer_struct, save_dreamer_struct

N_SUBJECTS, N_CLIPS = 2, 3


@pytest.fixture(scope="module")
def struct() -> dict:
    return build_dreamer_struct(N_SUBJECTS, N_CLIPS, seed=2, clip_seconds=(60.0, 62.0))


@pytest.fixture(scope="module")
def mat_path(struct: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_dreamer_struct(tmp_path_factory.mktemp("dreamer") / "DREAMER.mat", struct)


def test_round_trip_against_loadmat_paths(mat_path: Path) -> None:
    raw = scipy.io.loadmat(mat_path)["DREAMER"][0, 0]
    recs = list(read_dreamer(mat_path))
    assert [r.subject for r in recs] == ["s01", "s02"]
    for s, rec in enumerate(recs):
        subj = raw["Data"][0, s]
        assert rec.n_trials == N_CLIPS and rec.sfreq == {"eeg": 128.0, "ecg": 256.0}
        assert rec.ch_names["eeg"][0] == "AF3" and len(rec.ch_names["eeg"]) == 14 and len(rec.ch_names["ecg"]) == 2
        for k, trial in enumerate(rec.trials):
            assert trial.stimulus == k
            np.testing.assert_array_equal(trial.signal["eeg"], subj["EEG"][0, 0]["stimuli"][0, 0][k, 0].T)
            np.testing.assert_array_equal(trial.baseline["eeg"], subj["EEG"][0, 0]["baseline"][0, 0][k, 0].T)
            np.testing.assert_array_equal(trial.signal["ecg"], subj["ECG"][0, 0]["stimuli"][0, 0][k, 0].T)
            assert trial.baseline["eeg"].shape == (14, 7808) and trial.baseline["ecg"].shape == (2, 15616)
            assert abs(trial.signal["ecg"].shape[1] - 2 * trial.signal["eeg"].shape[1]) <= 256
        for name, fld in (("valence", "ScoreValence"), ("arousal", "ScoreArousal"), ("dominance", "ScoreDominance")):
            np.testing.assert_array_equal(rec.ratings[name], subj[fld][0, 0][:, 0])
            assert set(rec.ratings[name]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
        assert set(rec.info) == {"Age", "Gender"}


def test_subject_subset_and_listing(mat_path: Path) -> None:
    assert [s for s, _ in list_dreamer_subjects(mat_path)] == ["s01", "s02"]
    assert [r.subject for r in read_dreamer(mat_path, subjects=["s2"])] == ["s02"]
    with pytest.raises(DataFormatError, match="s05"):
        read_dreamer(mat_path, subjects=["s05"])


def _damage(struct: dict, fn: Callable[[dict], None]) -> dict:
    damaged = copy.deepcopy(struct)
    fn(damaged)
    return damaged


def _subj(d: dict) -> dict:
    return d["Data"][0, 1]


def _set_cell(cell: np.ndarray, k: int, value: np.ndarray) -> None:
    cell[k, 0] = value


CASES = {
    "eeg_rate": (lambda d: d.update(EEG_SamplingRate=256.0), "DREAMER.EEG_SamplingRate"),
    "ecg_rate": (lambda d: d.update(ECG_SamplingRate=128.0), "DREAMER.ECG_SamplingRate"),
    "missing_field": (lambda d: d.pop("noOfVideoSequences"), "DREAMER"),
    "clip_count": (lambda d: d.update(noOfVideoSequences=4.0), "DREAMER.Data{1}.EEG.baseline"),
    "subject_count": (lambda d: d.update(noOfSubjects=3.0), "DREAMER.Data"),
    "channels": (lambda d: _set_cell(_subj(d)["EEG"]["stimuli"], 1, np.zeros((7700, 13))),
                 "DREAMER.Data{2}.EEG.stimuli{2}"),
    "baseline_len": (lambda d: _set_cell(_subj(d)["ECG"]["baseline"], 0, np.zeros((15000, 2))),
                     "DREAMER.Data{2}.ECG.baseline{1}"),
    "ecg_length": (lambda d: _set_cell(_subj(d)["ECG"]["stimuli"], 2,
                                       _subj(d)["ECG"]["stimuli"][2, 0][:-600]), "DREAMER.Data{2}.ECG.stimuli{3}"),
    "score_range": (lambda d: _subj(d)["ScoreArousal"].__setitem__((1, 0), 6.0), "DREAMER.Data{2}.ScoreArousal"),
    "score_integer": (lambda d: _subj(d)["ScoreValence"].__setitem__((0, 0), 2.5), "DREAMER.Data{2}.ScoreValence"),
    "electrodes": (lambda d: d["EEG_Electrodes"].__setitem__((0, 0), "Fp1"), "DREAMER.EEG_Electrodes"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_struct_names_field(struct: dict, tmp_path: Path, case: str) -> None:
    fn, field = CASES[case]
    path = tmp_path / "DREAMER.mat"
    scipy.io.savemat(path, {"DREAMER": _damage(struct, fn)})
    with pytest.raises(DataFormatError) as e:
        list(read_dreamer(path))
    assert e.value.path == path and e.value.field == field, str(e.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_name_subject_and_clip(struct: dict, tmp_path: Path, bad: float) -> None:
    def poison(d: dict) -> None:
        x = _subj(d)["EEG"]["stimuli"][1, 0].copy()
        x[100, 5] = bad
        _set_cell(_subj(d)["EEG"]["stimuli"], 1, x)

    path = tmp_path / "DREAMER.mat"
    scipy.io.savemat(path, {"DREAMER": _damage(struct, poison)})
    with pytest.raises(DataFormatError) as e:
        list(read_dreamer(path))
    assert e.value.field == "DREAMER.Data{2}.EEG.stimuli{2}" and "NaN/Inf in channel 5" in str(e.value)


def test_wrong_variable_truncated_and_missing_files(mat_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"data": np.zeros(3)})
    with pytest.raises(DataFormatError, match="DREAMER"):
        list_dreamer_subjects(other)
    cut = tmp_path / "cut.mat"
    cut.write_bytes(mat_path.read_bytes()[:50_000])
    with pytest.raises(DataFormatError) as e:
        list(read_dreamer(cut))
    assert e.value.path == cut
    with pytest.raises(DataFormatError, match="no such file"):
        read_dreamer(tmp_path / "absent.mat")


# ------------------------------------------------------------------------- issue 8 §4: counts and dtypes


@pytest.mark.parametrize("field", ["noOfSubjects", "noOfVideoSequences"])
@pytest.mark.parametrize("value", [np.nan, np.inf, 2.5, 0.0, 2.0 + 0j])
def test_counts_must_be_positive_integers(struct: dict, tmp_path: Path, field: str, value) -> None:
    path = tmp_path / "DREAMER.mat"
    scipy.io.savemat(path, {"DREAMER": _damage(struct, lambda d: d.update({field: value}))})
    with pytest.raises(DataFormatError) as e:
        list_dreamer_subjects(path)
    assert e.value.field == f"DREAMER.{field}" and e.value.path == path


@pytest.mark.parametrize(("change", "found"), [(lambda x: x + 1j, "complex128"), (lambda x: x > 0, "bool"),
                                               (lambda x: x * 1e200, "in channel")])
def test_complex_logical_and_huge_signals_rejected(struct: dict, tmp_path: Path, change, found: str) -> None:
    def damage(d: dict) -> None:
        _set_cell(_subj(d)["ECG"]["stimuli"], 1, change(_subj(d)["ECG"]["stimuli"][1, 0]))

    path = tmp_path / "DREAMER.mat"
    scipy.io.savemat(path, {"DREAMER": _damage(struct, damage)})
    with pytest.raises(DataFormatError) as e:
        list(read_dreamer(path))
    assert e.value.field == "DREAMER.Data{2}.ECG.stimuli{2}" and found in str(e.value.found)
