"""Commands ``fit`` (train the final model on all data, write a model bundle) and ``predict`` (apply a
bundle to new recordings): parse, then call :mod:`physiosync.experiments.fit` / ``.predict``."""

from __future__ import annotations

import argparse
from pathlib import Path

from physiosync.cli.common import cli_overrides, config_arguments, setup_logging, shared_arguments


def add_arguments(p: argparse.ArgumentParser, command: str) -> None:
    if command == "fit":
        config_arguments(p)
        p.add_argument("--out", type=Path, default=None, metavar="BUNDLE",
                       help="the model bundle directory to write (default: runs_dir/<name>-fit/bundle)")
        shared_arguments(p)
        p.add_argument("--executor", default=None, choices=["local", "ray"],
                       help="where the pre-training and fine-tuning jobs run: local (default) or ray")
    else:
        p.add_argument("bundle", type=Path, help="a model bundle written by `physiosync fit`")
        p.add_argument("--data-dir", type=Path, required=True, metavar="DIR",
                       help="the new data, in the layout of the bundle's dataset")
        p.add_argument("--trials", type=Path, default=None, metavar="TABLE",
                       help="own recordings: the trials table (default DIR/trials.tsv; ratings not needed)")
        p.add_argument("--out", type=Path, default=Path("predictions.csv"), metavar="CSV",
                       help="per-window predictions (default predictions.csv); per-trial ones go to "
                            "<stem>_trials.csv beside it")
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="where the new data's window cache goes (default: the bundle config's cache_dir)")
        p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1, mps (default: the bundle's)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    setup_logging(args.quiet)
    if args.command == "fit":
        from physiosync.config import load_config
        from physiosync.experiments.fit import fit

        cfg = load_config(args.config, overrides=cli_overrides(args), preset=args.preset)
        result = fit(cfg, out=args.out, progress=not args.quiet)
        print(f"model bundle: {result.bundle} (tasks: {', '.join(result.tasks)}; work directory {result.fit_dir})")
        return 0
    from physiosync.experiments.predict import predict

    res = predict(args.bundle, args.data_dir, trials=args.trials, out=args.out, cache_dir=args.cache_dir,
                  device=args.device, progress=not args.quiet)
    n_trials = len(res.table) // max(int(res.table.n_windows), 1)
    print(f"predicted {len(res.table)} windows ({res.table.window_s:g} s) of {n_trials} trials, "
          f"{res.cache.n_subjects} subjects, tasks {', '.join(res.proba)}")
    print(f"windows: {res.windows_csv}")
    print(f"trials:  {res.trials_csv} (trial = mean of its windows' class probabilities)")
    return 0
