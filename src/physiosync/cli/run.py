"""Commands ``run``, ``pretrain``, ``finetune``, ``evaluate``, ``report`` and ``demo``: parse, then call
:mod:`physiosync.experiments.pipeline`. No logic of their own beyond building the config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from physiosync.cli.common import (
    cli_overrides,
    config_arguments,
    job_arguments,
    setup_logging,
    shared_arguments,
)
from physiosync.config import RunConfig, load_config
from physiosync.evaluation.formatting import format_pct, format_stat

# Size of the demo's synthetic DEAP-format dataset (real DEAP: 32 subjects x 40 trials); chosen so the
# whole demo finishes in a few minutes on 2 CPU cores.
DEMO_SUBJECTS = 8
DEMO_TRIALS = 20

SINGLE_STAGES = {"pretrain": ("pretrain",), "finetune": ("finetune",), "evaluate": ("evaluate",),
                 "report": ("report",)}


def add_arguments(p: argparse.ArgumentParser, command: str) -> None:
    if command == "run":
        config_arguments(p)
        p.add_argument("--stages", default=",".join(("pretrain", "finetune", "evaluate", "report")),
                       help="comma-separated subset of pretrain,finetune,evaluate,report")
        job_arguments(p)  # --executor, --seeds
    elif command == "demo":
        p.add_argument("--out", type=Path, default=Path("demo-out"), help="where data, cache and runs go")
        p.add_argument("--effect", type=float, default=1.0, help="label effect size (0 = null dataset)")
        p.add_argument("--protocol", default="stimulus-kfold", help="stimulus-kfold (default), paper, loso, ...")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--subjects", type=int, default=None, help="synthetic subjects (preset default)")
        p.add_argument("--trials", type=int, default=None, help="synthetic trials per subject (preset default)")
        p.add_argument("--preset", default="demo")
    else:
        p.add_argument("run_dir", type=Path, help="an existing run directory (runs/<name>)")
    shared_arguments(p)


def run(args: argparse.Namespace) -> int:
    from physiosync.experiments.pipeline import load_run_config, run_pipeline

    setup_logging(args.quiet)
    if args.command == "demo":
        return run_demo(args)
    if args.command == "run":
        cfg = load_config(args.config, overrides=cli_overrides(args), preset=args.preset)
        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    else:
        cfg = load_run_config(args.run_dir, overrides=cli_overrides(args))
        stages = SINGLE_STAGES[args.command]
    results = run_pipeline(cfg, stages=stages, progress=not args.quiet)
    if "seeds" in results and "labels" in results:
        from physiosync.evaluation.seeds import render_seed_results

        print(render_seed_results(results))
    elif "labels" in results:
        print(format_results(results))
    if "report_path" in results:
        print(f"report: {results['report_path']}")
    return 0


def format_results(results: dict[str, Any]) -> str:
    """A compact text table: one line per label task (percentages, mean ± std over folds, ddof 0)."""
    proto = results["protocol"]
    lines = [f"protocol: {proto['name']}" + ("  (LEAKY: windows of test trials are in training)" if proto["leaky"] else "")
             + f"   folds: {proto['n_folds']}   (mean ± std over folds, ddof 0, %)"]
    w = max([8, *(len(label) for label in results["labels"])])  # any task name fits its column
    head = (f"{'label':<{w}} {'accuracy':>13} {'bal. acc.':>13} {'F1':>13} {'trial vote':>13} {'majority':>13} "
            f"{'chance':>7}")
    lines += [head, "-" * len(head)]
    for label, r in results["labels"].items():
        s = r["summary"]
        chance = (r.get("chance") or {}).get("chance_mean")
        cells = [format_stat(s.get(m)) for m in ("accuracy", "balanced_accuracy", "f1", "trial_vote_accuracy",
                                                  "majority_accuracy")]
        lines.append(f"{label:<{w}} " + " ".join(f"{c:>13}" for c in cells) + f" {format_pct(chance):>7}")
    return "\n".join(lines)


def demo_config(out: Path, effect: float, protocol: str, seed: int, preset: str, overrides: list[str]) -> RunConfig:
    base = {
        "name": f"demo-{protocol}-effect{effect:g}-seed{seed}",
        "seed": seed,
        "dataset": {"name": "deap", "data_dir": str(out / f"data-effect{effect:g}-seed{seed}"), "origin": "synthetic"},
        "cache_dir": str(out / "cache"),
        "runs_dir": str(out / "runs"),
        "protocol": {"name": protocol},
    }
    return load_config(None, overrides=overrides, preset=preset, base=base)


def run_demo(args: argparse.Namespace) -> int:
    """Generate synthetic DEAP-format data (once), then run the whole pipeline on it."""
    from physiosync.experiments.pipeline import run_pipeline
    from physiosync.synth import write_synthetic_deap

    n_subjects = args.subjects or DEMO_SUBJECTS
    n_trials = args.trials or DEMO_TRIALS
    cfg = demo_config(args.out, args.effect, args.protocol, args.seed, args.preset, cli_overrides(args))
    data_dir = Path(cfg.dataset.data_dir)
    stamp = data_dir / ".complete"
    want = f"subjects={n_subjects} trials={n_trials} effect={args.effect} seed={args.seed}"
    if not (stamp.is_file() and stamp.read_text() == want):
        print(f"writing synthetic DEAP-format data ({n_subjects} subjects × {n_trials} trials, effect "
              f"{args.effect:g}) to {data_dir}", file=sys.stderr)
        write_synthetic_deap(data_dir, n_subjects=n_subjects, n_trials=n_trials, seed=args.seed, effect=args.effect)
        stamp.write_text(want)
    results = run_pipeline(cfg, progress=not args.quiet)
    print(format_results(results))
    print(f"\ndata: synthetic DEAP format ({n_subjects} subjects × {n_trials} trials, effect {args.effect:g}); "
          f"preset {args.preset}; {results['timings']['total']:.0f} s")
    print(f"report: {results.get('report_path')}")
    return 0
