"""``seeds: [...]``: one ordinary run directory per seed, equal to a run with that seed alone, and summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from physiosync.config import deep_merge, load_config, validate_config
from physiosync.evaluation.seeds import seed_comparison, seed_results
from physiosync.experiments import compare
from physiosync.experiments.pipeline import run_pipeline
from physiosync.synth import write_synthetic_deap


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("seeds")
    write_synthetic_deap(r / "data", n_subjects=3, n_trials=4, seed=2, effect=1.0)
    return r


def make_cfg(root: Path, name: str, **extra: object):
    base = {"name": name, "dataset": {"name": "deap", "data_dir": str(root / "data"), "origin": "synthetic"},
            "cache_dir": str(root / "cache"), "runs_dir": str(root / "runs"), "device": "cpu", "precision": "fp32"}
    cfg = load_config(None, preset="smoke", base=base)
    return validate_config(deep_merge(deep_merge(cfg.model_dump(mode="json"),
                                                 {"protocol": {"name": "stimulus-kfold", "n_folds": 2}}), extra))


def test_a_run_over_seeds_is_one_run_per_seed_and_their_summary(root: Path) -> None:
    res = run_pipeline(make_cfg(root, "multi", seeds=[0, 1]), progress=False)
    top = Path(res["run_dir"])
    per_seed = {k: json.loads((top / f"seed{k}" / "results.json").read_text()) for k in (0, 1)}
    assert json.loads((top / "seeds.json").read_text())["labels"] == json.loads(json.dumps(seed_results(per_seed)["labels"]))
    assert (top / "seeds.md").is_file() and res["labels"]["arousal"]["summary"]["n_folds"] == 4
    alone = run_pipeline(make_cfg(root, "alone", seed=1), progress=False)
    assert per_seed[1]["labels"] == json.loads((Path(alone["run_dir"]) / "results.json").read_text())["labels"]
    # the seeds draw their own folds (stimulus-kfold shuffles with the seed)
    f0, f1 = (json.loads((top / f"seed{k}" / "folds.json").read_text()) for k in (0, 1))
    assert f0 != f1


def test_a_comparison_over_seeds_summarises_the_seed_comparisons(root: Path) -> None:
    doc = compare.run_compare(make_cfg(root, "cmp", seeds=[3, 4]), ["majority", "de-logreg"], progress=False)
    top = Path(doc["meta"]["compare_dir"])
    docs = {k: json.loads((top / f"seed{k}" / "comparison.json").read_text()) for k in (3, 4)}
    want = json.loads(json.dumps(seed_comparison(docs)))
    assert json.loads((top / "comparison-seeds.json").read_text())["table"] == want["table"]
    assert [(x["row"], x["n_seeds"], x["n_pairs"]) for x in want["table"]] == [("majority", 2, 4), ("de-logreg", 2, 4)]
    assert "seed 3" in (top / "comparison-seeds.md").read_text()
