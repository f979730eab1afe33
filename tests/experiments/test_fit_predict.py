"""`physiosync fit` + `physiosync predict`: the model bundle, its round trip, and what predict refuses.

One fit on tiny synthetic DEAP (smoke preset, fp32, CPU) is shared by the module; each test copies the
bundle before damaging it.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from physiosync.cli import main
from physiosync.config import load_config, resolve_config
from physiosync.errors import ConfigError, DataFormatError
from physiosync.experiments.bundle import BUNDLE_FORMAT_VERSION, load_bundle
from physiosync.experiments.fit import MODEL_NAME, fit
from physiosync.experiments.predict import _channel_differences, predict
from physiosync.synth import write_synthetic_deap

pytestmark = pytest.mark.usefixtures("one_thread")

N_SUBJECTS, N_TRIALS = 3, 4
TASKS = ("arousal", "four")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("fit")
    data = root / "deap"
    write_synthetic_deap(data, n_subjects=N_SUBJECTS, n_trials=N_TRIALS, seed=5, effect=1.0)
    cfg = load_config(preset="smoke", overrides=[
        f"dataset.data_dir={data}", f"cache_dir={root / 'cache'}", f"runs_dir={root / 'runs'}", "name=m",
        "dataset.origin=synthetic", f"labels=[{', '.join(TASKS)}]", "device=cpu", "precision=fp32",
    ])
    result = fit(cfg, progress=False)
    return {"root": root, "data": data, "cfg": cfg, "result": result}


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def column(header: list[str], rows: list[list[str]], name: str) -> list[str]:
    i = header.index(name)
    return [r[i] for r in rows]


def copy_bundle(fitted, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(fitted["result"].bundle, dst)
    return dst


def edit_manifest(bundle: Path, edit) -> None:
    doc = json.loads((bundle / "bundle.json").read_text())
    edit(doc)
    (bundle / "bundle.json").write_text(json.dumps(doc))


# --------------------------------------------------------------------------------------------------


def test_fit_trains_one_model_on_all_data_and_describes_it(fitted) -> None:
    res = fitted["result"]
    b = load_bundle(res.bundle)
    m = b.manifest
    assert m["format"] == "physiosync-model-bundle" and m["format_version"] == BUNDLE_FORMAT_VERSION
    from physiosync import __version__

    assert m["created"]["physiosync"] == __version__ and m["created"]["precision"] == "fp32"
    assert list(b.tasks) == list(TASKS)
    assert b.tasks["four"].class_names == ("HAHV", "HALV", "LAHV", "LALV")
    assert m["tasks"]["arousal"]["class_names"] == ["low", "high"]
    eeg = b.contract.modality("eeg")
    assert len(eeg.ch_names) == 32 and eeg.ch_names[:2] == ("Fp1", "AF3") and eeg.sfreq == 128.0
    assert m["data"]["recorded"]["gsr"] == {"ch_names": ["GSR"], "sfreq": [128.0]}
    assert m["data"]["resolutions"] == [1.0, 5.0] and b.window_s == 5.0 and m["data"]["n_samples"] == 7680
    assert m["preprocess"]["plan"]["dataset"] == "deap" and m["facts"]["name"] == "deap"
    assert m["training"]["subjects"] == ["s01", "s02", "s03"] and m["training"]["n_trials"] == N_TRIALS
    assert b.config == resolve_config(fitted["cfg"]).model_copy(
        update={"dataset": b.config.dataset})  # the resolved training config (data location left out)
    assert b.config.dataset.data_dir is None and m["training"]["data_dir"] == str(fitted["data"])
    # one all-data "fold": every window trains, nothing is validated or tested; pre-training sees every
    # moment of every subject at both window lengths
    folds = json.loads((res.fit_dir / "folds.json").read_text())["folds"]
    assert len(folds) == 1
    f = folds[0]
    assert f["train"] == list(range(N_SUBJECTS * N_TRIALS * 12)) and f["val"] == [] and f["test"] == []
    by_w = {p["window_s"]: p for p in f["pretrain"]}
    assert by_w[1.0]["train_moments"] == list(range(N_TRIALS * 60)) and by_w[5.0]["train_moments"] == list(range(N_TRIALS * 12))
    assert by_w[1.0]["train_subjects"] == [0, 1, 2] and by_w[1.0]["val_moments"] == []
    for task in TASKS:  # the bundled weights are the fine-tuning's own output, byte for byte
        src = res.fit_dir / "finetune" / task / "fold00" / MODEL_NAME
        assert (res.bundle / "weights" / f"{task}.pt").read_bytes() == src.read_bytes()


def test_predict_on_the_training_data_equals_the_in_process_predictions(fitted, tmp_path: Path) -> None:
    """Round trip: a fresh preparation of the training files + the bundle's weights = training's own view.

    Reference: the fine-tuning's ``model.pt`` (written by the training process from its in-memory model)
    applied to the training run's own cache. Predict instead re-reads the raw files into a new cache dir
    and loads the bundle. Equal bitwise: the prepared float32 windows are the same bytes (checked), the
    weights are the same bytes (checked above), and both sides run the same eval-mode forward passes on
    the same batches in the same order in one process — the same floating-point operations, whatever the
    CPU's kernels round like, so no tolerance is needed.
    """
    import torch

    from physiosync.experiments.pipeline import prepare
    from physiosync.models import FinetuneModel
    from physiosync.training.checkpoint import load_checkpoint
    from physiosync.training.finetune import predict_rows

    cfg = resolve_config(fitted["cfg"])
    train = prepare(cfg, progress=False)
    out = tmp_path / "pred.csv"
    rc = main(["predict", str(fitted["result"].bundle), "--data-dir", str(fitted["data"]), "--out", str(out),
               "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--quiet"])
    assert rc == 0
    new = predict(fitted["result"].bundle, fitted["data"], out=tmp_path / "again.csv",
                  cache_dir=tmp_path / "cache", device="cpu", progress=False)
    assert new.cache.path.parent == tmp_path / "cache" and new.cache.hash == train.cache.hash
    for mod in ("eeg", "gsr"):
        assert np.array_equal(new.cache.signals(mod), train.cache.signals(mod))

    header, rows = read_csv(out)
    t_header, t_rows = read_csv(tmp_path / "pred_trials.csv")
    table = train.table
    assert len(rows) == len(table) == N_SUBJECTS * N_TRIALS * 12 and len(t_rows) == N_SUBJECTS * N_TRIALS
    assert column(header, rows, "subject")[:13] == ["s01"] * 12 + ["s01"]
    assert [int(x) for x in column(header, rows, "window")] == table.window.tolist()
    assert [float(x) for x in column(header, rows, "start_s")][:3] == [0.0, 5.0, 10.0]
    for task in TASKS:
        n_classes = train.cache.task(task).n_classes
        state = load_checkpoint(fitted["result"].fit_dir / "finetune" / task / "fold00" / MODEL_NAME)
        model = FinetuneModel(train.cache.contract, cfg.model, n_classes)
        model.load_state_dict(state["model"])
        ref = predict_rows(model, train.cache, table, np.arange(len(table)), cfg, torch.device("cpu"),
                           cfg.finetune.batch_size)
        names = train.cache.task(task).class_names
        got = np.array([[float(x) for x in column(header, rows, f"{task}_p_{c}")] for c in names]).T
        assert np.array_equal(got, ref)  # bitwise: see the docstring (CSV floats are written round-trip exact)
        assert np.array_equal(new.proba[task], ref)
        assert column(header, rows, f"{task}_predicted") == [names[k] for k in ref.argmax(1)]
        assert column(header, rows, f"{task}_true") == [names[k] for k in table.label(task)]
        # a trial's prediction = the mean of its windows' class probabilities
        trial_ref = ref.reshape(N_SUBJECTS * N_TRIALS, 12, n_classes).mean(axis=1)
        got_t = np.array([[float(x) for x in column(t_header, t_rows, f"{task}_p_{c}")] for c in names]).T
        assert np.array_equal(got_t, trial_ref)
        assert column(t_header, t_rows, f"{task}_predicted") == [names[k] for k in trial_ref.argmax(1)]
        assert np.allclose(got_t.sum(axis=1), 1.0, atol=1e-6)  # float32 softmax rows: sum 1 ± a few 2^-24
    assert column(t_header, t_rows, "n_windows") == ["12"] * len(t_rows)


def test_fit_resumes_and_rewrites_the_same_bundle(fitted, capsys) -> None:
    res = fitted["result"]
    before = {p.name: p.read_bytes() for p in (res.bundle / "weights").iterdir()}
    cfg = fitted["cfg"]
    args = ["fit", "--preset", "smoke", "--quiet", "--set", f"dataset.data_dir={cfg.dataset.data_dir}",
            "--set", f"cache_dir={cfg.cache_dir}", "--set", f"runs_dir={cfg.runs_dir}", "--set", "name=m",
            "--set", "dataset.origin=synthetic", "--set", f"labels=[{', '.join(TASKS)}]", "--device", "cpu",
            "--precision", "fp32"]
    assert main(args) == 0  # everything finished: nothing trains again, the bundle is written anew
    assert "model bundle:" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (res.bundle / "weights").iterdir()} == before
    # another configuration in the same work directory is refused, naming the key
    assert main([*args, "--set", "finetune.lr=0.5"]) == 2
    assert "finetune.lr" in capsys.readouterr().err


def test_fit_refuses_to_overwrite_a_path_that_is_not_a_bundle(fitted, tmp_path: Path) -> None:
    from physiosync.experiments.bundle import write_bundle

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a model bundle"):
        write_bundle(tmp_path / "x", {}, fitted["cfg"], {})
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_damaged_or_foreign_bundles_are_refused(fitted, tmp_path: Path, capsys) -> None:
    b = copy_bundle(fitted, tmp_path)
    edit_manifest(b, lambda d: d.update(format_version=BUNDLE_FORMAT_VERSION + 1))
    with pytest.raises(DataFormatError, match="format_version.*found 2; expected 1"):
        load_bundle(b)
    edit_manifest(b, lambda d: d.update(format_version=BUNDLE_FORMAT_VERSION, format="something-else"))
    with pytest.raises(DataFormatError, match="'format'"):
        load_bundle(b)
    edit_manifest(b, lambda d: d.update(format="physiosync-model-bundle"))
    load_bundle(b)  # restored: loads again
    (b / "weights" / "four.pt").unlink()
    with pytest.raises(DataFormatError, match=r"four\.pt.*missing"):
        load_bundle(b)
    shutil.copyfile(b / "weights" / "arousal.pt", b / "weights" / "four.pt")  # present, but not its weights
    with pytest.raises(DataFormatError, match="(size|sha256).*damaged"):
        load_bundle(b)
    (b / "bundle.json").unlink()
    rc = main(["predict", str(b), "--data-dir", str(fitted["data"]), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "bundle.json" in err and "missing" in err and "Traceback" not in err
    with pytest.raises(DataFormatError, match="no such directory"):
        load_bundle(tmp_path / "nowhere")
    assert not (tmp_path / "p.csv").exists()


def test_mismatched_channels_and_rates_are_refused_with_every_difference(fitted, tmp_path: Path, capsys) -> None:
    # A bundle trained on files whose EEG had a "Cz2" instead of "Cz", no "O2", and GSR at 256 Hz: the
    # (unchanged) DEAP files differ from it in exactly these ways, and predict lists each.
    b = copy_bundle(fitted, tmp_path)

    def other_training_files(doc):
        eeg = doc["data"]["recorded"]["eeg"]["ch_names"]
        eeg[eeg.index("Cz")] = "Cz2"
        eeg.remove("O2")
        doc["data"]["recorded"]["gsr"]["sfreq"] = [256.0]

    edit_manifest(b, other_training_files)
    out = tmp_path / "p.csv"
    rc = main(["predict", str(b), "--data-dir", str(fitted["data"]), "--out", str(out),
               "--cache-dir", str(fitted["cfg"].cache_dir), "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "channels/rates" in err
    assert "eeg channels (files): missing ['Cz2']" in err
    assert "eeg channels (files): not in the bundle ['Cz', 'O2']" in err
    assert "gsr: recorded at 128 Hz (bundle's training files: 256 Hz)" in err
    assert not out.exists()
    # the dataset facts the data would be prepared with differ from the bundle's (e.g. another version of
    # the facts file): refused before anything is read, naming the key
    b2 = tmp_path / "b2"
    shutil.copytree(fitted["result"].bundle, b2)
    edit_manifest(b2, lambda d: d["facts"]["modalities"]["eeg"]["ch_names"].__setitem__(0, "FP1"))
    with pytest.raises(DataFormatError, match=r"facts modalities\.eeg\.ch_names"):
        predict(b2, fitted["data"], out=out, cache_dir=fitted["cfg"].cache_dir, device="cpu", progress=False)


def test_channel_differences_name_missing_extra_and_order() -> None:
    assert _channel_differences("eeg", ["A", "B", "C"], ["A", "B", "C"]) == []
    assert _channel_differences("eeg", ["A", "B", "C"], ["A", "C", "D"]) == [
        "eeg: missing ['B']", "eeg: not in the bundle ['D']"]
    (msg,) = _channel_differences("eeg", ["A", "B", "C"], ["A", "C", "B"])
    assert msg == "eeg: another order (2 channels moved, first 'C' at position 1, bundle 2)"


def test_trials_table_only_for_own_recordings(fitted, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--trials.*reads no trials table"):
        predict(fitted["result"].bundle, fitted["data"], trials=tmp_path / "t.tsv", out=tmp_path / "p.csv",
                device="cpu", progress=False)


# --------------------------------------------------------------------------------------------------
# own recordings (the `recordings` reader): predict without labels


def _recordings_reader() -> bool:
    from physiosync.data.readers import READERS

    return "recordings" in READERS


@pytest.mark.skipif(not _recordings_reader(), reason="needs the own-recordings reader (dataset.name: recordings)")
def test_predict_own_recordings_without_rating_columns(tmp_path: Path) -> None:
    from physiosync.synth.recordings import write_synthetic_recordings

    data = tmp_path / "rec"
    write_synthetic_recordings(data, format="fif", n_subjects=3, n_trials=4, seed=2, sfreq=256.0,
                               trial_seconds=10.0)
    cfg = load_config(preset="smoke", overrides=[
        "dataset.name=recordings", f"dataset.data_dir={data}", f"cache_dir={tmp_path / 'cache'}",
        f"runs_dir={tmp_path / 'runs'}", "name=rec", "dataset.origin=synthetic", "labels=[arousal]",
        "device=cpu", "precision=fp32", "model.resolutions=[1.0, 5.0]",
    ])
    bundle = fit(cfg, progress=False).bundle
    with_labels = predict(bundle, data, out=tmp_path / "a.csv", cache_dir=tmp_path / "cache", device="cpu",
                          progress=False)
    # the same trials table without its rating columns
    lines = (data / "trials.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    keep = [i for i, h in enumerate(header) if h not in ("valence", "arousal", "dominance", "liking")]
    bare = tmp_path / "bare.tsv"
    bare.write_text("\n".join("\t".join(line.split("\t")[i] for i in keep) for line in lines) + "\n")
    without = predict(bundle, data, trials=bare, out=tmp_path / "b.csv", cache_dir=tmp_path / "cache",
                      device="cpu", progress=False)
    h_a, rows_a = read_csv(tmp_path / "a.csv")
    h_b, rows_b = read_csv(tmp_path / "b.csv")
    assert "arousal_true" in h_a and "arousal_true" not in h_b
    assert "arousal_true" not in read_csv(tmp_path / "b_trials.csv")[0]
    # the signals decide the predictions: the same with or without the ratings
    assert np.array_equal(without.proba["arousal"], with_labels.proba["arousal"])
    assert column(h_b, rows_b, "arousal_p_high") == column(h_a, rows_a, "arousal_p_high")
