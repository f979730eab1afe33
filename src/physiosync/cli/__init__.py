"""Command-line entry point. Parses arguments and calls one module per command; owns no logic.

Each command module (``physiosync.cli.<group>``) exposes ``add_arguments(parser)`` and ``run(args) -> int``;
the options several commands share are defined once in :mod:`physiosync.cli.common`. Modules are imported
only when their command runs, so ``physiosync --help`` and light commands stay fast (no torch import).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from physiosync.errors import PhysioSyncError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("physiosync.cli.synth", "write a synthetic DEAP (sNN.dat), DREAMER (DREAMER.mat) or own-recordings dataset"),
    "prepare": ("physiosync.cli.prepare", "preprocess a dataset into the window cache and print a summary"),
    "describe-model": ("physiosync.cli.describe", "parameter counts and FLOPs per module"),
    "run": ("physiosync.cli.run", "prepare -> folds -> pre-train -> fine-tune -> evaluate -> report"),
    "pretrain": ("physiosync.cli.run", "run only the pre-training stage of a run directory"),
    "finetune": ("physiosync.cli.run", "run only the fine-tuning stage of a run directory"),
    "evaluate": ("physiosync.cli.run", "compute metrics from a run directory's predictions"),
    "report": ("physiosync.cli.run", "write report.md / results.json / results.csv / plots"),
    "demo": ("physiosync.cli.run", "synthetic DEAP-format data through the whole pipeline"),
    "compare": ("physiosync.cli.compare", "baselines and ablations under the same folds"),
    "fit": ("physiosync.cli.fit", "train the final model on all data and write a model bundle"),
    "predict": ("physiosync.cli.fit", "apply a model bundle to new recordings (per-window and per-trial CSV)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="physiosync", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            mod = importlib.import_module(module)
            mod.add_arguments(p, name) if _takes_name(mod.add_arguments) else mod.add_arguments(p)
    return parser


def _takes_name(fn: object) -> bool:
    import inspect

    return len(inspect.signature(fn).parameters) >= 2  # type: ignore[arg-type]


def _version() -> str:
    from physiosync import __version__

    return f"physiosync {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    mod = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(mod.run(args) or 0)
    except PhysioSyncError as e:
        print(f"physiosync {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"physiosync {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`physiosync prepare ... | head`): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again, and exit like `yes | head`.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a real file (e.g. captured): nothing to flush
            pass
        return 141


if __name__ == "__main__":
    sys.exit(main())
