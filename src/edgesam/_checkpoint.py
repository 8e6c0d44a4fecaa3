"""Read tensors from a PyTorch ``.pth`` checkpoint without torch and without running its pickle.

``torch.save`` (PyTorch 1.6 and later) writes a zip archive::

    <prefix>/data.pkl          the pickled object (here: a state dict)
    <prefix>/data/<key>        raw bytes of one storage, in <prefix>/byteorder
    <prefix>/byteorder         "little" or "big" (absent in old files: little)
    <prefix>/version           the archive format version

A pickle can name any importable callable and ask for it to be called, so
``pickle.load`` on a downloaded file runs whatever the file says. This reader
unpickles ``data.pkl`` with an unpickler whose ``find_class`` knows a short,
explicit allowlist (``collections.OrderedDict``, torch's tensor and parameter
rebuild functions, and the typed storage classes) and returns *stand-ins*
defined here for them: nothing is imported and nothing outside this module is
ever called. Any other global makes the file refused with
:class:`~edgesam.errors.UnsafeCheckpointError`.

Before anything is unpickled, ``data.pkl`` is read with a size bound and its
opcodes are walked once (:func:`pickletools.genops`, which decodes and runs
nothing): the number of opcodes, the nesting depth of containers and marks are
bounded, and a container fetched twice from the pickle memo (a shared
reference) is refused. A torch state dict never shares a container, and
shared containers are how a kilobyte of pickle becomes a structure whose
hashing, comparison or printing never ends. Every zip member is read with a
bound, encrypted members and compression methods other than stored/deflate
are refused, and each tensor must have positive strides and fit, element for
element, in its storage's bytes.

Unpickling yields lightweight tensor descriptions (storage key, dtype, offset,
size, stride); only the tensors asked for are then read from the archive and
turned into C-contiguous numpy arrays.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import pickle
import pickletools
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypeGuard

import numpy as np
from numpy.typing import NDArray

from edgesam._files import NotARegularFileError, open_regular_file, short_repr
from edgesam.errors import CheckpointError, UnsafeCheckpointError

__all__ = ["listing", "read_state_dict"]

_WRAPPER_KEYS = ("model", "state_dict")
_SHOWN = 5
_FIX_DAMAGED = "delete it and download it again, or re-save it with torch.save"

# Bounds on what a checkpoint may ask of the reader. The EdgeSAM checkpoint
# (827 tensors) has a 114 KB data.pkl of 25,410 opcodes nested 4 deep; the
# bounds leave two orders of magnitude of room for larger state dicts.
MAX_PICKLE_BYTES = 64 * 1024 * 1024
"""Largest ``data.pkl`` read (declared and actual size), in bytes."""
MAX_PICKLE_OPCODES = 4_000_000
"""Most opcodes a ``data.pkl`` may have."""
MAX_PICKLE_DEPTH = 64
"""Deepest nesting of containers (and of MARKs) in a ``data.pkl``."""
MAX_INFLATED_BYTES = 1024 * 1024 * 1024
"""Largest size a compressed (deflate) member may inflate to; stored members are
bounded by the file itself. torch.save writes stored members only."""
_MAX_INT = 2**62  # offsets, sizes, strides, numels: anything larger is not a real tensor
_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}

# torch storage class -> (little-endian dtype of its bytes, dtype of the returned array)
_STORAGE_DTYPES: dict[str, tuple[str, str]] = {
    "FloatStorage": ("<f4", "float32"),
    "HalfStorage": ("<f2", "float16"),
    "BFloat16Storage": ("<u2", "float32"),  # widened exactly to float32 (numpy has no bfloat16)
    "DoubleStorage": ("<f8", "float64"),
    "LongStorage": ("<i8", "int64"),
    "IntStorage": ("<i4", "int32"),
    "ShortStorage": ("<i2", "int16"),
    "CharStorage": ("i1", "int8"),
    "ByteStorage": ("u1", "uint8"),
    "BoolStorage": ("?", "bool"),
}


class _Malformed(Exception):
    """Raised by the stand-ins when the pickle's structure is not a torch checkpoint's."""


# -- stand-ins: the only objects the restricted unpickler ever hands to the pickle ----------


class _StandIn:
    """Base of the stand-ins: a pickle's BUILD opcode cannot modify them.

    BUILD calls ``__setstate__`` when an object has one; refusing there keeps a
    pickle from rewriting a validated tensor description (or a shared storage
    type) after the fact.
    """

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise _Malformed(f"the pickle tries to modify a {type(self).__name__.lstrip('_')}")


class _StorageType(_StandIn):
    """Stand-in for a class such as ``torch.FloatStorage``; never called."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: np.dtype[Any]) -> None:
        self.name = name
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _Storage(_StandIn):
    """A storage named by a persistent id: ``data/<key>`` holds ``numel`` items."""

    __slots__ = ("key", "kind", "numel")

    def __init__(self, key: str, kind: _StorageType, numel: int) -> None:
        self.key = key
        self.kind = kind
        self.numel = numel


class _Tensor(_StandIn):
    """A tensor as the pickle describes it; the bytes stay in the archive until needed."""

    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(
        self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride


class _Call(_StandIn):
    """Stand-in for one of torch's rebuild functions, calling a validating function here."""

    __slots__ = ("_function",)

    def __init__(self, function: Callable[..., _Tensor]) -> None:
        self._function = function

    def __call__(self, *args: object) -> _Tensor:
        return self._function(*args)


class _OrderedDict(dict[Any, Any]):
    """Stand-in for ``collections.OrderedDict``: a dict that drops pickled attributes.

    A ``state_dict()`` carries a ``_metadata`` attribute (module versions); it
    is pickled as instance state and not needed here. ``__slots__ = ()`` leaves
    no ``__dict__`` for a pickle to fill.
    """

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        """Ignore the pickled instance state (``_metadata``)."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_count(value: object) -> TypeGuard[int]:
    return _is_int(value) and 0 <= value < _MAX_INT


def _int_tuple(value: object, what: str) -> tuple[int, ...]:
    if isinstance(value, tuple) and len(value) <= MAX_PICKLE_DEPTH and all(map(_is_count, value)):
        return value
    raise _Malformed(
        f"a tensor's {what} is {short_repr(value)}, not a tuple of non-negative integers"
    )


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object) -> _Tensor:
    """Stand-in for ``torch._utils._rebuild_tensor``: validate and describe, read nothing."""
    if not isinstance(storage, _Storage):
        raise _Malformed(f"a tensor is built from {type(storage).__name__}, not a storage")
    if not _is_count(offset):
        raise _Malformed(f"a tensor's storage offset is {short_repr(offset)}")
    shape = _int_tuple(size, "size")
    strides = _int_tuple(stride, "stride")
    if len(shape) != len(strides):
        raise _Malformed(f"a tensor has size {shape} but stride {strides}")
    if any(n > 1 and step == 0 for n, step in zip(shape, strides, strict=True)):
        raise _Malformed(
            f"a tensor of size {shape} has stride {strides}: a zero stride (an expand()ed "
            "view) repeats one element, which this reader refuses; save such a tensor with "
            ".contiguous() first"
        )
    if all(shape):
        last = offset + sum((n - 1) * step for n, step in zip(shape, strides, strict=True))
        if last >= storage.numel:
            raise _Malformed(
                f"a tensor of size {shape}, stride {strides}, offset {offset} reaches past "
                f"its storage of {storage.numel} items"
            )
    if math.prod(shape) > storage.numel:
        raise _Malformed(
            f"a tensor of size {shape} has {math.prod(shape)} elements, more than its "
            f"storage of {storage.numel} items holds"
        )
    return _Tensor(storage, offset, shape, strides)


def _rebuild_tensor_v2(
    storage: object,
    offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _Tensor:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``; autograd details are ignored."""
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data: object, requires_grad: object, backward_hooks: object) -> _Tensor:
    """Stand-in for ``torch._utils._rebuild_parameter``: a parameter is its tensor."""
    if not isinstance(data, _Tensor):
        raise _Malformed(f"a parameter wraps {type(data).__name__}, not a tensor")
    return data


def _rebuild_parameter_with_state(
    data: object, requires_grad: object, backward_hooks: object, state: object
) -> _Tensor:
    """Stand-in for ``torch._utils._rebuild_parameter_with_state``; the state is ignored."""
    return _rebuild_parameter(data, requires_grad, backward_hooks)


_ALLOWED: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): _OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _Call(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _Call(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): _Call(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Call(_rebuild_parameter_with_state),
    **{
        ("torch", name): _StorageType(name, np.dtype(stored))
        for name, (stored, _) in _STORAGE_DTYPES.items()
    },
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a torch ``data.pkl`` using only the stand-ins above."""

    def __init__(self, data: bytes, file: Path) -> None:
        super().__init__(io.BytesIO(data))
        self._file = file

    def find_class(self, module: str, name: str) -> Any:
        """Return the stand-in for an allowed global; refuse every other one."""
        allowed = _ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        if (module == "torch" and name.endswith("Storage")) or (
            module == "torch._utils" and name.startswith("_rebuild_")
        ):
            raise UnsafeCheckpointError(
                f"refused to load {self._file}: its pickle asks for {module}.{name}, a kind of "
                "tensor this reader does not support (dtypes: float32, float16, bfloat16, "
                "float64, int64, int32, int16, int8, uint8, bool; dense CPU layout). Nothing "
                "was loaded; convert those tensors with torch (e.g. .float()) and save again"
            )
        raise UnsafeCheckpointError(
            f"refused to load {self._file}: its pickle asks for {module}.{name}, which is "
            "not a tensor or a plain container. A checkpoint that names other code could "
            "run it when loaded, so nothing was loaded. If you trust the file, load it "
            "with torch and save only the state dict: "
            "torch.save(model.state_dict(), 'clean.pth')"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        """Resolve ``('storage', storage_type, key, location, numel)`` to a storage stand-in."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Malformed(
                f"unsupported persistent id {short_repr(pid)}; expected a torch storage"
            )
        _, kind, key, location, numel = pid
        if not isinstance(kind, _StorageType):
            raise _Malformed(f"a storage has type {short_repr(kind)}, not a torch storage class")
        if not (isinstance(key, str) and isinstance(location, str)):
            raise _Malformed(
                f"a storage has key {short_repr(key)} and location {short_repr(location)}"
            )
        if not _is_count(numel):
            raise _Malformed(f"storage {short_repr(key)} has {short_repr(numel)} items")
        return _Storage(key, kind, numel)


# -- the archive ------------------------------------------------------------------------------


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return f"{shown}, ... ({more} more)" if more > 0 else shown


listing = _listing  # ``a, b, c, d, e, ... (N more)``: also edgesam.export's key listing


@contextlib.contextmanager
def _open_archive(file: Path) -> Iterator[zipfile.ZipFile]:
    try:
        stream = open_regular_file(file)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {file} is not a file") from None
    except NotARegularFileError as err:
        raise CheckpointError(
            f"checkpoint not found: {file} is not a file (it is a {err.kind}); pass the path "
            "of a .pth file"
        ) from None
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {file}: {err}") from err
    with stream:
        try:
            archive = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as err:
            stream.seek(0)
            raise _not_a_zip(file, stream.read(2)) from err
        except (OSError, ValueError, EOFError) as err:
            raise CheckpointError(f"cannot read checkpoint {file}: {err}") from err
        with archive:
            yield archive


def _not_a_zip(file: Path, head: bytes) -> CheckpointError:
    if head[:1] == b"\x80":
        detail = (
            "it is a bare pickle, e.g. torch's legacy (before 1.6) format, which is not "
            "read; re-save it with torch.save(torch.load(path), path) in PyTorch 1.6 or later"
        )
    else:
        detail = f"it may be truncated or not a checkpoint at all; {_FIX_DAMAGED}"
    return CheckpointError(f"{file} is not a PyTorch zip checkpoint: {detail}")


def _archive_prefix(archive: zipfile.ZipFile, file: Path) -> str:
    """The folder inside the archive that holds ``data.pkl`` (``""`` or ``"name/"``)."""
    found = [
        name[: -len("data.pkl")]
        for name in archive.namelist()
        if name == "data.pkl" or (name.endswith("/data.pkl") and name.count("/") == 1)
    ]
    if len(found) != 1:
        what = "no data.pkl" if not found else f"{len(found)} data.pkl files"
        raise CheckpointError(
            f"{file} is a zip archive but not a PyTorch checkpoint: it has {what} in its "
            f"top folder; pass a file written by torch.save, or {_FIX_DAMAGED}"
        )
    return found[0]


def _member(archive: zipfile.ZipFile, name: str, file: Path) -> zipfile.ZipInfo:
    """The member ``name``, if it exists, is not encrypted and uses a supported compression."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError(f"{file} is incomplete: it lacks {name}; {_FIX_DAMAGED}") from None
    if info.flag_bits & 0x1:
        raise CheckpointError(
            f"{file} is not a readable checkpoint: its member {name} is encrypted; torch.save "
            "never encrypts, so pass the file torch.save wrote"
        )
    if info.compress_type not in _SUPPORTED_COMPRESSION:
        raise CheckpointError(
            f"{file} is not a readable checkpoint: its member {name} uses zip compression "
            f"method {info.compress_type}, which this reader does not support (only stored "
            "and deflate; torch.save writes stored members); re-save it with torch.save"
        )
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_INFLATED_BYTES:
        raise CheckpointError(
            f"{file} is not a readable checkpoint: its compressed member {name} would "
            f"inflate to {info.file_size} bytes, more than the {MAX_INFLATED_BYTES} this "
            "reader allows; re-save it with torch.save (which does not compress)"
        )
    return info


def _read_member(
    archive: zipfile.ZipFile, name: str, file: Path, *, limit: int, need: int | None = None
) -> bytes:
    """Read ``need`` bytes (default: all) of member ``name``, never more than ``limit``.

    The declared size is checked before reading and the actual size while
    reading, so a member that lies about its size cannot make the reader
    allocate more than the bound.
    """
    info = _member(archive, name, file)
    wanted = info.file_size if need is None else need
    if wanted > limit:
        raise CheckpointError(
            f"{file} is not a readable checkpoint: its member {name} is {wanted} bytes, more "
            f"than the {limit} this reader allows"
        )
    if info.file_size < wanted:
        raise CheckpointError(
            f"{file} is damaged: {name} has {info.file_size} bytes, {wanted} expected; "
            f"{_FIX_DAMAGED}"
        )
    try:
        with archive.open(info) as stream:
            data = stream.read(wanted)
            if need is None and stream.read(1):
                raise zipfile.BadZipFile(f"{name} is longer than its recorded size")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, ValueError) as err:
        raise CheckpointError(
            f"{file} is damaged: reading {name} failed ({short_repr(str(err), 200)}); "
            f"{_FIX_DAMAGED}"
        ) from err
    except NotImplementedError as err:
        raise CheckpointError(
            f"{file} is not a readable checkpoint: reading {name} needs a zip feature this "
            f"reader does not support ({err}); re-save it with torch.save"
        ) from err
    if len(data) != wanted:
        raise CheckpointError(
            f"{file} is damaged: {name} has {len(data)} bytes, {wanted} expected; {_FIX_DAMAGED}"
        )
    return data


def _byte_order(archive: zipfile.ZipFile, prefix: str, file: Path) -> Literal["<", ">"]:
    name = f"{prefix}byteorder"
    if name not in archive.NameToInfo:
        return "<"
    order = _read_member(archive, name, file, limit=64).strip()
    if order == b"little":
        return "<"
    if order == b"big":
        return ">"
    raise CheckpointError(
        f"{file} records byte order {short_repr(order)}; expected b'little' or b'big'"
    )


# -- the pickle, walked before it is unpickled ----------------------------------------------------

# The callables whose result is a tensor: fetching one twice from the memo is a
# tied weight, not a shared container.
_TENSOR_BUILDERS = frozenset(
    f"{module} {name}" for module, name in _ALLOWED if name.startswith("_rebuild_")
)
_ATOMS = frozenset(
    {
        getattr(pickletools, "pybytearray", pickletools.pybytes),  # protocol 5 types
        getattr(pickletools, "pybuffer", pickletools.pybytes),
        pickletools.pyint,
        pickletools.pylong,
        pickletools.pyinteger_or_bool,
        pickletools.pybool,
        pickletools.pyfloat,
        pickletools.pystring,
        pickletools.pybytes,
        pickletools.pyunicode,
        pickletools.pynone,
    }
)
_MUTATORS = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class _Item:
    """What the walk knows of one stack entry: nesting depth and, for some, a name."""

    __slots__ = ("container", "depth", "name")

    def __init__(self, depth: int, *, container: bool, name: str | None = None) -> None:
        self.depth = depth
        self.container = container
        self.name = name


def _memo_index(arg: object) -> int:
    return arg if isinstance(arg, int) else int(str(arg))


def _scan_pickle(data: bytes) -> None:
    """Walk the opcodes of ``data`` without running them; raise ``_Malformed`` past a bound.

    Tracks, for each stack entry, how deeply nested it is and whether it is a
    container, and refuses a container fetched again from the memo or
    duplicated (a shared reference), a nesting deeper than
    :data:`MAX_PICKLE_DEPTH`, or more than :data:`MAX_PICKLE_OPCODES` opcodes.
    A pickle this walk cannot follow exactly as the unpickler would (a stack
    underflow, a missing memo entry, a container never closed) is refused too:
    torch.save never writes one, and walking on could let the rest go unchecked.
    """
    stack: list[_Item] = []
    marks: list[int] = []
    memo: dict[int, _Item] = {}
    for count, (opcode, arg, _) in enumerate(pickletools.genops(data), start=1):
        if count > MAX_PICKLE_OPCODES:
            raise _Malformed(f"its data.pkl has more than {MAX_PICKLE_OPCODES} opcodes")
        name = opcode.name
        if name == "MARK":
            marks.append(len(stack))
            if len(marks) > MAX_PICKLE_DEPTH:
                raise _Malformed(f"its data.pkl nests more than {MAX_PICKLE_DEPTH} levels deep")
            continue
        if name in _PUTS or name == "MEMOIZE":
            if len(stack) <= (marks[-1] if marks else 0):
                raise _Malformed(f"its data.pkl has {name} with nothing on the stack")
            memo[len(memo) if name == "MEMOIZE" else _memo_index(arg)] = stack[-1]
            continue
        if name in _GETS:
            item = memo.get(_memo_index(arg))
            if item is None:
                raise _Malformed("its data.pkl fetches a memo entry it never stored")
            if item.container:
                raise _Malformed(
                    "its data.pkl refers to one container from two places (a shared "
                    "reference), which a saved state dict never does"
                )
            stack.append(item)
            continue
        if name == "DUP":
            if len(stack) <= (marks[-1] if marks else 0):
                raise _Malformed("its data.pkl has DUP with nothing on the stack")
            if stack[-1].container:
                raise _Malformed("its data.pkl duplicates a container, which torch.save never does")
            stack.append(stack[-1])
            continue
        # Pop what the opcode consumes: everything since the last MARK, and fixed items.
        before = opcode.stack_before
        popped: list[_Item] = []
        if pickletools.markobject in before:
            if not marks:
                raise _Malformed(f"its data.pkl has {name} without a MARK before it")
            start = marks.pop()
            popped = stack[start:]
            del stack[start:]
            fixed = before.index(pickletools.markobject)
        else:
            fixed = len(before)
        if fixed:
            if len(stack) - (marks[-1] if marks else 0) < fixed:
                raise _Malformed(f"its data.pkl has {name} with too few items on the stack")
            popped = stack[-fixed:] + popped
            del stack[-fixed:]
        after = opcode.stack_after
        if not after:
            continue
        if name in _MUTATORS:
            target, children = popped[0], popped[1:]
            depth = max([target.depth, *(child.depth + 1 for child in children)])
            pushed = _Item(depth, container=True)
        elif name == "GLOBAL":
            pushed = _Item(0, container=False, name=str(arg).replace("\n", " "))
        elif name == "STACK_GLOBAL":
            module, attr = (item.name or "" for item in popped)
            pushed = _Item(0, container=False, name=f"{module} {attr}")
        elif name in ("REDUCE", "NEWOBJ", "NEWOBJ_EX") and popped[0].name in _TENSOR_BUILDERS:
            pushed = _Item(0, container=False, name="tensor")
        elif name in ("BINPERSID", "PERSID"):
            pushed = _Item(0, container=False)
        elif after[0] in _ATOMS:
            text = arg if isinstance(arg, str) and len(arg) <= 200 else None
            pushed = _Item(0, container=False, name=text)
        else:
            depth = 1 + max((item.depth for item in popped), default=0)
            pushed = _Item(depth, container=True)
        if pushed.depth > MAX_PICKLE_DEPTH:
            raise _Malformed(f"its data.pkl nests more than {MAX_PICKLE_DEPTH} levels deep")
        stack.append(pushed)


def _unpickle(data: bytes, file: Path) -> object:
    """Walk, then unpickle, ``data.pkl`` with the restricted unpickler."""
    try:
        _scan_pickle(data)
        return _RestrictedUnpickler(data, file).load()
    except UnsafeCheckpointError:
        raise
    except _Malformed as err:
        raise CheckpointError(
            f"{file} is not a readable checkpoint: {err}; pass a state dict saved with torch.save"
        ) from err
    except Exception as err:  # any failure to decode untrusted bytes means a bad file
        raise CheckpointError(
            f"{file} is damaged: its data.pkl cannot be decoded "
            f"({type(err).__name__}: {short_repr(str(err), 200)}); {_FIX_DAMAGED}"
        ) from err


# -- from the unpickled object to arrays --------------------------------------------------------


def _is_state_dict(value: object) -> TypeGuard[dict[str, _Tensor]]:
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(item, _Tensor) for key, item in value.items()
    )


def _find_state_dict(root: object, file: Path) -> dict[str, _Tensor]:
    if isinstance(root, dict):
        if _is_state_dict(root):
            return root
        for wrapper in _WRAPPER_KEYS:
            inner = root.get(wrapper)
            if _is_state_dict(inner):
                return inner
        keys = [short_repr(key, 40) for key in itertools.islice(root, _SHOWN)]
        more = len(root) - len(keys)
        found = f"a dict with keys {', '.join(keys)}" + (f", ... ({more} more)" if more else "")
    else:
        found = f"a {type(root).__name__}"
    raise CheckpointError(
        f"{file} holds {found}, not a state dict: expected a mapping of names to tensors, "
        f"or one under {' or '.join(repr(k) for k in _WRAPPER_KEYS)}; pass the model's "
        "weights file (e.g. edge_sam.pth)"
    )


def _materialise(tensor: _Tensor, flat: NDArray[Any]) -> NDArray[Any]:
    """Copy a tensor out of its storage's items into a C-contiguous, native-order array."""
    _, result_dtype = _STORAGE_DTYPES[tensor.storage.kind.name]
    native = flat.dtype.newbyteorder("=")
    if not all(tensor.size):
        array: NDArray[Any] = np.zeros(tensor.size, dtype=native)
    else:
        view = np.lib.stride_tricks.as_strided(
            flat[tensor.offset :],
            shape=tensor.size,
            strides=tuple(step * flat.itemsize for step in tensor.stride),
            writeable=False,
        )
        array = np.array(view, dtype=native, order="C", copy=True)
    if tensor.storage.kind.name == "BFloat16Storage":
        # bfloat16 is the top half of a float32: widening is exact.
        array = (array.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return array.astype(result_dtype, copy=False)


def read_state_dict(
    path: str | PathLike[str], *, keys: Iterable[str] | None = None
) -> dict[str, NDArray[Any]]:
    """Read a PyTorch checkpoint's tensors as numpy arrays, without torch and safely.

    The pickle inside the checkpoint is decoded with an allowlist of tensor
    and container types; a file that names anything else (code to run) is
    refused before anything is called. Only the requested tensors are read.

    Parameters
    ----------
    path : str or PathLike
        A ``.pth`` file written by ``torch.save`` (PyTorch 1.6 or later, the
        zip format). It holds a state dict, either at the top level (what the
        EdgeSAM authors publish) or under a ``"model"`` or ``"state_dict"`` key.
    keys : iterable of str, optional
        The tensors to read. Use it when only a few are needed (e.g. the
        mask-prompt weights): the others are never read from the file. By
        default every tensor is read.

    Returns
    -------
    dict of str to ndarray
        Name to C-contiguous array with the tensor's shape, in the order of
        ``keys`` (or of the file). dtypes follow the tensors' (float32,
        float16, float64, int64, int32, int16, int8, uint8, bool); bfloat16
        tensors are widened, exactly, to float32.

    Raises
    ------
    CheckpointError
        The file is missing, is not a zip checkpoint, is truncated or damaged,
        holds no state dict, or lacks some of ``keys`` (all are named).
    UnsafeCheckpointError
        The pickle names a global outside the allowlist (the message names it);
        nothing from the file was run.
    """
    if isinstance(keys, str):
        raise TypeError(f"keys must be an iterable of tensor names, not the string {keys!r}")
    file = Path(path)
    with _open_archive(file) as archive:
        prefix = _archive_prefix(archive, file)
        pickled = _read_member(archive, f"{prefix}data.pkl", file, limit=MAX_PICKLE_BYTES)
        root = _unpickle(pickled, file)
        state = _find_state_dict(root, file)

        wanted = list(state) if keys is None else list(dict.fromkeys(keys))
        missing = [key for key in wanted if key not in state]
        if missing:
            raise CheckpointError(
                f"{file} lacks {len(missing)} of the {len(wanted)} tensors needed: "
                f"{_listing(missing)}; it has {len(state)} tensors "
                f"(e.g. {_listing([key[:80] for key in itertools.islice(state, 3)]) or 'none'})"
                ". Pass the matching "
                "EdgeSAM checkpoint (edge_sam.pth or edge_sam_3x.pth)"
            )

        order = _byte_order(archive, prefix, file)
        storages: dict[str, NDArray[Any]] = {}
        result: dict[str, NDArray[Any]] = {}
        for name in wanted:
            tensor = state[name]
            storage = tensor.storage
            flat = storages.get(storage.key)
            if flat is None:
                dtype = storage.kind.dtype.newbyteorder(order)
                raw = _read_member(
                    archive,
                    f"{prefix}data/{storage.key}",
                    file,
                    limit=_MAX_INT,
                    need=storage.numel * dtype.itemsize,
                )
                flat = np.frombuffer(raw, dtype=dtype, count=storage.numel)
                storages[storage.key] = flat
            result[name] = _materialise(tensor, flat)
    return result
