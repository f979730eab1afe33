"""``physiosync prepare``: preprocess a dataset into the window cache and print its summary.

Parsing only; the work is :func:`physiosync.data.cache.build_cache` and the summary
:func:`physiosync.data.cache.summarize_cache`, which ``physiosync run`` reuses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from physiosync.cli.common import shared_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from physiosync.data.readers import READERS

    parser.add_argument("--dataset", choices=sorted(READERS), default=None,
                        help="dataset to prepare (default: dataset.name of the config, deap)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="; ".join(r.data_dir_help for r in READERS.values() if r.data_dir_help))
    parser.add_argument("--cache", type=Path, default=None, help="cache root directory (default: ./cache)")
    parser.add_argument("--config", type=Path, default=None, help="YAML config file")
    shared_arguments(parser, runtime=False, quiet_aliases=("--no-progress",))  # --set, --quiet (no device)


def run(args: argparse.Namespace) -> int:
    from physiosync.config import load_config
    from physiosync.data.cache import build_cache, summarize_cache

    cfg = load_config(args.config, overrides=args.overrides)
    # Explicit flags win over the config file and --set (assignment is validated by the schema).
    if args.dataset is not None:
        cfg.dataset.name = args.dataset
    if args.data_dir is not None:
        cfg.dataset.data_dir = args.data_dir
    if args.cache is not None:
        cfg.cache_dir = args.cache
    cache = build_cache(cfg, progress=not args.quiet)
    print(summarize_cache(cache))
    return 0
