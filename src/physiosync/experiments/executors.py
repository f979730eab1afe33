"""Executors of a :class:`~physiosync.experiments.jobs.JobGraph`: ``local`` (this process) and ``ray``.

``local`` (the default) runs the jobs in this process in the graph's order — the order the stages always
ran in — and stops at the first error, as ``run`` and ``compare`` did before jobs existed; the numbers are
those of that code.

``ray`` submits every job whose dependencies are finished as a Ray task with the resources of its kind
(``executor.resources.<kind>``: ``num_cpus``, fractional ``num_gpus``), so independent folds, tasks, rows
and seeds run in parallel on every worker of the cluster. A job that raises, or whose worker process or
node dies, is retried ``executor.retries`` times by Ray; after that it is reported failed (with its error
and log file) and the jobs that depend on it are reported blocked, while all other jobs go on. At the end
an :class:`~physiosync.errors.JobsFailed` error lists them; re-running the same command (on either
executor) resumes: finished jobs are skipped and unfinished ones continue from their last checkpoint.

Cluster assumption: the cache directory, the run directory (and ``pretrain_store``) are on storage that
every Ray node sees at the same path (NFS, a parallel filesystem), and ``physiosync`` is installed on every
node. Checked at start (:func:`check_shared_storage`): the driver writes a marker file into the run
directory and one tiny task per alive node reads it back and stats the cache's ``manifest.json``; a node
that cannot is an error naming the node and the path, before any job starts.

Same numbers: a job computes from its inputs and its seed only (every stage derives its generators from
``seed`` and the job's key) and sets the process state its numbers depend on itself (threads from
``n_threads``, denormal flushing per kind: :func:`physiosync.experiments.jobs._training_runtime`). Torch's
CPU kernels can round differently with another thread count, so runs compared across executors should set
``n_threads`` (Ray starts each task with ``OMP_NUM_THREADS`` = its CPUs when ``n_threads`` is unset).

Progress: one overall bar (jobs done / total, ETA) on stderr; each job's log lines go to
``<run or comparison dir>/logs/<job id>.log`` (on the worker, through the shared storage). Ray's dashboard
shows the tasks as usual (``physiosync:<kind>`` names).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from physiosync.errors import ConfigError, JobsFailed
from physiosync.experiments.jobs import Job, JobGraph, execute

log = logging.getLogger("physiosync")

__all__ = ["LocalExecutor", "RayExecutor", "check_shared_storage", "make_executor"]


def make_executor(executor: Any, cfg: Any) -> Any:
    """An executor object: ``executor`` itself, one built from an ``ExecutorConfig``, or from ``cfg.executor``."""
    if executor is not None and hasattr(executor, "run"):
        return executor
    ecfg = executor if executor is not None else cfg.executor
    if ecfg.name == "local":
        return LocalExecutor()
    return RayExecutor(ecfg)


def _bar(total: int, progress: bool, initial: int = 0) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not progress, desc="jobs", unit="job", position=0,
                leave=True, dynamic_ncols=True)


def _should_skip(job: Job, graph: JobGraph) -> bool:
    """Finished, and nothing it depends on was (re)done in this invocation."""
    return job.done() and not any(graph.jobs[d].state == "done" for d in job.deps)


def _run_driver_job(job: Job) -> None:
    tic = time.perf_counter()
    assert job.local_fn is not None
    job.local_fn()
    job.result = {"id": job.id, "seconds": time.perf_counter() - tic}


class LocalExecutor:
    """Run every job in this process, in graph order; the first error stops the run (raised as is)."""

    name = "local"

    def run(self, graph: JobGraph, progress: bool = True,
            on_job_done: Callable[[Job], None] | None = None) -> JobGraph:
        bar = _bar(len(graph), progress and len(graph) > 1)
        try:
            for job in graph:
                if _should_skip(job, graph):
                    job.state = "skipped"
                elif job.driver:
                    _run_driver_job(job)
                    job.state = "done"
                else:
                    job.result = execute(job.payload(), str(job.log_path(graph.log_dir)), progress=progress)
                    job.state = "skipped" if job.result.get("skipped") else "done"
                bar.update(1)
                if on_job_done is not None:
                    on_job_done(job)
        finally:
            bar.close()
        return graph


# --------------------------------------------------------------------------------------------------
# Ray


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("executor.name=ray needs Ray: pip install 'physiosync[ray]' (ray[default]>=2.9)") from None
    return ray


def connect(address: str | None = None) -> Any:
    """Connect to Ray: an already initialised instance, ``address``, ``RAY_ADDRESS``, or a new local one."""
    ray = _ray()
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                     runtime_env={"env_vars": _worker_env()} if address is None else None)
        except ConnectionError as e:
            raise ConfigError(f"executor.address / RAY_ADDRESS {address!r}: cannot connect to Ray ({e}); "
                              "start the head with `ray start --head`") from None
    return ray


def _worker_env() -> dict[str, str]:
    """A local instance's workers import this checkout's physiosync (PYTHONPATH) like the driver."""
    env = {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}
    return env


def _execute_task(payload: dict[str, Any], log_file: str) -> dict[str, Any]:
    return execute(payload, log_file, progress=False)


def _storage_probe(marker: str, token: str, cache_manifest: str | None) -> dict[str, Any]:
    import socket

    seen = Path(marker).read_text() if Path(marker).is_file() else None
    cache_ok = cache_manifest is None or Path(cache_manifest).is_file()
    return {"host": socket.gethostname(), "marker": seen == token, "cache": cache_ok}


def check_shared_storage(ray: Any, directory: Path, cache_manifest: Path | None) -> None:
    """Every alive Ray node must see ``directory`` (a marker the driver writes) and the cache manifest.

    Raises:
        ConfigError: naming the node and the path it cannot see.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from physiosync.atomic import write_text_atomic

    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    marker = directory / f".storage-check-{token[:12]}"
    write_text_atomic(marker, token)
    try:
        probe = ray.remote(num_cpus=0, max_retries=0)(_storage_probe)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = {n.get("NodeManagerAddress", n["NodeID"]): probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False),
            name="physiosync:storage-check").remote(str(marker), token,
                                                   None if cache_manifest is None else str(Path(cache_manifest).resolve()))
                for n in nodes}
        for node, ref in refs.items():
            r = ray.get(ref, timeout=120)
            if not r["marker"]:
                raise ConfigError(
                    f"Ray node {node} ({r['host']}) cannot see {marker} (written by the driver): the run directory "
                    f"must be on storage shared by all nodes, at the same path")
            if not r["cache"]:
                raise ConfigError(
                    f"Ray node {node} ({r['host']}) cannot see the cache {cache_manifest}: cache_dir must be on "
                    f"storage shared by all nodes, at the same path")
    finally:
        marker.unlink(missing_ok=True)


class RayExecutor:
    """Run the jobs as Ray tasks (see the module docstring); driver jobs run in this process."""

    name = "ray"

    def __init__(self, cfg: Any, storage_check: tuple[Path, Path | None] | None = None) -> None:
        self.cfg = cfg
        self.storage_check = storage_check

    def run(self, graph: JobGraph, progress: bool = True,
            on_job_done: Callable[[Job], None] | None = None) -> JobGraph:
        ray = connect(self.cfg.address)
        check_dir = self.storage_check[0] if self.storage_check else graph.log_dir.parent
        manifest = self.storage_check[1] if self.storage_check else _manifest_of(graph)
        check_shared_storage(ray, check_dir, manifest)
        task = ray.remote(_execute_task)
        bar = _bar(len(graph), progress)
        running: dict[Any, Job] = {}
        finished_states = ("done", "skipped")

        def ready(job: Job) -> bool:
            return all(graph.jobs[d].state in finished_states for d in job.deps)

        def close(job: Job) -> None:
            bar.update(1)
            if on_job_done is not None:
                on_job_done(job)

        try:
            while True:
                progressed = False
                for job in graph:
                    if job.state != "pending" or not ready(job):
                        continue
                    progressed = True
                    if _should_skip(job, graph):
                        job.state = "skipped"
                        close(job)
                    elif job.driver:
                        try:
                            _run_driver_job(job)
                            job.state = "done"
                        except Exception as e:  # a report that cannot be made: reported like any job
                            self._fail(graph, job, f"{type(e).__name__}: {e}")
                        close(job)
                    else:
                        res = self.cfg.resources.get(job.kind)
                        opts = {"num_cpus": res.cpus if res else 1.0, "num_gpus": res.gpus if res else 0.0,
                                "max_retries": self.cfg.retries, "retry_exceptions": True,
                                "name": f"physiosync:{job.kind}"}
                        ref = task.options(**opts).remote(job.payload(), str(job.log_path(graph.log_dir)))
                        job.state = "running"
                        running[ref] = job
                if not running:
                    if progressed:
                        continue
                    break
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    job = running.pop(ref)
                    try:
                        job.result = ray.get(ref)
                        job.state = "skipped" if job.result.get("skipped") else "done"
                    except Exception as e:  # after Ray's retries: the task's error, or the worker's death
                        self._fail(graph, job, _short_error(e))
                    close(job)
        except BaseException:  # stopping the driver (Ctrl-C): the running tasks go too; re-run to resume
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
        failed = [j for j in graph if j.state == "failed"]
        if failed:
            blocked = [j for j in graph if j.state == "blocked"]
            lines = [f"{j.id}: {j.error} (log {j.log_path(graph.log_dir)})" for j in failed]
            raise JobsFailed(
                f"{len(failed)} job(s) failed after {self.cfg.retries} retries"
                + (f", {len(blocked)} not run because they depend on them" if blocked else "")
                + "; the others finished. Re-run the same command to resume. " + " | ".join(lines))
        return graph

    @staticmethod
    def _fail(graph: JobGraph, job: Job, error: str) -> None:
        job.state, job.error = "failed", error
        log.error("job %s failed: %s", job.id, error)
        for d in graph.dependents(job.id):
            if graph.jobs[d].state == "pending":
                graph.jobs[d].state = "blocked"


def _short_error(e: BaseException) -> str:
    cause = getattr(e, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"


def _manifest_of(graph: JobGraph) -> Path | None:
    for job in graph:
        cache = job.args.get("cache")
        if cache:
            return Path(cache) / "manifest.json"
    return None
