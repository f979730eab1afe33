"""physiosync: PhysioSync (Cui et al., arXiv 2504.17163) for EEG emotion recognition.

Inter-subject temporal (LS-TCL) and cross-modal (CM-CA) contrastive pre-training of EEG and peripheral
encoders at two time resolutions, followed by confidence-weighted hierarchical fusion fine-tuning, with
protocols that do not leak and cheap baselines under the same folds.
"""

__version__ = "0.1.0"

# The pipeline's public API, for library users: ``physiosync.run_pipeline(cfg)`` etc. Resolved on first use
# (PEP 562), so ``import physiosync`` — and ``physiosync --help`` — import neither torch nor the pipeline.
_API = {
    "load_config": "physiosync.config",
    "resolve_config": "physiosync.config",
    "PreparedData": "physiosync.experiments.pipeline",
    "start_run": "physiosync.experiments.pipeline",
    "prepare": "physiosync.experiments.pipeline",
    "make_run_folds": "physiosync.experiments.pipeline",
    "select_folds": "physiosync.experiments.pipeline",
    "run_pipeline": "physiosync.experiments.pipeline",
    "run_compare": "physiosync.experiments.compare",
    "fit": "physiosync.experiments.fit",
    "predict": "physiosync.experiments.predict",
    "load_bundle": "physiosync.experiments.bundle",
    "to_epochs": "physiosync.data.epochs",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'physiosync' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
