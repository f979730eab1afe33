"""The Ray executor against the local one on a tiny synthetic DEAP: same numbers, retries, resume.

One module-scoped local Ray instance (``ray.init(num_cpus=2)``: starting Ray costs seconds). Every run sets
``n_threads=1`` so that the two executors run torch with the same thread count (the one process setting
the numbers depend on besides the seed; see ``physiosync.experiments.executors``). Comparisons are exact:
the same code on the same inputs and seeds must give the same bits, whichever process runs it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from physiosync.config import deep_merge, load_config, validate_config
from physiosync.errors import ConfigError
from physiosync.experiments import compare
from physiosync.experiments.executors import LocalExecutor, RayExecutor, check_shared_storage
from physiosync.experiments.jobs import FAULT_ENV
from physiosync.experiments.pipeline import run_pipeline
from physiosync.synth import write_synthetic_deap

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("executors")
    write_synthetic_deap(r / "data", n_subjects=3, n_trials=4, seed=1, effect=1.0)
    return r


@pytest.fixture(scope="module")
def fault_marker(root: Path) -> Path:
    """The fault-injection marker: present = no fault; a test removes it to kill the next fine-tuning."""
    p = root / "fault-marker"
    p.write_text("disarmed")
    return p


@pytest.fixture(scope="module")
def ray_instance(fault_marker: Path):
    env = {FAULT_ENV: str(fault_marker)}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


def make_cfg(root: Path, name: str, **extra: object):
    base = {"name": name, "dataset": {"name": "deap", "data_dir": str(root / "data"), "origin": "synthetic"},
            "cache_dir": str(root / "cache"), "runs_dir": str(root / "runs"), "n_threads": 1,
            "device": "cpu", "precision": "fp32"}
    cfg = load_config(None, preset="smoke", base=base)
    over = {"protocol": {"name": "stimulus-kfold", "n_folds": 2}, "finetune": {"epochs": 2}}
    return validate_config(deep_merge(deep_merge(cfg.model_dump(mode="json"), over), extra))


def ray_executor(cfg, retries: int = 2) -> RayExecutor:
    return RayExecutor(cfg.executor.model_copy(update={"name": "ray", "retries": retries}))


def labels_of(results: dict) -> dict:
    """The metric blocks of a results doc (what must be identical), without paths or timings."""
    return json.loads(json.dumps(results["labels"]))


def predictions(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "predictions").glob("*.csv"))}


@pytest.fixture(scope="module")
def local_run(root: Path) -> tuple[dict, Path]:
    cfg = make_cfg(root, "local")
    res = run_pipeline(cfg, progress=False)
    return res, Path(res["run_dir"])


def test_ray_compare_equals_local_compare(root: Path, ray_instance, fault_marker: Path) -> None:
    rows = ["majority", "de-logreg", "eegnet", "physiosync", "no-pretrain"]
    local = compare.run_compare(make_cfg(root, "cmp-local"), rows, progress=False, executor=LocalExecutor())
    cfg = make_cfg(root, "cmp-ray")
    on_ray = compare.run_compare(cfg, rows, progress=False, executor=ray_executor(cfg))
    assert on_ray["results"] == local["results"]
    assert on_ray["table"] == local["table"]
    for row in rows:
        a = predictions(Path(local["meta"]["compare_dir"]) / "rows" / row)
        b = predictions(Path(on_ray["meta"]["compare_dir"]) / "rows" / row)
        assert a and a == b, row
    # the per-job log files of the workers are in the comparison directory
    logs = list((Path(on_ray["meta"]["compare_dir"]) / "logs").glob("baseline_*eegnet*.log"))
    assert logs and "finished" in logs[0].read_text()


def test_worker_killed_mid_job_is_retried_with_identical_results(root: Path, ray_instance, fault_marker: Path,
                                                                  local_run: tuple[dict, Path]) -> None:
    want, want_dir = local_run
    cfg = make_cfg(root, "killed")
    fault_marker.unlink()  # armed: the first fine-tuning trains one epoch, then SIGKILLs its worker
    res = run_pipeline(cfg, progress=False, executor=ray_executor(cfg, retries=2))
    assert fault_marker.is_file()  # the fault did happen
    assert labels_of(res) == labels_of(want)
    assert predictions(Path(res["run_dir"])) == predictions(want_dir)


def test_stopped_driver_resumes_with_identical_results(root: Path, ray_instance, fault_marker: Path,
                                                       local_run: tuple[dict, Path]) -> None:
    from physiosync.experiments.executors import make_executor

    want, want_dir = local_run
    cfg = make_cfg(root, "stopped")
    seen: list[str] = []

    class Stopping(RayExecutor):
        def run(self, graph, progress=True, on_job_done=None):
            def stop(job):
                seen.append(job.id)
                if job.kind == "finetune":
                    raise KeyboardInterrupt  # Ctrl-C in the driver after the first fine-tuning
            return super().run(graph, progress, on_job_done=stop)

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg, progress=False, executor=Stopping(ray_executor(cfg).cfg))
    assert not (Path(want_dir.parent / "stopped") / "results.json").exists()
    res = run_pipeline(cfg, progress=False, executor=make_executor(None, cfg))  # same command, local executor
    assert labels_of(res) == labels_of(want)
    assert predictions(Path(res["run_dir"])) == predictions(want_dir)


def test_a_failing_job_is_reported_after_its_retries_while_the_others_finish(root: Path, ray_instance) -> None:
    from physiosync.errors import JobsFailed
    from physiosync.experiments.jobs import Job, JobGraph

    graph = JobGraph(root / "failing" / "logs")
    bad = graph.add(Job(id="finetune:nowhere", kind="finetune", args={"run_dir": str(root / "nowhere"),
                                                                       "cfg": {}, "cache": str(root / "nope")},
                        outputs=(str(root / "failing" / "never"),)))
    after = graph.add(Job(id="report:after", kind="report", args={}, outputs=(), deps=(bad.id,), driver=True,
                          local_fn=lambda: None))
    ran: list[int] = []
    other = graph.add(Job(id="report:other", kind="report", args={}, outputs=(), driver=True,
                          local_fn=lambda: ran.append(1)))
    cfg = make_cfg(root, "failing")
    with pytest.raises(JobsFailed, match="1 job.s. failed after 1 retries, 1 not run"):
        RayExecutor(ray_executor(cfg, retries=1).cfg, storage_check=(root / "failing", None)).run(graph, progress=False)
    assert bad.state == "failed" and after.state == "blocked" and other.state == "done" and ran == [1]


def test_storage_check_names_what_a_worker_cannot_see(root: Path, ray_instance) -> None:
    check_shared_storage(ray, root / "runs", None)  # the driver's directory is visible: no error
    with pytest.raises(ConfigError, match="cannot see the cache"):
        check_shared_storage(ray, root / "runs", root / "no-such-cache" / "manifest.json")


def test_fit_on_ray_writes_the_same_weights_as_fit_locally(root: Path, ray_instance) -> None:
    """`fit` runs the same jobs as `run`: on Ray its bundle holds bit-identical fine-tuned weights."""
    import torch

    from physiosync.experiments.bundle import load_bundle
    from physiosync.experiments.fit import fit

    local = load_bundle(fit(make_cfg(root, "fit-local"), progress=False).bundle)
    on_ray = load_bundle(fit(make_cfg(root, "fit-ray"), progress=False,
                             executor=ray_executor(make_cfg(root, "fit-ray"))).bundle)
    assert list(local.tasks) == list(on_ray.tasks)
    for task in local.tasks:
        a = local.model(task, "cpu").state_dict()
        b = on_ray.model(task, "cpu").state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
