"""``physiosync synth deap|dreamer``: write a synthetic dataset in the real file format (parsing only)."""

from __future__ import annotations

import argparse
from pathlib import Path

CLIP_SECONDS = {False: (65.0, 80.0), True: (65.0, 390.0)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from physiosync.synth import SYNTHETIC

    parser.add_argument("dataset", choices=list(SYNTHETIC), help="which dataset format to write")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (DEAP: sNN.dat/.mat files; DREAMER: DIR/DREAMER.mat, or a .mat path)")
    parser.add_argument("--subjects", type=int, default=None, help="number of subjects (default 6; --full: 32/23)")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials (DEAP videos) or clips (DREAMER) per subject (default 8 / 18; --full: 40/18)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (same seed -> byte-identical files)")
    parser.add_argument("--effect", type=float, default=1.0,
                        help="scale of every label-dependent effect; 0 = no label information at all")
    parser.add_argument("--format", choices=["python", "matlab"], default="python",
                        help="DEAP only: sNN.dat pickles (data_preprocessed_python) or sNN.mat")
    parser.add_argument("--full", action="store_true",
                        help="real dataset sizes (DEAP 32x40 ≈ 3.3 GB; DREAMER 23x18 with 65-390 s clips)")
    parser.add_argument("--clip-seconds", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                        help="DREAMER only: range of clip durations in seconds (>= 60)")


def run(args: argparse.Namespace) -> int:
    from physiosync.synth import SYNTHETIC, write_synthetic

    # (subjects, trials) defaults: small for tests and demos; --full gives the real datasets' sizes.
    default_subjects, default_trials = SYNTHETIC[args.dataset][1 if args.full else 0]
    n_subjects = args.subjects or default_subjects
    n_trials = args.trials or default_trials
    if args.effect < 0:
        raise SystemExit("physiosync synth: error: --effect must be >= 0")
    clip = tuple(args.clip_seconds) if args.clip_seconds else CLIP_SECONDS[args.full]
    print(write_synthetic(args.dataset, args.out, n_subjects=n_subjects, n_trials=n_trials, seed=args.seed,
                          effect=args.effect, format=args.format, clip_seconds=clip))
    return 0
