"""Own recordings (``dataset.name: recordings``): the reader on real files of every format part E writes,
the trials table and dataset file errors, and the pipeline / compare on them (with and without a
peripheral channel, with and without a stimulus column)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import physiosync.synth.recordings as synth
from physiosync.config import load_config, resolve_config
from physiosync.data.cache import build_cache, summarize_cache
from physiosync.data.readers import facts_of, input_files, list_subjects, read_subjects
from physiosync.errors import ConfigError, DataFormatError
from physiosync.experiments import compare
from physiosync.experiments.pipeline import run_pipeline

SMALL = {"n_subjects": 2, "n_trials": 3, "trial_seconds": 3.0, "montage": "epoc14", "files_per_subject": 2,
         "sfreq": (256.0, 512.0), "vary_trial_length": True, "seed": 5}
# Relative tolerance of the float32 formats (FIF single, BrainVision, EEGLAB): storage rounds to nearest
# (relative 2^-24); the float64 unit scalings on the way (×1e6 µV, EEGLAB's ×1e6 / ×1e-6) add a few 2^-53.
# 2^-22 leaves a factor 4 over the storage rounding.
F32_RTOL = 2.0**-22


def dataset(data_dir: Path, **kw) -> object:
    cfg = load_config(overrides=["dataset.name=recordings", f"dataset.data_dir={data_dir}",
                                 *(f"dataset.{k}={v}" for k, v in kw.items())])
    return cfg.dataset


def edit_yaml(path: Path, change) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def edit_table(path: Path, change) -> None:
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    path.write_text("\n".join("\t".join(r) for r in change(lines)) + "\n")


def quantisation(path: Path, fmt: str) -> np.ndarray:
    """EDF/BDF: half a quantisation step per channel from the file's header, in the reader's units (µV for
    voltages, the GSR's µS as stored). The affine digital<->physical maps are float64 on values below 2^24
    counts (relative ~2e-9), covered by the 1e-6 margin."""
    import edfio

    file = edfio.read_edf(path) if fmt == "edf" else edfio.read_bdf(path)
    return np.array([0.5 * (s.physical_range.max - s.physical_range.min)
                     / (s.digital_range.max - s.digital_range.min) * (1 + 1e-6) for s in file.signals])


@pytest.fixture(scope="module", params=tuple(synth.FORMATS))
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    fmt = request.param
    return fmt, synth.write_synthetic_recordings(tmp_path_factory.mktemp(fmt), format=fmt, **SMALL)


def test_reader_returns_the_generators_signals_in_every_format(written) -> None:
    fmt, w = written
    ds = dataset(w.table.parent)
    listing = list_subjects(ds)
    assert [s for s, _ in listing] == ["s01", "s02"] and {p for _, p in listing} == {w.table}
    recs = list(read_subjects(ds, listing))
    spec = synth.RecordingsSpec(format=fmt, **SMALL)
    refs = {layout.name: (layout, raw) for layout, raw, _ in synth.iter_recordings(spec)}
    stimuli = sorted({r.stimulus for r in w.rows})
    for rec in recs:
        assert rec.ch_names == {"eeg": list(synth.MONTAGES["epoc14"]), "gsr": ["GSR"]}
        assert rec.info["label"] == f"sub-{int(rec.subject[1:]):02d}"
        rows = sorted((r for r in w.rows if r.subject == rec.info["label"]), key=lambda r: r.stimulus)
        assert [t.stimulus for t in rec.trials] == [stimuli.index(r.stimulus) for r in rows]  # stimulus order
        np.testing.assert_array_equal(rec.ratings["arousal"], [r.ratings[1] for r in rows])
        for trial, row in zip(rec.trials, rows, strict=True):
            layout, ref = refs[row.file]
            sf = layout.sfreq
            assert trial.sfreq == {"eeg": sf, "gsr": sf}  # each file's own rate (256 / 512 Hz alternate)
            for part, (on, dur) in (("signal", (row.onset, row.duration)),
                                    ("baseline", (row.baseline_onset, row.baseline_duration))):
                a, n = int(round(on * sf)), int(round(dur * sf))
                expected = ref.get_data(start=a, stop=a + n)  # float64 generator output, SI units
                expected[:14] *= 1e6  # V -> µV (dataset file: unit V)
                expected[14] /= synth._GSR_AS[fmt][1] / synth.GSR_US_PER_RAW  # stored unit -> µS
                got = np.concatenate([getattr(trial, part)["eeg"], getattr(trial, part)["gsr"]])
                assert got.shape == (15, n)
                if fmt in ("edf", "bdf"):
                    tol = quantisation(w.files[[p.name for p in w.files].index(row.file)], fmt)
                    tol[:14] *= 1.0  # header's physical unit is µV for the EEG, µS for the GSR: as read
                    assert np.all(np.abs(got - expected) <= tol[:, None]), part
                else:
                    np.testing.assert_allclose(got, expected, rtol=F32_RTOL, atol=0, err_msg=part)


def test_cache_hash_covers_files_table_and_dataset_file(tmp_path: Path) -> None:
    w = synth.write_synthetic_recordings(tmp_path, format="brainvision", **SMALL)  # with companion files
    ds = dataset(w.table.parent)
    files = {p.name for p in input_files(ds, list_subjects(ds))}
    stems = [p.name[: -len(".vhdr")] for p in w.files]
    assert files == {"dataset.yaml", "trials.tsv"} | {f"{s}{x}" for s in stems for x in (".vhdr", ".vmrk", ".eeg")}
    one = {p.name for p in input_files(ds, list_subjects(dataset(w.table.parent, subjects="[s02]")))}
    assert one == {"dataset.yaml", "trials.tsv"} | {n for n in files if n.startswith("sub-02")}


@pytest.fixture
def edf_dir(tmp_path: Path) -> Path:
    d = tmp_path / "edf"
    synth.write_synthetic_recordings(d, format="edf", **SMALL)
    return d


def _read_all(d: Path, **kw) -> list:
    ds = dataset(d, **kw)
    return list(read_subjects(ds, list_subjects(ds)))


@pytest.mark.parametrize(("change", "where", "found"), [
    (lambda rows: [rows[0], [*rows[1][:2], "soon", *rows[1][3:]], *rows[2:]], "line 2 column 'onset'", "'soon'"),
    (lambda rows: [rows[0], [*rows[1][:8], "high", *rows[1][9:]], *rows[2:]], "line 2 column 'arousal'", "'high'"),
    (lambda rows: [rows[0], [*rows[1][:8], "12", *rows[1][9:]], *rows[2:]], "line 2 column 'arousal'", "'12'"),
    (lambda rows: [rows[0], [rows[1][0], "sub-09_run-01_eeg.edf", *rows[1][2:]], *rows[2:]],
     "line 2 column 'file'", "no such file"),
    (lambda rows: [rows[0], rows[1], rows[1], *rows[2:]], "line 3 column 'stimulus'", "again for subject sub-01"),
    # (the last row is sub-02's only trial in its second file: drop the one before it)
    (lambda rows: [*rows[:-2], rows[-1]], "stimulus", "subject sub-02 without stimuli"),
    (lambda rows: [[c for i, c in enumerate(r) if i != 4] for r in [*rows[:-2], rows[-1]]], "trials per subject",
     "sub-01: 3, sub-02: 2"),
    (lambda rows: [[c for i, c in enumerate(r) if i != 1] for r in rows], "<header>", "missing ['file']"),
    (lambda rows: [[c for i, c in enumerate(r) if i != 5] for r in rows], "<header>", "only 'baseline_duration'"),
])
def test_trials_table_errors_name_line_and_column(edf_dir: Path, change, where: str, found: str) -> None:
    edit_table(edf_dir / "trials.tsv", change)
    with pytest.raises(DataFormatError) as e:
        _read_all(edf_dir)
    assert e.value.path.name == "trials.tsv" and e.value.field == where and found in str(e.value.found)


def test_trial_outside_its_recording_names_the_row_and_file(edf_dir: Path) -> None:
    edit_table(edf_dir / "trials.tsv", lambda rows: [rows[0], [*rows[1][:2], "9000.000", *rows[1][3:]], *rows[2:]])
    with pytest.raises(DataFormatError, match=r"trials.tsv line 2 trial.*beyond the .* s of sub-01_run-01_eeg.edf"):
        _read_all(edf_dir)


def test_a_recording_without_rows_and_a_missing_channel_are_refused(edf_dir: Path) -> None:
    shutil.copy(edf_dir / "sub-01_run-01_eeg.edf", edf_dir / "sub-03_run-01_eeg.edf")
    with pytest.raises(DataFormatError) as e:
        _read_all(edf_dir)
    assert e.value.path.name == "sub-03_run-01_eeg.edf" and "no row in trials.tsv" in str(e.value.found)
    (edf_dir / "sub-03_run-01_eeg.edf").unlink()
    edit_yaml(edf_dir / "dataset.yaml", lambda d: d["modalities"]["eeg"]["ch_names"].append("Cz"))
    with pytest.raises(DataFormatError) as e:
        _read_all(edf_dir)
    assert e.value.path.name == "sub-01_run-01_eeg.edf" and e.value.field == "channels"
    assert "missing ['Cz']" in str(e.value.found)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(colour="blue"), "unknown key 'colour'"),
    (lambda d: d["modalities"]["eeg"].update(pattern="E.*"), "key 'modalities.eeg': give exactly one of ch_names"),
    (lambda d: d["modalities"]["gsr"].update(unit="furlong"), "key 'modalities.gsr.unit'"),
    (lambda d: d["modalities"]["gsr"].update(role="eeg"), "one role 'eeg' and at most one role 'peripheral'"),
    (lambda d: d["recordings"].update(trials_from="annotations"), "needs an annotations mapping"),
    (lambda d: d.pop("recordings"), "which a facts file without a 'recordings' section needs"),
    (lambda d: d.update(stimulus_s="long"), "key 'stimulus_s'"),
])
def test_dataset_file_errors_name_the_file_and_key(edf_dir: Path, change, message: str) -> None:
    edit_yaml(edf_dir / "dataset.yaml", change)
    with pytest.raises(ConfigError, match="dataset.yaml") as e:
        _read_all(edf_dir)
    assert message in str(e.value)


def test_no_dataset_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dataset file unreadable .*data_dir"):
        dataset(tmp_path)


def test_channel_pattern_resolves_against_the_first_file(edf_dir: Path) -> None:
    def to_pattern(d: dict) -> None:
        del d["modalities"]["eeg"]["ch_names"]
        d["modalities"]["eeg"]["pattern"] = "[A-Z]+[0-9]+"  # every 10-20 name here, not "GSR"
    edit_yaml(edf_dir / "dataset.yaml", to_pattern)
    ds = dataset(edf_dir)
    assert facts_of(ds).modalities["eeg"].ch_names is None
    assert facts_of(ds, resolve_channels=True).modalities["eeg"].ch_names == list(synth.MONTAGES["epoc14"])
    recs = _read_all(edf_dir)
    assert recs[0].ch_names["eeg"] == list(synth.MONTAGES["epoc14"])


@pytest.mark.parametrize("fmt", ["edf", "fif"])
def test_trials_from_annotations_equal_the_tables_trials(tmp_path: Path, fmt: str) -> None:
    w = synth.write_synthetic_recordings(tmp_path / fmt, format=fmt, **{**SMALL, "vary_trial_length": False})
    by_table = _read_all(w.table.parent)
    # Ratings per stimulus for everyone (the annotation mapping's), so make the table say the same first.
    first = {r.stimulus: r.ratings for r in w.rows if r.subject == "sub-01"}

    def same_ratings(rows: list[list[str]]) -> list[list[str]]:
        return [rows[0]] + [[*r[:7], *(f"{x:.2f}" for x in first[r[4]])] for r in rows[1:]]
    edit_table(w.table, same_ratings)
    by_table = _read_all(w.table.parent)
    edit_table(w.table, lambda rows: [r[:2] for r in rows])  # now just subject and file
    edit_yaml(w.dataset_file, lambda d: d["recordings"].update(trials_from="annotations", annotations={
        s: {"ratings": dict(zip(synth.RATINGS, first[s], strict=True))} for s in first}))
    by_annotation = _read_all(w.table.parent)
    for a, b in zip(by_table, by_annotation, strict=True):
        assert [t.stimulus for t in a.trials] == [t.stimulus for t in b.trials]
        for ta, tb in zip(a.trials, b.trials, strict=True):
            for part in ("signal", "baseline"):  # baseline: the baseline_s before each onset = the table's
                for mod in ("eeg", "gsr"):
                    np.testing.assert_array_equal(getattr(ta, part)[mod], getattr(tb, part)[mod])
        for r in synth.RATINGS:
            np.testing.assert_array_equal(a.ratings[r], b.ratings[r])


# --------------------------------------------------------------------------------------------------
# the pipeline and compare on own recordings

PIPE = {"n_subjects": 3, "n_trials": 4, "trial_seconds": 6.0, "montage": "epoc14", "files_per_subject": 2,
        "sfreq": (256.0, 512.0), "vary_trial_length": True, "seed": 1}


def smoke(data_dir: Path, root: Path, *extra: str):
    return load_config(preset="smoke", overrides=[
        "dataset.name=recordings", f"dataset.data_dir={data_dir}", "dataset.origin=synthetic",
        f"cache_dir={root / 'cache'}", f"runs_dir={root / 'runs'}", "protocol.n_folds=2", *extra])


@pytest.fixture(scope="module")
def gsr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rec-gsr")
    synth.write_synthetic_recordings(d, format="edf", **PIPE)
    return d


def test_pipeline_and_compare_run_on_recordings_with_a_peripheral(gsr_dir: Path, tmp_path: Path) -> None:
    cfg = smoke(gsr_dir, tmp_path)
    results = run_pipeline(resolve_config(cfg), progress=False)
    assert results["labels"]["arousal"]["folds"] and (tmp_path / "runs" / "run" / "report.md").is_file()
    cache = build_cache(resolve_config(cfg), progress=False)
    assert cache.reused and cache.dataset == "recordings" and cache.modalities == ["eeg", "gsr"]
    assert cache.n_samples == 6 * 128 and cache.n_trials == 4
    assert "cropped:" in summarize_cache(cache) and "first 6 s" in summarize_cache(cache)
    doc = compare.run_compare(smoke(gsr_dir, tmp_path, "name=cmp"), ["majority", "de-logreg+pps", "physiosync"],
                              progress=False)
    assert {x["row"] for x in doc["table"]} == {"majority", "de-logreg+pps", "physiosync"}
    assert all(len(doc["results"][r]["labels"]["arousal"]["folds"]) == 2 for r in ("de-logreg+pps", "physiosync"))
    assert (tmp_path / "runs" / "cmp-compare" / "comparison.md").is_file()


def test_pipeline_runs_eeg_only_recordings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = tmp_path / "rec-eeg"
    synth.write_synthetic_recordings(d, format="fif", peripheral="none", **PIPE)
    with caplog.at_level("WARNING", logger="physiosync"):
        results = run_pipeline(resolve_config(smoke(d, tmp_path)), progress=False)
    assert results["labels"]["arousal"]["folds"]
    assert "EEG-only data (no peripheral modality)" in caplog.text and "no CM-CA terms" in caplog.text


def test_without_stimulus_column_the_pooling_parts_refuse(gsr_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "nostim"
    shutil.copytree(gsr_dir, d)
    edit_table(d / "trials.tsv", lambda rows: [[c for i, c in enumerate(r) if i != 4] for r in rows])
    with pytest.raises(ConfigError, match="no 'stimulus' column.*loso or subject-kfold"):
        run_pipeline(resolve_config(smoke(d, tmp_path)), progress=False)
    with pytest.raises(ConfigError, match="pretrain.pairing=groups.*no 'stimulus' column"):
        run_pipeline(resolve_config(smoke(d, tmp_path, "protocol.name=subject-kfold", "name=b")), progress=False)
    results = run_pipeline(resolve_config(smoke(d, tmp_path, "protocol.name=subject-kfold", "name=c",
                                                "pretrain.pairing=augviews")), progress=False)
    assert results["labels"]["arousal"]["folds"]
