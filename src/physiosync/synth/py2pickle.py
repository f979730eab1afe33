"""Pickles of numpy arrays exactly as Python 2 with numpy 1.x wrote them (DEAP's ``sNN.dat`` files).

DEAP's ``data_preprocessed_python`` files were written by Python 2 (they must be read with
``encoding="latin1"``), so their pickle protocol is at most 2, and what a Python 3 ``pickle.dump`` writes
differs from them in ways a reader can trip over:

- array data and the dict keys are Python 2 ``str`` (``BINSTRING`` / ``SHORT_BINSTRING`` opcodes, decoded
  as latin-1 text by Python 3), not ``bytes`` (``_codecs.encode`` calls, or ``BINBYTES`` in protocol 3+);
- numpy of that era reduced a dtype to ``dtype('f8', 0, 1)`` with the *integers* 0 and 1, where numpy
  today writes ``False, True``;
- the globals are ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``.

:func:`dumps_py2` writes that opcode stream for a dict of ``str`` keys to numeric arrays, so the synthetic
twin of DEAP tests the reader (and its restricted unpickler) on the real files' encoding, and unpickling
costs what it costs on the real files (a latin-1 decode of every array's data).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

# pickle opcodes (pickletools): protocol 2 subset used by Python 2's cPickle for these objects
_PROTO, _STOP, _MARK = b"\x80", b".", b"("
_EMPTY_DICT, _SETITEMS, _TUPLE, _TUPLE1, _TUPLE3 = b"}", b"u", b"t", b"\x85", b"\x87"
_GLOBAL, _REDUCE, _BUILD, _NONE, _NEWFALSE = b"c", b"R", b"b", b"N", b"\x89"
_BININT, _BININT1, _SHORT_BINSTRING, _BINSTRING = b"J", b"K", b"U", b"T"


def _int(n: int) -> bytes:
    return _BININT1 + bytes([n]) if 0 <= n < 256 else _BININT + struct.pack("<i", n)


def _str(b: bytes) -> bytes:
    """A Python 2 ``str`` (bytes that Python 3 decodes as latin-1 text)."""
    return _SHORT_BINSTRING + bytes([len(b)]) + b if len(b) < 256 else _BINSTRING + struct.pack("<i", len(b)) + b


def _dtype(dt: np.dtype) -> bytes:
    order = b"|" if dt.itemsize == 1 else b"<"
    return (_GLOBAL + b"numpy\ndtype\n" + _str(dt.str[1:].encode()) + _int(0) + _int(1) + _TUPLE3 + _REDUCE
            + _MARK + _int(3) + _str(order) + _NONE + _NONE + _NONE + _int(-1) + _int(-1) + _int(0) + _TUPLE
            + _BUILD)


def _write_array(a: np.ndarray, fh: BinaryIO) -> None:
    a = np.ascontiguousarray(a)
    if a.dtype.kind not in "biuf" or a.dtype.byteorder == ">":
        raise ValueError(f"only little-endian numeric arrays, got {a.dtype}")
    if a.nbytes >= 2**31:
        raise ValueError("a Python 2 str holds at most 2**31 - 1 bytes")
    shape = b"".join(_int(n) for n in a.shape)
    fh.write(_GLOBAL + b"numpy.core.multiarray\n_reconstruct\n" + _GLOBAL + b"numpy\nndarray\n"
             + _int(0) + _TUPLE1 + _str(b"b") + _TUPLE3 + _REDUCE
             + _MARK + _int(1) + _MARK + shape + _TUPLE + _dtype(a.dtype) + _NEWFALSE)
    # the data as one Python 2 str, written from the array's buffer (no 100 MB concatenation)
    fh.write(_BINSTRING + struct.pack("<i", a.nbytes) if a.nbytes >= 256 else _SHORT_BINSTRING + bytes([a.nbytes]))
    fh.write(memoryview(a).cast("B"))
    fh.write(_TUPLE + _BUILD)


def dump_py2(arrays: dict[str, np.ndarray], fh: BinaryIO) -> None:
    """Write ``{key: array}`` as a Python 2 / numpy 1.x protocol-2 pickle. Memo opcodes (``BINPUT``) are
    left out: they matter only for objects referenced twice, and the unpickled result is the same."""
    fh.write(_PROTO + b"\x02" + _EMPTY_DICT + _MARK)
    for key, value in arrays.items():
        fh.write(_str(key.encode("ascii")))
        _write_array(np.asarray(value), fh)
    fh.write(_SETITEMS + _STOP)
