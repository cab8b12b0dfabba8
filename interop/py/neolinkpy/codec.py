"""Value codecs: one object per schema type, converting Python values to and from
the objects msgpack packs and unpacks.

Each codec has three operations:

* ``normalize(value)``: check a value given by the user (message constructor) and
  return its canonical Python form (e.g. a tuple becomes the struct's named tuple,
  ``bytearray`` becomes ``bytes``). Raises :class:`EncodeError`.
* ``encode(value)``: return the msgpack-ready object (enums become ``ExtType``,
  oids 8-byte ``bytes``, text UTF-8 ``bytes``). Validates again, since message
  attributes may have been changed after construction. Raises :class:`EncodeError`.
* ``decode(obj)``: strictly check an object produced by :func:`unpack` and return
  the Python value. Raises :class:`DecodeError`.

Objects produced by :func:`unpack` have these Python types: ``None``, ``bool``,
``int``, ``float``, ``str`` (msgpack str), ``bytes`` (msgpack bin), ``tuple``
(array), :class:`MapPairs` (map, entries in wire order) and
``msgpack.ExtType``/``msgpack.Timestamp``.
"""

from __future__ import annotations

import enum
import struct
import threading
from collections.abc import Mapping
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from .errors import CodecError, DecodeError, EncodeError

#: Largest packet, and so largest msgpack object, accepted on a link (64 MiB).
MAX_PACKET_SIZE = 0x4000000

#: Range of the ints msgpack can carry (``any`` values).
MSGPACK_INT_MIN, MSGPACK_INT_MAX = -(1 << 63), (1 << 64) - 1

_Q = struct.Struct(">Q")


class MapPairs(list):
    """The entries of a msgpack map as ``(key, value)`` pairs, in wire order.

    :func:`unpack` returns maps in this form so that duplicate keys and key order
    stay visible to the strict decoders.
    """
    __slots__ = ()


#: Limits for the msgpack unpacker: nothing may exceed a packet.
UNPACK_LIMITS = dict(max_bin_len=MAX_PACKET_SIZE, max_str_len=MAX_PACKET_SIZE,
                     max_array_len=MAX_PACKET_SIZE, max_map_len=MAX_PACKET_SIZE // 2,
                     max_ext_len=MAX_PACKET_SIZE)

#: Unpacker options shared by both framings (see the module docstring).
UNPACK_OPTIONS = dict(use_list=False, raw=False, strict_map_key=False,
                      object_pairs_hook=MapPairs, **UNPACK_LIMITS)


def unpack(data: bytes) -> Any:
    """Unpack exactly one msgpack object from ``data``; raise :class:`DecodeError`."""
    try:
        return msgpack.unpackb(data, **UNPACK_OPTIONS)
    except msgpack.ExtraData as e:
        raise DecodeError(f"{len(e.extra)} trailing bytes after the msgpack object") from None
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise DecodeError(f"malformed msgpack: {e or type(e).__name__}") from None


_packers = threading.local()


def pack(obj: Any) -> bytes:
    """Pack ``obj`` like NEO/py: bin for bytes, smallest int forms, float64."""
    packer = getattr(_packers, "packer", None)
    if packer is None:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(obj)


def wire_name(obj: Any) -> str:
    """Describe the msgpack type of an unpacked object, for error messages."""
    if obj is None:
        return "nil"
    t = type(obj)
    if t is bytes:
        return "bin"
    if t is tuple:
        return "array"
    if t is MapPairs:
        return "map"
    if t is msgpack.ExtType:
        return f"ext {obj.code}"
    return t.__name__


def _py_name(value: Any) -> str:
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _with_path(err: CodecError, segment: str) -> CodecError:
    err.path.insert(0, segment)
    return err


class Codec:
    """Base class of the codecs; ``name`` is the schema spelling of the type."""
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def normalize(self, value: Any) -> Any:
        """Check a user value and return its canonical form."""
        raise NotImplementedError

    def encode(self, value: Any) -> Any:
        """Return the msgpack-ready object for a value."""
        raise NotImplementedError

    def decode(self, obj: Any) -> Any:
        """Check an unpacked object and return its Python value."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class BoolCodec(Codec):
    """``bool``."""
    __slots__ = ()

    def normalize(self, value: Any) -> bool:
        if type(value) is not bool:
            raise EncodeError(f"expected bool, got {_py_name(value)}")
        return value

    encode = normalize

    def decode(self, obj: Any) -> bool:
        if type(obj) is not bool:
            raise DecodeError(f"expected bool, got {wire_name(obj)}")
        return obj


class IntCodec(Codec):
    """``int``, ``u16``, ``u32``, ``u64``, ``uuid``: an int within [lo, hi]."""
    __slots__ = ("lo", "hi")

    def __init__(self, name: str, lo: int, hi: int) -> None:
        super().__init__(name)
        self.lo, self.hi = lo, hi

    def normalize(self, value: Any) -> int:
        if not _is_int(value):
            raise EncodeError(f"expected {self.name} (int), got {_py_name(value)}")
        value = int(value)
        if not self.lo <= value <= self.hi:
            raise EncodeError(f"{value} is out of the range of {self.name}")
        return value

    encode = normalize

    def decode(self, obj: Any) -> int:
        if type(obj) is not int:
            raise DecodeError(f"expected {self.name} (int), got {wire_name(obj)}")
        if not self.lo <= obj <= self.hi:
            raise DecodeError(f"{obj} is out of the range of {self.name}")
        return obj


class FloatCodec(Codec):
    """``float``: float64 on the wire; ints are accepted from the user."""
    __slots__ = ()

    def normalize(self, value: Any) -> float:
        if type(value) is float:
            return value
        if _is_int(value) or isinstance(value, float):
            return float(value)
        raise EncodeError(f"expected float, got {_py_name(value)}")

    encode = normalize

    def decode(self, obj: Any) -> float:
        if type(obj) is not float:
            raise DecodeError(f"expected float, got {wire_name(obj)}")
        return obj


class P64Codec(Codec):
    """``oid``/``tid``: an int in Python, an 8-byte big-endian bin on the wire.

    The user may also give the 8-byte form (NEO/py ``p64``) as ``bytes``.
    """
    __slots__ = ()

    def normalize(self, value: Any) -> int:
        if _is_int(value):
            value = int(value)
            if not 0 <= value <= 0xffffffffffffffff:
                raise EncodeError(f"{value} is out of the range of {self.name} (u64)")
            return value
        if isinstance(value, (bytes, bytearray)):
            if len(value) != 8:
                raise EncodeError(f"{self.name} must be 8 bytes, got {len(value)}")
            return _Q.unpack(value)[0]
        raise EncodeError(f"expected {self.name} (int), got {_py_name(value)}")

    def encode(self, value: Any) -> bytes:
        if type(value) is int and 0 <= value <= 0xffffffffffffffff:
            return _Q.pack(value)
        return _Q.pack(self.normalize(value))

    def decode(self, obj: Any) -> int:
        if type(obj) is not bytes:
            raise DecodeError(f"expected {self.name} (8-byte bin), got {wire_name(obj)}")
        if len(obj) != 8:
            raise DecodeError(f"{self.name} must be 8 bytes, got {len(obj)}")
        return _Q.unpack(obj)[0]


class BinCodec(Codec):
    """``bin``: bytes."""
    __slots__ = ()

    def normalize(self, value: Any) -> bytes:
        if type(value) is bytes:
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise EncodeError(f"expected bytes, got {_py_name(value)}")

    encode = normalize

    def decode(self, obj: Any) -> bytes:
        if type(obj) is not bytes:
            raise DecodeError(f"expected bin, got {wire_name(obj)}")
        return obj


class TextCodec(Codec):
    """``text``: ``str`` in Python, UTF-8 in a msgpack bin on the wire (never str)."""
    __slots__ = ()

    def normalize(self, value: Any) -> str:
        if not isinstance(value, str):
            raise EncodeError(f"expected str, got {_py_name(value)}")
        return str(value)

    def encode(self, value: Any) -> bytes:
        try:
            return self.normalize(value).encode("utf-8")
        except UnicodeEncodeError as e:
            raise EncodeError(f"text is not encodable as UTF-8: {e.reason}") from None

    def decode(self, obj: Any) -> str:
        if type(obj) is not bytes:
            raise DecodeError(f"expected text (bin), got {wire_name(obj)}")
        try:
            return obj.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"text is not valid UTF-8 at byte {e.start}") from None


class EnumCodec(Codec):
    """An enum: msgpack fixext1 ``d4 <ext> <value>``."""
    __slots__ = ("enum", "ext", "_wire")

    def __init__(self, enum_cls: type[enum.IntEnum], ext: int) -> None:
        super().__init__(enum_cls.__name__)
        self.enum, self.ext = enum_cls, ext
        self._wire = [msgpack.ExtType(ext, bytes((int(m),))) for m in enum_cls]

    def normalize(self, value: Any) -> enum.IntEnum:
        if isinstance(value, self.enum):
            return value
        if isinstance(value, enum.Enum) or not _is_int(value):
            raise EncodeError(f"expected {self.name}, got {value!r}")
        try:
            return self.enum(value)
        except ValueError:
            raise EncodeError(f"{value} is not a {self.name} value") from None

    def encode(self, value: Any) -> msgpack.ExtType:
        return self._wire[self.normalize(value)]

    def decode(self, obj: Any) -> enum.IntEnum:
        if type(obj) is not msgpack.ExtType:
            raise DecodeError(f"expected {self.name} (ext {self.ext}), got {wire_name(obj)}")
        if obj.code != self.ext:
            raise DecodeError(f"expected {self.name} (ext {self.ext}), got ext {obj.code}")
        data = obj.data
        if len(data) != 1 or data[0] >= len(self._wire):
            raise DecodeError(f"bad {self.name} value (ext payload {data.hex()})")
        return self.enum(data[0])


class PlainEnumCodec(Codec):
    """``int/<Enum>``: a plain msgpack int in [0, 255]; known values decode to the
    enum member, others stay plain ints (codes newer than our schema)."""
    __slots__ = ("enum",)

    def __init__(self, enum_cls: type[enum.IntEnum]) -> None:
        super().__init__(f"int/{enum_cls.__name__}")
        self.enum = enum_cls

    def _member(self, value: int) -> int:
        try:
            return self.enum(value)
        except ValueError:
            return value

    def normalize(self, value: Any) -> int:
        if isinstance(value, self.enum):
            return value
        if isinstance(value, enum.Enum) or not _is_int(value):
            raise EncodeError(f"expected {self.name}, got {value!r}")
        if not 0 <= value <= 0xff:
            raise EncodeError(f"{value} is out of the range of {self.name} (u8)")
        return self._member(int(value))

    def encode(self, value: Any) -> int:
        return int(self.normalize(value))

    def decode(self, obj: Any) -> int:
        if type(obj) is not int:
            raise DecodeError(f"expected {self.name}, got {wire_name(obj)}")
        if not 0 <= obj <= 0xff:
            raise DecodeError(f"{obj} is out of the range of {self.name} (u8)")
        return self._member(obj)


class OptionalCodec(Codec):
    """``?T``: None or a T."""
    __slots__ = ("inner",)

    def __init__(self, inner: Codec) -> None:
        super().__init__(f"?{inner.name}")
        self.inner = inner

    def normalize(self, value: Any) -> Any:
        return None if value is None else self.inner.normalize(value)

    def encode(self, value: Any) -> Any:
        return None if value is None else self.inner.encode(value)

    def decode(self, obj: Any) -> Any:
        return None if obj is None else self.inner.decode(obj)


class ListCodec(Codec):
    """``[T]``: a list in Python."""
    __slots__ = ("inner",)

    def __init__(self, inner: Codec) -> None:
        super().__init__(f"[{inner.name}]")
        self.inner = inner

    def _items(self, value: Any, err: type[CodecError]) -> Sequence[Any]:
        if isinstance(value, (list, tuple)):
            return value
        if isinstance(value, (str, bytes, bytearray, Mapping)) or \
                not hasattr(value, "__iter__"):
            raise err(f"expected a list for {self.name}, got {_py_name(value)}")
        return list(value)

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        out = []
        for i, item in enumerate(items):
            try:
                out.append(fn(item))
            except CodecError as e:
                raise _with_path(e, f"[{i}]")
        return out

    def normalize(self, value: Any) -> list[Any]:
        return self._map(self.inner.normalize, self._items(value, EncodeError))

    def encode(self, value: Any) -> list[Any]:
        return self._map(self.inner.encode, self._items(value, EncodeError))

    def decode(self, obj: Any) -> list[Any]:
        if type(obj) is not tuple:
            raise DecodeError(f"expected an array for {self.name}, got {wire_name(obj)}")
        return self._map(self.inner.decode, obj)


class MapCodec(Codec):
    """``{K:V}``: a dict in Python; entry order is kept both ways."""
    __slots__ = ("key", "value")

    def __init__(self, key: Codec, value: Codec) -> None:
        super().__init__(f"{{{key.name}:{value.name}}}")
        self.key, self.value = key, value

    def _convert(self, pairs: Any, kfn: Callable[[Any], Any], vfn: Callable[[Any], Any],
                 err: type[CodecError]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for k, v in pairs:
            try:
                key = kfn(k)
            except CodecError as e:
                raise _with_path(e, f"[key {k!r}]")
            try:
                out[key] = vfn(v)
            except CodecError as e:
                raise _with_path(e, f"[{key!r}]")
        if len(out) != len(pairs):
            raise err(f"duplicate key in map {self.name}")
        return out

    def _pairs(self, value: Any) -> list[Any]:
        if not isinstance(value, Mapping):
            raise EncodeError(f"expected a dict for {self.name}, got {_py_name(value)}")
        return list(value.items())

    def normalize(self, value: Any) -> dict[Any, Any]:
        return self._convert(self._pairs(value), self.key.normalize, self.value.normalize,
                             EncodeError)

    def encode(self, value: Any) -> dict[Any, Any]:
        return self._convert(self._pairs(value), self.key.encode, self.value.encode,
                             EncodeError)

    def decode(self, obj: Any) -> dict[Any, Any]:
        if type(obj) is not MapPairs:
            raise DecodeError(f"expected a map for {self.name}, got {wire_name(obj)}")
        return self._convert(obj, self.key.decode, self.value.decode, DecodeError)


class StructCodec(Codec):
    """A schema struct: a named tuple in Python, a fixed-size array on the wire."""
    __slots__ = ("cls", "fields")

    def __init__(self, cls: type[tuple], fields: Sequence[Codec]) -> None:
        super().__init__(cls.__name__)
        self.cls = cls
        self.fields = tuple(fields)

    def _convert(self, items: Sequence[Any], fns: Sequence[Callable[[Any], Any]]) -> list[Any]:
        out = []
        for name, fn, item in zip(self.cls._fields, fns, items):
            try:
                out.append(fn(item))
            except CodecError as e:
                raise _with_path(e, f".{name}")
        return out

    def _items(self, value: Any) -> Sequence[Any]:
        if not isinstance(value, (tuple, list)):
            raise EncodeError(f"expected {self.name} (a tuple), got {_py_name(value)}")
        if len(value) != len(self.fields):
            raise EncodeError(f"{self.name} has {len(self.fields)} fields, got {len(value)}")
        return value

    def normalize(self, value: Any) -> tuple:
        return self.cls(*self._convert(self._items(value), [f.normalize for f in self.fields]))

    def encode(self, value: Any) -> list[Any]:
        return self._convert(self._items(value), [f.encode for f in self.fields])

    def decode(self, obj: Any) -> tuple:
        if type(obj) is not tuple:
            raise DecodeError(f"expected {self.name} (an array), got {wire_name(obj)}")
        if len(obj) != len(self.fields):
            raise DecodeError(f"{self.name} has {len(self.fields)} fields, got {len(obj)}")
        return self.cls(*self._convert(obj, [f.decode for f in self.fields]))


class AnyCodec(Codec):
    """``any``: one msgpack object, as plain Python values.

    Arrays are tuples, maps dicts (in wire order), bin ``bytes``, str ``str``.
    An ExtType whose code is one of the catalog's enums decodes to the enum member;
    other ext values stay ``msgpack.ExtType``. Re-encoding gives back the same bytes
    except for float32 (re-encoded as float64) and non-minimal int encodings.
    """
    __slots__ = ("_enums", "_by_ext")

    def __init__(self, enums: Sequence[type[enum.IntEnum]], ext_of: dict[type, int]) -> None:
        super().__init__("any")
        self._enums = {cls: ext_of[cls] for cls in enums}
        self._by_ext = {ext_of[cls]: cls for cls in enums}

    def normalize(self, value: Any) -> Any:
        t = type(value)
        if value is None or t in (bool, float, str, bytes, msgpack.Timestamp):
            return value
        if t in self._enums:
            return value
        if _is_int(value):
            if not MSGPACK_INT_MIN <= value <= MSGPACK_INT_MAX:
                raise EncodeError(f"{value} is out of the msgpack int range")
            return int(value)
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        if t is msgpack.ExtType:
            if not (_is_int(value.code) and -128 <= value.code <= 127
                    and isinstance(value.data, bytes)):
                raise EncodeError(f"bad ExtType {value!r}")
            return value
        if isinstance(value, (list, tuple)):
            return tuple(self._each(value, self.normalize))
        if isinstance(value, Mapping):
            return self._dict(list(value.items()), self.normalize, EncodeError)
        raise EncodeError(f"type {_py_name(value)} cannot be sent as msgpack")

    def encode(self, value: Any) -> Any:
        value = self.normalize(value)
        return self._encode(value)

    def _encode(self, value: Any) -> Any:
        t = type(value)
        ext = self._enums.get(t)
        if ext is not None:
            return msgpack.ExtType(ext, bytes((int(value),)))
        if t is tuple:
            return [self._encode(x) for x in value]
        if t is dict:
            return {self._encode(k): self._encode(v) for k, v in value.items()}
        return value

    def decode(self, obj: Any) -> Any:
        t = type(obj)
        if t is tuple:
            return tuple(self._each(obj, self.decode))
        if t is MapPairs:
            return self._dict(obj, self.decode, DecodeError)
        if t is msgpack.ExtType:
            cls = self._by_ext.get(obj.code)
            if cls is not None and len(obj.data) == 1 and obj.data[0] < len(cls):
                return cls(obj.data[0])
        return obj

    def _each(self, items: Sequence[Any], fn: Callable[[Any], Any]) -> list[Any]:
        out = []
        for i, item in enumerate(items):
            try:
                out.append(fn(item))
            except CodecError as e:
                raise _with_path(e, f"[{i}]")
        return out

    def _dict(self, pairs: Sequence[Any], fn: Callable[[Any], Any],
              err: type[CodecError]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for k, v in pairs:
            key = fn(k)
            try:
                out[key] = fn(v)
            except TypeError:
                raise err(f"map key {key!r} is not hashable") from None
            except CodecError as e:
                raise _with_path(e, f"[{k!r}]")
        if len(out) != len(pairs):
            raise err("duplicate key in map")
        return out
