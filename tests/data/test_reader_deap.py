"""DEAP reader: both file variants, round trips, restricted unpickling, and clear errors on bad input."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import PARITY_FIXTURE

from physiosync.data.readers import list_deap_subjects, load_pickle, read_deap
from physiosync.errors import DataFormatError
from physiosync.synth.deap import make_deap_subject, write_synthetic_deap

FIXTURE = PARITY_FIXTURE
N_TRIALS = 2


@pytest.fixture(scope="module")
def deap_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("deap")
    out = {}
    for fmt in ("python", "matlab"):
        out[fmt] = root / fmt
        write_synthetic_deap(out[fmt], n_subjects=2, n_trials=N_TRIALS, seed=5, format=fmt)
    return out


def _write_pickle(path: Path, obj: object) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def _good_arrays(n_trials: int = 2) -> dict[str, np.ndarray]:
    return {"data": np.zeros((n_trials, 40, 8064)), "labels": np.full((n_trials, 4), 5.0)}


def test_round_trip_values_and_views(deap_dirs: dict[str, Path]) -> None:
    recs = list(read_deap(deap_dirs["python"]))
    assert [r.subject for r in recs] == ["s01", "s02"]
    for i, rec in enumerate(recs, start=1):
        data, labels = make_deap_subject(5, i, N_TRIALS, 1.0)
        assert rec.n_trials == N_TRIALS and rec.sfreq == {"eeg": 128.0, "gsr": 128.0}
        assert len(rec.ch_names["eeg"]) == 32 and rec.ch_names["gsr"] == ["GSR"]
        for t, trial in enumerate(rec.trials):
            assert trial.stimulus == t
            assert trial.baseline["eeg"].shape == (32, 384) and trial.signal["eeg"].shape == (32, 7680)
            assert trial.baseline["gsr"].shape == (1, 384) and trial.signal["gsr"].shape == (1, 7680)
            np.testing.assert_array_equal(trial.baseline["eeg"], data[t, :32, :384])
            np.testing.assert_array_equal(trial.signal["eeg"], data[t, :32, 384:])
            np.testing.assert_array_equal(trial.signal["gsr"], data[t, 36:37, 384:])
            # views of one loaded array, not copies
            base = trial.baseline["eeg"].base
            assert base is not None and all(a.base is base for part in (trial.baseline, trial.signal)
                                            for a in part.values())
        for j, name in enumerate(["valence", "arousal", "dominance", "liking"]):
            np.testing.assert_array_equal(rec.ratings[name], labels[:, j])


def test_pickle_and_matlab_variants_give_same_arrays(deap_dirs: dict[str, Path]) -> None:
    for a, b in zip(read_deap(deap_dirs["python"]), read_deap(deap_dirs["matlab"]), strict=True):
        assert a.source.suffix == ".dat" and b.source.suffix == ".mat"
        for ta, tb in zip(a.trials, b.trials, strict=True):
            for mod in ("eeg", "gsr"):
                np.testing.assert_array_equal(ta.signal[mod], tb.signal[mod])
                np.testing.assert_array_equal(ta.baseline[mod], tb.baseline[mod])
        for k in a.ratings:
            np.testing.assert_array_equal(a.ratings[k], b.ratings[k])


def test_auto_format_finds_deap_subfolders_and_rejects_ambiguity(deap_dirs: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "DEAP"
    shutil.copytree(deap_dirs["python"], root / "data_preprocessed_python")
    assert [p.suffix for _, p in list_deap_subjects(root)] == [".dat", ".dat"]
    shutil.copytree(deap_dirs["matlab"], root / "data_preprocessed_matlab")
    with pytest.raises(DataFormatError, match="both .dat and .mat"):
        list_deap_subjects(root)
    assert [p.suffix for _, p in list_deap_subjects(root, format="matlab")] == [".mat", ".mat"]
    with pytest.raises(DataFormatError, match="subject files"):
        list_deap_subjects(tmp_path / "DEAP" / "data_preprocessed_python", format="matlab")


def test_stray_files_ignored_and_numeric_sort(deap_dirs: dict[str, Path], tmp_path: Path) -> None:
    src = deap_dirs["python"] / "s01.dat"
    for name in ("s10.dat", "s2.dat", "s01.dat"):
        shutil.copy(src, tmp_path / name)
    for stray in ("README.txt", "s01.dat.bak", "notes.dat", "s03.dat.part", ".s04.dat.tmp"):
        (tmp_path / stray).write_text("not a subject")
    (tmp_path / "s05.dat").mkdir()  # a folder is not a subject either
    assert [s for s, _ in list_deap_subjects(tmp_path)] == ["s01", "s02", "s10"]
    assert [s for s, _ in list_deap_subjects(tmp_path, subjects=["s10", 2])] == ["s02", "s10"]
    shutil.copy(src, tmp_path / "s1.dat")
    with pytest.raises(DataFormatError, match="s01"):
        list_deap_subjects(tmp_path)


def test_missing_subject_names_it_and_the_folder(deap_dirs: dict[str, Path]) -> None:
    with pytest.raises(DataFormatError) as e:
        read_deap(deap_dirs["python"], subjects=["s01", "s07"])
    assert "s07" in str(e.value) and str(deap_dirs["python"]) in str(e.value)
    with pytest.raises(DataFormatError):
        list_deap_subjects(deap_dirs["python"].parent / "nowhere")


def test_malicious_pickle_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    path = _write_pickle(tmp_path / "s01.dat", {"data": Exploit(), "labels": np.zeros((1, 4))})
    with pytest.raises(DataFormatError) as e:
        list(read_deap(tmp_path))
    assert "system" in str(e.value) and str(path) in str(e.value)
    assert not marker.exists()
    # other callables are refused too, including through the codecs hook
    _write_pickle(tmp_path / "s01.dat", {"data": eval})  # noqa: S307 - pickled by reference, never called
    with pytest.raises(DataFormatError, match="refused global builtins.eval"):
        load_pickle(tmp_path / "s01.dat")


def test_protocol2_pickles_with_bytes_load(tmp_path: Path) -> None:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1")
    arrays = _good_arrays()
    arrays["data"][1, 3, 5] = 1.5
    (tmp_path / "s01.dat").write_bytes(pickle.dumps(arrays, protocol=2))
    rec = next(read_deap(tmp_path))
    assert rec.trials[1].baseline["eeg"][3, 5] == 1.5


def test_python2_numpy1_pickles_load(tmp_path: Path) -> None:
    # DEAP's files were written by Python 2 with numpy 1.x: data as Python 2 str (BINSTRING, decoded as
    # latin-1 text), dtype reduced as dtype('f8', 0, 1) with integer flags. Python 3's pickle writes neither,
    # so this encoding is tested on its own (the restricted unpickler once refused the integer flags).
    import io
    import pickletools

    from physiosync.synth.py2pickle import dump_py2

    arrays = _good_arrays()
    arrays["data"][1, 3, 5] = 1.5
    buf = io.BytesIO()
    dump_py2(arrays, buf)
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(buf.getvalue())]
    names = {name for name, _ in ops}
    assert ("PROTO", 2) in ops and "BINSTRING" in names and not names & {"BINBYTES", "SHORT_BINBYTES"}
    assert ("GLOBAL", "numpy.core.multiarray _reconstruct") in ops and ("GLOBAL", "_codecs encode") not in ops
    assert [arg for name, arg in ops if name == "BININT1"].count(1) >= 2  # dtype('f8', 0, 1): integer flags
    (tmp_path / "s01.dat").write_bytes(buf.getvalue())
    loaded = load_pickle(tmp_path / "s01.dat")
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype and np.array_equal(loaded[key], value)
    rec = next(read_deap(tmp_path))
    assert rec.trials[1].baseline["eeg"][3, 5] == 1.5


def test_synthetic_deap_pickles_are_written_as_deap_wrote_them(deap_dirs: dict[str, Path]) -> None:
    import pickletools

    raw = (deap_dirs["python"] / "s01.dat").read_bytes()
    names = {op.name for op, _, _ in pickletools.genops(raw)}
    assert raw[:2] == b"\x80\x02" and "BINSTRING" in names and "BINBYTES" not in names


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_truncated_or_corrupt_file_names_the_file(deap_dirs: dict[str, Path], tmp_path: Path, damage: str) -> None:
    raw = (deap_dirs["python"] / "s01.dat").read_bytes()
    content = {"truncated": raw[: len(raw) // 2], "garbage": b"\x80\x04this is not a pickle", "empty": b""}[damage]
    path = tmp_path / "s01.dat"
    path.write_bytes(content)
    with pytest.raises(DataFormatError) as e:
        list(read_deap(tmp_path))
    assert str(path) in str(e.value)


def test_corrupt_mat_file_names_the_file(deap_dirs: dict[str, Path], tmp_path: Path) -> None:
    raw = (deap_dirs["matlab"] / "s01.mat").read_bytes()
    path = tmp_path / "s01.mat"
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DataFormatError) as e:
        list(read_deap(tmp_path))
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    ("key", "value", "field", "found"),
    [
        ("data", np.zeros((40, 39, 8064)), "data", "(40, 39, 8064)"),
        ("data", np.zeros((2, 40, 8000)), "data", "(2, 40, 8000)"),
        ("labels", np.full((3, 4), 5.0), "labels", "(3, 4)"),
        ("labels", np.full((2, 3), 5.0), "labels", "(2, 3)"),
        ("labels", np.full((2, 4), 12.0), "labels", "12.0"),
        ("data", np.array(["x"]), "pickle", "'U1'"),  # text dtypes never reach numpy's __setstate__
        ("data", None, "data", "missing"),
    ],
)
def test_wrong_content_names_field_found_expected(tmp_path: Path, key: str, value, field: str, found: str) -> None:
    arrays = _good_arrays()
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    path = _write_pickle(tmp_path / "s01.dat", arrays)
    with pytest.raises(DataFormatError) as e:
        list(read_deap(tmp_path))
    assert e.value.field == field and e.value.path == path
    assert found in str(e.value.found)
    assert "expected" in str(e.value)


def test_not_a_dict_is_an_error(tmp_path: Path) -> None:
    _write_pickle(tmp_path / "s01.dat", np.zeros(3))
    with pytest.raises(DataFormatError, match="dict"):
        list(read_deap(tmp_path))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_subject_and_trial(tmp_path: Path, bad: float) -> None:
    arrays = _good_arrays()
    arrays["data"][1, 36, 4000] = bad
    _write_pickle(tmp_path / "s03.dat", arrays)
    with pytest.raises(DataFormatError) as e:
        list(read_deap(tmp_path))
    assert e.value.field == "data" and "s03" in str(e.value) and "trial 1" in str(e.value)
    assert "channel 36" in str(e.value)
    arrays = _good_arrays()
    arrays["labels"][0, 1] = np.nan
    _write_pickle(tmp_path / "s03.dat", arrays)
    with pytest.raises(DataFormatError, match="arousal"):
        list(read_deap(tmp_path))


@pytest.mark.skipif(not FIXTURE.is_dir(), reason="shared parity fixture not available")
def test_reads_shared_parity_fixture() -> None:
    recs = list(read_deap(FIXTURE))  # the DEAP root: data_preprocessed_python/ inside
    assert [r.subject for r in recs] == ["s01", "s02"]
    assert all(r.n_trials == 2 for r in recs)
    np.testing.assert_array_equal(recs[0].ratings["valence"], [5.0, 7.2])
    np.testing.assert_array_equal(recs[1].ratings["arousal"], [5.0, 6.0])
    assert recs[0].trials[0].signal["eeg"].shape == (32, 7680)


# ------------------------------------------------------------------------- issue 8 §4: hostile and garbage


class _Reduce:
    def __init__(self, fn: object, args: tuple) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return self.fn, self.args


def test_ndarray_called_directly_is_refused(tmp_path: Path) -> None:
    # numpy.ndarray(shape) in a pickle allocates an array without data: uninitialised memory as "signals"
    payload = pickle.dumps({"data": _Reduce(np.ndarray, ((2, 40, 8064),)), "labels": _Reduce(np.ndarray, ((2, 4),))},
                           protocol=2)
    assert len(payload) < 400  # the file was 345 bytes
    (tmp_path / "s02.dat").write_bytes(payload)
    with pytest.raises(DataFormatError, match="refused direct call of numpy.ndarray") as e:
        list(read_deap(tmp_path))
    assert e.value.field == "pickle" and e.value.path.name == "s02.dat"
    # the same through _reconstruct with a real shape and no BUILD (state never set)
    rec = np._core.multiarray._reconstruct
    (tmp_path / "s02.dat").write_bytes(pickle.dumps({"data": _Reduce(rec, (np.ndarray, (2, 40, 8064), b"b"))}, protocol=2))
    with pytest.raises(DataFormatError, match="shape other than"):
        load_pickle(tmp_path / "s02.dat")


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_real_array_pickles_still_load_at_every_protocol(tmp_path: Path, protocol: int) -> None:
    arrays = {"c": np.arange(12.0).reshape(3, 4), "f": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
              "half": np.arange(3, dtype=np.float16), "int": np.arange(5, dtype=np.int32), "empty": np.zeros((2, 0)),
              "bool": np.ones(2, bool), "scalar": np.float64(2.5)}
    (tmp_path / "x.dat").write_bytes(pickle.dumps(arrays, protocol=protocol))
    got = load_pickle(tmp_path / "x.dat")
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype


def test_non_numeric_dtype_is_refused_before_numpy_sees_its_state(tmp_path: Path) -> None:
    # numpy's dtype __setstate__ can crash the interpreter on a crafted state for these types
    for bad in (np.zeros(2, "m8[s]"), np.zeros(2, "S4"), np.zeros(2, object)):
        (tmp_path / "x.dat").write_bytes(pickle.dumps({"data": bad}, protocol=4))
        with pytest.raises(DataFormatError, match="refused numpy dtype"):
            load_pickle(tmp_path / "x.dat")


@pytest.mark.parametrize(("value", "found"), [(1.7e308, "1.7e+308"), (-1e101, "-1e+101"), (np.nan, "NaN/Inf")])
def test_huge_values_name_subject_trial_channel(tmp_path: Path, value: float, found: str) -> None:
    arrays = _good_arrays()
    arrays["data"] += 1.0
    arrays["data"][1, 36, 4000] = value
    _write_pickle(tmp_path / "s03.dat", arrays)
    with pytest.raises(DataFormatError) as e:
        list(read_deap(tmp_path))
    assert e.value.field == "data"
    assert f"{found} in subject s03 trial 1 channel 36" in str(e.value) and "1e+100" in str(e.value)


@pytest.mark.parametrize("bad", [lambda x: x + 1j, lambda x: x > 0, lambda x: x.astype(np.int64).astype("m8[ms]")])
def test_complex_bool_timedelta_data_rejected(tmp_path: Path, bad) -> None:
    arrays = _good_arrays()
    arrays["data"] = bad(arrays["data"][:, :, :10])  # dtype is checked before the shape
    _write_pickle(tmp_path / "s01.dat", arrays)
    with pytest.raises(DataFormatError) as e:
        list(read_deap(tmp_path))
    assert e.value.field in ("data", "pickle")


def test_matlab_logical_data_rejected(tmp_path: Path) -> None:
    import scipy.io

    scipy.io.savemat(tmp_path / "s01.mat", {"data": np.zeros((2, 40, 8064), bool), "labels": np.full((2, 4), 5.0)})
    with pytest.raises(DataFormatError, match="logical") as e:
        list(read_deap(tmp_path))
    assert e.value.field == "data"


def test_mixed_type_keys_give_a_bounded_message(tmp_path: Path) -> None:
    _write_pickle(tmp_path / "s01.dat", {1: 0, "labels": 0, (2, 3): 0, None: 1, **{f"k{i}" * 40: i for i in range(50)}})
    with pytest.raises(DataFormatError) as e:
        list(read_deap(tmp_path))
    assert e.value.field == "data" and "'labels'" in str(e.value) and "(54 keys)" in str(e.value)
    assert len(str(e.value)) < 400 + len(str(tmp_path))


@pytest.mark.parametrize("name", ["s0.dat", "s00.dat"])
def test_subject_number_zero_is_an_error(deap_dirs: dict[str, Path], tmp_path: Path, name: str) -> None:
    shutil.copy(deap_dirs["python"] / "s01.dat", tmp_path / name)
    with pytest.raises(DataFormatError) as e:
        list_deap_subjects(tmp_path)
    assert e.value.field == "subject id" and e.value.path.name == name


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_broken_symlink_named_like_a_subject_is_an_error(deap_dirs: dict[str, Path], tmp_path: Path, kind: str) -> None:
    shutil.copy(deap_dirs["python"] / "s01.dat", tmp_path / "s01.dat")
    link = tmp_path / "s02.dat"
    link.symlink_to(tmp_path / "gone.dat" if kind == "dangling" else link)
    with pytest.raises(DataFormatError, match="broken symbolic link") as e:
        list_deap_subjects(tmp_path)
    assert e.value.path == link


def test_unreadable_data_dir_is_an_error(deap_dirs: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    # Root can list any directory, so a chmod 000 cannot be tested here: the listing's error is simulated.
    data = tmp_path / "deap"
    shutil.copytree(deap_dirs["python"], data)
    real = Path.iterdir

    def iterdir(self: Path):
        if self == data:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(DataFormatError, match="Permission denied") as e:
        list_deap_subjects(data)
    assert e.value.field == "data_dir" and e.value.path == data


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_data_dir_chmod(deap_dirs: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "deap"
    shutil.copytree(deap_dirs["python"], data)
    data.chmod(0)
    try:
        with pytest.raises(DataFormatError, match="unreadable"):
            list_deap_subjects(data)
    finally:
        data.chmod(0o755)
