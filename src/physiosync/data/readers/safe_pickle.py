"""A restricted unpickler for DEAP's ``sNN.dat`` files: pickles are code, so only numpy arrays may come out.

DEAP's ``data_preprocessed_python`` files are pickles (written by Python 2, read with ``encoding="latin1"``).
A plain ``pickle.load`` would execute any callable a tampered file names, so this module admits exactly the
globals that rebuilding numpy arrays and dtypes needs and refuses everything else *before* it is called.
Even the admitted globals are admitted only along the path real ``pickle.dump``/``numpy.save`` output takes:
``numpy.ndarray`` may appear only as the class argument of ``_reconstruct``, and ``_reconstruct`` may only make
the empty ``(0,)`` placeholder that the following ``BUILD`` (``ndarray.__setstate__``, which checks the data
length) fills. A pickle that calls ``numpy.ndarray(shape)`` or ``_reconstruct(ndarray, shape, ...)`` directly
would otherwise yield uninitialised memory as "data"; it is refused, and an array whose state is never set
stays empty (and fails the readers' shape checks).
Every failure (refused global, truncated or corrupt file) becomes a
:class:`~physiosync.errors.DataFormatError` that names the file.
"""

from __future__ import annotations

import codecs
import pickle
import re
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
    + [("__builtin__", "bytes"), ("builtins", "bytes")]  # b"" (an empty array's data) in those pickles
)


def _empty_bytes(*args: object) -> bytes:
    """``bytes()`` as protocol<3 pickles use it, for ``b""`` only (``bytes(n)`` would allocate n bytes)."""
    if args:
        raise pickle.UnpicklingError("refused bytes() with arguments")
    return b""


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


class _NdarrayClassRef:
    """Stands in for ``numpy.ndarray`` inside a pickle: usable only as ``_reconstruct``'s class argument.

    Calling it (``REDUCE``) or instantiating it (``NEWOBJ``) is how a hostile file would allocate an array of
    any shape without data (uninitialised memory read back as signals), so both are refused.
    """

    def __new__(cls, *args: object, **kwargs: object) -> _NdarrayClassRef:
        raise pickle.UnpicklingError("refused direct call of numpy.ndarray (an array without data)")


def _reconstruct(subtype: object, shape: object, dtype: object) -> np.ndarray:
    """``numpy``'s ``_reconstruct`` narrowed to what ``ndarray.__reduce__`` writes: ``(ndarray, (0,), b'b')``.

    The real placeholder is empty; its contents come from the ``BUILD`` that follows (``__setstate__``,
    which checks that the data bytes match shape and dtype). Any other class or a non-empty shape is refused.
    """
    if subtype is not _NdarrayClassRef:
        raise pickle.UnpicklingError(f"refused numpy _reconstruct of {type(subtype).__name__} (only numpy.ndarray)")
    if not (isinstance(shape, tuple) and shape == (0,)):
        raise pickle.UnpicklingError("refused numpy _reconstruct with a shape other than (0,) (an array without data)")
    return np.ndarray.__new__(np.ndarray, (0,), np.dtype("b"))


# Element types an array in a DEAP pickle may have: bool, integers, floats, complex (the readers then refuse
# what is not real numeric with a clear message). numpy's dtype/array __setstate__ is not hardened against
# hostile states (a crafted state for a text, void or datetime dtype crashes the interpreter), so neither the
# constructor argument nor a BUILD state outside what numpy itself writes for these types is ever passed on.
_DTYPE_SPEC = re.compile(r"^[<>|=]?[biufc][0-9]{1,2}$")
_NUMERIC_KINDS = "biufc"


def _flag(value: object) -> bool | None:
    """A dtype-constructor flag as pickles write it: ``False``/``True`` (numpy today) or ``0``/``1`` (the
    numpy 1.x of Python 2, which wrote DEAP's files: ``dtype('f8', 0, 1)``); None for anything else."""
    return bool(value) if type(value) in (bool, int) and value in (0, 1) else None


def _make_dtype(spec: object, align: object = False, copy: object = False) -> np.dtype:
    """``numpy.dtype(spec, align, copy)`` for plain numeric type codes only (what array pickles write)."""
    flags = (_flag(align), _flag(copy))
    if not (isinstance(spec, str) and _DTYPE_SPEC.match(spec)) or None in flags:
        raise pickle.UnpicklingError(f"refused numpy dtype {_short(spec)} (only plain numeric types)")
    try:
        return np.dtype(spec, *flags)
    except TypeError as e:  # e.g. 'f3'
        raise pickle.UnpicklingError(f"refused numpy dtype {_short(spec)} ({e})") from None


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, (bytes, bytearray, str)) or len(value) < 60 else type(value).__name__
    return text[:60]


def _check_build(inst: object, state: object) -> None:
    """Admit a ``BUILD`` only for numpy objects, with a state of the form numpy writes for numeric arrays."""
    if isinstance(inst, np.dtype):
        # (version 3, byte order, subarray, names, fields, elsize, alignment, flags) of a builtin type
        ok = (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ("<", ">", "|", "=")
              and state[2:5] == (None, None, None) and state[5:7] == (-1, -1) and type(state[7]) is int
              and 0 <= state[7] < 256 and inst.kind in _NUMERIC_KINDS)
        if not ok:
            raise pickle.UnpicklingError(f"refused numpy dtype state {_short(state)}")
        return
    if isinstance(inst, np.ndarray):
        # ([version,] shape, dtype, is_fortran, data bytes)
        body = state[1:] if isinstance(state, tuple) and len(state) == 5 else state
        ok = (isinstance(body, tuple) and len(body) == 4 and isinstance(body[0], tuple)
              and all(type(n) is int and n >= 0 for n in body[0]) and isinstance(body[1], np.dtype)
              and body[1].kind in _NUMERIC_KINDS and isinstance(body[2], (bool, int))
              and isinstance(body[3], (bytes, bytearray, str)))
        if not ok:
            raise pickle.UnpicklingError("refused numpy array state (only numeric arrays with their data bytes)")
        return
    raise pickle.UnpicklingError(f"refused BUILD of a {type(inst).__name__} (only numpy arrays and dtypes)")


_KEEP_BYTES_FROM = 4096  # Python 2 strings this long are array data (see RestrictedUnpickler._decode_string)


class RestrictedUnpickler(pickle._Unpickler):  # noqa: SLF001 - the Python unpickler: its opcodes can be checked
    """Unpickler that admits only :data:`ALLOWED_GLOBALS`, on the array-rebuilding path, with checked states.

    Built on the pure-Python unpickler because ``BUILD`` (which calls ``__setstate__``) must be inspected
    before numpy sees the state; the C unpickler offers no hook for that. A DEAP pickle has a few dozen
    opcodes around one large bytes object per array, so this costs no measurable time.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # noqa: SLF001

    def _decode_string(self, value: bytes) -> str | bytes:
        """Python 2 ``str`` opcodes: short ones (keys, dtype codes) decoded as latin-1 text; long ones kept
        as bytes.

        Why: in a DEAP pickle the only long Python 2 strings are array data, and numpy's ``__setstate__``
        takes bytes directly. Decoding 100 MB to text only for numpy to encode it back costs two copies per
        array (measured: 32 full-size DEAP files 5.1 s → 1.9 s). Anything else that is long becomes bytes
        too and is then refused by the checks below or by the readers (a bytes key is not ``'data'``).
        """
        if len(value) >= _KEEP_BYTES_FROM:
            return value
        return super()._decode_string(value)  # type: ignore[misc]

    def load_build(self) -> None:  # noqa: D102 - pickle opcode
        if len(self.stack) < 2:
            raise pickle.UnpicklingError("BUILD without an object")
        _check_build(self.stack[-2], self.stack[-1])
        pickle._Unpickler.load_build(self)  # noqa: SLF001

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - pickle hook
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if module in ("_codecs", "codecs"):
            return _encode_latin1
        if name == "bytes":
            return _empty_bytes
        if (module, name) == ("numpy", "ndarray"):
            return _NdarrayClassRef
        if (module, name) == ("numpy", "dtype"):
            return _make_dtype
        if name == "_reconstruct":
            return _reconstruct
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
            raise DataFormatError(path, "pickle", msg, "a pickle of numeric numpy arrays as numpy writes them") from None
        raise DataFormatError(path, "pickle", f"corrupt pickle ({msg})", "a complete DEAP pickle") from None
    except EOFError:
        raise DataFormatError(path, "pickle", "truncated file (unexpected end of data)", "a complete DEAP pickle") from None
    except Exception as e:  # noqa: BLE001 - any parse failure of untrusted bytes is a format error
        raise DataFormatError(path, "pickle", f"corrupt pickle ({type(e).__name__}: {e})", "a complete DEAP pickle") from None
