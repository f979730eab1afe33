"""A run directory's configuration: where it is, what it was made with, and refusing to mix two.

``runs_dir/name/config.yaml`` is the resolved configuration of everything in the directory. Re-running a
command with the same configuration resumes; another configuration is refused with the keys that differ,
except the runtime keys below (where and how fast it runs, which folds this call does), which may change
between calls. ``compare`` keeps its own ``config.yaml`` in its comparison directory the same way.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from physiosync.atomic import write_text_atomic
from physiosync.config import RunConfig, dump_config, load_config, read_yaml, resolve_config, validate_config
from physiosync.errors import ConfigError, shorten

log = logging.getLogger("physiosync")

# keys that may differ between the saved config of a run and a resumed invocation (``dataset.origin`` only
# says what the data are, for the report: correcting it must not invalidate a finished run)
_RUNTIME_KEYS = {("device",), ("n_threads",), ("protocol", "folds"), ("runs_dir",), ("pretrain_store",), ("preset",),
                 ("pretrain", "keep_checkpoint"), ("finetune", "keep_checkpoint"), ("dataset", "origin"),
                 ("executor",), ("seeds",)}  # where jobs run; more seeds = more seed directories, same run


def resolve_run_precision(cfg: RunConfig, run_dir: Path, device: Any) -> RunConfig:
    """Replace ``precision: auto`` by what runs (``fp32`` or ``bf16``) so the saved config and reports say it.

    A run keeps the precision it started with: resuming an ``auto`` run on another machine continues in
    the saved precision (bf16 runs everywhere, only slower without hardware support; fp32 stays fp32), so
    every number of one run comes from one arithmetic, and pre-trainings are reused only by runs of the
    same precision (it is part of :func:`physiosync.experiments.pipeline.pretrain_signature`). An explicit ``--set precision=...`` that
    differs from the saved run is refused by :func:`write_run_config` like any other config change.
    """
    from physiosync.training.runtime import resolve_precision

    if cfg.precision != "auto":
        return cfg
    chosen = resolve_precision("auto", device)
    saved_path = run_dir / "config.yaml"
    if saved_path.is_file():
        saved = read_yaml(saved_path).get("precision")
        if saved in ("fp32", "bf16"):
            if saved != chosen:
                log.warning("%s: continuing in the run's saved precision %s (auto on this machine would pick %s)",
                            saved_path, saved, chosen)
            chosen = saved
    return cfg.model_copy(update={"precision": chosen})


def run_dir_of(cfg: RunConfig) -> Path:
    return Path(cfg.runs_dir) / cfg.name


def _strip_runtime(d: dict[str, Any]) -> dict[str, Any]:
    d = json.loads(json.dumps(d))
    for path in _RUNTIME_KEYS:
        node = d
        for p in path[:-1]:
            node = node.get(p, {})
        node.pop(path[-1], None)
    return d


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: <old> there, <new> now`` for every dotted key whose value differs (sorted by key)."""
    out: list[str] = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}: {shorten(json.dumps(a), 60)} there, {shorten(json.dumps(b), 60)} now")
    return out


def write_run_config(cfg: RunConfig, run_dir: Path) -> None:
    """Save the resolved config; refuse to mix a run directory with a different configuration.

    Both sides are compared resolved (:func:`resolve_config`): a saved config from a version that did not
    fill every dataset default still matches the same configuration given again, so re-running the
    identical command resumes. The error names the keys that differ.
    """
    path = run_dir / "config.yaml"
    cfg = resolve_config(cfg)
    if path.exists():
        old = resolve_config(load_config(path))
        diff = config_differences(_strip_runtime(old.model_dump(mode="json")),
                                  _strip_runtime(cfg.model_dump(mode="json")))
        if diff:
            shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
            raise ConfigError(
                f"{path}: this run directory was made with a different configuration ({shown}); "
                f"choose another name (--set name=...) or delete {run_dir} to start over"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, dump_config(cfg))


def load_run_config(run_dir: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """The saved config of an existing run directory (for the single-stage commands)."""
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml); start one with `physiosync run`")
    cfg = load_config(path, overrides=overrides)
    # a moved run directory still works: runs_dir/name is where it is now
    data = cfg.model_dump()
    data["runs_dir"] = run_dir.parent
    data["name"] = run_dir.name
    return validate_config(data, str(path))


def require_data_dir(cfg: RunConfig) -> None:
    """Refuse a run without data before anything is written (run and compare call it first)."""
    if cfg.dataset.data_dir is None:
        raise ConfigError("dataset.data_dir is not set (use --set dataset.data_dir=PATH or the config file)")
