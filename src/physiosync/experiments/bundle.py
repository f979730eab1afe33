"""The model bundle: one self-describing directory that ``physiosync fit`` writes and ``predict`` reads.

Layout (format ``physiosync-model-bundle``, :data:`BUNDLE_FORMAT_VERSION`)::

    BUNDLE/
        bundle.json          what the model is and what data it expects (below); written last
        config.yaml          the resolved configuration it was trained with
        weights/<task>.pt    the fine-tuned model (encoders + fusion classifier) of each label task

``bundle.json`` holds: the format and its version; the physiosync version and the creation info (time,
host, Python/torch/NumPy versions, device, precision); the **data contract** — the prepared modalities
(role, channel names in order, prepared rate), what the training files held before resampling (channel
names and native rates per modality, ``recorded``), the prepared trial length and the window lengths the
model fuses; the **preprocessing** (the resolved plan that went into the training cache's hash, the
preprocessing config) and the **dataset facts** it was prepared with; the training data (dataset, subjects,
trials, cache hash, input files with their sha256); per task its kind, rating columns, class names and
weights file (with size and sha256); the loss curves of pre-training and fine-tuning.

Why a directory of plain files: a user can read what a model expects (``bundle.json``, ``config.yaml``)
without physiosync, and the weights load with torch's ``weights_only`` unpickler (pickles are code).
The directory is built under a temporary name beside its destination and renamed into place, so a crash
never leaves something that looks like a bundle. :func:`load_bundle` refuses another format version, a
missing file and a file whose size or sha256 differs from ``bundle.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from physiosync.atomic import TEMP_SUFFIX, json_default, temp_prefix
from physiosync.config import RunConfig, dump_config, read_yaml, validate_config
from physiosync.data.contract import DataContract
from physiosync.data.labels import Task
from physiosync.errors import ConfigError, DataFormatError

BUNDLE_FORMAT = "physiosync-model-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST_NAME = "bundle.json"
CONFIG_NAME = "config.yaml"
WEIGHTS_DIR = "weights"


@dataclass(frozen=True)
class Bundle:
    """A loaded model bundle (see the module docstring for what each part means).

    Attributes:
        path: The bundle directory.
        manifest: The parsed ``bundle.json``.
        config: The resolved training configuration (``config.yaml``).
        contract: The prepared data contract the models were built for.
        tasks: Label task name -> :class:`~physiosync.data.labels.Task`, in training order.
    """

    path: Path
    manifest: dict[str, Any]
    config: RunConfig
    contract: DataContract
    tasks: dict[str, Task]

    @property
    def window_s(self) -> float:
        """The fine-tuning (longest fused) window length: one prediction per window of this length."""
        return float(self.manifest["data"]["window_s"])

    @property
    def resolutions(self) -> tuple[float, ...]:
        return tuple(float(w) for w in self.manifest["data"]["resolutions"])

    @property
    def dataset(self) -> str:
        return str(self.manifest["training"]["dataset"])

    @property
    def facts(self) -> dict[str, Any]:
        """The dataset facts the training data were prepared with (JSON form)."""
        return dict(self.manifest["facts"])

    def weights_path(self, task: str) -> Path:
        return self.path / self.manifest["tasks"][self.task(task).name]["weights"]

    def task(self, name: str) -> Task:
        if name not in self.tasks:
            raise ConfigError(f"{self.path}: no task {name!r} in this bundle; it has {list(self.tasks)}")
        return self.tasks[name]

    def model(self, task: str, device: Any = "cpu") -> Any:
        """The fine-tuned :class:`~physiosync.models.FinetuneModel` of ``task``, in eval mode on ``device``."""
        from physiosync.models import FinetuneModel
        from physiosync.training.checkpoint import load_checkpoint

        path = self.weights_path(task)
        state = load_checkpoint(path)
        if state.get("stage") != "finetuned-model":
            raise DataFormatError(path, "stage", state.get("stage"), "finetuned-model")
        model = FinetuneModel(self.contract, self.config.model, self.task(task).n_classes)
        try:
            model.load_state_dict(state["model"])
        except (RuntimeError, KeyError) as e:
            raise DataFormatError(path, "model", f"weights that do not fit the bundle's model ({str(e)[:200]})",
                                  "the weights of the model config.yaml describes") from None
        return model.to(device).eval()


# --------------------------------------------------------------------------------------------------
# writing


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def creation_info(device: Any, precision: str) -> dict[str, Any]:
    """When, where and with what a bundle was made (stated, never used to decide anything)."""
    import numpy as np
    import torch

    from physiosync import __version__

    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
        "physiosync": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "precision": precision,
        # the command line, when this process is the physiosync CLI (not a library caller's own argv)
        "command": " ".join(["physiosync", *sys.argv[1:]])
        if Path(sys.argv[0]).name in ("physiosync", "__main__.py") else None,
    }


def task_entry(task: Task) -> dict[str, Any]:
    return {"kind": task.kind, "columns": list(task.columns), "class_names": list(task.class_names),
            "n_classes": task.n_classes}


def write_bundle(out: str | Path, manifest: dict[str, Any], cfg: RunConfig, weights: dict[str, Path]) -> Path:
    """Write a bundle directory at ``out`` atomically: built beside it, then renamed into place.

    Args:
        manifest: Everything of ``bundle.json`` except the format fields and the file list.
        weights: Task name -> a fine-tuned model file (``finetune_fold(..., model_path=...)``), copied.

    An existing bundle at ``out`` is replaced (a later ``fit`` of the same config rewrites its bundle);
    any other existing path is refused.

    Raises:
        ConfigError: ``out`` exists and is not a model bundle (or an empty directory).
    """
    out = Path(out)
    if out.exists() and not (out / MANIFEST_NAME).is_file() and not (out.is_dir() and not any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not a model bundle; choose a new path or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), suffix=TEMP_SUFFIX, dir=out.parent))
    try:
        files: dict[str, dict[str, Any]] = {}
        (tmp / CONFIG_NAME).write_text(dump_config(cfg))
        (tmp / WEIGHTS_DIR).mkdir()
        for task, src in weights.items():
            rel = f"{WEIGHTS_DIR}/{task}.pt"
            shutil.copyfile(src, tmp / rel)
            manifest["tasks"][task]["weights"] = rel
        for rel in [CONFIG_NAME, *(f"{WEIGHTS_DIR}/{t}.pt" for t in weights)]:
            files[rel] = {"size": (tmp / rel).stat().st_size, "sha256": _sha256(tmp / rel)}
        doc = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, **manifest, "files": files}
        (tmp / MANIFEST_NAME).write_text(json.dumps(doc, indent=1, default=json_default))  # last: complete
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared bundle from other users
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name + ".old"), suffix=TEMP_SUFFIX, dir=out.parent))
            os.replace(out, old / "bundle")  # out of the way first (a directory cannot be replaced in one step)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out



# --------------------------------------------------------------------------------------------------
# reading


def _bundle_config(path: Path) -> RunConfig:
    """The training config without the training data's location (``dataset.data_dir`` / ``file``).

    Why: those paths name the machine the model was trained on; a bundle must load anywhere, and
    ``predict`` sets them to the new data (the training location stays stated in ``bundle.json``).
    """
    data = read_yaml(path)
    ds = data.get("dataset")
    if isinstance(ds, dict):
        for key in ("data_dir", "file"):
            if key in ds:
                ds[key] = None
    return validate_config(data, str(path))


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Open a model bundle written by ``physiosync fit`` (:func:`physiosync.experiments.fit.fit`).

    Args:
        verify: Check every file's size and sha256 against ``bundle.json`` (a few ms per MB of weights).

    Raises:
        DataFormatError: not a bundle directory, another format or format version, a missing file or one
            whose size or sha256 differs from ``bundle.json`` (each naming the file and the field).
    """
    path = Path(path)
    mpath = path / MANIFEST_NAME
    if not path.is_dir():
        found = "a file" if path.exists() else "no such directory"
        raise DataFormatError(path, "<bundle>", found, "a model bundle directory written by `physiosync fit`")
    try:
        doc = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise DataFormatError(mpath, "<file>", "missing", "the bundle.json of a model bundle written by "
                              "`physiosync fit`") from None
    except (OSError, ValueError) as e:
        raise DataFormatError(mpath, "<file>", f"unreadable ({e})", "a bundle.json written by `physiosync fit`") from None
    if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise DataFormatError(mpath, "format", found, BUNDLE_FORMAT)
    if doc.get("format_version") != BUNDLE_FORMAT_VERSION:
        made = (doc.get("created") or {}).get("physiosync", "an unknown version")
        raise DataFormatError(mpath, "format_version", doc.get("format_version"), BUNDLE_FORMAT_VERSION,
                              hint=f"the bundle was written by physiosync {made}: read it with that version, "
                                   "or fit the model again with this one")
    for key in ("files", "tasks", "data", "training", "facts", "preprocess"):
        if not isinstance(doc.get(key), dict):
            raise DataFormatError(mpath, key, "missing" if key not in doc else type(doc[key]).__name__,
                                  "a mapping written by `physiosync fit`")
    for rel, entry in doc["files"].items():
        f = path / rel
        if not f.is_file():
            raise DataFormatError(f, "<file>", "missing", f"the bundle file {rel} that bundle.json lists")
        if verify:
            size = f.stat().st_size
            if size != entry.get("size"):
                raise DataFormatError(f, "size", size, f"{entry.get('size')} bytes (bundle.json): damaged bundle")
            digest = _sha256(f)
            if digest != entry.get("sha256"):
                raise DataFormatError(f, "sha256", digest[:16], f"{str(entry.get('sha256'))[:16]} (bundle.json): "
                                      "damaged or edited bundle")
    listed = set(doc["files"])
    for task, entry in doc["tasks"].items():
        if entry.get("weights") not in listed:
            raise DataFormatError(mpath, f"tasks.{task}.weights", entry.get("weights"), "a file the bundle lists")
    cfg = _bundle_config(path / CONFIG_NAME)
    try:
        contract = DataContract.from_dict(doc["data"]["contract"])
        tasks = {name: Task(name, str(t["kind"]), tuple(t["columns"]), tuple(t["class_names"]))
                 for name, t in doc["tasks"].items()}
    except (KeyError, TypeError, ValueError) as e:
        raise DataFormatError(mpath, "data.contract / tasks", f"malformed ({e})",
                              "the contract and tasks written by `physiosync fit`") from None
    return Bundle(path=path, manifest=doc, config=cfg, contract=contract, tasks=tasks)


__all__ = ["BUNDLE_FORMAT", "BUNDLE_FORMAT_VERSION", "Bundle", "creation_info", "load_bundle", "write_bundle"]
