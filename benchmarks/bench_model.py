"""Step-time benchmark of the PhysioSync models at paper sizes on CPU (method-spec §3, §8.1).

(a) One pre-training step at DEAP 1 s and 5 s: EEG + GSR encoders, projectors and the shared cross-modal
    head, 32 windows per modality (8 moments × 2 groups × 2 subjects), max-pool over each group's
    subjects, NT-Xent temporal + cross-modal terms, backward, Adam step.
(b) One fine-tuning step of the DEAP fusion model (EEG/GSR at 5 s + 1 s slices, K = 2) on a batch of
    5 s windows: forward, cross-entropy, backward, Adam step; samples/s.

Reference (authors' code on this machine): pre-training 0.176 s (1 s) / 0.736 s (5 s) per step;
fine-tuning 117.6 samples/s. Targets: ≤ 0.10 s / ≤ 0.50 s / ≥ 180 samples/s.

Usage:
    .venv/bin/python benchmarks/bench_model.py [--steps 5] [--batch 256] [--optim fused|foreach|for-loop]
        [--only pretrain|finetune] [--profile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from physiosync.config import ModelConfig
from physiosync.data.facts import prepared_contract
from physiosync.models import FinetuneModel, PretrainModel
from physiosync.training.runtime import keep_freed_memory, set_threads


def make_optimizer(params, lr: float, weight_decay: float, kind: str) -> torch.optim.Optimizer:
    """Adam with the chosen implementation (fused CPU kernel, multi-tensor foreach, or per-tensor loop)."""
    opts = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}[kind]
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **opts)


def pretrain_step_fn(window_s: float, kind: str, n_moments: int = 8, n_subjects: int = 2,
                     precision: str = "fp32", device: str = "cpu"):
    """Build a DEAP pre-training model + optimiser + data; return a closure running one step.

    The step is the real forward pass and objective (``PretrainModel.forward`` scored by
    ``physiosync.losses.objective.pretrain_loss``): every one of the
    8 moments x 2 groups x 2 subjects windows goes through encoder *and* projector before the max-pool,
    as in the authors' code, then LS-TCL for both modalities and both CM-CA terms. ``precision`` (fp32 or
    bf16) is applied exactly as the training loop does (:func:`physiosync.training.precision.mixed_precision`).
    """
    from physiosync.config import PretrainConfig
    from physiosync.losses.objective import outputs_needed, pretrain_loss
    from physiosync.training.precision import mixed_precision

    contract = prepared_contract("deap")
    model = PretrainModel(contract, window_s, ModelConfig()).to(device)
    opt = make_optimizer(model.parameters(), 7e-4, 1e-3, kind)
    batch = {s.name: torch.randn(n_moments, 2, n_subjects, s.n_chans, s.n_times(window_s), device=device)
             for s in contract.modalities}
    cfg = PretrainConfig()
    mixed = mixed_precision(model, precision, opt)

    def step() -> float:
        with mixed:
            loss = pretrain_loss(model(batch, **outputs_needed(cfg)), cfg)["loss"]
        mixed.zero_grad()
        loss.backward()
        mixed.step()  # = opt.step() + refreshed bf16 copies, as the training loop does
        return float(loss.detach())  # one host sync per step: the timing includes the device's work

    return step


def finetune_step_fn(batch_size: int, kind: str, precision: str = "fp32", device: str = "cpu"):
    """Build the DEAP fine-tuning model (K = 2) + optimiser + one batch of 5 s windows; return a step."""
    from physiosync.training.precision import mixed_precision

    contract = prepared_contract("deap")
    model = FinetuneModel(contract, ModelConfig(), n_classes=2).to(device)
    opt = make_optimizer(model.parameters(), 1e-3, 0.0, kind)
    batch = {s.name: torch.randn(batch_size, s.n_chans, s.n_times(5.0), device=device) for s in contract.modalities}
    y = torch.randint(0, 2, (batch_size,), device=device)
    mixed = mixed_precision(model, precision, opt)

    def step() -> float:
        with mixed:
            logits = model(batch)
        loss = F.cross_entropy(logits.float(), y)
        mixed.zero_grad()
        loss.backward()
        mixed.step()  # = opt.step() + refreshed bf16 copies, as the training loop does
        return float(loss.detach())

    return step


def measure_gemm() -> float:
    """GFLOP/s of one representative fp32 GEMM (a d = 640 MLP layer at batch 256): machine-state context."""
    a, b = torch.randn(1536, 640), torch.randn(640, 2560)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(20):
        a @ b
    return 2 * 1536 * 640 * 2560 * 20 / (time.perf_counter() - t0) / 1e9


def time_steps(step, n_steps: int, n_warmup: int = 2, clock=time.perf_counter) -> list[float]:
    """Seconds per step by ``clock`` (wall by default; ``time.process_time`` = CPU seconds of all threads)."""
    for _ in range(n_warmup):
        step()
    times = []
    for _ in range(n_steps):
        t0 = clock()
        step()
        times.append(clock() - t0)
    return times


def profile_step(step, label: str) -> None:
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print(f"--- profile: {label}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256, help="fine-tuning batch (5 s windows)")
    ap.add_argument("--optim", choices=["fused", "foreach", "for-loop"], default="fused")
    ap.add_argument("--only", choices=["pretrain", "finetune"], default=None)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--no-keep-freed-memory", action="store_true", help="leave glibc's default mmap/trim")
    args = ap.parse_args()
    torch.manual_seed(0)
    kept = False if args.no_keep_freed_memory else keep_freed_memory()
    torch.set_flush_denormal(True)  # as `physiosync run` does on CPU (runtime.tune_cpu_runtime)
    n_threads = set_threads(args.threads)
    print(f"torch {torch.__version__}, threads {n_threads}, Adam {args.optim}, keep_freed_memory {kept}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: load average {load:.2f} (other processes compete for cores), fp32 GEMM {measure_gemm():.1f} GFLOP/s")
    if args.only in (None, "pretrain"):
        for window_s, target, ref in ((1.0, 0.10, 0.176), (5.0, 0.50, 0.736)):
            step = pretrain_step_fn(window_s, args.optim)
            times = time_steps(step, args.steps)
            print(
                f"pretrain DEAP {window_s:g} s, 32 windows/modality: median {statistics.median(times):.3f} s/step "
                f"(min {min(times):.3f}; target <= {target}, authors {ref})"
            )
            if args.profile:
                profile_step(step, f"pretrain {window_s:g} s")
            del step
    if args.only in (None, "finetune"):
        step = finetune_step_fn(args.batch, args.optim)
        times = time_steps(step, args.steps, n_warmup=1)
        med = statistics.median(times)
        print(
            f"finetune DEAP 5 s + 1 s slices, batch {args.batch}: median {med:.3f} s/step = "
            f"{args.batch / med:.1f} samples/s (target >= 180, authors 117.6)"
        )
        if args.profile:
            profile_step(step, "finetune")


if __name__ == "__main__":
    main()
