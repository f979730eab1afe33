"""``physiosync synth deap|dreamer|recordings``: write a synthetic dataset in real file formats (parsing only)."""

from __future__ import annotations

import argparse
from pathlib import Path

CLIP_SECONDS = {False: (65.0, 80.0), True: (65.0, 390.0)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from physiosync.synth import FORMATS, SYNTHETIC

    parser.add_argument("dataset", choices=list(SYNTHETIC),
                        help="which dataset to write (recordings: own-recordings files + trials.tsv + dataset.yaml)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (DEAP: sNN.dat/.mat files; DREAMER: DIR/DREAMER.mat, or a .mat path; "
                             "recordings: a new or empty folder)")
    parser.add_argument("--subjects", type=int, default=None, help="number of subjects (default 6; --full: 32/23)")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials (DEAP videos) or clips (DREAMER) per subject (default 8 / 18; --full: 40/18)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (same seed -> byte-identical files)")
    parser.add_argument("--effect", type=float, default=1.0,
                        help="scale of every label-dependent effect; 0 = no label information at all")
    parser.add_argument("--format", choices=[f for fmts in FORMATS.values() for f in fmts], default=None,
                        help="DEAP: python (sNN.dat pickles, default) or matlab (sNN.mat); recordings: edf "
                             "(default), bdf, fif, brainvision or eeglab (GDF: MNE cannot write it)")
    parser.add_argument("--full", action="store_true",
                        help="real dataset sizes (DEAP 32x40 ≈ 3.3 GB; DREAMER 23x18 with 65-390 s clips)")
    parser.add_argument("--clip-seconds", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                        help="DREAMER only: range of clip durations in seconds (>= 60)")
    rec = parser.add_argument_group("recordings only")
    rec.add_argument("--peripheral", choices=["gsr", "ecg", "none"], default="gsr",
                     help="peripheral channel: GSR (skin conductance), one ECG lead, or none (EEG only)")
    rec.add_argument("--sfreq", type=float, nargs="+", default=[256.0], metavar="HZ",
                     help="sampling rate(s), cycled over the files (e.g. --sfreq 256 512); even whole Hz")
    rec.add_argument("--files-per-subject", type=int, default=1, help="runs per subject (trials split over them)")
    rec.add_argument("--trial-seconds", type=float, default=60.0,
                     help="stimulus duration in s (multiple of 0.5; with --vary-trial-length the shortest)")
    rec.add_argument("--vary-trial-length", action="store_true",
                     help="per-stimulus durations drawn in [T, 1.5 T] (the same for every subject)")
    rec.add_argument("--baseline-seconds", type=float, default=3.0, help="pre-stimulus baseline before each trial")
    rec.add_argument("--montage", choices=["biosemi32", "epoc14"], default="biosemi32",
                     help="EEG channels: DEAP's 32 BioSemi 10-20 positions or DREAMER's 14 Emotiv EPOC ones")


def run(args: argparse.Namespace) -> int:
    from physiosync.cli.common import usage_error
    from physiosync.errors import ConfigError
    from physiosync.synth import SYNTHETIC, write_synthetic

    # (subjects, trials) defaults: small for tests and demos; --full gives the real datasets' sizes.
    default_subjects, default_trials = SYNTHETIC[args.dataset][1 if args.full else 0]
    n_subjects = args.subjects or default_subjects
    n_trials = args.trials or default_trials
    if args.effect < 0:
        usage_error("synth", "--effect must be >= 0")
    clip = tuple(args.clip_seconds) if args.clip_seconds else CLIP_SECONDS[args.full]
    recording_options = dict(
        peripheral=args.peripheral, sfreq=tuple(args.sfreq), files_per_subject=args.files_per_subject,
        trial_seconds=args.trial_seconds, vary_trial_length=args.vary_trial_length,
        baseline_seconds=args.baseline_seconds, montage=args.montage)
    try:
        line = write_synthetic(args.dataset, args.out, n_subjects=n_subjects, n_trials=n_trials, seed=args.seed,
                               effect=args.effect, format=args.format, clip_seconds=clip,
                               **recording_options)
    except ConfigError as e:
        if str(e).startswith("--format"):
            usage_error("synth", str(e))
        raise
    print(line)
    return 0
