"""Precision: the ``auto`` decision, bf16 GEMMs with float32 master weights, and that bf16 trains like fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from builders import SPLIT, losses, make_cache, make_fold, tiny_cfg

import physiosync.training.runtime as runtime
from physiosync.config import load_config
from physiosync.errors import ConfigError, DataFormatError
from physiosync.experiments.pipeline import resolve_run_precision
from physiosync.training.checkpoint import load_checkpoint
from physiosync.training.finetune import finetune_fold
from physiosync.training.precision import Bf16Matmuls, Fp32, mixed_precision
from physiosync.training.pretrain import pretrain_split

# The real probe, bound before conftest's autouse fixture replaces runtime.bf16_is_fast in each test.
REAL_BF16_IS_FAST = runtime.bf16_is_fast

# bf16 keeps 8 significant bits: one rounding has relative error <= 2^-8 ~ 3.9e-3.
BF16_EPS = 2.0**-8


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one intra-op thread


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("cache"))


# --------------------------------------------------------------------------------------------------
# the decision


@pytest.mark.parametrize(("features", "fast"), [
    ({"capability": "AVX512", "amx_bf16": True, "avx512_bf16": True, "mkldnn_bf16": True}, True),  # Xeon AMX
    ({"capability": "AVX512", "amx_bf16": False, "avx512_bf16": True, "mkldnn_bf16": True}, True),  # Zen 4/5
    ({"capability": "AVX512", "amx_bf16": False, "avx512_bf16": False, "mkldnn_bf16": True}, False),  # Skylake-X
    ({"capability": "AVX2", "amx_bf16": False, "avx512_bf16": False, "mkldnn_bf16": False}, False),  # Zen 2/3
    ({"capability": "AVX512", "amx_bf16": True, "avx512_bf16": True, "mkldnn_bf16": False}, False),  # no oneDNN
    ({}, False),  # nothing known (no /proc/cpuinfo)
])
def test_cpu_bf16_is_fast_only_with_hardware_bf16_and_onednn(features, fast):
    assert runtime.cpu_bf16_is_fast(features) is fast


def test_bf16_is_fast_per_device(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: {"avx512_bf16": True, "mkldnn_bf16": True})
    assert REAL_BF16_IS_FAST(torch.device("cpu")) is True
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: {"avx512_bf16": False, "mkldnn_bf16": True})
    assert REAL_BF16_IS_FAST(torch.device("cpu")) is False
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert REAL_BF16_IS_FAST(torch.device("cuda")) is True
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert REAL_BF16_IS_FAST(torch.device("cuda")) is False
    assert REAL_BF16_IS_FAST(torch.device("mps")) is False  # MPS and the rest: fp32


def test_cpu_bf16_features_reports_this_machine():
    feats = runtime.cpu_bf16_features()
    assert set(feats) == {"capability", "amx_bf16", "avx512_bf16", "mkldnn_bf16"}
    assert all(isinstance(feats[k], bool) for k in ("amx_bf16", "avx512_bf16", "mkldnn_bf16"))


def test_resolve_precision(monkeypatch):
    cpu = torch.device("cpu")
    assert runtime.resolve_precision("auto", cpu) == "fp32"  # conftest: this suite's machines are "slow"
    monkeypatch.setattr(runtime, "bf16_is_fast", lambda device: True)
    assert runtime.resolve_precision("auto", cpu) == "bf16"
    assert runtime.resolve_precision("fp32", cpu) == "fp32"  # explicit values are never second-guessed
    assert runtime.resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="precision"):
        runtime.resolve_precision("fp16", cpu)


def test_config_default_is_auto_and_rejects_unknown_precision():
    assert load_config().precision == "auto"
    with pytest.raises(ConfigError, match="precision"):
        load_config(overrides=["precision=fp16"])


def test_run_keeps_its_saved_precision_when_auto(monkeypatch, tmp_path):
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "name=r"])
    run = tmp_path / "r"
    monkeypatch.setattr(runtime, "bf16_is_fast", lambda device: True)
    assert resolve_run_precision(cfg, run, torch.device("cpu")).precision == "bf16"  # new run: this machine
    run.mkdir()
    (run / "config.yaml").write_text("precision: fp32\n")
    # resumed on a bf16 machine, an fp32 run stays fp32 (one arithmetic per run)
    assert resolve_run_precision(cfg, run, torch.device("cpu")).precision == "fp32"
    explicit = cfg.model_copy(update={"precision": "bf16"})
    assert resolve_run_precision(explicit, run, torch.device("cpu")).precision == "bf16"  # guard refuses later


# --------------------------------------------------------------------------------------------------
# bf16 GEMMs with float32 master weights


def test_bf16_linear_matches_float64_within_bf16_rounding():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 32)
    x = torch.randn(40, 64, requires_grad=True)
    mixed = Bf16Matmuls(lin)
    with mixed:
        y = lin(x)
    assert y.dtype == torch.float32
    (y * torch.linspace(-1, 1, 32)).sum().backward()
    assert lin.weight.grad.dtype == torch.float32 and x.grad.dtype == torch.float32

    x64, w64, b64 = x.detach().double().requires_grad_(), lin.weight.detach().double().requires_grad_(), \
        lin.bias.detach().double().requires_grad_()
    y64 = F.linear(x64, w64, b64)
    (y64 * torch.linspace(-1, 1, 32, dtype=torch.float64)).sum().backward()
    # Inputs and weights are each rounded once to bf16 (rel. <= 2^-8); products are summed in float32.
    # Relative to the largest entry the error of a 64-term dot product stays within a few roundings;
    # 4 * 2^-8 leaves room for the two roundings per product and for the bf16 rounding of the gradient
    # GEMM outputs, and is still far below an fp32-vs-bf16 mix-up (which would be exact or way off).
    for got, ref in ((y, y64), (x.grad, x64.grad), (lin.weight.grad, w64.grad), (lin.bias.grad, b64.grad)):
        err = (got.double() - ref).abs().max() / ref.abs().max()
        assert err < 4 * BF16_EPS, float(err)
    # and it really is bf16: the forward differs from float32 by more than float32 rounding would explain
    assert (y.detach().double() - y64.detach()).abs().max() / y64.abs().max() > 1e-5


def test_every_linear_of_a_model_runs_in_bf16_inside_the_context_and_only_there(monkeypatch):
    """The context switches GEMMs by giving each nn.Linear an instance forward; all of them, attention's qkv too."""
    import physiosync.training.precision as precision
    from physiosync.config import ModelConfig
    from physiosync.data.facts import prepared_contract
    from physiosync.models import PretrainModel

    torch.manual_seed(0)
    contract = prepared_contract("deap")
    model = PretrainModel(contract, 1.0, ModelConfig(embed_dim={"1.0": 32}, projector_dims=[64, 64], cm_dim=32))
    batch = {s.name: torch.randn(2, 2, 2, s.n_chans, s.n_times(1.0)) for s in contract.modalities}
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    calls: list[torch.nn.Module] = []
    for m in linears:
        m.register_forward_hook(lambda mod, args, out: calls.append(mod))
    routed = []
    real_apply = precision._Bf16Linear.apply
    monkeypatch.setattr(precision._Bf16Linear, "apply", lambda *a: routed.append(a[1]) or real_apply(*a))
    mixed = Bf16Matmuls(model)
    with mixed:
        with mixed:  # re-entrant: the inner exit must not switch back
            pass
        model(batch)
    assert calls and len(routed) == len(calls)  # every Linear call went through the bf16 GEMM
    assert {id(w) for w in routed} == {id(m.weight) for m in calls}
    assert any(type(m).__name__ == "BiasPerCallLinear" for m in calls)  # the attention's qkv included
    assert all("forward" not in m.__dict__ for m in linears)  # left: class forwards again
    routed.clear()
    model(batch)
    assert routed == []
    with pytest.raises(RuntimeError, match="boom"), mixed:
        raise RuntimeError("boom")
    assert all("forward" not in m.__dict__ for m in linears)  # an exception inside restores too


def test_copies_follow_the_master_weights_only_after_refresh():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 4)
    mixed = Bf16Matmuls(lin)
    [copy] = mixed.copies
    assert copy.dtype == torch.bfloat16 and torch.equal(copy, lin.weight.detach().bfloat16())
    with torch.no_grad():
        lin.weight.add_(1.0)
    assert not torch.equal(copy, lin.weight.detach().bfloat16())
    mixed.refresh()
    assert torch.equal(copy, lin.weight.detach().bfloat16())


def test_fp32_context_changes_nothing():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 8)
    x = torch.randn(5, 16)
    ctx = mixed_precision(lin, "fp32")
    assert isinstance(ctx, Fp32) and not ctx.enabled
    with ctx:
        y = lin(x)
    assert torch.equal(y, F.linear(x, lin.weight, lin.bias))
    with pytest.raises(ValueError, match="resolved"):
        mixed_precision(lin, "auto")


# --------------------------------------------------------------------------------------------------
# bf16 trains like fp32


def test_a_few_pretraining_steps_in_bf16_and_fp32_give_close_losses(cache, tmp_path):
    fp32 = pretrain_split(cache, SPLIT, 1.0, tiny_cfg(0, epochs=2).model_copy(update={"precision": "fp32"}),
                          "cpu", tmp_path / "fp32", progress=False)
    bf16 = pretrain_split(cache, SPLIT, 1.0, tiny_cfg(0, epochs=2).model_copy(update={"precision": "bf16"}),
                          "cpu", tmp_path / "bf16", progress=False)
    for a, b in zip(fp32["history"], bf16["history"], strict=True):
        for part in ("train", "val"):
            la, lb = a[part]["loss"], b[part]["loss"]
            # Same seed, data and initial weights; only GEMM operands are rounded to bf16 (2^-8 each).
            # Four steps of Adam (lr 7e-4) compound that into a relative loss difference of a few 2^-8;
            # 5 * 2^-8 (~2 %) allows it, while a broken bf16 path (wrong weights, stale copies: copies
            # not refreshed would freeze the loss) would differ by far more or not at all.
            assert abs(la - lb) <= 5 * BF16_EPS * abs(la), (part, la, lb)
            assert la != lb  # the bf16 run really used bf16
    # bf16 learns: the copies are refreshed, so the training loss moves as in fp32
    assert bf16["history"][-1]["train"]["loss"] != bf16["history"][0]["train"]["loss"]


def test_finetune_bf16_gives_probabilities_close_to_fp32(cache, tmp_path):
    fold = make_fold(cache)
    out = {}
    for p in ("fp32", "bf16"):
        cfg = tiny_cfg().model_copy(update={"precision": p})
        out[p] = finetune_fold(cache, cache.windows(5.0), fold, "valence", None, cfg, "cpu", tmp_path / p,
                               progress=False)
    proba = out["bf16"]["proba"]
    assert proba.dtype == np.float64 and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    # three epochs of tiny fine-tuning from the same start: probabilities within a few bf16 roundings
    # (absolute, as probabilities are O(1)); identical would mean bf16 was not used.
    diff = np.abs(proba - out["fp32"]["proba"]).max()
    assert 0 < diff < 0.05, diff


def test_resumed_checkpoint_keeps_its_precision(cache, tmp_path):
    bf16 = tiny_cfg(0, epochs=2).model_copy(update={"precision": "bf16"})
    full = pretrain_split(cache, SPLIT, 1.0, bf16, "cpu", tmp_path / "full", progress=False)
    pretrain_split(cache, SPLIT, 1.0, bf16, "cpu", tmp_path / "cut", progress=False, max_epochs_this_call=1)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["precision"] == "bf16"
    auto = tiny_cfg(0, epochs=2)  # precision auto; conftest makes this machine resolve it to fp32
    resumed = pretrain_split(cache, SPLIT, 1.0, auto, "cpu", tmp_path / "cut", progress=False)
    # continued in bf16: exactly the uninterrupted bf16 run (an fp32 second epoch would differ)
    assert resumed["finished"] and losses(resumed["history"]) == losses(full["history"])
    pretrain_split(cache, SPLIT, 1.0, bf16, "cpu", tmp_path / "x", progress=False, max_epochs_this_call=1)
    with pytest.raises(DataFormatError, match="precision"):
        pretrain_split(cache, SPLIT, 1.0, bf16.model_copy(update={"precision": "fp32"}), "cpu", tmp_path / "x",
                       progress=False)


def test_run_saves_and_reports_the_resolved_precision(tmp_path):
    from physiosync.experiments.pipeline import run_pipeline
    from physiosync.synth import write_synthetic_deap

    write_synthetic_deap(tmp_path / "deap", n_subjects=4, n_trials=6, seed=3, effect=1.0)
    cfg = load_config(preset="smoke", overrides=[
        f"dataset.data_dir={tmp_path / 'deap'}", f"cache_dir={tmp_path / 'cache'}", f"runs_dir={tmp_path / 'runs'}",
        "protocol.n_folds=2", "protocol.folds=[0]"])
    assert cfg.precision == "auto"
    run_pipeline(cfg, progress=False)
    run = tmp_path / "runs" / "run"
    assert load_config(run / "config.yaml").precision == "fp32"  # resolved (conftest: fp32 machine), not auto
    import json

    assert json.loads((run / "results.json").read_text())["meta"]["precision"] == "fp32"
    assert "| fp32 |" in (run / "report.md").read_text()
