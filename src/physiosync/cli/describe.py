"""``physiosync describe-model``: parse, then print :mod:`physiosync.models.describe`'s table.

The counting (models on the ``meta`` device, so no weights are allocated) lives in the models package;
torch is imported only when the command runs, not for ``--help``.
"""

from __future__ import annotations

import argparse

from physiosync.cli.common import override_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from physiosync.config import registered_datasets

    parser.add_argument("--dataset", choices=registered_datasets(), default=None, help="default: config dataset.name")
    parser.add_argument("--parity", action="store_true", help="create the unused modules of the authors' code (D20)")
    parser.add_argument("--config", default=None, help="YAML config file")
    override_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from physiosync.config import load_config, resolve_config
    from physiosync.data.facts import prepared_contract
    from physiosync.data.readers import facts_of
    from physiosync.models.describe import describe_rows, format_table

    overrides = [*args.overrides, *([f"dataset.name={args.dataset}"] if args.dataset else [])]
    cfg = resolve_config(load_config(args.config, overrides))  # --dataset before resolving its defaults
    dataset = cfg.dataset.name
    model_cfg = cfg.model.model_copy(update={"parity": cfg.model.parity or args.parity})
    assert model_cfg.resolutions is not None
    windows = tuple(sorted({1.0, 5.0, *model_cfg.resolutions}))
    # the shipped facts, or an own-recordings dataset file (channel patterns resolved against its recordings)
    contract = prepared_contract(facts_of(cfg.dataset, resolve_channels=True), windows)
    rows = describe_rows(contract, model_cfg)
    res = ", ".join(f"{w:g} s" for w in sorted(model_cfg.resolutions))
    print(f"{dataset}: resolutions {res}; fusion {model_cfg.fusion}; parity {'on' if model_cfg.parity else 'off'}")
    print(format_table(rows, show_parity=model_cfg.parity))
    print("MFLOPs: forward, per sample (fine-tuning: per longest window), matmul FLOPs = 2 x multiply-adds.")
    return 0
