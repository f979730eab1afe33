"""A generated corpus of broken configurations, each run through the in-process CLI (issue 8 §4).

Every mutation must give exit code 2 and one line on stderr (``physiosync run: error: ...``) that names
the source (the file or the ``--set`` item) and the key (or the file and what was wrong), no traceback,
and nothing written: the working directory (where the default ``cache`` and ``runs`` folders would go)
holds only the inputs afterwards. A few valid controls make sure the corpus does not pass by refusing
everything. ``run`` is used because it loads the whole config (and checks the device) before touching
data; a mutation that slipped through would reach the data stage and fail there with a message that
names no config key, so the key assertion catches it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from physiosync.cli import main
from physiosync.config import RunConfig

RUN = ["run", "--stages", "pretrain", "--quiet"]

# ------------------------------------------------------------------------------------------------------
# bad values per key: (key, YAML text of the value). Every one is refused by the schema.

BAD_VALUES: list[tuple[str, str]] = [
    ("seed", "true"), ("seed", "-1"), ("seed", "2.5"), ("seed", "'7'"), ("seed", "99999999999999999999999"),
    ("name", "''"), ("name", "../elsewhere"), ("name", "a/b"), ("name", "'.'"), ("name", "[a]"),
    ("device", "tpu0"), ("device", "cuda:x"), ("device", "gpu"), ("device", "1"),
    ("precision", "fp16"), ("n_threads", "0"), ("n_threads", "-2"), ("n_threads", "true"),
    ("n_threads", "100000"), ("labels", "[]"), ("labels", "[arousal, arousal]"), ("labels", "[happiness]"),
    ("labels", "arousal"), ("preset", "nope"), ("cache_dir", "[1]"), ("runs_dir", "''"),
    ("dataset.name", "seed"), ("dataset.format", "csv"), ("dataset.subjects", "[]"),
    ("dataset.subjects", "[s0]"), ("dataset.subjects", "[s01, s1]"), ("dataset.subjects", "[true]"),
    ("dataset.origin", "made-up"),
    ("preprocess.official", "1"), ("preprocess.official", "'yes'"), ("preprocess.dreamer_segment", "middle"),
    ("preprocess.peripheral_norm", "global"), ("preprocess.thresholds", "{valance: 5}"),
    ("preprocess.thresholds", "{valence: 10}"), ("preprocess.thresholds", "{arousal: 1.0}"),
    ("preprocess.thresholds", "{valence: .nan}"),
    ("model.embed_dim", "{'1.0': 0, '5.0': 16}"), ("model.embed_dim", "{x: 16}"), ("model.embed_dim", "{}"),
    ("model.embed_dim", "{'1.0': 16}"), ("model.embed_dim", "{'1.0': 16.5, '5.0': 16}"),
    ("model.embed_dim", "{-1: 16, '1.0': 16, '5.0': 16}"), ("model.depth", "0"), ("model.depth", "100000"),
    ("model.depth", "1e9"), ("model.n_heads", "3"), ("model.n_heads", "0"), ("model.n_views", "0"),
    ("model.mlp_ratio", "0"), ("model.mlp_ratio", ".inf"), ("model.mlp_ratio", "true"),
    ("model.n_prompts", "-1"), ("model.eeg_token_dropout", "1.0"), ("model.eeg_token_dropout", "-0.1"),
    ("model.layer_scale_init", ".nan"), ("model.projector_dims", "[]"), ("model.projector_dims", "[32, 0]"),
    ("model.projector_dims", "[32, 1000000000]"), ("model.projector_dropout", "1.5"), ("model.cm_dim", "0"),
    ("model.classifier_hidden", "[-8]"), ("model.classifier_dropout", "1"), ("model.resolutions", "[]"),
    ("model.resolutions", "[7.0]"), ("model.resolutions", "[0]"), ("model.resolutions", "[1.0, 1.0]"),
    ("model.resolutions", "[3.0]"), ("model.fusion", "late"), ("model.parity", "2"),
    ("pretrain.epochs", "0"), ("pretrain.epochs", "-1"), ("pretrain.batch_size", "0"),
    ("pretrain.batch_size", "1"), ("pretrain.lr", "0"), ("pretrain.lr", "-1"), ("pretrain.lr", "x"),
    ("pretrain.weight_decay", "-0.1"), ("pretrain.temperature", "0"), ("pretrain.temperature", "-0.1"),
    ("pretrain.temperature", ".inf"), ("pretrain.n_group_subjects", "0"), ("pretrain.pairing", "random"),
    ("pretrain.w_temporal", "-1"), ("pretrain.val_fraction", "1.0"), ("pretrain.val_fraction", "-0.5"),
    ("pretrain.steps_per_epoch", "0"), ("pretrain.augment.snr_db", ".nan"),
    ("pretrain.augment.scale_low", "[0.8, 0.7]"), ("pretrain.augment.scale_low", "[0.7]"),
    ("pretrain.augment.scale_high", "[-1, 1]"), ("pretrain.augment.enabled", "'off'"),
    ("finetune.epochs", "0"), ("finetune.epochs", "-1"), ("finetune.epochs", "2.5"),
    ("finetune.batch_size", "0"), ("finetune.batch_size", "1"), ("finetune.lr", "-1"), ("finetune.lr", "0"),
    ("finetune.weight_decay", "-1"), ("finetune.t0", "0"), ("finetune.steps_per_epoch", "0"),
    ("protocol.name", "holdout"), ("protocol.n_folds", "1"), ("protocol.n_folds", "0"),
    ("protocol.folds", "[]"), ("protocol.folds", "[-1]"), ("protocol.folds", "[0, 0]"),
    ("protocol.official", "true"),  # official folds exist for the `paper` protocol only
    ("protocol", "3"), ("model", "[]"), ("pretrain", "'fast'"),
]
# cross-key rules that need two keys
BAD_PAIRS: list[tuple[str, list[str], str]] = [
    ("both-objectives-off", ["pretrain.temporal=false", "pretrain.cross_modal=false"], "pretrain.cross_modal"),
    ("dreamer-threshold", ["dataset.name=dreamer", "preprocess.thresholds={valence: 7}"], "preprocess.thresholds"),
    ("dreamer-no-1s-width", ["dataset.name=dreamer", "model.embed_dim={5.0: 16}"], "model.embed_dim"),
    ("windows-do-not-tile", ["model.embed_dim={2.0: 16, 3.0: 16}", "model.resolutions=[2.0, 3.0]"],
     "model.resolutions"),
    ("window-longer-than-trial", ["model.embed_dim={120: 16}", "model.resolutions=[120]"], "model.resolutions"),
    ("heads-vs-width", ["model.n_heads=8", "model.embed_dim={1.0: 12, 5.0: 16}"], "model.n_heads"),
]
UNKNOWN_KEYS = ["bogus", "dataset.bogus", "preprocess.bogus", "model.bogus", "pretrain.bogus",
                "pretrain.augment.bogus", "finetune.bogus", "protocol.bogus", "model.depth.x", "a.b.c"]
# whole-file mutations: (id, bytes of the file, a fragment the message must contain besides the file name)
BAD_FILES: list[tuple[str, bytes, str]] = [
    ("non-utf8", b"name: x\n\xff\xfe\n", "not UTF-8"),
    ("latin1", "name: caf\u00e9\n".encode("latin-1"), "not UTF-8"),
    ("utf16", "name: x\n".encode("utf-16"), "not UTF-8"),
    ("top-level-list", b"- a\n- b\n", "top level must be a mapping"),
    ("top-level-scalar", b"42\n", "top level must be a mapping"),
    ("duplicate-top-key", b"seed: 1\nseed: 2\n", "duplicate key 'seed'"),
    ("duplicate-nested-key", b"model:\n  depth: 1\n  depth: 2\n", "duplicate key 'depth'"),
    ("duplicate-section", b"model: {depth: 1}\nmodel: {n_heads: 2}\n", "duplicate key 'model'"),
    ("alias-bomb", b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
                   b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nname: [*d,*d]\n",
     "aliases and anchors are not allowed"),
    ("alias", b"finetune: {lr: &x 0.001}\npretrain: {lr: *x}\n", "aliases and anchors are not allowed"),
    ("merge-key", b"<<: {seed: 1}\n", "merge keys"),
    ("python-tag", b'name: !!python/object/apply:os.system ["echo owned"]\n', "constructor"),
    ("tab-indent", b"model:\n\tdepth: 1\n", "line 2"),
    ("unclosed-flow", b"model: {depth: 1\n", "not valid YAML"),
    ("bad-indent", b"model:\n  depth: 1\n n_heads: 2\n", "not valid YAML"),
    ("nul-byte", b"name: a\x00b\n", "not valid YAML"),
    ("deep-nesting", b"a: " + b"[" * 1200 + b"]" * 1200 + b"\n", "nested too deeply"),
    ("huge-file", b"#" * (1 << 20) + b"\nseed: 1\n", "larger than"),
    ("non-string-key", b"1: x\n", "'1'"),
    ("null-key", b"? \n: x\n", "None"),
    ("truncated", b"model:\n  embed_dim: {'1.0': 16, '5.", "not valid YAML"),
    ("date-as-name", b"name: 2024-01-01\n", "key 'name'"),
    ("huge-list-echo", b"labels: [" + b", ".join([b"arousal"] * 3000) + b"]\n", "key 'labels'"),
]
BAD_OVERRIDES: list[tuple[str, str]] = [  # malformed --set items: (item, fragment)
    ("model", "expected key=value"), ("=3", "malformed key"), ("a..b=1", "malformed key"), (".x=1", "malformed key"),
    ("seed=[1", "not valid YAML"), ("seed={a: 1, a: 2}", "duplicate key"), ("model.embed_dim=&a {}", "anchor"),
    ("model=3", "key 'model'"), ("model.depth.x=1", "key 'model.depth'"), ("dataset=", "key 'dataset'"),
]
DEVICES = ["tpu0", "cuda:x", "cpu:1", "mps:0", "cuda", "cuda:0", "mps", "CUDA"]


def _yaml_for(key: str, value: str) -> str:
    """A YAML file that sets the dotted ``key`` to ``value`` (nested block mappings)."""
    parts = key.split(".")
    lines = [f"{'  ' * i}{p}:" for i, p in enumerate(parts[:-1])]
    lines.append(f"{'  ' * (len(parts) - 1)}{parts[-1]}: {value}")
    return "\n".join(lines) + "\n"


def _cases() -> list:
    cases = []
    for key, value in BAD_VALUES:
        cases.append(pytest.param("file", _yaml_for(key, value).encode(), [], key, id=f"file:{key}={value}"))
        cases.append(pytest.param("set", None, [f"{key}={value}"], key, id=f"set:{key}={value}"))
    for name, items, key in BAD_PAIRS:
        cases.append(pytest.param("set", None, items, key, id=f"pair:{name}"))
    for key in UNKNOWN_KEYS:
        cases.append(pytest.param("file", _yaml_for(key, "1").encode(), [], key.split(".")[0], id=f"file:unknown:{key}"))
        cases.append(pytest.param("set", None, [f"{key}=1"], key.split(".")[0], id=f"set:unknown:{key}"))
    for name, data, fragment in BAD_FILES:
        cases.append(pytest.param("file", data, [], fragment, id=f"bytes:{name}"))
    for item, fragment in BAD_OVERRIDES:
        cases.append(pytest.param("set", None, [item], fragment, id=f"malformed:{item}"))
    return cases


CASES = _cases()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (default cache/ and runs/ would appear here) with inputs in ``in/``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    return tmp_path


@pytest.fixture
def no_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has neither CUDA nor MPS (so `cuda`/`mps` must be refused, on any test machine)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def _assert_clean_error(rc: int, err: str, workdir: Path, *fragments: str) -> str:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[:2000]
    line = lines[0]
    assert line.startswith("physiosync run: error: "), line
    assert len(line) < 2500, f"message of {len(line)} characters"
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert sorted(p.name for p in workdir.iterdir()) == ["in"], "something was written"
    return line


def test_corpus_is_large_enough():
    assert len(CASES) >= 200


@pytest.mark.parametrize("kind,data,overrides,fragment", CASES)
def test_bad_config_is_one_clean_line(kind, data, overrides, fragment, workdir, capsys, no_accelerator):
    argv = list(RUN)
    if kind == "file":
        path = workdir / "in" / "c.yaml"
        path.write_bytes(data)
        argv.insert(1, str(path))
        source = str(path)
    else:
        argv.append("--set=dataset.data_dir=in")  # so a mutation that slipped through would reach the data
        for item in overrides:
            argv += ["--set", item]
        source = "--set"
    rc = main(argv)
    _assert_clean_error(rc, capsys.readouterr().err, workdir, source, fragment)


@pytest.mark.parametrize("kind", ["directory", "missing", "unreadable", "empty-name"])
def test_bad_config_path(kind, workdir, capsys, monkeypatch):
    path = workdir / "in" / "c.yaml"
    if kind == "directory":
        path.mkdir()
        fragment = "is a directory"
    elif kind == "missing":
        fragment = "not found"
    elif kind == "unreadable":
        path.write_text("seed: 1\n")
        path.chmod(0)
        if os.geteuid() == 0:  # root reads any file: make the open fail as it does for a user
            real_open = Path.open

            def deny(self, *args, **kwargs):
                if self == path:
                    raise PermissionError(13, "Permission denied", str(self))
                return real_open(self, *args, **kwargs)

            monkeypatch.setattr(Path, "open", deny)
        fragment = "permission denied"
    else:
        path = workdir / "in"  # `run in` names a directory too
        fragment = "is a directory"
    rc = main(["run", str(path), "--stages", "pretrain"])
    _assert_clean_error(rc, capsys.readouterr().err, workdir, str(path), fragment)


@pytest.mark.parametrize("device", DEVICES)
def test_bad_or_unavailable_device(device, workdir, capsys, no_accelerator):
    rc = main([*RUN, "--device", device, "--set", "dataset.data_dir=in"])
    _assert_clean_error(rc, capsys.readouterr().err, workdir, "device", repr(device))


def test_cuda_index_beyond_the_machine(workdir, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    rc = main([*RUN, "--device", "cuda:3", "--set", "dataset.data_dir=in"])
    _assert_clean_error(rc, capsys.readouterr().err, workdir, "cuda:3", "1 CUDA device")


def test_alias_bomb_message_is_short(workdir, capsys):
    """The 280-byte alias bomb of the issue: refused at the first anchor, with a short message."""
    path = workdir / "in" / "bomb.yaml"
    path.write_bytes(BAD_FILES[[c[0] for c in BAD_FILES].index("alias-bomb")][1])
    assert path.stat().st_size < 300
    rc = main([*RUN, str(path)])
    line = _assert_clean_error(rc, capsys.readouterr().err, workdir, str(path), "line 1")
    assert len(line) < 300


# ------------------------------------------------------------------------------------------------------
# valid controls: the same machinery accepts good input


VALID = [
    "preset: smoke\n",
    "preset: smoke\nseed: 3\nfinetune: {lr: 1e-3}\n",  # PyYAML reads 1e-3 as a string; floats take it
    "preset: smoke\nmodel: {embed_dim: {1: 16, 5: 16}, n_heads: 4}\n",  # numeric keys replace the preset's
    "preset: smoke\nmodel: {embed_dim: {'2.5': 16}, resolutions: [2.5]}\n",  # 320 samples tile 7680
    "preset: smoke\ndataset: {name: dreamer, subjects: [1, s02]}\nmodel: {resolutions: [1.0, 5.0]}\n",
    "preset: paper\nprotocol: {name: paper, official: true}\npreprocess: {thresholds: {valence: 4.5}}\n",
    "\ufeffpreset: smoke\n",  # a UTF-8 byte-order mark
    "# comments only\n",  # an empty document is the defaults
]


@pytest.mark.parametrize("text", VALID)
def test_valid_config_reaches_the_data_check_without_writing(text, workdir, capsys):
    """A valid config gets past every config check and stops only at the missing data, before a run
    directory is made (the message names the key, not the file: the config itself is fine)."""
    path = workdir / "in" / "ok.yaml"
    path.write_text(text, encoding="utf-8")
    rc = main([*RUN, str(path), "--device", "cpu"])
    line = _assert_clean_error(rc, capsys.readouterr().err, workdir, "dataset.data_dir is not set")
    assert str(path) not in line


def test_split_settings_may_constrain_each_other():
    """Keys that constrain each other can be changed by separate --set (the merged config is validated)."""
    from physiosync.config import load_config

    cfg = load_config(preset="smoke", overrides=["model.embed_dim={2.5: 16}", "model.resolutions=[2.5]"])
    assert isinstance(cfg, RunConfig) and cfg.model.resolutions == [2.5]
    cfg = load_config(overrides=["model.resolutions=[2.5]", "model.embed_dim={2.5: 16}"])
    assert cfg.model.embed_dim == {"2.5": 16}
