"""The NEO message catalog, generated at import time from the schema file.

The schema (the copy of neolink's ``proto/schema/neo-v5.schema`` shipped in
this package, or the file ``$NEOLINK_SCHEMA`` names) is read once when this
module is imported. It defines, as attributes of this module:

* one :class:`enum.IntEnum` per schema enum (``NodeTypes``, ``ErrorCodes``, ...);
* one named tuple class per schema struct (``Address``, ``NodeInfo``, ...);
* one :class:`Message` subclass per packet (``Ping``, ``AskObject``, ``Error``, ...).

A message class carries ``msg_code`` (the packet code; also available as ``code``
except on ``Error``, whose ``code`` is its error-code field), ``kind`` (one of
``request``, ``errreq``, ``notify``, ``answer``, ``error``), ``fields`` (field
names in wire order) and, for requests, ``answer`` (the answer class; ``Error``
for ``errreq`` requests).
"""

from __future__ import annotations

import enum
from collections import namedtuple
from typing import Any, ClassVar

from . import codec as _c
from .errors import CodecError, DecodeError
from .schema import (ANSWER_BIT, ERROR_CODE, ListOf, MapOf, Named, Optional_, PlainEnum,
                     Schema, TypeExpr, load_schema)

#: The parsed schema this catalog was generated from.
SCHEMA: Schema = load_schema()

_BASIC: dict[str, _c.Codec] = {
    "bool": _c.BoolCodec("bool"),
    "float": _c.FloatCodec("float"),
    # "any width" in the schema header; the Go catalog reads it as an int64
    "int": _c.IntCodec("int", -(1 << 63), (1 << 63) - 1),
    "u16": _c.IntCodec("u16", 0, 0xffff),
    "u32": _c.IntCodec("u32", 0, 0xffffffff),
    "u64": _c.IntCodec("u64", 0, 0xffffffffffffffff),
    "uuid": _c.IntCodec("uuid", -(1 << 31), (1 << 31) - 1),
    "oid": _c.P64Codec("oid"),
    "tid": _c.P64Codec("tid"),
    "bin": _c.BinCodec("bin"),
    "text": _c.TextCodec("text"),
}

#: Enum classes by name, in schema order.
ENUMS: dict[str, type[enum.IntEnum]] = {}
#: Struct (named tuple) classes by name, in schema order.
STRUCTS: dict[str, type[tuple]] = {}
#: Codec of every named type (basic types, enums, structs).
CODECS: dict[str, _c.Codec] = dict(_BASIC)

_ext_of: dict[type, int] = {}
for _decl in SCHEMA.enums:
    _cls = enum.IntEnum(_decl.name, [(v, i) for i, v in enumerate(_decl.values)],
                        module=__name__, qualname=_decl.name)
    _cls.__doc__ = (f"NEO enum {_decl.name}: msgpack ext type {_decl.ext} on the wire "
                    f"(fixext1 d4 {_decl.ext:02x} <value>).")
    ENUMS[_decl.name] = _cls
    _ext_of[_cls] = _decl.ext
    CODECS[_decl.name] = _c.EnumCodec(_cls, _decl.ext)
CODECS["any"] = _c.AnyCodec(list(ENUMS.values()), _ext_of)


def codec_for(t: TypeExpr) -> _c.Codec:
    """Return the codec of a schema type expression."""
    if isinstance(t, Named):
        return CODECS[t.name]
    if isinstance(t, PlainEnum):
        return _c.PlainEnumCodec(ENUMS[t.enum])
    if isinstance(t, Optional_):
        return _c.OptionalCodec(codec_for(t.inner))
    if isinstance(t, ListOf):
        return _c.ListCodec(codec_for(t.inner))
    if isinstance(t, MapOf):
        return _c.MapCodec(codec_for(t.key), codec_for(t.value))
    raise TypeError(f"not a type expression: {t!r}")


for _decl in SCHEMA.structs:
    _cls = namedtuple(_decl.name, [f.name for f in _decl.fields], module=__name__)
    _cls.__doc__ = (f"NEO struct {_decl.name}: a {len(_decl.fields)}-array on the wire ("
                    + ", ".join(f"{f.name}: {f.type}" for f in _decl.fields) + ").")
    STRUCTS[_decl.name] = _cls
    CODECS[_decl.name] = _c.StructCodec(_cls, [codec_for(f.type) for f in _decl.fields])


def _short_repr(value: Any) -> str:
    if isinstance(value, bytes) and len(value) > 32:
        return f"{value[:32]!r}...({len(value)} bytes)"
    return repr(value)


class Message:
    """Base class of every catalog packet.

    Construct with positional or keyword arguments in field order; optional
    (``?T``) fields default to None. Values are checked against the schema at
    construction (:class:`EncodeError` on a bad value) and again when encoded.
    """
    __slots__ = ()

    msg_code: ClassVar[int]
    kind: ClassVar[str]
    fields: ClassVar[tuple[str, ...]] = ()
    is_answer: ClassVar[bool]
    answer: ClassVar[type["Message"] | None] = None
    _codecs: ClassVar[tuple[_c.Codec, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        names = cls.fields
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} arguments "
                            f"but {len(args)} were given")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {key!r}")
            values[key] = value
        for name, fcodec in zip(names, cls._codecs):
            if name in values:
                value = values[name]
            elif isinstance(fcodec, _c.OptionalCodec):
                value = None
            else:
                raise TypeError(f"{cls.__name__}() missing required argument {name!r}")
            try:
                object.__setattr__(self, name, fcodec.normalize(value))
            except CodecError as e:
                e.path[:0] = [cls.__name__, "." + name]
                raise

    def args(self) -> tuple[Any, ...]:
        """The field values, in wire order."""
        return tuple(getattr(self, name) for name in self.fields)

    def wire_args(self) -> list[Any]:
        """The msgpack-ready args array (enums as ExtType, oids as 8 bytes, ...)."""
        cls = type(self)
        out = []
        for name, fcodec in zip(cls.fields, cls._codecs):
            try:
                out.append(fcodec.encode(getattr(self, name)))
            except CodecError as e:
                e.path[:0] = [cls.__name__, "." + name]
                raise
        return out

    def encode_args(self) -> bytes:
        """The msgpack encoding of the args array, as NEO/py packs it."""
        return _c.pack(self.wire_args())

    @classmethod
    def from_wire(cls, args: Any) -> "Message":
        """Build a message from an unpacked args array (see :func:`codec.unpack`)."""
        if type(args) is not tuple:
            err = DecodeError(f"args must be an array, got {_c.wire_name(args)}")
            err.path.append(cls.__name__)
            raise err
        if len(args) != len(cls._codecs):
            err = DecodeError(f"expected {len(cls._codecs)} args, got {len(args)}")
            err.path.append(cls.__name__)
            raise err
        self = cls.__new__(cls)
        for name, fcodec, obj in zip(cls.fields, cls._codecs, args):
            try:
                object.__setattr__(self, name, fcodec.decode(obj))
            except CodecError as e:
                e.path[:0] = [cls.__name__, "." + name]
                raise
        return self

    @classmethod
    def decode_args(cls, data: bytes) -> "Message":
        """Decode the msgpack encoding of an args array."""
        return cls.from_wire(_c.unpack(data))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return type(other) is type(self) and all(
            getattr(self, name) == getattr(other, name) for name in self.fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={_short_repr(getattr(self, name))}" for name in self.fields)
        return f"{type(self).__name__}({body})"


#: Message classes by packet code.
PACKETS: dict[int, type[Message]] = {}
#: Message classes by name, in schema order.
MESSAGES: dict[str, type[Message]] = {}

for _decl in SCHEMA.packets:
    _names = tuple(f.name for f in _decl.fields)
    _ns: dict[str, Any] = {
        "__slots__": _names,
        "__module__": __name__,
        "__qualname__": _decl.name,
        "__doc__": (f"NEO packet {_decl.name}: code {_decl.code:#06x}, {_decl.kind}.\n\n"
                    + ("Fields: " + ", ".join(f"{f.name}: {f.type}" for f in _decl.fields)
                       if _decl.fields else "No fields.")),
        "msg_code": _decl.code,
        "kind": _decl.kind,
        "fields": _names,
        "is_answer": bool(_decl.code & ANSWER_BIT),
        "_codecs": tuple(codec_for(f.type) for f in _decl.fields),
    }
    if "code" not in _names:
        _ns["code"] = _decl.code
    _cls = type(_decl.name, (Message,), _ns)
    PACKETS[_decl.code] = _cls
    MESSAGES[_decl.name] = _cls

for _cls in MESSAGES.values():
    if _cls.kind == "request":
        _cls.answer = PACKETS[_cls.msg_code | ANSWER_BIT]
    elif _cls.kind == "errreq":
        _cls.answer = PACKETS[ERROR_CODE]


def message_class(code: int) -> type[Message]:
    """Return the class of a packet code; :class:`DecodeError` if unknown."""
    cls = PACKETS.get(code)
    if cls is None:
        raise DecodeError(f"unknown packet code {code} ({code:#06x})")
    return cls


def decode_message(code: int, args: Any) -> Message:
    """Build the message of packet ``code`` from its unpacked args array."""
    return message_class(code).from_wire(args)


def decode_args(code: int, data: bytes) -> Message:
    """Decode the msgpack args array ``data`` of packet ``code``."""
    cls = message_class(code)
    return cls.from_wire(_c.unpack(data))


globals().update(ENUMS)
globals().update(STRUCTS)
globals().update(MESSAGES)

__all__ = ["Message", "SCHEMA", "ENUMS", "STRUCTS", "PACKETS", "MESSAGES", "CODECS",
           "codec_for", "message_class", "decode_message", "decode_args",
           *ENUMS, *STRUCTS, *MESSAGES]

del _decl, _cls, _names, _ns
