"""Atomic writes: nothing half-written is ever left where a reader would take it for valid.

Files are written to a temporary sibling and renamed into place (rename is atomic on POSIX within one
file system). Directories (the window cache) follow the same protocol in :func:`physiosync.cache.build_cache`:
built under a hidden temporary name, renamed when complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)



def _json_default(o: object) -> object:
    """JSON for the numpy scalars/arrays and paths that results and manifests carry."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def write_json_atomic(path: str | Path, doc: object, indent: int | None = 1) -> None:
    """Write ``doc`` as JSON (numpy values and paths converted) atomically."""
    import json

    write_text_atomic(path, json.dumps(doc, indent=indent, default=_json_default))
