"""Model tests (method-spec §3, §6, §8.1; contract 3): shapes, parity counts, fusion, gradients, CLI.

Paper-size models are built on the ``meta`` device where only counts/FLOPs matter; one real paper-size
DEAP fine-tuning model checks the 10240-d fusion. Everything else uses small widths.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from physiosync.cli import main as cli_main
from physiosync.config import ModelConfig
from physiosync.data.facts import prepared_contract
from physiosync.models import (
    FinetuneModel,
    PretrainModel,
    build_encoder,
    is_parity_name,
    lookup_embed_dim,
    plan_segments,
)
from physiosync.models.describe import count_params, default_resolutions
from physiosync.models.flops import module_flops

SMALL = dict(embed_dim={"1.0": 16, "5.0": 24}, projector_dims=[32, 48, 64], cm_dim=20, classifier_hidden=[16, 8])


def small_cfg(**kw) -> ModelConfig:
    return ModelConfig(**{**SMALL, **kw})


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def make_batch(contract, window_s: float, b: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {s.name: torch.randn(b, s.n_chans, s.n_times(window_s), generator=g) for s in contract.modalities}


# ------------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("dataset", ["deap", "dreamer"])
@pytest.mark.parametrize("window_s", [1.0, 5.0])
def test_pretrain_shapes_every_encoder_and_head(dataset, window_s):
    contract = prepared_contract(dataset)
    cfg = small_cfg()
    d = lookup_embed_dim(cfg, window_s)
    model = PretrainModel(contract, window_s, cfg)
    assert list(model.encoders) == [contract.eeg.name, contract.peripheral.name]  # EEG first
    batch = make_batch(contract, window_s, 3)
    feats = model.encode(batch)
    for spec in contract.modalities:
        h = feats[spec.name]
        assert h.shape == (3, 4 * d) and model.encoders[spec.name].out_dim == 4 * d
        # (B, 1, C, T) is accepted and gives the same result in eval mode
        model.eval()
        x = batch[spec.name]
        torch.testing.assert_close(
            model.encoders[spec.name].forward_features(x[:, None]), model.encoders[spec.name].forward_features(x)
        )
        model.train()
        assert model.projectors[spec.name](h).shape == (3, 64)
        assert model.cm_head(h).shape == (3, 20)
    with pytest.raises(ValueError, match="expects"):
        model.encoders[contract.eeg.name].forward_features(batch[contract.eeg.name][:, :-1])


def test_pretrain_model_without_peripheral_has_no_cm_head():
    full = prepared_contract("deap", (1.0,))
    contract = type(full)(modalities=(full.eeg,), window_s=(1.0,))
    model = PretrainModel(contract, 1.0, small_cfg())
    assert model.cm_head is None and list(model.projectors) == [full.eeg.name]


def test_embed_dim_lookup_accepts_float_like_keys():
    cfg = ModelConfig(embed_dim={"1": 8, "5.0": 12})
    assert lookup_embed_dim(cfg, 1.0) == 8 and lookup_embed_dim(cfg, 5) == 12
    with pytest.raises(KeyError, match="2.0"):
        lookup_embed_dim(cfg, 2.0)


@pytest.mark.parametrize("dataset,expected", [("deap", 10240), ("dreamer", 1024)])
def test_fusion_size_at_paper_dims(dataset, expected):
    contract = prepared_contract(dataset)
    cfg = ModelConfig(resolutions=default_resolutions(dataset))
    assert sum(s.size for s in plan_segments(contract, cfg)) == expected
    eeg_only = cfg.model_copy(update={"fusion": "eeg-only"})
    assert sum(s.size for s in plan_segments(contract, eeg_only)) == expected // 2


def test_deap_paper_size_finetune_forward():
    """The one real paper-size instantiation: [E5, s1..s5, G5, r1..r5] = 10240-d, confidences in [1/K, 1]."""
    torch.manual_seed(0)
    contract = prepared_contract("deap")
    model = FinetuneModel(contract, ModelConfig(), n_classes=4).eval()
    order = [(s.modality, s.window_s, s.n_slices) for s in model.classifier.segments]
    assert order == [("eeg", 5.0, 1), ("eeg", 1.0, 5), ("gsr", 5.0, 1), ("gsr", 1.0, 5)]
    batch = make_batch(contract, 5.0, 2)
    with torch.no_grad():
        fused = model.forward_features(batch)
        assert fused.shape == (2, 10240)
        assert model.forward_head(fused).shape == (2, 4)
    for c in model.confidences(batch).values():
        # max softmax ≥ 1/K exactly; float32 rounding of the K-term softmax can undershoot by ≤ (K+1)u/K
        # (u = 2^-24), so 1e-6 is a float32 margin (≈ 8 eps), not a fudge.
        assert c.min() >= 0.25 - 1e-6 and c.max() <= 1 + 1e-6


def test_dreamer_paper_size_finetune_forward():
    contract = prepared_contract("dreamer")
    cfg = ModelConfig(resolutions=default_resolutions("dreamer"))
    model = FinetuneModel(contract, cfg, n_classes=2).eval()
    assert sorted(model.encoders.keys()) == ["ecg@1_0", "eeg@1_0"] and "eeg@1.0" in model.encoders
    with torch.no_grad():
        assert model.forward_features(make_batch(contract, 1.0, 2)).shape == (2, 1024)


# ------------------------------------------------------------------------------------------------ fusion


@pytest.mark.parametrize("k", [2, 4])
def test_confidence_factors_in_range_and_scale_features(k):
    contract = prepared_contract("deap")
    model = FinetuneModel(contract, small_cfg(), n_classes=k).eval()
    batch = make_batch(contract, 5.0, 8)
    conf = model.confidences(batch)
    assert set(conf) == {("eeg", 5.0), ("eeg", 1.0), ("gsr", 5.0), ("gsr", 1.0)}
    assert conf[("eeg", 1.0)].shape == (8, 5)
    for c in conf.values():  # 1e-6: float32 softmax rounding margin, as in test_deap_paper_size_finetune_forward
        assert (c >= 1 / k - 1e-6).all() and (c <= 1 + 1e-6).all() and (c < 1).any()
    with torch.no_grad():
        fused = model.forward_features(batch)
        raw = torch.cat([f.flatten(1) for f in model.encode(batch).values()], dim=1)
    assert not torch.allclose(fused, raw)
    unweighted = FinetuneModel(contract, small_cfg(confidence_weighting=False), n_classes=k).eval()
    unweighted.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(unweighted.forward_features(batch), raw)


def test_short_resolution_slices_equal_direct_encoding():
    """Slice j of a 5 s window goes through the 1 s encoder exactly like the 1 s window 5·w + j."""
    # In float64: one call over 5·B windows and B-window calls may use different GEMM blockings, which in
    # float32 moves features of size ~3 by up to ~5e-6 (half of assert_close's float32 atol). In float64
    # the same reordering is ~1e-14, so 1e-10 is safe while a wrong slice would differ by O(1).
    contract = prepared_contract("deap")
    model = FinetuneModel(contract, small_cfg(), n_classes=2).eval().double()
    batch = {k: v.double() for k, v in make_batch(contract, 5.0, 3).items()}
    with torch.no_grad():
        feats = model.encode(batch)
        for mod in ("eeg", "gsr"):
            enc = model.encoder(mod, 1.0)
            for j in range(5):
                direct = enc.forward_features(batch[mod][:, :, j * 128 : (j + 1) * 128])
                torch.testing.assert_close(feats[(mod, 1.0)][:, j], direct, rtol=1e-10, atol=1e-10)


def test_eeg_only_fusion_drops_peripheral():
    contract = prepared_contract("deap")
    model = FinetuneModel(contract, small_cfg(fusion="eeg-only"), n_classes=2).eval()
    assert all(not k.startswith("gsr") for k in model.encoders.keys())
    assert {s.modality for s in model.classifier.segments} == {"eeg"}
    batch = make_batch(contract, 5.0, 2)
    del batch["gsr"]  # the peripheral is not needed at all
    assert model(batch).shape == (2, 2)


def test_finetune_rejects_wrong_window_length():
    contract = prepared_contract("deap")
    model = FinetuneModel(contract, small_cfg(), n_classes=2)
    with pytest.raises(ValueError, match="5.0 s windows"):
        model(make_batch(contract, 1.0, 2))


# --------------------------------------------------------------------------------------- training paths


def test_gradients_reach_trained_params_and_not_parity_modules():
    contract = prepared_contract("deap")
    cfg = small_cfg(parity=True)
    ft = FinetuneModel(contract, cfg, n_classes=4)
    loss = F.cross_entropy(ft(make_batch(contract, 5.0, 6)), torch.tensor([0, 1, 2, 3, 0, 1]))
    loss.backward()
    pre = PretrainModel(contract, 1.0, cfg)
    h = pre.encode(make_batch(contract, 1.0, 6, seed=1))
    out = sum(pre.projectors[m](h[m]).square().mean() + pre.cm_head(h[m]).square().mean() for m in h)
    out.backward()
    n_parity = 0
    for model in (ft, pre):
        for name, p in model.named_parameters():
            if is_parity_name(name):
                n_parity += 1
                assert p.grad is None, name
            else:
                assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert n_parity > 0


def test_one_step_lowers_supervised_loss():
    torch.manual_seed(0)
    contract = prepared_contract("dreamer")
    cfg = small_cfg(resolutions=[1.0], classifier_dropout=0.0, eeg_token_dropout=0.0)
    model = FinetuneModel(contract, cfg, n_classes=2)
    batch, y = make_batch(contract, 1.0, 16, seed=3), torch.tensor([0, 1] * 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = F.cross_entropy(model(batch), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    after = F.cross_entropy(model(batch), y)
    assert after.item() < before.item()


def test_eval_is_deterministic_unless_projector_dropout_in_eval():
    contract = prepared_contract("deap")
    batch = make_batch(contract, 1.0, 4)
    model = PretrainModel(contract, 1.0, small_cfg()).eval()
    with torch.no_grad():
        h = model.encode(batch)["eeg"]
        torch.testing.assert_close(h, model.encode(batch)["eeg"])
        torch.testing.assert_close(model.projectors["eeg"](h), model.projectors["eeg"](h))
    d12 = PretrainModel(contract, 1.0, small_cfg(projector_dropout_in_eval=True)).eval()
    with torch.no_grad():
        h = d12.encode(batch)["eeg"]
        assert not torch.allclose(d12.projectors["eeg"](h), d12.projectors["eeg"](h))


def test_load_encoders_from_pretraining_and_errors():
    contract = prepared_contract("deap")
    cfg = small_cfg()
    states = {}
    for w in (1.0, 5.0):
        # pre-training with parity modules: they must be tolerated by a model without them
        for mod, sd in PretrainModel(contract, w, cfg.model_copy(update={"parity": True})).encoder_state().items():
            states[(mod, w)] = sd
    ft = FinetuneModel(contract, cfg, n_classes=2)
    assert sorted(ft.load_encoders(states)) == [("eeg", 1.0), ("eeg", 5.0), ("gsr", 1.0), ("gsr", 5.0)]
    torch.testing.assert_close(ft.encoder("eeg", 5.0).mve.proj.weight, states[("eeg", 5.0)]["mve.proj.weight"])
    bad = dict(states)
    bad[("gsr", 1.0)] = PretrainModel(contract, 1.0, small_cfg(embed_dim={"1.0": 8, "5.0": 24})).encoder_state()["gsr"]
    with pytest.raises(ValueError, match=r"gsr@1.0.*shape"):
        ft.load_encoders(bad)
    with pytest.raises(ValueError, match="no pre-trained state"):
        ft.load_encoders({k: v for k, v in states.items() if k[0] == "eeg"})


def test_encoder_state_is_a_copy():
    model = PretrainModel(prepared_contract("dreamer"), 1.0, small_cfg())
    state = model.encoder_state()
    with torch.no_grad():
        model.encoders["eeg"].cls_token.add_(1.0)
    assert not torch.equal(state["eeg"]["cls_token"], model.encoders["eeg"].cls_token)


# ----------------------------------------------------------------------------- parity counts and FLOPs


def test_parity_parameter_counts_equal_spec_table():
    """Every row of method-spec §3.9 (parity on), built on the meta device (no memory)."""
    cfg = ModelConfig(parity=True)
    # (dataset, window) -> modality -> (total with projector, backbone, MVE part, unused)
    table = {
        ("deap", 1.0): {"eeg": (13_851_008, 2_827_648, 2_097_920, 132_736), "gsr": (11_817_856, 794_496, 66_304, 131_968)},
        ("deap", 5.0): {
            "eeg": (83_619_712, 70_499_200, 52_432_640, 3_285_120),
            "gsr": (32_821_632, 19_701_120, 1_642_240, 3_281_280),
        },
        ("dreamer", 1.0): {"eeg": (12_671_360, 1_648_000, 918_272, 132_736), "ecg": (11_883_392, 860_032, 131_840, 131_968)},
    }
    projector = {1.0: 11_023_360, 5.0: 13_120_512}
    cm_head = {1.0: 527_360, 5.0: 2_624_512}
    pretrain_total = {("deap", 1.0): 26_196_224, ("deap", 5.0): 119_065_856}  # §3.9: 26.2 M / 119.1 M
    with torch.device("meta"):
        for (dataset, w), rows in table.items():
            model = PretrainModel(prepared_contract(dataset), w, cfg)
            for mod, (total, backbone, mve, unused) in rows.items():
                enc = model.encoders[mod]
                assert n_params(enc) == backbone, (dataset, w, mod)
                assert n_params(enc) + n_params(model.projectors[mod]) == total, (dataset, w, mod)
                assert n_params(enc.mve) == mve
                assert n_params(enc) - count_params(enc, parity=False) == unused
                assert n_params(model.projectors[mod]) == projector[w]
            assert n_params(model.cm_head) == cm_head[w]
            if (dataset, w) in pretrain_total:
                assert n_params(model) == pretrain_total[(dataset, w)]
        classifier = {("deap", 2): 2_661_766, ("deap", 4): 2_668_172, ("dreamer", 2): 297_348, ("dreamer", 4): 298_632}
        for (dataset, k), expected in classifier.items():
            cfg_d = cfg.model_copy(update={"resolutions": default_resolutions(dataset)})
            ft = FinetuneModel(prepared_contract(dataset), cfg_d, n_classes=k)
            assert n_params(ft.classifier) == expected
        # §3.9: DEAP ≈ 96.5 M on the forward path, ≈ 89.7 M receiving gradients (K = 2)
        ft = FinetuneModel(prepared_contract("deap"), cfg, n_classes=2)
        assert round(n_params(ft) / 1e5) == 965 and round(count_params(ft, parity=False) / 1e5) == 897


def test_parity_modules_absent_by_default():
    with torch.device("meta"):
        enc = build_encoder(prepared_contract("deap").eeg, 1.0, ModelConfig())
    assert n_params(enc) == 2_827_648 - 132_736
    assert not any(is_parity_name(n) for n, _ in enc.named_parameters())


def test_block_with_prompts_equals_the_per_sample_sequence_reference():
    """Prompt keys/values computed once per batch = the spec's per-sample sequence [tokens, prompts].

    Reference (§3.2 written out): append the prompts to every sample, LayerNorm, qkv with bias
    [q_bias, 0, v_bias], softmax attention with every token as a query, keep the first N outputs.
    float64: the two differ only in summation order, so 1e-12 (≈ 4500 eps) on O(1) values is ample
    while a wrong bias, a missing prompt or a mis-broadcast key differs at O(1e-2).
    """
    from physiosync.models.encoder import Block

    torch.manual_seed(0)
    d, heads, n, b, p = 16, 4, 4, 3, 2
    blk = Block(d, heads, n_prompts=p).double()
    with torch.no_grad():
        for prm in blk.parameters():
            prm.normal_(0, 0.3)
    x = torch.randn(b, n, d, dtype=torch.float64, requires_grad=True)

    def reference(x):
        at = blk.attn
        seq = blk.norm1(torch.cat((x, blk.prompts.expand(b, -1, -1)), dim=1))
        bias = torch.cat((at.q_bias, torch.zeros_like(at.q_bias), at.v_bias))
        q, k, v = (seq @ blk.attn.qkv.weight.T + bias).split(d, dim=-1)
        split = lambda t: t.view(b, n + p, heads, d // heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        att = torch.softmax(q @ k.transpose(-1, -2) / (d // heads) ** 0.5, dim=-1) @ v
        out = at.proj(att.transpose(1, 2).reshape(b, n + p, d))[:, :n]
        x = x + blk.gamma_1 * out
        return x + blk.gamma_2 * blk.mlp(blk.norm2(x))

    got, ref = blk(x), reference(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    w = torch.randn_like(ref)
    g_got = torch.autograd.grad((got * w).sum(), [x, blk.prompts, blk.attn.qkv.weight, blk.attn.v_bias])
    g_ref = torch.autograd.grad((ref * w).sum(), [x, blk.prompts, blk.attn.qkv.weight, blk.attn.v_bias])
    for a, r in zip(g_got, g_ref, strict=True):
        torch.testing.assert_close(a, r, rtol=0, atol=1e-12)
    assert g_got[1].abs().max() > 1e-3  # the prompts really take part


def test_forward_flops_match_closed_form_and_spec():
    """PPS encoders equal §8.1; EEG encoders skip prompt-token queries/MLP (fewer FLOPs, same output)."""

    def expected(n_features: int, d: int, prompts: int, depth: int = 3, views: int = 3) -> int:
        n = views + 1
        m = n + prompts
        per_block = 2 * m * d * 3 * d + 2 * 2 * n * m * d + 2 * n * d * d + 2 * 2 * n * d * 4 * d
        return 2 * n_features * (1 + views) * d + depth * per_block

    contract = prepared_contract("deap")
    with torch.device("meta"):
        for w, d in ((1.0, 128), (5.0, 640)):
            for spec in contract.modalities:
                enc = build_encoder(spec, w, ModelConfig())
                flops = module_flops(enc, (enc.n_chans, enc.n_times))
                prompts = 2 if spec.role == "eeg" else 0
                assert flops == expected(spec.n_chans * spec.n_times(w), d, prompts), (spec.name, w)
        gsr1 = build_encoder(contract.peripheral, 1.0, ModelConfig())
        assert round(module_flops(gsr1, (1, 128)) / 1e5) == 49  # §8.1: 4.9 MFLOPs
        gsr5 = build_encoder(contract.peripheral, 5.0, ModelConfig())
        assert round(module_flops(gsr5, (1, 640)) / 1e5) == 1214  # §8.1: 121.4 MFLOPs


# ------------------------------------------------------------------------------------------------- CLI


def test_describe_model_cli_prints_integer_counts(capsys):
    assert cli_main(["describe-model", "--dataset", "dreamer", "--parity"]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[-3].isdigit() and parts[-2].isdigit():
            rows[" ".join(parts[:-3])] = (int(parts[-3]), int(parts[-2]), float(parts[-1]))
    assert rows["encoder eeg@1s"][:2] == (1_648_000, 1_648_000 - 132_736)
    assert rows["encoder ecg@1s"][0] == 860_032
    assert rows["classifier K=2"][0] == 297_348 and rows["classifier K=4"][0] == 298_632
    assert "TOTAL fine-tuning model K=2" in rows and not any("5s" in k for k in rows)
    assert "M " not in out  # no "12.7M"-style rounding
