"""``physiosync synth deap|dreamer|recordings``: write a synthetic dataset in real file formats (parsing only)."""

from __future__ import annotations

import argparse
from pathlib import Path

# (subjects, trials) defaults: small for tests and demos; --full gives the real datasets' sizes.
SMALL = {"deap": (6, 8), "dreamer": (6, 18), "recordings": (4, 8)}
FULL = {"deap": (32, 40), "dreamer": (23, 18), "recordings": (32, 40)}
DEAP_FORMATS = ("python", "matlab")
RECORDING_FORMATS = ("edf", "bdf", "fif", "brainvision", "eeglab")
CLIP_SECONDS = {False: (65.0, 80.0), True: (65.0, 390.0)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["deap", "dreamer", "recordings"],
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
    parser.add_argument("--format", choices=[*DEAP_FORMATS, *RECORDING_FORMATS], default=None,
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
    from physiosync.synth import write_synthetic_deap, write_synthetic_dreamer

    default_subjects, default_trials = (FULL if args.full else SMALL)[args.dataset]
    n_subjects = args.subjects or default_subjects
    n_trials = args.trials or default_trials
    if args.effect < 0:
        raise SystemExit("physiosync synth: error: --effect must be >= 0")
    if args.dataset == "recordings":
        return _run_recordings(args, n_subjects, n_trials)
    if args.format in RECORDING_FORMATS:
        raise SystemExit(f"physiosync synth: error: --format {args.format} is for 'recordings'; "
                         f"(DEAP: {' or '.join(DEAP_FORMATS)})")
    if args.dataset == "deap":
        fmt = args.format or "python"
        paths = write_synthetic_deap(args.out, n_subjects=n_subjects, n_trials=n_trials, seed=args.seed,
                                     effect=args.effect, format=fmt)
        print(f"wrote {len(paths)} DEAP subject files ({n_trials} trials each, format {fmt}) to {args.out}")
    else:
        clip = tuple(args.clip_seconds) if args.clip_seconds else CLIP_SECONDS[args.full]
        path = write_synthetic_dreamer(args.out, n_subjects=n_subjects, n_trials=n_trials, seed=args.seed,
                                       effect=args.effect, clip_seconds=clip)
        print(f"wrote {path} ({n_subjects} subjects x {n_trials} clips of {clip[0]:g}-{clip[1]:g} s)")
    return 0


def _run_recordings(args: argparse.Namespace, n_subjects: int, n_trials: int) -> int:
    from physiosync.synth.recordings import write_synthetic_recordings

    fmt = args.format or "edf"
    if fmt in DEAP_FORMATS:
        raise SystemExit(f"physiosync synth: error: --format {fmt} is for 'deap'; recordings take "
                         f"{', '.join(RECORDING_FORMATS)}")
    written = write_synthetic_recordings(
        args.out, format=fmt, n_subjects=n_subjects, n_trials=n_trials, seed=args.seed, effect=args.effect,
        peripheral=args.peripheral, sfreq=tuple(args.sfreq), files_per_subject=args.files_per_subject,
        trial_seconds=args.trial_seconds, vary_trial_length=args.vary_trial_length,
        baseline_seconds=args.baseline_seconds, montage=args.montage)
    print(f"wrote {len(written.files)} {fmt} recordings ({n_subjects} subjects x {n_trials} trials, peripheral "
          f"{args.peripheral}), {written.table.name} and {written.dataset_file.name} to {args.out}")
    return 0
