"""``physiosync compare``: parse, then call :func:`physiosync.experiments.compare.run_compare`."""

from __future__ import annotations

import argparse
from pathlib import Path

from physiosync.cli.common import (
    cli_overrides,
    config_arguments,
    job_arguments,
    setup_logging,
    shared_arguments,
)
from physiosync.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from physiosync.experiments.compare import ROWS

    config_arguments(p, "YAML config (as for `physiosync run`)")
    p.add_argument("--only", default=None, metavar="ROW,ROW,...",
                   help=f"rows to run (default: all): {', '.join(ROWS)}")
    shared_arguments(p)  # --set, --device, --precision, --quiet: the same as `physiosync run`
    job_arguments(p)  # --executor, --seeds


def parse_rows(text: str | None) -> list[str]:
    """Row names from ``--only`` (comma-separated), in the canonical order; None = every row.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or an empty list.
    """
    from physiosync.experiments.compare import ROWS

    if text is None:
        return list(ROWS)
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in ROWS]
    if unknown or not wanted:
        what = f"unknown row(s) {', '.join(repr(u) for u in unknown)}" if unknown else "no rows given"
        raise ConfigError(f"--only: {what}; valid rows: {', '.join(ROWS)}")
    return [r for r in ROWS if r in wanted]


def run(args: argparse.Namespace) -> int:
    from physiosync.config import load_config
    from physiosync.evaluation.comparison import format_comparison
    from physiosync.experiments.compare import run_compare

    setup_logging(args.quiet)
    rows = parse_rows(args.only)  # before any work: a typo should not cost a cache build
    cfg = load_config(args.config, overrides=cli_overrides(args), preset=args.preset)
    doc = run_compare(cfg, rows, progress=not args.quiet)
    if "per_seed" in doc:  # over seeds
        from physiosync.evaluation.seeds import render_seed_comparison

        print(render_seed_comparison(doc))
        print(f"comparison over seeds: {Path(doc['meta']['compare_dir']) / 'comparison-seeds.md'}")
        return 0
    print(format_comparison(doc))
    print(f"\ncomparison: {Path(doc['meta']['compare_dir']) / 'comparison.md'}")
    return 0
