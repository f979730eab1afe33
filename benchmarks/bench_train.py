"""Training-loop figures at paper sizes: pre-training step time, fine-tuning throughput, pre-training RSS.

Usage::

    python benchmarks/bench_train.py                       # synthetic 32 x 40 DEAP-shaped cache in a temp dir
    python benchmarks/bench_train.py --cache cache/deap-XXXX --threads 2 --steps 5

Prints, with the torch thread count and device:

- pre-training step time at 1 s and 5 s (B = 8 moments x 2 groups x N = 2 subjects per modality, paper model
  sizes), split into data gathering + augmentation and forward/backward/step;
- fine-tuning samples/s (batch 256, 5 s windows, all four encoders + fusion classifier, paper sizes);
- peak RSS of a 32-subject pre-training fold (all moments, all subjects) run for a few steps through
  :func:`physiosync.training.pretrain.pretrain_split`, measured in a fresh subprocess (target <= 3 GiB; the authors'
  eager augmentation grows ~1.34 GiB per subject, method-spec D17).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from physiosync.config import RunConfig
from physiosync.data.batches import gather_rows, to_tensors
from physiosync.data.cache import WindowCache, open_cache
from physiosync.data.facts import prepared_contract
from physiosync.training.pretrain import _augment, gather_planned, make_adam, plan_batches
from physiosync.training.runtime import tune_cpu_runtime

N_SUBJECTS, N_TRIALS, N_SAMPLES = 32, 40, 7680  # DEAP: 60 s stimulus at 128 Hz


def write_synthetic_cache(root: Path) -> WindowCache:
    """A DEAP-shaped cache directory (random float32 memmaps, written in chunks to bound memory)."""
    contract = prepared_contract("deap")
    path = root / "deap-synthetic"
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shapes = {}
    for spec in contract.modalities:
        shape = (N_SUBJECTS, N_TRIALS, spec.n_chans, N_SAMPLES)
        mm = np.memmap(path / f"{spec.name}.f32", dtype=np.float32, mode="w+", shape=shape)
        for s in range(N_SUBJECTS):
            mm[s] = rng.standard_normal(shape[1:], dtype=np.float32)
        mm.flush()
        del mm
        shapes[spec.name] = list(shape)
    lab = rng.integers(0, 2, (N_SUBJECTS, N_TRIALS))
    np.savez(path / "trials.npz", stimulus=np.tile(np.arange(N_TRIALS), (N_SUBJECTS, 1)), valence=lab * 5.0,
             arousal=lab * 5.0, dominance=lab * 5.0, label_arousal=lab, label_valence=lab, label_four=2 * lab)
    manifest = {"format_version": 1, "hash": "synthetic-bench", "dataset": "deap", "contract": contract.to_dict(),
                "subjects": [f"s{i + 1:02d}" for i in range(N_SUBJECTS)], "n_trials": N_TRIALS,
                "n_samples": N_SAMPLES, "sfreq": 128.0, "shapes": shapes}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return WindowCache(path, manifest)


N_WARMUP = 3  # untimed steps before measuring (medians are reported)


def bench_pretrain_step(cache: WindowCache, window_s: float, cfg: RunConfig, steps: int) -> dict[str, float]:
    """Seconds per pre-training step: gather + augment, and forward + backward + Adam step."""
    from physiosync.losses.objective import outputs_needed, pretrain_loss
    from physiosync.models import PretrainModel

    device = torch.device("cpu")
    model = PretrainModel(cache.contract, window_s, cfg.model)
    opt = make_adam(model.parameters(), cfg.pretrain.lr, cfg.pretrain.weight_decay, device)
    gen = np.random.default_rng(0)
    aug = torch.Generator().manual_seed(0)
    n_moments = cache.n_trials * cache.n_windows(window_s)
    plan = plan_batches("groups", np.arange(n_moments), np.arange(cache.n_subjects), cfg.pretrain.batch_size,
                        cfg.pretrain.n_group_subjects, gen, steps + N_WARMUP)
    t_data, t_step = [], []
    for i, item in enumerate(plan):
        t0 = time.perf_counter()
        batch = _augment(to_tensors(gather_planned(cache, window_s, item), device), aug, cfg)
        t1 = time.perf_counter()
        terms = pretrain_loss(model(batch, **outputs_needed(cfg.pretrain)), cfg.pretrain)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        t2 = time.perf_counter()
        if i >= N_WARMUP:  # the first steps pay one-off allocation costs (allocator warm-up)
            t_data.append(t1 - t0)
            t_step.append(t2 - t1)
    return {"data_s": float(np.median(t_data)), "compute_s": float(np.median(t_step)),
            "total_s": float(np.median(np.add(t_data, t_step)))}


def bench_finetune(cache: WindowCache, cfg: RunConfig, steps: int, batch_size: int) -> dict[str, float]:
    """Training samples/s of the fusion model on 5 s windows (gather + forward + backward + step)."""
    from physiosync.models import FinetuneModel

    device = torch.device("cpu")
    table = cache.windows(5.0)
    model = FinetuneModel(cache.contract, cfg.model, 2)
    opt = make_adam(model.parameters(), cfg.finetune.lr, 0.0, device)
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(table.label("arousal"))
    times = []
    for i in range(steps + N_WARMUP):
        rows = rng.choice(len(table), batch_size, replace=False)
        t0 = time.perf_counter()
        batch = to_tensors(gather_rows(cache, 5.0, table, rows), device)
        loss = torch.nn.functional.cross_entropy(model(batch), labels[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= N_WARMUP:
            times.append(time.perf_counter() - t0)
    return {"step_s": float(np.median(times)), "samples_per_s": batch_size / float(np.median(times))}


def peak_rss_gib() -> float:
    """This process's peak RSS. ``VmHWM`` (Linux) because ``ru_maxrss`` survives ``execve`` and would report the
    parent's peak (e.g. from writing the synthetic cache) for a child that stayed far below it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run_rss_child(cache_path: str, window_s: float, steps: int, threads: int) -> None:
    """Child-process body: a 32-subject pre-training fold for ``steps`` steps, then print peak RSS."""
    from physiosync.data.protocols import PretrainSplit
    from physiosync.training.pretrain import pretrain_split

    torch.set_num_threads(threads)
    cache = open_cache(cache_path)
    n_moments = cache.n_trials * cache.n_windows(window_s)
    moments = np.arange(n_moments)
    split = PretrainSplit(window_s, train_moments=moments[: int(0.9 * n_moments)],
                          val_moments=moments[int(0.9 * n_moments):], train_subjects=np.arange(cache.n_subjects),
                          val_subjects=np.arange(cache.n_subjects))
    cfg = RunConfig.model_validate({"pretrain": {"epochs": 1, "steps_per_epoch": steps}})
    with tempfile.TemporaryDirectory() as out:
        pretrain_split(cache, split, window_s, cfg, "cpu", out, progress=False)
    print(json.dumps({"peak_rss_gib": peak_rss_gib()}))


def run_data_rss_child(cache_path: str, window_s: float, release: bool) -> None:
    """Child-process body: gather one whole epoch of group batches (no model) and print peak RSS.

    Shows what the memmap pages alone add over an epoch of random moments, with and without
    :func:`physiosync.data.batches.release_pages`.
    """
    from physiosync.data.batches import release_interval, release_pages

    cache = open_cache(cache_path)
    moments = np.arange(cache.n_trials * cache.n_windows(window_s))
    plan = plan_batches("groups", moments, np.arange(cache.n_subjects), 8, 2, np.random.default_rng(0), None)
    every = release_interval(32)
    for i, item in enumerate(plan):
        gather_planned(cache, window_s, item)
        if release and (i + 1) % every == 0:
            release_pages(cache)
    print(json.dumps({"peak_rss_gib": peak_rss_gib()}))


def measure_rss(cache: WindowCache, window_s: float, steps: int, threads: int, data_only: str = "") -> float:
    extra = ["--data-only", data_only] if data_only else []
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(cache.path), "--window", str(window_s), "--steps", str(steps),
         "--threads", str(threads), *extra], check=True, capture_output=True, text=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_rss_gib"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", help="a built cache directory (default: synthetic DEAP-shaped cache in a temp dir)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--steps", type=int, default=8, help="timed steps per figure (after warm-up steps; median)")
    p.add_argument("--finetune-batch", type=int, default=256)
    p.add_argument("--skip", nargs="*", default=[], choices=["pretrain", "finetune", "rss"])
    p.add_argument("--rss-child", help=argparse.SUPPRESS)
    p.add_argument("--window", type=float, default=5.0, help=argparse.SUPPRESS)
    p.add_argument("--data-only", choices=["release", "keep"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_child and args.data_only:
        run_data_rss_child(args.rss_child, args.window, args.data_only == "release")
        return
    if args.rss_child:
        tune_cpu_runtime()
        run_rss_child(args.rss_child, args.window, args.steps, args.threads)
        return

    torch.set_num_threads(args.threads)
    print(f"CPU runtime settings (as `physiosync run`): {tune_cpu_runtime()}")
    tmp = tempfile.TemporaryDirectory()
    t0 = time.perf_counter()
    cache = open_cache(args.cache) if args.cache else write_synthetic_cache(Path(tmp.name))
    cfg = RunConfig()  # paper sizes: d = 128 / 640, projector 1024-2048-4096, B = 8, N = 2
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu; cache {cache.path} "
          f"({cache.n_subjects} subjects x {cache.n_trials} trials, ready in {time.perf_counter() - t0:.1f} s)")
    if "pretrain" not in args.skip:
        for w in (1.0, 5.0):
            r = bench_pretrain_step(cache, w, cfg, args.steps)
            print(f"pretrain {w:g} s step (8 moments x 2 groups x 2 subjects, EEG+GSR): {r['total_s'] * 1e3:.0f} ms "
                  f"(data+augment {r['data_s'] * 1e3:.1f} ms, fwd/bwd/step {r['compute_s'] * 1e3:.0f} ms)")
    if "finetune" not in args.skip:
        r = bench_finetune(cache, cfg, args.steps, args.finetune_batch)
        print(f"finetune 5 s, batch {args.finetune_batch}: {r['samples_per_s']:.1f} samples/s "
              f"({r['step_s']:.2f} s/step)")
    if "rss" not in args.skip:
        for w in (1.0, 5.0):
            rss = measure_rss(cache, w, args.steps, args.threads)
            print(f"peak RSS, 32-subject pretrain fold at {w:g} s, {args.steps} steps + eval: {rss:.2f} GiB "
                  f"(target <= 3 GiB)")
        for mode in ("keep", "release"):
            rss = measure_rss(cache, 1.0, args.steps, args.threads, data_only=mode)
            print(f"peak RSS, gathering one full 1 s epoch (270 batches, no model), pages {mode}: {rss:.2f} GiB")
    tmp.cleanup()


if __name__ == "__main__":
    main()
