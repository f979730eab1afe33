"""A restricted unpickler for DEAP's ``sNN.dat`` files: pickles are code, so only numpy arrays may come out.

DEAP's ``data_preprocessed_python`` files are pickles (written by Python 2, read with ``encoding="latin1"``).
A plain ``pickle.load`` would execute any callable a tampered file names, so this module admits exactly the
globals that rebuilding numpy arrays and dtypes needs and refuses everything else *before* it is called.
Every failure (refused global, truncated or corrupt file) becomes a
:class:`~physiosync.errors.DataFormatError` that names the file.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from physiosync.errors import DataFormatError

_NUMPY_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMPY_NUMERIC = ("numpy.core.numeric", "numpy._core.numeric")

# (module, name) pairs a numpy-array pickle may name. Both the numpy<2 ("core") and numpy>=2 ("_core")
# spellings are admitted because DEAP files predate numpy 2 while files re-saved today use the new one.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [(m, "_reconstruct") for m in _NUMPY_MULTIARRAY]
    + [(m, "scalar") for m in _NUMPY_MULTIARRAY]
    + [(m, "_frombuffer") for m in _NUMPY_NUMERIC]  # protocol-5 array pickles
    + [("numpy", "ndarray"), ("numpy", "dtype")]
    + [("_codecs", "encode"), ("codecs", "encode")]  # bytes in protocol<3 pickles written by Python 3
)


def _encode_latin1(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``codecs.encode`` narrowed to the only use a pickle makes of it: text -> latin-1 bytes.

    Python 3 writes ``bytes`` into protocol 0–2 pickles as ``_codecs.encode(text, "latin1")``; any other
    codec (e.g. the zlib/hex codecs) has no place in an array pickle, so it is refused.
    """
    if encoding.replace("_", "-").lower() not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"refused codecs.encode with encoding {encoding!r}")
    if not isinstance(obj, str):
        raise pickle.UnpicklingError("refused codecs.encode of a non-text object")
    return codecs.encode(obj, "latin1", errors)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - pickle hook
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if module in ("_codecs", "codecs"):
            return _encode_latin1
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            # Same object under its numpy>=2 name, without numpy.core's deprecation warning.
            module = "numpy._core." + module.split(".", 2)[2]
        return super().find_class(module, name)


def load_pickle(path: str | Path) -> Any:
    """Load a pickle through :class:`RestrictedUnpickler` (latin-1 for Python 2 strings).

    Raises:
        DataFormatError: the file is missing, truncated, corrupt, or names a refused global
            (``field`` is ``"pickle"``; ``found`` names the refused global or the parse error).
    """
    path = Path(path)
    try:
        fh = open(path, "rb")  # streamed: reading the whole file into bytes first costs a copy (~2x slower)
    except OSError as e:
        raise DataFormatError(path, "file", f"unreadable ({e.strerror or e})", "a readable DEAP pickle") from None
    try:
        with fh:
            return RestrictedUnpickler(fh, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        msg = str(e)
        if msg.startswith("refused"):
            raise DataFormatError(path, "pickle", msg, "only numpy array/dtype globals") from None
        raise DataFormatError(path, "pickle", f"corrupt pickle ({msg})", "a complete DEAP pickle") from None
    except EOFError:
        raise DataFormatError(path, "pickle", "truncated file (unexpected end of data)", "a complete DEAP pickle") from None
    except Exception as e:  # noqa: BLE001 - any parse failure of untrusted bytes is a format error
        raise DataFormatError(path, "pickle", f"corrupt pickle ({type(e).__name__}: {e})", "a complete DEAP pickle") from None
