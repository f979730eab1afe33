"""Arguments every command shares, defined once: the config, ``--set``, device and precision, quiet.

Why one place: ``run``, ``demo``, the single-stage commands and ``compare`` build their config the same
way (``CONFIG``, ``--preset``, ``--set key=value``, ``--device``, ``--precision``), and a user who learnt
one command's options must find them spelt and meaning the same in the others. ``prepare`` and
``describe-model`` take the ``--set`` overrides too (they have no device). Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn


def usage_error(command: str, message: str) -> NoReturn:
    """A command-line mistake found after parsing: argparse's form (``physiosync CMD: error: ...``, exit 2)."""
    print(f"physiosync {command}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def config_arguments(p: argparse.ArgumentParser, what: str = "YAML config (see configs/)") -> None:
    """The optional positional ``CONFIG`` file and ``--preset`` (applied under the file)."""
    p.add_argument("config", nargs="?", default=None, help=what)
    p.add_argument("--preset", default=None, help="smoke | demo | cpu | paper (applied under the file)")


def override_arguments(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): any config key, validated by the schema."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set finetune.epochs=3")


def shared_arguments(p: argparse.ArgumentParser, runtime: bool = True, quiet_aliases: tuple[str, ...] = ()) -> None:
    """The options every pipeline command takes: ``--set``, ``--device``, ``--precision``, ``--quiet``.

    Args:
        runtime: Add ``--device`` and ``--precision`` (commands that train).
        quiet_aliases: Other spellings of ``--quiet`` a command keeps (``prepare``: ``--no-progress``).
    """
    override_arguments(p)
    if runtime:
        p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
        p.add_argument("--precision", default=None, choices=["auto", "fp32", "bf16"],
                       help="auto (default): bf16 where the hardware runs it fast, else fp32")
    p.add_argument("--quiet", *quiet_aliases, dest="quiet", action="store_true", help="no progress bars")


def job_arguments(p: argparse.ArgumentParser) -> None:
    """``--executor`` and ``--seeds`` (``run``, ``compare``): where the jobs run, and over which seeds."""
    p.add_argument("--executor", default=None, choices=["local", "ray"],
                   help="local (default: in this process) or ray (RAY_ADDRESS, else a local Ray instance)")
    p.add_argument("--seeds", default=None, metavar="S,S,...",
                   help="run the whole grid once per seed (e.g. 0,1,2) and report results over seeds")


def _seeds_override(text: str) -> str:
    from physiosync.errors import ConfigError

    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or not all(t.isdigit() for t in items):
        raise ConfigError(f"--seeds: found {text!r}; expected comma-separated non-negative integers, e.g. 0,1,2")
    return f"seeds=[{','.join(items)}]"


def cli_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` items plus ``--device`` / ``--precision`` / ``--executor`` / ``--seeds`` as config overrides
    (in that order)."""
    extra = list(args.overrides)
    if getattr(args, "device", None):
        extra.append(f"device={args.device}")
    if getattr(args, "precision", None):
        extra.append(f"precision={args.precision}")
    if getattr(args, "executor", None):
        extra.append(f"executor.name={args.executor}")
    if getattr(args, "seeds", None):
        extra.append(_seeds_override(args.seeds))
    return extra


def setup_logging(quiet: bool) -> None:
    """Progress messages on stderr (stdout keeps only the results), warnings only with ``--quiet``."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
