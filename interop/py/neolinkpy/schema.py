"""Parser of the NEO message catalog schema (``proto/schema/neo-v5.schema``).

The schema file is the single source of truth for the catalog; its header
documents the grammar. This module only parses and checks it; :mod:`.catalog`
turns the result into Python classes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import SchemaError

#: Environment variable that overrides the schema path.
SCHEMA_ENV = "NEOLINK_SCHEMA"

#: Location of the schema relative to the repository root.
SCHEMA_RELPATH = Path("proto", "schema", "neo-v5.schema")

#: Name of the schema copy shipped as package data.
PACKAGED_SCHEMA = "neo-v5.schema"

#: Answer bit of packet codes (NEO/py RESPONSE_MASK).
ANSWER_BIT = 0x8000

#: Code of the Error packet.
ERROR_CODE = ANSWER_BIT

#: Built-in type names (their wire forms are documented in the schema header).
BASIC_TYPES = ("bool", "float", "int", "u16", "u32", "u64", "uuid", "oid", "tid",
               "bin", "text", "any")

#: Packet kinds, as spelled in the schema.
KINDS = ("request", "errreq", "notify", "answer", "error")


# Type expressions ------------------------------------------------------------

@dataclass(frozen=True)
class Named:
    """A basic type, an enum or a struct, by name."""
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class PlainEnum:
    """``int/<Enum>``: an enum value carried as a plain msgpack int."""
    enum: str

    def __str__(self) -> str:
        return f"int/{self.enum}"


@dataclass(frozen=True)
class Optional_:
    """``?T``: T or nil."""
    inner: "TypeExpr"

    def __str__(self) -> str:
        return f"?{self.inner}"


@dataclass(frozen=True)
class ListOf:
    """``[T]``: an array of T."""
    inner: "TypeExpr"

    def __str__(self) -> str:
        return f"[{self.inner}]"


@dataclass(frozen=True)
class MapOf:
    """``{K:V}``: a map from K to V."""
    key: "TypeExpr"
    value: "TypeExpr"

    def __str__(self) -> str:
        return f"{{{self.key}:{self.value}}}"


TypeExpr = Named | PlainEnum | Optional_ | ListOf | MapOf

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_type(text: str) -> TypeExpr:
    """Parse one type expression such as ``{tid:[oid]}`` or ``?Address``."""
    expr, end = _parse_type_at(text, 0)
    if end != len(text):
        raise SchemaError(f"trailing characters in type {text!r} at offset {end}")
    return expr


def _parse_type_at(text: str, i: int) -> tuple[TypeExpr, int]:
    if i >= len(text):
        raise SchemaError(f"type {text!r} ends early")
    c = text[i]
    if c == "?":
        inner, i = _parse_type_at(text, i + 1)
        return Optional_(inner), i
    if c == "[":
        inner, i = _parse_type_at(text, i + 1)
        if text[i:i + 1] != "]":
            raise SchemaError(f"missing ']' in type {text!r}")
        return ListOf(inner), i + 1
    if c == "{":
        key, i = _parse_type_at(text, i + 1)
        if text[i:i + 1] != ":":
            raise SchemaError(f"missing ':' in map type {text!r}")
        value, i = _parse_type_at(text, i + 1)
        if text[i:i + 1] != "}":
            raise SchemaError(f"missing '}}' in type {text!r}")
        return MapOf(key, value), i + 1
    m = _IDENT.match(text, i)
    if not m:
        raise SchemaError(f"bad type {text!r} at offset {i}")
    name, i = m.group(), m.end()
    if text[i:i + 1] == "/":
        m = _IDENT.match(text, i + 1)
        if name != "int" or not m:
            raise SchemaError(f"bad enum-as-int type {text!r}")
        return PlainEnum(m.group()), m.end()
    return Named(name), i


# Declarations ----------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One field of a struct or packet."""
    name: str
    type: TypeExpr


@dataclass(frozen=True)
class EnumDecl:
    """``enum <Name> ext=<n> ... : VALUES...``."""
    name: str
    ext: int
    values: tuple[str, ...]


@dataclass(frozen=True)
class StructDecl:
    """``struct <Name> fields...``."""
    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class PacketDecl:
    """``<code> <kind> <Name> fields...``."""
    code: int
    kind: str
    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Schema:
    """A parsed and checked schema: declarations in file order."""
    path: str
    enums: tuple[EnumDecl, ...]
    structs: tuple[StructDecl, ...]
    packets: tuple[PacketDecl, ...]


def find_schema_path() -> Path | None:
    """Return ``$NEOLINK_SCHEMA`` as a path if it is set, else None (the copy
    shipped in the package is used)."""
    env = os.environ.get(SCHEMA_ENV)
    return Path(env) if env else None


def load_schema(path: str | Path | None = None) -> Schema:
    """Read and parse the schema: ``path``, else ``$NEOLINK_SCHEMA``, else the
    copy shipped in the package (package data ``neolinkpy/neo-v5.schema``, kept
    byte for byte equal to the repository's ``proto/schema/neo-v5.schema``)."""
    p = Path(path) if path is not None else find_schema_path()
    try:
        if p is None:
            res = resources.files(__package__).joinpath(PACKAGED_SCHEMA)
            return parse_schema(res.read_text(encoding="utf-8"), f"neolinkpy/{PACKAGED_SCHEMA}")
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SchemaError(f"cannot read schema {p or PACKAGED_SCHEMA}: {e}") from e
    return parse_schema(text, str(p))


def parse_schema(text: str, path: str = "<schema>") -> Schema:
    """Parse schema text and check its consistency."""
    enums: list[EnumDecl] = []
    structs: list[StructDecl] = []
    packets: list[PacketDecl] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        try:
            if tokens[0] == "enum":
                enums.append(_parse_enum(tokens))
            elif tokens[0] == "struct":
                if len(tokens) < 2:
                    raise SchemaError("struct without a name")
                structs.append(StructDecl(tokens[1], _parse_fields(tokens[2:])))
            else:
                packets.append(_parse_packet(tokens))
        except SchemaError as e:
            raise SchemaError(f"{path}:{lineno}: {e}") from None
    schema = Schema(path, tuple(enums), tuple(structs), tuple(packets))
    _check(schema)
    return schema


def _parse_enum(tokens: list[str]) -> EnumDecl:
    if len(tokens) < 2 or ":" not in tokens:
        raise SchemaError("enum needs a name and ': VALUES'")
    colon = tokens.index(":")
    attrs: dict[str, str] = {}
    for tok in tokens[2:colon]:
        key, sep, value = tok.partition("=")
        if not sep:
            raise SchemaError(f"bad enum attribute {tok!r}")
        attrs[key] = value
    if "ext" not in attrs:
        raise SchemaError(f"enum {tokens[1]} has no ext=")
    try:
        ext = int(attrs["ext"], 0)
    except ValueError:
        raise SchemaError(f"bad ext code {attrs['ext']!r}") from None
    values = tuple(tokens[colon + 1:])
    if not values:
        raise SchemaError(f"enum {tokens[1]} has no values")
    return EnumDecl(tokens[1], ext, values)


def _parse_fields(tokens: list[str]) -> tuple[Field, ...]:
    fields = []
    for tok in tokens:
        name, sep, typ = tok.partition(":")
        if not sep or not _IDENT.fullmatch(name):
            raise SchemaError(f"bad field {tok!r} (want name:type)")
        fields.append(Field(name, parse_type(typ)))
    return tuple(fields)


def _parse_packet(tokens: list[str]) -> PacketDecl:
    if len(tokens) < 3:
        raise SchemaError(f"bad declaration {' '.join(tokens)!r}")
    try:
        code = int(tokens[0], 0)
    except ValueError:
        raise SchemaError(f"bad packet code {tokens[0]!r}") from None
    kind = tokens[1]
    if kind not in KINDS:
        raise SchemaError(f"unknown packet kind {kind!r}")
    return PacketDecl(code, kind, tokens[2], _parse_fields(tokens[3:]))


def _check(schema: Schema) -> None:
    names: dict[str, str] = {t: "basic type" for t in BASIC_TYPES}
    exts = set()
    for e in schema.enums:
        if e.name in names:
            raise SchemaError(f"{schema.path}: {e.name} declared twice")
        if e.ext in exts or not 0 <= e.ext <= 127:
            raise SchemaError(f"{schema.path}: bad or duplicate ext code {e.ext} of {e.name}")
        if len(e.values) > 128:
            raise SchemaError(f"{schema.path}: enum {e.name} has too many values")
        exts.add(e.ext)
        names[e.name] = "enum"
    for s in schema.structs:
        if s.name in names:
            raise SchemaError(f"{schema.path}: {s.name} declared twice")
        for f in s.fields:
            _check_type(schema, f.type, names, f"{s.name}.{f.name}")
        names[s.name] = "struct"
    codes: dict[int, PacketDecl] = {}
    for p in schema.packets:
        where = f"{schema.path}: packet {p.name}"
        if p.name in names:
            raise SchemaError(f"{where} declared twice")
        names[p.name] = "packet"
        if p.code in codes or not 0 <= p.code <= 0xffff:
            raise SchemaError(f"{where}: bad or duplicate code {p.code:#x}")
        codes[p.code] = p
        is_answer = bool(p.code & ANSWER_BIT)
        if (p.kind == "error") != (p.code == ERROR_CODE) or \
                is_answer != (p.kind in ("answer", "error")):
            raise SchemaError(f"{where}: kind {p.kind} does not fit code {p.code:#x}")
        seen = set()
        for f in p.fields:
            if f.name in seen:
                raise SchemaError(f"{where}: field {f.name} twice")
            seen.add(f.name)
            _check_type(schema, f.type, names, f"{p.name}.{f.name}")
    for p in schema.packets:
        if p.kind == "request" and codes.get(p.code | ANSWER_BIT, None) is None:
            raise SchemaError(f"{schema.path}: request {p.name} has no answer")
        if p.kind == "answer":
            req = codes.get(p.code & ~ANSWER_BIT)
            if req is None or req.kind != "request":
                raise SchemaError(f"{schema.path}: answer {p.name} has no request")
    if ERROR_CODE not in codes:
        raise SchemaError(f"{schema.path}: no Error packet")


def _check_type(schema: Schema, t: TypeExpr, names: dict[str, str], where: str) -> None:
    if isinstance(t, Named):
        if names.get(t.name) not in ("basic type", "enum", "struct"):
            raise SchemaError(f"{schema.path}: {where}: unknown type {t.name}")
    elif isinstance(t, PlainEnum):
        if names.get(t.enum) != "enum":
            raise SchemaError(f"{schema.path}: {where}: {t.enum} is not an enum")
    elif isinstance(t, (Optional_, ListOf)):
        _check_type(schema, t.inner, names, where)
    else:
        key = t.key
        scalar = isinstance(key, PlainEnum) or (
            isinstance(key, Named) and key.name != "any"
            and names.get(key.name) in ("basic type", "enum"))
        if not scalar:
            raise SchemaError(f"{schema.path}: {where}: map key {t.key} is not a scalar type")
        _check_type(schema, t.key, names, where)
        _check_type(schema, t.value, names, where)
