import math

import pytest
import torch
from torch import nn

from physiosync.config import ModelConfig, PretrainConfig
from physiosync.data.contract import DataContract, ModalitySpec
from physiosync.errors import ConfigError
from physiosync.losses.contrastive import nt_xent
from physiosync.losses.objective import outputs_needed, pretrain_loss
from physiosync.models import PretrainModel, PretrainOutputs, resolve_roles

CHANS = {"eeg": 3, "gsr": 1}
N_TIMES = 8


class TinyEncoder(nn.Module):
    """Stand-in with the real encoder's seam: forward_features (B, C, T) -> (B, out_dim)."""

    def __init__(self, n_chans: int, n_times: int, out_dim: int, identity: bool = False) -> None:
        super().__init__()
        self.lin = nn.Identity() if identity else nn.Linear(n_chans * n_times, out_dim)
        self.out_dim = out_dim
        self.calls: list[tuple[int, ...]] = []

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        return self.lin(x.flatten(1))


class TinyModel(nn.Module):
    """Same attribute names as models.PretrainModel: encoders, projectors, cm_head (Linear + BN)."""

    def __init__(self, chans=CHANS, n_times=N_TIMES, feat=12, proj=16, cm=10, identity=False) -> None:
        super().__init__()
        self.modalities = list(chans)
        self.encoders = nn.ModuleDict({m: TinyEncoder(c, n_times, feat, identity) for m, c in chans.items()})
        self.projectors = nn.ModuleDict(
            {m: nn.Identity() if identity else nn.Linear(feat, proj) for m in chans}
        )
        self.cm_head = nn.Identity() if identity else nn.Sequential(nn.Linear(feat, cm), nn.BatchNorm1d(cm))

    forward = PretrainModel.forward  # the real forward pass, on the stand-in modules


def score(model: nn.Module, batch: dict[str, torch.Tensor], cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """What the training loop does with a batch: the model's forward pass, scored by the objective."""
    return pretrain_loss(model(batch, **outputs_needed(cfg)), cfg)


def make_batch(n_pairs=4, n_members=2, chans=CHANS, seed=0, dtype=torch.float32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n_pairs, 2, n_members, c, N_TIMES, generator=g).to(dtype) for m, c in chans.items()}


def make_model(seed=0, dtype=torch.float32, **kw) -> TinyModel:
    torch.manual_seed(seed)
    return TinyModel(**kw).to(dtype)


# Tests of the formula (which terms, which positives, how they combine) run in float64, where rounding is
# ~1e-16 and cannot mask or fake an error; their tolerances are stated per test. float32 accuracy of the
# loss itself is tested against a float64 reference in test_losses.py.
F64 = torch.float64


TERMS = {"tcl_eeg", "tcl_gsr", "cm_pps_eeg", "cm_eeg_pps"}


def test_named_terms_and_total():
    out = score(make_model(dtype=F64), make_batch(dtype=F64), PretrainConfig())
    assert set(out) == TERMS | {"loss", "top1_eeg", "top1_gsr", "top1_cm_pps_eeg", "top1_cm_eeg_pps"}
    for k in TERMS | {"loss"}:
        assert out[k].ndim == 0 and torch.isfinite(out[k]) and out[k].dtype == F64
    # Four positive terms summed in another order: ≤ 3 roundings, 3·eps64 relative; 1e-12 leaves headroom.
    assert out["loss"].item() == pytest.approx(sum(out[k].item() for k in TERMS), rel=1e-12)
    for k in ("top1_eeg", "top1_gsr", "top1_cm_pps_eeg", "top1_cm_eeg_pps"):
        # detached 0-d tensors (summed on the device by the loop, no host sync per step)
        assert out[k].ndim == 0 and not out[k].requires_grad and 0.0 <= float(out[k]) <= 1.0


def reference_terms(model: TinyModel, batch: dict[str, torch.Tensor], tau: float) -> dict[str, float]:
    """The objective written window by window: encode each window alone, max over group members."""
    h, z = {}, {}
    for m, x in batch.items():
        n_pairs, _, n_members = x.shape[:3]
        enc, proj = model.encoders[m], model.projectors[m]
        h[m] = torch.stack(
            [
                torch.stack(
                    [
                        torch.stack(
                            [enc.forward_features(x[b, s, k : k + 1])[0] for k in range(n_members)]
                        ).amax(0)
                        for s in (0, 1)
                    ]
                )
                for b in range(n_pairs)
            ]
        )  # (B, 2, F)
        z[m] = torch.stack(
            [
                torch.stack(
                    [
                        torch.stack(
                            [proj(enc.forward_features(x[b, s, k : k + 1]))[0] for k in range(n_members)]
                        ).amax(0)
                        for s in (0, 1)
                    ]
                )
                for b in range(n_pairs)
            ]
        )
    e = model.cm_head(torch.cat([h["eeg"][:, 0], h["eeg"][:, 1]]))
    p = model.cm_head(torch.cat([h["gsr"][:, 0], h["gsr"][:, 1]]))
    n = e.shape[0] // 2
    return {
        "tcl_eeg": nt_xent(z["eeg"][:, 0], z["eeg"][:, 1], tau).item(),
        "tcl_gsr": nt_xent(z["gsr"][:, 0], z["gsr"][:, 1], tau).item(),
        "cm_pps_eeg": nt_xent(p[:n], e[n:], tau).item(),  # PPS side 0 ↔ EEG side 1
        "cm_eeg_pps": nt_xent(e[:n], p[n:], tau).item(),  # EEG side 0 ↔ PPS side 1
    }


def test_matches_window_by_window_reference():
    model, batch = make_model(dtype=F64), make_batch(n_pairs=5, n_members=3, dtype=F64)
    cfg = PretrainConfig(n_group_subjects=3)
    out = score(model, batch, cfg)
    ref = reference_terms(model, batch, cfg.temperature)
    for k, v in ref.items():
        # Batched vs window-by-window encoding differ only in summation order (24-term dot products, BN
        # over 10 rows): ~1e-15 on features, ×1/τ = 10 on logits, so ~1e-13 on a loss of ~2; 1e-10 is safe
        # and still 1e5 below any real difference in what is paired or pooled.
        assert out[k].item() == pytest.approx(v, rel=1e-10), k


def test_one_encoder_call_per_modality():
    model, batch = make_model(), make_batch(n_pairs=4, n_members=2)
    score(model, batch, PretrainConfig())
    for m, c in CHANS.items():
        assert model.encoders[m].calls == [(4 * 2 * 2, c, N_TIMES)]


def orthonormal_sides(n_pairs: int, dim: int, n_sets: int) -> list[torch.Tensor]:
    """n_sets blocks of B mutually orthogonal, non-negative vectors (all 2-norm 2)."""
    basis = torch.eye(dim) * 2.0
    return [basis[k * n_pairs : (k + 1) * n_pairs] for k in range(n_sets)]


def groups_of(side0: torch.Tensor, side1: torch.Tensor) -> torch.Tensor:
    """(B, 2, N=2, 1, D): the target vector plus a distractor that the max over members must discard."""
    distractor = -torch.ones_like(side0)
    sides = [torch.stack([side0, distractor], 1), torch.stack([distractor, side1], 1)]
    return torch.stack(sides, 1)[:, :, :, None, :]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cm_positives_are_pps0_eeg1_and_eeg0_pps1(dtype):
    n_pairs, dim, tau = 4, 16, 0.1
    a, b, c, d = (s.to(dtype) for s in orthonormal_sides(n_pairs, dim, 4))
    model = TinyModel(chans={"eeg": 1, "gsr": 1}, n_times=dim, feat=dim, identity=True)
    cfg = PretrainConfig(temperature=tau)
    minimum = math.log(1 + (2 * n_pairs - 2) * math.exp(-1 / tau))  # identical positives, orthogonal rest
    chance = math.log(2 * n_pairs - 1)  # every row orthogonal to every other
    # The cosines are exactly 1 or 0, so only the log-sum-exp over 2n - 1 = 7 terms and the mean over 2n
    # anchors round: ≤ (4n + 4)·u·max(1, |L|) absolute (u = eps/2), i.e. ~2e-15 in float64 and ~1.2e-6 in
    # float32 (0.4 % of `minimum` = 2.7e-4: a relative tolerance of 1e-4 sat below float32's floor and
    # failed). One negative too many or too few moves `minimum` by e^{-1/τ} ≈ 4.5e-5, far outside both.
    u = torch.finfo(dtype).eps / 2

    def near(value: float):
        return pytest.approx(value, abs=(4 * n_pairs + 4) * u * max(1.0, abs(value)))

    def terms(eeg: tuple[torch.Tensor, torch.Tensor], gsr: tuple[torch.Tensor, torch.Tensor]) -> dict:
        out = score(model, {"eeg": groups_of(*eeg), "gsr": groups_of(*gsr)}, cfg)
        return {k: (v.item() if torch.is_tensor(v) else v) for k, v in out.items()}

    # Only PPS side 0 = EEG side 1 match: exactly cm_pps_eeg reaches the minimum.
    out = terms(eeg=(c, a), gsr=(a, d))
    assert out["cm_pps_eeg"] == near(minimum) and out["top1_cm_pps_eeg"] == 1.0
    assert out["cm_eeg_pps"] == near(chance)
    assert out["tcl_eeg"] == near(chance) and out["tcl_gsr"] == near(chance)

    # Only EEG side 0 = PPS side 1 match: exactly cm_eeg_pps reaches the minimum.
    out = terms(eeg=(b, c), gsr=(d, b))
    assert out["cm_eeg_pps"] == near(minimum) and out["top1_cm_eeg_pps"] == 1.0
    assert out["cm_pps_eeg"] == near(chance)

    # EEG and PPS of the SAME group agree (side 0 with side 0, side 1 with side 1): CM-CA must not reward it.
    out = terms(eeg=(a, b), gsr=(a, b))
    assert out["cm_pps_eeg"] == near(chance)
    assert out["cm_eeg_pps"] == near(chance)

    # Temporal positives: same modality, side 0 ↔ side 1 of the same moment.
    out = terms(eeg=(a, a), gsr=(b, b))
    assert out["tcl_eeg"] == near(minimum) and out["top1_eeg"] == 1.0
    assert out["tcl_gsr"] == near(minimum) and out["top1_gsr"] == 1.0


def test_ablation_switches_drop_terms():
    model, batch = make_model(dtype=F64), make_batch(dtype=F64)
    full = score(model, batch, PretrainConfig())
    no_tcl = score(model, batch, PretrainConfig(temporal=False))
    assert set(no_tcl) & TERMS == {"cm_pps_eeg", "cm_eeg_pps"} and "top1_eeg" not in no_tcl
    # The same terms from the same float64 computation, summed: ≤ 1 rounding apart (eps64 relative).
    assert no_tcl["loss"].item() == pytest.approx(
        full["cm_pps_eeg"].item() + full["cm_eeg_pps"].item(), rel=1e-12
    )
    no_cm = score(model, batch, PretrainConfig(cross_modal=False))
    assert set(no_cm) & TERMS == {"tcl_eeg", "tcl_gsr"} and "top1_cm_pps_eeg" not in no_cm
    assert no_cm["loss"].item() == pytest.approx(full["tcl_eeg"].item() + full["tcl_gsr"].item(), rel=1e-12)
    with pytest.raises(ConfigError):
        score(model, batch, PretrainConfig(temporal=False, cross_modal=False))


def test_without_cross_modal_terms_projectors_only_get_gradients_when_used():
    model, batch = make_model(), make_batch()
    score(model, batch, PretrainConfig(temporal=False))["loss"].backward()
    assert all(p.grad is None for p in model.projectors.parameters())
    assert all(p.grad is not None for p in model.cm_head.parameters())


def test_eeg_only_batch_gives_eeg_tcl_only():
    model = make_model()
    batch = {"eeg": make_batch()["eeg"]}
    out = score(model, batch, PretrainConfig())
    assert set(out) == {"tcl_eeg", "top1_eeg", "loss"}
    assert out["loss"].item() == pytest.approx(out["tcl_eeg"].item())
    with pytest.raises(ConfigError):
        score(model, batch, PretrainConfig(temporal=False))


def test_weights_scale_exactly():
    model, batch = make_model(dtype=F64), make_batch(dtype=F64)
    base = score(model, batch, PretrainConfig())
    out = score(model, batch, PretrainConfig(w_temporal=0.5, w_cross_modal=2.0))
    for k in TERMS:  # the weights never reach the terms: the same computation, bit for bit
        assert out[k].item() == base[k].item()
    # Scaling by 0.5 and 2 is exact; only the order of the 4 positive additions differs (≤ 3·eps64).
    expected = 0.5 * (base["tcl_eeg"] + base["tcl_gsr"]) + 2.0 * (base["cm_pps_eeg"] + base["cm_eeg_pps"])
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-12)
    cross_scale = score(model, batch, PretrainConfig(w_temporal=0.5, w_cross_modal=0.5))
    assert cross_scale["loss"].item() == pytest.approx(0.5 * base["loss"].item(), rel=1e-12)


def test_temperature_is_used():
    model, batch = make_model(), make_batch()
    a = score(model, batch, PretrainConfig(temperature=0.1))["tcl_eeg"].item()
    b = score(model, batch, PretrainConfig(temperature=0.07))["tcl_eeg"].item()
    assert a != pytest.approx(b, rel=1e-3)


def test_gradients_reach_every_module():
    model, batch = make_model(), make_batch()
    score(model, batch, PretrainConfig())["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_one_step_lowers_the_loss():
    model, batch, cfg = make_model(seed=3), make_batch(n_pairs=6, seed=3), PretrainConfig()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    before = score(model, batch, cfg)["loss"]
    opt.zero_grad()
    before.backward()
    opt.step()
    after = score(model, batch, cfg)["loss"]
    assert after.item() < before.item()


def test_layout_checks():
    model = make_model()
    with pytest.raises(ValueError):  # groups expects N = n_group_subjects
        score(model, make_batch(n_members=3), PretrainConfig(n_group_subjects=2))
    with pytest.raises(ValueError):  # augviews / official expect N = 1
        score(model, make_batch(n_members=2), PretrainConfig(pairing="augviews"))
    score(model, make_batch(n_members=1), PretrainConfig(pairing="official"))
    bad = make_batch()
    bad["gsr"] = bad["gsr"][:3]
    with pytest.raises(ValueError):  # modalities disagree on B
        score(model, bad, PretrainConfig())
    with pytest.raises(ValueError):  # not (B, 2, N, C, T)
        score(model, {"eeg": torch.zeros(4, 2, 3, N_TIMES)}, PretrainConfig())
    with pytest.raises(KeyError):
        score(model, {"ecg": torch.zeros(4, 2, 2, 1, N_TIMES)}, PretrainConfig())


def test_roles_from_model():
    model = make_model(chans={"gsr": 1, "eeg": 3})  # modalities list puts gsr first: treated as "EEG" role
    assert resolve_roles(model, make_batch(chans={"gsr": 1, "eeg": 3})) == ("gsr", "eeg")
    model = make_model()
    model.contract = DataContract(
        (ModalitySpec("eeg", "eeg", ("a", "b", "c"), 128.0), ModalitySpec("gsr", "peripheral", ("g",), 128.0))
    )
    assert resolve_roles(model, make_batch()) == ("eeg", "gsr")


def test_with_real_pretrain_model():
    models = pytest.importorskip("physiosync.models")
    contract = DataContract(
        (
            ModalitySpec("eeg", "eeg", tuple(f"e{i}" for i in range(4)), 128.0),
            ModalitySpec("gsr", "peripheral", ("gsr",), 128.0),
        ),
        window_s=(1.0,),
    )
    cfg = ModelConfig(embed_dim={"1.0": 16}, depth=1, projector_dims=[32, 32, 64], cm_dim=24)
    torch.manual_seed(0)
    model = models.PretrainModel(contract, 1.0, cfg)
    g = torch.Generator().manual_seed(0)
    batch = {
        "eeg": torch.randn(4, 2, 2, 4, 128, generator=g),
        "gsr": torch.randn(4, 2, 2, 1, 128, generator=g),
    }
    out = score(model, batch, PretrainConfig())
    assert TERMS <= set(out) and torch.isfinite(out["loss"])
    out["loss"].backward()
    for part in (model.encoders, model.projectors, model.cm_head):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert grads and any(gr is not None and gr.abs().sum() > 0 for gr in grads)


# --------------------------------------------------------------------------------------------------
# the objective on given features, in closed form (no model: the objective only scores outputs)


def rotated_pair(angle: float, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two pairs in 2-D: z1 = (e0, e1), z2 = z1 rotated by ``angle`` (z2 scaled: cosines ignore norms).

    Shape: (2, 2) each. Cosines: positives cos(a); anchor e0 sees e1 at 0 and z2[1] at -sin(a); anchor e1
    sees e0 at 0 and z2[0] at +sin(a); likewise for the anchors of z2.
    """
    c, s = math.cos(angle), math.sin(angle)
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    z2 = scale * torch.tensor([[c, s], [-s, c]], dtype=F64)
    return z1, z2


def closed_form_nt_xent(angle: float, tau: float) -> float:
    """Mean over the 4 anchors of -log softmax(positive): two anchors see a negative at -sin(a), two at +sin(a)."""
    c, s = math.cos(angle), math.sin(angle)

    def anchor(x: float) -> float:
        return -c / tau + math.log(math.exp(c / tau) + 1.0 + math.exp(x / tau))

    return 0.5 * (anchor(-s) + anchor(s))


def test_objective_on_given_outputs_in_closed_form():
    tau, w_t, w_cm = 0.1, 0.5, 2.0
    angles = {"tcl_eeg": 0.3, "tcl_gsr": 0.7, "cm_pps_eeg": 0.2, "cm_eeg_pps": 1.1}  # radians; 1.1 > π/4
    e1, e2 = rotated_pair(angles["tcl_eeg"], 3.0)
    g1, g2 = rotated_pair(angles["tcl_gsr"], 0.5)
    a1, a2 = rotated_pair(angles["cm_pps_eeg"])  # PPS side 0 ↔ EEG side 1
    b1, b2 = rotated_pair(angles["cm_eeg_pps"], 2.0)  # EEG side 0 ↔ PPS side 1
    out = PretrainOutputs(
        eeg="eeg", peripheral="gsr", n_members=2,
        features={"eeg": torch.zeros(2, 2, 6, dtype=F64), "gsr": torch.zeros(2, 2, 6, dtype=F64)},
        projections={"eeg": torch.stack([e1, e2], 1), "gsr": torch.stack([g1, g2], 1)},  # (B, 2, P)
        cross_modal={"eeg": torch.stack([b1, a2]), "gsr": torch.stack([a1, b2])},  # (2, B, K)
    )
    terms = pretrain_loss(out, PretrainConfig(temperature=tau, w_temporal=w_t, w_cross_modal=w_cm))
    expected = {k: closed_form_nt_xent(a, tau) for k, a in angles.items()}
    # float64: each term is a log-sum-exp of 3 terms ≤ e^10 and a mean of 4, ~10 roundings of ≤ 1e-16 relative
    # on values ≤ 10 (1/τ), so ~1e-14 absolute; 1e-12 relative is safe and far below any wrong pairing (the
    # four angles give terms that differ by > 1e-2).
    for k, v in expected.items():
        assert terms[k].item() == pytest.approx(v, rel=1e-12), k
    total = w_t * (expected["tcl_eeg"] + expected["tcl_gsr"]) + w_cm * (expected["cm_pps_eeg"] + expected["cm_eeg_pps"])
    assert terms["loss"].item() == pytest.approx(total, rel=1e-12)
    # retrieval: row i of side 0 finds row i of side 1 iff cos(a) > sin(a) for the anchor e1 (a < π/4)
    assert terms["top1_eeg"].item() == 1.0 and terms["top1_gsr"].item() == 1.0
    assert terms["top1_cm_pps_eeg"].item() == 1.0 and terms["top1_cm_eeg_pps"].item() == 0.5


def test_objective_refuses_outputs_the_terms_need_but_lack():
    z = torch.zeros(2, 2, 4)
    bare = PretrainOutputs("eeg", "gsr", 1, {"eeg": z, "gsr": z}, {}, {})
    with pytest.raises(ValueError, match="outputs_needed"):
        pretrain_loss(bare, PretrainConfig(pairing="official"))
    assert outputs_needed(PretrainConfig(temporal=False)) == {"project": False, "cross_modal": True}
