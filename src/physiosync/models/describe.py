"""Parameter counts and forward FLOPs per module (method-spec §3.9, §8.1), for ``physiosync describe-model``.

Every module is built on the ``meta`` device: counts and FLOPs need shapes only, so describing the
120 M-parameter DEAP 5 s pre-training model allocates no weights and takes a second or two.
Counts are plain integers (no "M" rounding) so they can be compared with §3.9 digit by digit; with
``--parity`` (D20) a second column gives the count without the parity-only modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from physiosync.config import ModelConfig, dataset_defaults
from physiosync.data.contract import DataContract
from physiosync.models.encoder import is_parity_name
from physiosync.models.flops import batch_flops, count_flops, module_flops
from physiosync.models.fusion import FinetuneModel
from physiosync.models.heads import PretrainModel


def default_resolutions(contract_or_dataset: DataContract | str) -> list[float]:
    """Dataset-default resolutions (method-spec §3.6/§3.7: the DREAMER code has no 5 s branch anywhere), as
    :func:`physiosync.config.resolve_config` fills them; for a contract, its window lengths."""
    if isinstance(contract_or_dataset, str):
        return list(dataset_defaults(contract_or_dataset)["resolutions"])
    return list(contract_or_dataset.window_s)


def count_params(module: nn.Module | None, parity: bool = True) -> int:
    """Parameters of ``module``; ``parity=False`` leaves out the parity-only modules (D20)."""
    if module is None:
        return 0
    return sum(p.numel() for n, p in module.named_parameters() if parity or not is_parity_name(n))


def describe_rows(contract: DataContract, cfg: ModelConfig) -> list[tuple[str, int, int, float]]:
    """Rows ``(module, params, params_without_parity, forward MFLOPs per sample)``.

    Pre-training rows are per resolution (encoder, projector per modality; the shared cross-modal head);
    classifier and fine-tuning totals are given for K = 2 and K = 4. FLOPs of the fine-tuning model are per
    sample of the longest window (all encoders and slices).
    """
    rows: list[tuple[str, int, int, float]] = []

    def add(name: str, module: nn.Module | None, mflops: float) -> None:
        rows.append((name, count_params(module), count_params(module, parity=False), mflops))

    with torch.device("meta"):
        for w in sorted(cfg.resolutions or contract.window_s):
            pm = PretrainModel(contract, w, cfg)
            for mod, enc in pm.encoders.items():
                shape = (enc.n_chans, enc.n_times)
                add(f"encoder {mod}@{w:g}s", enc, module_flops(enc, shape) / 1e6)
                proj = pm.projectors[mod]
                add(f"projector {mod}@{w:g}s", proj, module_flops(proj, (enc.out_dim,)) / 1e6)
            if pm.cm_head is not None:
                add(f"cross-modal head @{w:g}s", pm.cm_head, module_flops(pm.cm_head, (pm.cm_head.linear.in_features,)) / 1e6)
            total_flops = sum(r[3] for r in rows if r[0].endswith(f"@{w:g}s"))
            add(f"TOTAL pre-training model @{w:g}s", pm, total_flops)
        for k in (2, 4):
            fm = FinetuneModel(contract, cfg, k)
            clf = fm.classifier
            feats = {(g.modality, g.window_s): torch.zeros(1, g.n_slices, g.dim) for g in clf.segments}
            clf.eval()  # BatchNorm on running statistics: a batch of one is valid
            add(f"classifier K={k}", clf, count_flops(lambda c=clf, f=feats: c(f)) / 1e6)
            shapes = {m: (s.n_chans, s.n_times(fm.longest)) for m, s in fm.specs.items()}
            add(f"TOTAL fine-tuning model K={k}", fm, batch_flops(fm, shapes) / 1e6)
    return rows


def format_table(rows: Sequence[tuple[str, int, int, float]], show_parity: bool) -> str:
    """Plain-text table; counts as integers so they can be checked against method-spec §3.9."""
    head = ["module", "params"] + (["params_no_parity"] if show_parity else []) + ["MFLOPs/sample"]
    body = [
        [name, str(p)] + ([str(q)] if show_parity else []) + [f"{f:.3f}"] for name, p, q, f in rows
    ]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = []
    for r in [head, *body]:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
