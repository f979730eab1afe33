"""A generated corpus of broken and hostile data files run through ``physiosync prepare`` (issue 8 §4).

Every mutation of the small synthetic DEAP (``sNN.dat`` / ``sNN.mat``, 2 subjects x 2 trials) and DREAMER
(``DREAMER.mat``, 2 subjects x 2 clips) inputs is built so that it *must* be rejected: a byte flip is aimed
at structure (opcodes, key names, dtype codes) or writes a value that is invalid by definition (NaN, Inf,
beyond the reader's magnitude bound, a rating outside 1–9), never at an arbitrary data byte that could
decode to another valid number. For each case the in-process CLI must exit 2 with one line on stderr that
names the file (or directory) and the field, show no traceback, emit no warning (``filterwarnings=error``)
and leave nothing in the cache directory, not even a hidden temporary build directory. A few "still valid"
controls must exit 0, so a harness that rejects everything fails.
"""

from __future__ import annotations

import copy
import copyreg
import pickle
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from physiosync.cli import main
from physiosync.synth.deap import make_deap_subject, write_mat_deterministic, write_synthetic_deap
from physiosync.synth.dreamer import build_dreamer_struct, save_dreamer_struct

pytestmark = pytest.mark.filterwarnings("error")  # a warning on stderr is not "one clear line" either

SEED = 11
N_TRIALS = 2
HUGE = 1.7e308  # finite float64, far beyond the readers' bound (1e100)


@dataclass
class Base:
    """The valid inputs every case starts from (built once per session)."""

    root: Path
    deap_py: Path  # folder with s01.dat, s02.dat
    deap_mat: Path  # folder with s01.mat, s02.mat
    raw_dat: bytes  # bytes of s01.dat
    raw_mat: bytes  # bytes of s01.mat
    data: np.ndarray  # s01's data (2, 40, 8064)
    labels: np.ndarray  # s01's labels (2, 4)
    data_offset: int  # where data's float64 bytes start in raw_dat
    labels_offset: int
    dreamer: dict  # the DREAMER struct (nested dicts / object arrays)
    dreamer_mat: Path
    raw_dreamer: bytes


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("corpus-base")
    write_synthetic_deap(root / "py", n_subjects=2, n_trials=N_TRIALS, seed=SEED)
    write_synthetic_deap(root / "mat", n_subjects=2, n_trials=N_TRIALS, seed=SEED, format="matlab")
    data, labels = make_deap_subject(SEED, 1, N_TRIALS, 1.0)
    raw = (root / "py" / "s01.dat").read_bytes()
    data_offset, labels_offset = raw.find(data.tobytes()[:4096]), raw.find(labels.tobytes())
    assert data_offset > 0 and labels_offset > 0
    struct = build_dreamer_struct(2, N_TRIALS, seed=SEED, clip_seconds=(60.5, 61.5))
    mat = save_dreamer_struct(root / "dreamer" / "DREAMER.mat", struct)
    return Base(root, root / "py", root / "mat", raw, (root / "mat" / "s01.mat").read_bytes(), data, labels,
                data_offset, labels_offset, struct, mat, mat.read_bytes())


# ------------------------------------------------------------------------------------------- case model


@dataclass
class Case:
    """One input: ``build(base, dir)`` writes it and returns (dataset, data_dir, extra CLI args)."""

    build: Callable[[Base, Path], tuple[str, Path, list[str]]]
    field: str | None  # the field the error must name; None for a control that must succeed
    name: str  # file or directory basename the message must contain


CASES: dict[str, Case] = {}


def case(cid: str, field: str | None, name: str = "s01.dat") -> Callable:
    def register(fn: Callable[[Base, Path], tuple[str, Path, list[str]]]) -> Callable:
        assert cid not in CASES, cid
        CASES[cid] = Case(fn, field, name)
        return fn
    return register


def deap_dir(base: Base, d: Path, s01: bytes | None = None, s02: bytes | None = None, suffix: str = ".dat") -> Path:
    """A DEAP folder: the given bytes for s01/s02, links to the valid base files otherwise."""
    src = base.deap_py if suffix == ".dat" else base.deap_mat
    d.mkdir(parents=True, exist_ok=True)
    for name, content in ((f"s01{suffix}", s01), (f"s02{suffix}", s02)):
        if content is None:
            (d / name).symlink_to(src / name)
        else:
            (d / name).write_bytes(content)
    return d


def dat_bytes(obj: object, protocol: int = 4) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def put(raw: bytes, offset: int, new: bytes) -> bytes:
    return raw[:offset] + new + raw[offset + len(new):]


def good_arrays(base: Base) -> dict[str, np.ndarray]:
    return {"labels": base.labels.copy(), "data": base.data.copy()}


# --------------------------------------------------------------------------------------- DEAP controls


@case("control-deap-python", None)
def _(base: Base, d: Path) -> tuple:
    return "deap", deap_dir(base, d), []


@case("control-deap-matlab", None, "s01.mat")
def _(base: Base, d: Path) -> tuple:
    return "deap", deap_dir(base, d, suffix=".mat"), []


@case("control-extra-key-int-data-stray-files", None)
def _(base: Base, d: Path) -> tuple:
    arrays = good_arrays(base)
    arrays["data"] = np.round(arrays["data"]).astype(np.int64)  # integer data is numeric: accepted
    arrays["comment"] = "extra keys are ignored"
    deap_dir(base, d, s01=dat_bytes(arrays))
    (d / "sXX.dat").write_text("not a subject id: ignored")
    (d / "README.txt").write_text("stray")
    (d / "s03.dat").mkdir()  # a folder is not a subject
    return "deap", d, []


@case("control-float32-data-mantissa-flip", None)
def _(base: Base, d: Path) -> tuple:
    raw = bytearray(base.raw_dat)
    raw[base.data_offset + 8 * 400] ^= 0x01  # least significant mantissa bit: another valid float
    arrays = good_arrays(base)
    arrays["data"] = arrays["data"].astype(np.float32)
    return "deap", deap_dir(base, d, s01=bytes(raw), s02=dat_bytes(arrays)), []


@case("control-gsr-1e39-normalised", None)
def _(base: Base, d: Path) -> tuple:
    # Raw GSR of 1e39 is representable in float64 and z-scored per subject: a valid (if odd) unit.
    arrays = good_arrays(base)
    arrays["data"][:, 36] *= 1e39 / 1e4
    return "deap", deap_dir(base, d, s01=dat_bytes(arrays)), []


# ------------------------------------------------------------------------- DEAP pickle: truncation, flips

for _cut in (0, 1, 2, 5, 20, 60, 200, 1000, "1/4", "1/2", "3/4", "-9", "-1"):
    def _truncate(base: Base, d: Path, cut: Any = _cut) -> tuple:
        n = len(base.raw_dat)
        at = (n * int(cut[0]) // int(cut[2]) if "/" in cut else n + int(cut)) if isinstance(cut, str) else cut
        return "deap", deap_dir(base, d, s01=base.raw_dat[:at]), []
    case(f"dat-truncated-{_cut}".replace("/", "of"), "pickle")(_truncate)


@case("dat-truncated-second-subject", "pickle", "s02.dat")
def _(base: Base, d: Path) -> tuple:
    # s01 is read and preprocessed first: the partial build must still leave nothing behind
    return "deap", deap_dir(base, d, s02=base.raw_dat[: len(base.raw_dat) // 2]), []


def _flip_at(find: bytes, new: bytes, nth: int = 0) -> Callable[[Base, Path], tuple]:
    def build(base: Base, d: Path) -> tuple:
        at = -1
        for _ in range(nth + 1):
            at = base.raw_dat.find(find, at + 1)
        # in the pickle's structure (opcodes, names), not inside the labels' or the signals' float bytes
        assert 0 <= at < base.data_offset and not base.labels_offset - len(find) < at < base.labels_offset + 64, at
        return "deap", deap_dir(base, d, s01=put(base.raw_dat, at, new)), []
    return build


for _cid, _find, _new, _nth, _field in [
    ("key-data", b"data", b"dbta", 0, "data"),
    ("key-labels", b"labels", b"lbbels", 0, "labels"),
    ("key-data-case", b"data", b"Data", 0, "data"),
    ("global-numpy", b"numpy", b"numpz", 0, "pickle"),
    ("global-ndarray", b"ndarray", b"ndarrax", 0, "pickle"),
    ("global-reconstruct", b"_reconstruct", b"_reconstrucx", 0, "pickle"),
    ("global-dtype", b"dtype", b"dtypf", 0, "pickle"),
    # Each array pickles its own dtype (DEAP's Python 2 layout, py2pickle.py; 'labels' comes first): the
    # first 'f8' is the labels' dtype. A different item size no longer matches the stored bytes.
    ("dtype-f4", b"f8", b"f4", 0, "pickle"),
    ("dtype-i4", b"f8", b"i4", 0, "pickle"),
    ("dtype-u1", b"f8", b"u1", 0, "pickle"),
    ("dtype-b1", b"f8", b"b1", 0, "pickle"),
    ("dtype-c8", b"f8", b"c8", 0, "labels"),  # complex64, same size: the imaginary part must not be dropped
    ("dtype-c8-data", b"f8", b"c8", 1, "data"),
    # Non-numeric dtypes are refused while unpickling (numpy's __setstate__ of such dtypes is not safe).
    ("dtype-m8", b"f8", b"m8", 0, "pickle"),  # timedelta64 (an integer subtype for numpy)
    ("dtype-M8", b"f8", b"M8", 0, "pickle"),
    ("dtype-V8", b"f8", b"V8", 0, "pickle"),
    ("dtype-S8", b"f8", b"S8", 0, "pickle"),
    ("dtype-U2", b"f8", b"U2", 0, "pickle"),
    ("dtype-O8", b"f8", b"O8", 0, "pickle"),
    ("dtype-f3", b"f8", b"f3", 0, "pickle"),
]:
    case(f"dat-flip-{_cid}", _field)(_flip_at(_find, _new, _nth))


for _cid, _at, _byte in [("proto", 1, 9), ("first-opcode", 0, 0), ("stop", -1, 0), ("stop-none", -1, ord("N")),
                         ("frame", 2, ord("\xff"))]:
    def _flip_byte(base: Base, d: Path, at: int = _at, byte: int = _byte) -> tuple:
        raw = bytearray(base.raw_dat)
        raw[at] = byte
        return "deap", deap_dir(base, d, s01=bytes(raw)), []
    case(f"dat-byte-{_cid}", "pickle")(_flip_byte)


# Invalid values written into the stored float64 bytes (NaN, Inf, beyond the bound) per modality/channel.
_POSITIONS = {"eeg-c0-baseline": (0, 0, 100), "eeg-c31-stimulus": (1, 31, 8000), "gsr": (1, 36, 5000),
              "unused-resp": (0, 38, 700)}
for _pos, (_t, _c, _i) in _POSITIONS.items():
    for _vname, _v in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf), ("huge", HUGE), ("-huge", -HUGE),
                       ("1e101", 1e101)):
        def _poison(base: Base, d: Path, t: int = _t, c: int = _c, i: int = _i, v: float = _v) -> tuple:
            at = base.data_offset + 8 * ((t * 40 + c) * 8064 + i)
            return "deap", deap_dir(base, d, s01=put(base.raw_dat, at, np.float64(v).tobytes())), []
        case(f"dat-value-{_pos}-{_vname}", "data")(_poison)

for _vname, _v in (("nan", np.nan), ("zero", 0.0), ("ten", 10.0), ("negative", -1.0), ("huge", HUGE)):
    def _poison_label(base: Base, d: Path, v: float = _v) -> tuple:
        at = base.labels_offset + 8 * 5
        return "deap", deap_dir(base, d, s01=put(base.raw_dat, at, np.float64(v).tobytes())), []
    case(f"dat-labels-{_vname}", "labels")(_poison_label)


# ---------------------------------------------------------------------- DEAP pickle: keys, shapes, dtypes


@dataclass
class _Root:
    """A whole replacement object for the pickle (``None`` included), as opposed to an in-place mutation."""

    value: Any


def _arrays_case(cid: str, field: str, mutate: Callable[[dict], Any], name: str = "s01.dat", protocol: int = 4,
                 extra: tuple[str, ...] = ()) -> None:
    def build(base: Base, d: Path) -> tuple:
        arrays = good_arrays(base)
        out = mutate(arrays)
        obj = out.value if isinstance(out, _Root) else arrays
        if name == "s02.dat":
            return "deap", deap_dir(base, d, s02=dat_bytes(obj, protocol)), list(extra)
        return "deap", deap_dir(base, d, s01=dat_bytes(obj, protocol)), list(extra)
    case(f"dat-{cid}", field, name)(build)


def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda a: a.__setitem__(key, value(a) if callable(value) else value)


_arrays_case("missing-data", "data", lambda a: [a.pop("data"), None][1])
_arrays_case("missing-labels", "labels", lambda a: [a.pop("labels"), None][1])
_arrays_case("renamed-keys", "data", lambda a: _Root({"Data": a["data"], "Labels": a["labels"]}))
_arrays_case("bytes-keys", "data", lambda a: _Root({b"data": a["data"], b"labels": a["labels"]}))
_arrays_case("mixed-type-keys", "data", lambda a: _Root({1: a["data"], "labels": a["labels"], (2, 3): 0, None: 1}))
_arrays_case("many-keys", "data", lambda a: _Root({f"key{i}" * 50: i for i in range(2000)}))
_arrays_case("huge-int-key", "data", lambda a: _Root({10 ** 5000: 1, "labels": a["labels"]}))
_arrays_case("empty-dict", "data", lambda a: _Root({}))
for _cid, _obj in (("list", [1, 2]), ("ndarray", np.zeros(3)), ("none", None), ("str", "data"), ("int", 7),
                   ("tuple", ("data", "labels"))):
    _arrays_case(f"root-{_cid}", "<root>", lambda a, o=_obj: _Root(o))
for _cid, _shape in (("samples-8063", (2, 40, 8063)), ("channels-39", (2, 39, 8064)), ("4d", (2, 40, 8064, 1)),
                     ("2d", (40, 8064)), ("zero-trials", (0, 40, 8064)), ("transposed", (8064, 40, 2)),
                     ("1d", (16,)), ("scalar-0d", ())):
    _arrays_case(f"data-shape-{_cid}", "data", _set("data", lambda a, s=_shape: np.zeros(s)))
for _cid, _shape in (("2x3", (2, 3)), ("3x4", (3, 4)), ("flat", (8,)), ("2x4x1", (2, 4, 1)), ("empty", (0, 4))):
    _arrays_case(f"labels-shape-{_cid}", "labels", _set("labels", lambda a, s=_shape: np.full(s, 5.0)))
# Real numeric dtypes the reader refuses by name ('data'); others never get past the unpickler ('pickle').
for _cid, _field, _conv in (
        ("bool", "data", lambda x: x > 0), ("complex128", "data", lambda x: x + 0.5j),
        ("complex64", "data", lambda x: x.astype(np.complex64)), ("list", "data", lambda x: x[:, :1, :4].tolist()),
        ("float-scalar", "data", lambda x: np.float64(1.0)), ("object", "pickle", lambda x: x[:, :1, :4].astype(object)),
        ("str", "pickle", lambda x: x[:, :2].astype(str)), ("bytes", "pickle", lambda x: x[:, :2].astype("S8")),
        ("timedelta64", "pickle", lambda x: x.astype(np.int64).astype("m8[ms]")),
        ("datetime64", "pickle", lambda x: x.astype(np.int64).astype("M8[s]")),
        ("structured", "pickle", lambda x: np.zeros(x.shape, dtype=[("a", "f8")]))):
    _arrays_case(f"data-dtype-{_cid}", _field, _set("data", lambda a, f=_conv: f(a["data"])))
for _cid, _field, _conv in (("bool", "labels", lambda x: x > 5), ("complex", "labels", lambda x: x + 1j),
                            ("str", "pickle", lambda x: x.astype(str)), ("object", "pickle", lambda x: x.astype(object)),
                            ("timedelta64", "pickle", lambda x: x.astype(np.int64).astype("m8[D]"))):
    _arrays_case(f"labels-dtype-{_cid}", _field, _set("labels", lambda a, f=_conv: f(a["labels"])))


def _scale(channels: slice, factor: float) -> Callable[[dict], None]:
    def mutate(a: dict) -> None:
        a["data"][:, channels] *= factor
    return mutate


_arrays_case("eeg-times-1e200", "data", _scale(slice(0, 32), 1e200))  # became an all-zero subject
_arrays_case("gsr-times-1e300", "data", _scale(slice(36, 37), 1e300))
_arrays_case("gsr-1e39-norm-none", "trial 0 signal['gsr']", _scale(slice(36, 37), 1e39 / 1e3),
             extra=("--set", "preprocess.peripheral_norm=none"))  # Inf once stored as float32
_arrays_case("gsr-1e39-official", "trial 0 signal['gsr']", _scale(slice(36, 37), 1e39 / 1e3),
             extra=("--set", "preprocess.official=true"))
_arrays_case("eeg-times-1e-300", "trial 0 signal['eeg']", _scale(slice(0, 32), 1e-300))  # float32 zeros
_arrays_case("eeg-all-zero", "trial 0 signal['eeg']", _scale(slice(0, 32), 0.0))
_arrays_case("gsr-flat-trial-1", "trial 1 signal['gsr']",
             lambda a: a["data"].__setitem__((1, 36), 4321.0), extra=("--set", "preprocess.peripheral_norm=none"))
_arrays_case("all-constant", "trial 0 signal['eeg']", lambda a: a["data"].__setitem__(Ellipsis, 5.0))
_arrays_case("second-subject-huge", "data", _set("data", lambda a: a["data"] * 1e150), name="s02.dat")
_arrays_case("second-subject-3-trials", "n_trials",
             lambda a: _Root({"data": np.concatenate([a["data"], a["data"][:1]]),
                              "labels": np.concatenate([a["labels"], a["labels"][:1]])}), name="s02.dat")


# ---------------------------------------------------------------------------------- DEAP hostile pickles


def _opcode_call(module: str, name: str, *args: str, wrap: bool = True) -> bytes:
    """A protocol-2 pickle calling ``module.name(*args)`` (optionally as the value of key 'data')."""
    call = b"c" + f"{module}\n{name}\n".encode() + b"("
    for arg in args:
        enc = arg.encode()
        call += b"X" + len(enc).to_bytes(4, "little") + enc
    call += b"tR"
    if not wrap:
        return b"\x80\x02" + call + b"."
    return b"\x80\x02}X\x04\x00\x00\x00data" + call + b"s."


MARKER = "physiosync-corpus-pwned"
for _cid, _mod, _name, _args in [
    ("os-system", "os", "system", (f"touch /tmp/{MARKER}",)),
    ("posix-system", "posix", "system", (f"touch /tmp/{MARKER}",)),
    ("builtins-eval", "builtins", "eval", (f"open('/tmp/{MARKER}', 'w')",)),
    ("builtins-exec", "builtins", "exec", (f"open('/tmp/{MARKER}', 'w')",)),
    ("builtins-import", "builtins", "__import__", ("antigravity",)),
    ("builtins-open", "builtins", "open", (f"/tmp/{MARKER}", "w")),
    ("getattr", "builtins", "getattr", ("x", "y")),
    ("subprocess-popen", "subprocess", "Popen", (f"touch /tmp/{MARKER}",)),
    ("subprocess-call", "subprocess", "call", (f"touch /tmp/{MARKER}",)),
    ("importlib", "importlib", "import_module", ("antigravity",)),
    ("import-module", "antigravity", "geohash", ()),  # naming the module must not import it
    ("shutil-rmtree", "shutil", "rmtree", ("/tmp/nothing-here",)),
    ("numpy-load", "numpy", "load", ("/etc/passwd",)),
    ("numpy-fromfile", "numpy", "fromfile", ("/etc/passwd",)),
    ("numpy-testing", "numpy.testing", "assert_", ("x",)),
    ("codecs-zlib", "_codecs", "encode", ("x", "zlib")),
    ("codecs-hex", "codecs", "encode", ("x", "hex")),
    ("pickle-loads", "pickle", "loads", ("x",)),
    ("copyreg-reconstructor", "copyreg", "_reconstructor", ()),
    ("webbrowser", "webbrowser", "open", ("http://example.invalid",)),
]:
    case(f"hostile-{_cid}", "pickle")(lambda base, d, m=_mod, n=_name, a=_args: (
        "deap", deap_dir(base, d, s01=_opcode_call(m, n, *a)), []))
case("hostile-os-system-bare", "pickle")(lambda base, d: (
    "deap", deap_dir(base, d, s01=_opcode_call("os", "system", f"touch /tmp/{MARKER}", wrap=False)), []))


class _Reduce:
    """Pickles as ``fn(*args)``: how a hostile file is written with the standard pickler."""

    def __init__(self, fn: Any, args: tuple) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return self.fn, self.args


_RECONSTRUCT = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct


def _uninitialised(kind: str) -> dict:
    def arr(shape: tuple) -> Any:
        if kind == "call":  # numpy.ndarray(shape): REDUCE on the class
            return _Reduce(np.ndarray, (shape,))
        if kind == "newobj":  # NEWOBJ: ndarray.__new__(ndarray, shape)
            return _Reduce(copyreg.__newobj__, (np.ndarray, shape))
        return _Reduce(_RECONSTRUCT, (np.ndarray, shape, b"b"))  # _reconstruct without BUILD
    return {"data": arr((2, 40, 8064)), "labels": arr((2, 4))}


for _kind in ("call", "reconstruct"):
    case(f"hostile-ndarray-{_kind}", "pickle")(lambda base, d, k=_kind: (
        "deap", deap_dir(base, d, s01=dat_bytes(_uninitialised(k), protocol=2)), []))
case("hostile-ndarray-call-s02", "pickle", "s02.dat")(lambda base, d: (
    "deap", deap_dir(base, d, s02=dat_bytes(_uninitialised("call"), protocol=2)), []))
# The placeholder array real pickles start from, never filled by BUILD: an empty array, refused by shape.
case("hostile-reconstruct-no-state", "data")(lambda base, d: (
    "deap", deap_dir(base, d, s01=dat_bytes({"data": _Reduce(_RECONSTRUCT, (np.ndarray, (0,), b"b")),
                                             "labels": base.labels}, protocol=2)), []))
# NEWOBJ (cls.__new__(cls, *args)) on numpy.ndarray with a shape: uninitialised memory again
case("hostile-ndarray-newobj", "pickle")(lambda base, d: (
    "deap", deap_dir(base, d, s01=b"\x80\x02}X\x04\x00\x00\x00datacnumpy\nndarray\nK\x02K(M\x80\x1f\x87\x85\x81s."), []))
# A dtype whose BUILD state is not numpy's own: numpy's dtype __setstate__ would be handed crafted fields.
case("hostile-dtype-state", "pickle")(lambda base, d: (
    "deap", deap_dir(base, d, s01=b"\x80\x02}X\x04\x00\x00\x00datacnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R"
                                  b"(K\x03X\x01\x00\x00\x00<NX\x01\x00\x00\x00aNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbs."), []))
# BUILD on something that is not a numpy object (a dict gets attributes set from the state)
case("hostile-build-dict", "pickle")(lambda base, d: (
    "deap", deap_dir(base, d, s01=b"\x80\x02}}X\x01\x00\x00\x00aK\x01sb."), []))
case("hostile-bytes-alloc", "pickle")(lambda base, d: (
    "deap", deap_dir(base, d, s01=b"\x80\x02}X\x04\x00\x00\x00datac__builtin__\nbytes\nJ\x00\x00\x00\x7f\x85Rs."), []))


def _matrix_pickle() -> bytes:
    with pytest.warns(PendingDeprecationWarning):
        m = np.matrix(np.zeros((2, 2)))
    return dat_bytes({"data": m, "labels": np.zeros((2, 4))})


case("hostile-matrix-subclass", "pickle")(lambda base, d: ("deap", deap_dir(base, d, s01=_matrix_pickle()), []))
case("hostile-masked-array", "pickle")(lambda base, d: (
    "deap", deap_dir(base, d, s01=dat_bytes({"data": np.ma.masked_array(base.data), "labels": base.labels})), []))


# --------------------------------------------------------------------------------------- DEAP file names


def _named(name: str, field: str, content: Callable[[Base, Path], None] | None = None) -> None:
    def build(base: Base, d: Path) -> tuple:
        deap_dir(base, d)
        if content is None:
            (d / name).symlink_to(base.deap_py / "s01.dat")
        else:
            content(base, d / name)
        return "deap", d, []
    case(f"name-{name}-{field.replace(' ', '_')}", field, name)(build)


_named("s0.dat", "subject id")
_named("s00.dat", "subject id")
_named("s000.dat", "subject id")
_named("s03.dat", "subject file", lambda base, p: p.symlink_to(p.parent / "missing-target.dat"))
_named("s04.dat", "subject file", lambda base, p: p.symlink_to(p))  # a symlink loop
_named("s1.dat", "subject files", lambda base, p: p.symlink_to(base.deap_py / "s01.dat"))  # s1 and s01


@case("dir-empty", "subject files", "empty")
def _(base: Base, d: Path) -> tuple:
    (d / "empty").mkdir(parents=True)
    return "deap", d / "empty", []


@case("dir-missing", "data_dir", "absent")
def _(base: Base, d: Path) -> tuple:
    return "deap", d / "absent", []


@case("dir-is-a-file", "data_dir", "s01.dat")
def _(base: Base, d: Path) -> tuple:
    return "deap", deap_dir(base, d) / "s01.dat", []


# ------------------------------------------------------------------------------------------- DEAP .mat


def _mat_bytes(d: Path, variables: dict) -> bytes:
    tmp = d / "tmp.mat"
    write_mat_deterministic(tmp, variables)
    out = tmp.read_bytes()
    tmp.unlink()
    return out


for _cut in (0, 10, 127, 128, 200, "1/3", "2/3", "-1"):
    def _mat_truncate(base: Base, d: Path, cut: Any = _cut) -> tuple:
        n = len(base.raw_mat)
        at = (n * int(cut[0]) // int(cut[2]) if "/" in cut else n + int(cut)) if isinstance(cut, str) else cut
        return "deap", deap_dir(base, d, s01=base.raw_mat[:at], suffix=".mat"), []
    # exactly the 128-byte header is a valid MATLAB file without variables
    case(f"mat-truncated-{_cut}".replace("/", "of"), "data" if _cut == 128 else "<file>", "s01.mat")(_mat_truncate)

for _cid, _at, _new in (("version", 124, b"\x07\x07"), ("endian", 126, b"XX"), ("v7.3", 124, b"\x00\x02"),
                        ("text", 0, b"this is not a MATLAB file" * 6)):
    case(f"mat-flip-{_cid}", "<file>", "s01.mat")(lambda base, d, at=_at, new=_new: (
        "deap", deap_dir(base, d, s01=put(base.raw_mat, at, new), suffix=".mat"), []))

for _cid, _field, _mutate in [
    ("logical-data", "data", lambda a: a.update(data=a["data"] > 0)),
    ("logical-labels", "labels", lambda a: a.update(labels=a["labels"] > 5)),
    ("complex-data", "data", lambda a: a.update(data=a["data"] + 1j)),
    ("missing-labels", "labels", lambda a: a.pop("labels")),
    ("renamed-data", "data", lambda a: a.update(DATA=a.pop("data"))),
    ("labels-text", "labels", lambda a: a.update(labels="valence")),
    ("labels-cell", "labels", lambda a: a.update(labels=np.array([[1.0, "x"]], dtype=object))),
    ("labels-struct", "labels", lambda a: a.update(labels={"valence": 5.0})),
    ("data-shape", "data", lambda a: a.update(data=a["data"][:, :, :8000])),
    ("data-nan", "data", lambda a: a["data"].__setitem__((1, 5, 10), np.nan)),
    ("data-huge", "data", lambda a: a["data"].__setitem__((0, 36, 10), -HUGE)),
    ("labels-out-of-range", "labels", lambda a: a["labels"].__setitem__((0, 0), 0.0)),
]:
    def _mat_case(base: Base, d: Path, mutate: Callable = _mutate) -> tuple:
        arrays = good_arrays(base)
        mutate(arrays)
        d.mkdir(parents=True)
        return "deap", deap_dir(base, d, s01=_mat_bytes(d, arrays), suffix=".mat"), []
    case(f"mat-{_cid}", _field, "s01.mat")(_mat_case)


# --------------------------------------------------------------------------------------------- DREAMER


def _subj(struct: dict, s: int = 1) -> dict:
    return struct["Data"][0, s]


def _clip(struct: dict, mod: str, part: str, k: int, value: Any = None, s: int = 1) -> np.ndarray:
    cell = _subj(struct, s)[mod][part]
    if value is not None:
        cell[k, 0] = value
    return cell[k, 0]


def _dreamer_case(cid: str, field: str | None, mutate: Callable[[dict], Any], extra: tuple[str, ...] = (),
                  folder: bool = False) -> None:
    """``mutate`` damages a copy of the struct in place, or returns ``_Root(variables)`` for the whole file."""
    def build(base: Base, d: Path) -> tuple:
        struct = copy.deepcopy(base.dreamer)
        out = mutate(struct)
        d.mkdir(parents=True)
        write_mat_deterministic(d / "DREAMER.mat", out.value if isinstance(out, _Root) else {"DREAMER": struct})
        return "dreamer", d if folder else d / "DREAMER.mat", list(extra)
    case(f"dreamer-{cid}", field, "DREAMER.mat")(build)


_dreamer_case("control", None, lambda s: None)
_dreamer_case("control-folder-official", None, lambda s: None, extra=("--set", "preprocess.official=true"), folder=True)

for _fld in ("noOfSubjects", "noOfVideoSequences"):
    for _cid, _v in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf), ("2.5", 2.5), ("zero", 0.0), ("negative", -2.0),
                     ("complex", 2.0 + 0j), ("logical", np.array([[True]])), ("text", "two"), ("empty", np.zeros((0, 0))),
                     ("vector", np.array([[2.0, 2.0]]))):
        _dreamer_case(f"{_fld}-{_cid}", f"DREAMER.{_fld}", lambda s, f=_fld, v=_v: s.update({f: v}))
_dreamer_case("noOfSubjects-3", "DREAMER.Data", lambda s: s.update(noOfSubjects=3.0))
_dreamer_case("noOfVideoSequences-3", "DREAMER.Data{1}.EEG.baseline", lambda s: s.update(noOfVideoSequences=3.0))
for _fld, _v in (("EEG_SamplingRate", 256.0), ("ECG_SamplingRate", 128.0), ("EEG_SamplingRate", np.nan),
                 ("ECG_SamplingRate", "256"), ("EEG_SamplingRate", 128.0 + 1j)):
    _dreamer_case(f"{_fld}-{_v}", f"DREAMER.{_fld}", lambda s, f=_fld, v=_v: s.update({f: v}))
_dreamer_case("electrode-renamed", "DREAMER.EEG_Electrodes", lambda s: s["EEG_Electrodes"].__setitem__((0, 3), "Fp1"))
_dreamer_case("electrodes-13", "DREAMER.EEG_Electrodes", lambda s: s.update(EEG_Electrodes=s["EEG_Electrodes"][:, :13]))
_dreamer_case("electrodes-numeric", "DREAMER.EEG_Electrodes", lambda s: s.update(EEG_Electrodes=np.arange(14.0)))
for _fld in ("Data", "EEG_SamplingRate", "ECG_SamplingRate", "EEG_Electrodes", "noOfSubjects", "noOfVideoSequences"):
    _dreamer_case(f"missing-{_fld}", "DREAMER", lambda s, f=_fld: s.pop(f))
for _fld in ("EEG", "ECG", "ScoreValence", "ScoreArousal", "ScoreDominance"):
    _dreamer_case(f"subject-missing-{_fld}", "DREAMER.Data{2}", lambda s, f=_fld: _subj(s).pop(f))
for _mod in ("EEG", "ECG"):
    for _part in ("baseline", "stimuli"):
        _dreamer_case(f"{_mod}-missing-{_part}", f"DREAMER.Data{{2}}.{_mod}", lambda s, m=_mod, p=_part: _subj(s)[m].pop(p))
_dreamer_case("variable-renamed", "DREAMER", lambda s: _Root({"dreamer": s}))
_dreamer_case("variable-1x2", "DREAMER", lambda s: _Root({"DREAMER": np.array([[s, s]], dtype=object)}))
_dreamer_case("data-numeric", "DREAMER.Data", lambda s: s.update(Data=np.zeros((1, 2))))
_dreamer_case("subject-not-struct", "DREAMER.Data{1}", lambda s: s["Data"].__setitem__((0, 0), np.zeros(3)))
_dreamer_case("eeg-a-cell", "DREAMER.Data{2}.EEG", lambda s: _subj(s).update(EEG=_subj(s)["EEG"]["stimuli"]))
_dreamer_case("stimuli-a-matrix", "DREAMER.Data{2}.EEG.stimuli",
              lambda s: _subj(s)["EEG"].update(stimuli=_clip(s, "EEG", "stimuli", 0)))

_STIM = "DREAMER.Data{2}.EEG.stimuli{2}"
_ECG_STIM = "DREAMER.Data{2}.ECG.stimuli{1}"
for _cid, _field, _fn in [
    ("eeg-13-channels", _STIM, lambda x: x[:, :13]),
    ("eeg-15-channels", _STIM, lambda x: np.hstack([x, x[:, :1]])),
    ("eeg-transposed", _STIM, lambda x: x.T.copy()),
    ("eeg-3d", _STIM, lambda x: x[None]),
    ("eeg-empty", _STIM, lambda x: x[:0]),
    ("eeg-complex", _STIM, lambda x: x + 1j),
    ("eeg-logical", _STIM, lambda x: x > 4200),
    ("eeg-text", _STIM, lambda x: "EEG"),
    ("eeg-nan", _STIM, lambda x: np.where(np.arange(len(x))[:, None] == 10, np.nan, x)),
    ("eeg-inf", _STIM, lambda x: np.where(np.arange(len(x))[:, None] == 10, np.inf, x)),
    ("eeg-huge", _STIM, lambda x: np.where(np.arange(len(x))[:, None] == 10, HUGE, x)),
    ("eeg-times-1e200", _STIM, lambda x: x * 1e200),
]:
    _dreamer_case(f"signal-{_cid}", _field, lambda s, f=_fn: _clip(s, "EEG", "stimuli", 1, f(_clip(s, "EEG", "stimuli", 1))))
for _cid, _fn in [("3-channels", lambda x: np.hstack([x, x[:, :1]])), ("complex", lambda x: x * (1 + 1j)),
                  ("huge", lambda x: np.where(np.arange(len(x))[:, None] == 99, -HUGE, x)),
                  ("nan", lambda x: np.where(np.arange(len(x))[:, None] == 99, np.nan, x)),
                  ("too-short-for-eeg", lambda x: x[:-600])]:
    _dreamer_case(f"ecg-{_cid}", _ECG_STIM, lambda s, f=_fn: _clip(s, "ECG", "stimuli", 0, f(_clip(s, "ECG", "stimuli", 0))))
_dreamer_case("eeg-baseline-short", "DREAMER.Data{2}.EEG.baseline{1}",
              lambda s: _clip(s, "EEG", "baseline", 0, _clip(s, "EEG", "baseline", 0)[:-128]))
_dreamer_case("ecg-baseline-long", "DREAMER.Data{1}.ECG.baseline{2}",
              lambda s: _clip(s, "ECG", "baseline", 1, np.vstack([_clip(s, "ECG", "baseline", 1, s=0)] * 2), s=0))


def _short_clip(s: dict) -> None:
    # 50 s of EEG with a matching ECG: valid for the reader, too short for the 60 s that preprocessing keeps
    _clip(s, "EEG", "stimuli", 1, _clip(s, "EEG", "stimuli", 1)[: 50 * 128])
    _clip(s, "ECG", "stimuli", 1, _clip(s, "ECG", "stimuli", 1)[: 50 * 256])


_dreamer_case("clip-shorter-than-60s", "DREAMER.Data{2}.EEG.stimuli{2}", _short_clip)


def _flat_clip(s: dict) -> None:
    # the same constant in baseline and stimulus: nothing is left after baseline removal
    for part in ("baseline", "stimuli"):
        x = _clip(s, "EEG", part, 0)
        _clip(s, "EEG", part, 0, np.full_like(x, 4200.0))


_dreamer_case("eeg-flat-clip", "DREAMER.Data{2}.EEG.stimuli{1}", _flat_clip)
for _fld, _cid, _v in [("ScoreArousal", "six", 6.0), ("ScoreValence", "zero", 0.0), ("ScoreValence", "half", 2.5),
                       ("ScoreDominance", "nan", np.nan)]:
    _dreamer_case(f"score-{_fld}-{_cid}", f"DREAMER.Data{{2}}.{_fld}",
                  lambda s, f=_fld, v=_v: _subj(s)[f].__setitem__((1, 0), v))
for _fld, _cid, _fn in [("ScoreValence", "complex", lambda x: x + 1j), ("ScoreArousal", "logical", lambda x: x > 2),
                        ("ScoreDominance", "text", lambda x: "high"), ("ScoreValence", "three", lambda x: np.vstack([x, x[:1]]))]:
    _dreamer_case(f"score-{_fld}-{_cid}", f"DREAMER.Data{{2}}.{_fld}",
                  lambda s, f=_fld, fn=_fn: _subj(s).update({f: fn(_subj(s)[f])}))

for _cut in (0, 100, "1/5", "1/2", "-100"):  # (the last bytes of a MATLAB file may be alignment padding)
    def _dreamer_truncate(base: Base, d: Path, cut: Any = _cut) -> tuple:
        n = len(base.raw_dreamer)
        at = (n * int(cut[0]) // int(cut[2]) if "/" in cut else n + int(cut)) if isinstance(cut, str) else cut
        d.mkdir(parents=True)
        (d / "DREAMER.mat").write_bytes(base.raw_dreamer[:at])
        return "dreamer", d / "DREAMER.mat", []
    case(f"dreamer-truncated-{_cut}".replace("/", "of"), "<file>", "DREAMER.mat")(_dreamer_truncate)


@case("dreamer-folder-without-file", "data_dir", "nothing-here")
def _(base: Base, d: Path) -> tuple:
    (d / "nothing-here").mkdir(parents=True)
    return "dreamer", d / "nothing-here", []


@case("dreamer-dangling-symlink", "<file>", "DREAMER.mat")
def _(base: Base, d: Path) -> tuple:
    d.mkdir(parents=True)
    (d / "DREAMER.mat").symlink_to(d / "gone.mat")
    return "dreamer", d / "DREAMER.mat", []


# ----------------------------------------------------------------------------------------- cache root


@case("cache-is-a-file", "cache_dir", "cache")
def _(base: Base, d: Path) -> tuple:
    d.mkdir(parents=True)
    (d / "cache").write_text("a file where the cache root should be")
    return "deap", deap_dir(base, d / "deap"), ["--cache", str(d / "cache")]


@case("cache-below-a-file", "cache_dir", "cache")
def _(base: Base, d: Path) -> tuple:
    d.mkdir(parents=True)
    (d / "cache").write_text("a file")
    return "deap", deap_dir(base, d / "deap"), ["--cache", str(d / "cache" / "sub")]


# ---------------------------------------------------------------------------------------------- runner


def test_corpus_is_large_and_has_controls() -> None:
    rejected = [c for c in CASES.values() if c.field is not None]
    assert len(rejected) >= 200 and sum(c.field is None for c in CASES.values()) >= 5


@pytest.mark.parametrize("cid", list(CASES))
def test_prepare_rejects_cleanly(cid: str, base: Base, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = CASES[cid]
    dataset, data_dir, extra = c.build(base, tmp_path / "in")
    if "--cache" not in extra:
        extra = [*extra, "--cache", str(tmp_path / "cache")]
    cache = Path(extra[extra.index("--cache") + 1])
    before = sorted(p.name for p in cache.iterdir()) if cache.is_dir() else None
    rc = main(["prepare", "--dataset", dataset, "--data-dir", str(data_dir), "--no-progress", *extra])
    out, err = capsys.readouterr()
    try:
        if c.field is None:
            assert rc == 0, err
            assert "(built)" in out and err == ""
            return
        assert rc == 2, (out, err)
        assert out == "" and "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("physiosync prepare: error: "), err
        assert len(lines[0]) < 600, f"{len(lines[0])} characters"  # bounded echo of hostile content
        assert c.name in lines[0], lines[0]
        assert f"field {c.field!r}" in lines[0], lines[0]
        if cache.is_dir():
            assert list(cache.iterdir()) == [] and before is None  # no cache, no hidden temporary build dir
        else:
            assert not cache.exists() or cache.read_text().startswith("a file")  # the user's file is left alone
        assert not Path(f"/tmp/{MARKER}").exists() and "antigravity" not in sys.modules
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)  # ≈10 MB per case: keep the session's disk use small


def test_hostile_ndarray_call_payload_is_tiny() -> None:
    # The reproduction: a few hundred bytes that used to become 2 trials of uninitialised memory.
    assert len(dat_bytes(_uninitialised("call"), protocol=2)) < 400
