"""Atomic writes: nothing half-written is ever left where a reader would take it for valid.

Files are written to a temporary sibling and renamed into place (rename is atomic on POSIX within one
file system). Directories (the window cache) follow the same protocol in :func:`physiosync.data.cache.build_cache`:
built under a hidden temporary name, renamed when complete.

Temporary names say who owns them: ``.<name>.ps<pid>-<start>@<host>.<random>.tmp`` (``start`` is the owner
process's start time in clock ticks since boot, 0 where the OS does not tell). A process killed mid-write
(SIGKILL, power loss) leaves its temp path behind; :func:`clean_stale_temps` removes such leftovers when the
next run starts, and only stale ones, because several processes — on one machine or on several sharing a
directory (folds fanned out over machines) — may legitimately be writing at the same time. The rule:

* owner on *this* host (same host name): stale as soon as that process is gone — no process with that pid,
  or one with another start time (the pid was reused, e.g. by a new container's process);
* owner on another host, or no owner in the name (written by an older physiosync): stale when neither the
  path nor, for a directory, anything directly inside it was modified for :data:`STALE_AGE_S` (24 h —
  far longer than any single write or cache build; a live build touches its directory as it goes).

Host names must therefore be unique among the machines that share a directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

log = logging.getLogger("physiosync")

TEMP_SUFFIX = ".tmp"
STALE_AGE_S = 24 * 3600.0  # a temp path of another host (or of unknown owner) untouched this long is a leftover
_OWNER = re.compile(r"\.ps(?P<pid>\d+)-(?P<start>\d+)@(?P<host>[A-Za-z0-9_-]+)\.[A-Za-z0-9_]*\.tmp$")


@cache
def _host() -> str:
    """This machine's name as it appears in temp names (only ``[A-Za-z0-9_-]``, so names stay parseable)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:48] or "host"


def _start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # field 22 of proc(5); fields are counted after the parenthesised command name, which may hold spaces
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner_tag() -> str:
    """``ps<pid>-<start>@<host>``: identifies the process writing a temp path (see the module docstring)."""
    pid = os.getpid()
    return f"ps{pid}-{_start_ticks(pid) or 0}@{_host()}"


def temp_prefix(name: str) -> str:
    """Prefix for a temp sibling of ``name`` (``mkstemp``/``mkdtemp`` add random letters and the suffix)."""
    return f".{name[:120]}.{owner_tag()}."


def _owner_alive(pid: int, start: int) -> bool:
    if pid <= 0:
        return True  # not a real owner (kill(0) would mean "my process group"): never judged dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # EPERM: a process exists, owned by another user
    now = _start_ticks(pid) if start else None
    return now is None or now == start


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        with os.scandir(path) as it:
            for e in it:
                with contextlib.suppress(OSError):
                    newest = max(newest, e.stat(follow_symlinks=False).st_mtime)
    return newest


def stale_reason(path: str | Path, now: float | None = None, max_age_s: float = STALE_AGE_S) -> str | None:
    """Why the temp path ``path`` is a leftover that may be removed, or None if it may still be in use."""
    path = Path(path)
    m = _OWNER.search(path.name)
    if m and m["host"] == _host():
        pid = int(m["pid"])
        return None if _owner_alive(pid, int(m["start"])) else f"its writer (pid {pid} on this host) is gone"
    try:
        age = (time.time() if now is None else now) - _newest_mtime(path)
    except OSError:
        return None  # vanished meanwhile (another process cleaned it)
    return f"untouched for {age / 3600:.0f} h" if age > max_age_s else None


def is_temp_name(name: str) -> bool:
    """Hidden ``.….tmp`` names: what :func:`atomic_path` and the cache build create."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX) and len(name) > len(TEMP_SUFFIX) + 1


def clean_stale_temps(root: str | Path, recursive: bool = False, max_age_s: float = STALE_AGE_S) -> list[Path]:
    """Remove stale temp files and directories (module docstring rule) in ``root`` (and below if ``recursive``).

    Called when a run or a cache build starts. Never raises for a path it cannot inspect or remove (that
    is logged): tidying up must not stop a run. Symlinks are removed, never followed.

    Returns:
        The paths removed.
    """
    root = Path(root)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    now = time.time()
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: None):
        for name in [*dirnames, *filenames]:
            if not is_temp_name(name):
                continue
            p = Path(dirpath) / name
            reason = stale_reason(p, now, max_age_s)
            if reason is None:
                continue
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            except FileNotFoundError:
                continue  # removed by another process meanwhile
            except OSError as e:
                log.warning("could not remove stale temporary %s: %s", p, e.strerror or e)
                continue
            log.info("removed stale temporary %s (%s)", p, reason)
            removed.append(p)
        # never descend into temp directories (kept ones are in use) nor, unless asked, into subdirectories
        dirnames[:] = [d for d in dirnames if recursive and not is_temp_name(d)]
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
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



def json_default(o: object) -> object:
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

    write_text_atomic(path, json.dumps(doc, indent=indent, default=json_default))


