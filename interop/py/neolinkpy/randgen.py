"""Random valid values of schema types and random messages.

Used by ``python -m neolinkpy codec-random`` (the Go/Python codec cross-check) and
by the tests. Integers favour the boundaries between msgpack encodings so every
int form gets exercised; ``any`` values are limited to nil, bool, int, bin, str and
arrays of those, which every implementation re-encodes byte for byte.
"""

from __future__ import annotations

import random
import string
import struct
from collections.abc import Callable
from typing import Any

from . import catalog
from . import codec as c

_INT_EDGES = (0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000,
              (1 << 63) - 1, 1 << 63, (1 << 64) - 1, -1, -32, -33, -128, -129, -0x8000,
              -0x8001, -(1 << 31), -(1 << 31) - 1, -(1 << 63))
_TEXT_ALPHABET = string.ascii_letters + string.digits + " -_./" + "éßüñ€日本語🙂"


class RandomValues:
    """Generator of random values, deterministic for a given ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._by_codec: dict[type, Callable[[Any], Any]] = {
            c.BoolCodec: lambda _: rng.random() < 0.5,
            c.IntCodec: lambda k: self.int_in(k.lo, k.hi),
            c.FloatCodec: lambda _: self.float64(),
            c.P64Codec: lambda _: self.int_in(0, (1 << 64) - 1),
            c.BinCodec: lambda _: self.bin(),
            c.TextCodec: lambda _: self.text(),
            c.EnumCodec: lambda k: rng.choice(list(k.enum)),
            c.PlainEnumCodec: lambda k: rng.choice(list(k.enum)),
            c.OptionalCodec: lambda k: None if rng.random() < 0.3 else self.value(k.inner),
            c.ListCodec: lambda k: [self.value(k.inner) for _ in range(rng.randint(0, 3))],
            c.MapCodec: self._map,
            c.StructCodec: lambda k: k.cls(*(self.value(f) for f in k.fields)),
            c.AnyCodec: lambda _: self.any_value(),
        }

    def value(self, codec: c.Codec) -> Any:
        """A random value of the type of ``codec``."""
        return self._by_codec[type(codec)](codec)

    def message(self, cls: type[catalog.Message]) -> catalog.Message:
        """A random message of class ``cls``."""
        return cls(*(self.value(k) for k in cls._codecs))

    def int_in(self, lo: int, hi: int) -> int:
        """An int in [lo, hi], often at an encoding boundary."""
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            edges = [v for v in _INT_EDGES if lo <= v <= hi] + [lo, hi]
            return rng.choice(edges)
        if r < 0.55:
            return rng.randint(max(lo, -32), min(hi, 0x7f))
        v = rng.getrandbits(rng.choice((8, 16, 32, 64)))
        if lo < 0 and rng.random() < 0.5:
            v = -v
        return v if lo <= v <= hi else rng.randint(lo, hi)

    def float64(self) -> float:
        """A finite float64."""
        rng = self.rng
        r = rng.random()
        if r < 0.2:
            return rng.choice((0.0, 1.5, -2.25, 0.12345678))
        if r < 0.5:
            return 1.7e9 + rng.random() * 1e8
        while True:
            v = struct.unpack(">d", rng.randbytes(8))[0]
            if v == v and v not in (float("inf"), float("-inf")):
                return v

    def bin(self) -> bytes:
        """Random bytes, mostly short, sometimes longer than 255 (bin16)."""
        rng = self.rng
        r = rng.random()
        n = rng.randint(0, 16) if r < 0.8 else rng.randint(17, 64) if r < 0.95 \
            else rng.randint(250, 300)
        return rng.randbytes(n)

    def text(self) -> str:
        """A short random text, with non-ASCII characters."""
        return "".join(self.rng.choice(_TEXT_ALPHABET) for _ in range(self.rng.randint(0, 12)))

    def any_value(self, depth: int = 0) -> Any:
        """A random ``any`` value: nil, bool, int, bin, str or an array of those."""
        rng = self.rng
        kind = rng.randrange(6 if depth < 2 else 5)
        if kind == 0:
            return None
        if kind == 1:
            return rng.random() < 0.5
        if kind == 2:
            return self.int_in(c.MSGPACK_INT_MIN, c.MSGPACK_INT_MAX)
        if kind == 3:
            return self.bin()
        if kind == 4:
            return self.text()
        return tuple(self.any_value(depth + 1) for _ in range(rng.randint(0, 3)))

    def _map(self, codec: c.MapCodec) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        size = self.rng.randint(0, 3)
        for _ in range(4 * size):
            if len(out) == size:
                break
            key = self.value(codec.key)
            if key not in out:
                out[key] = self.value(codec.value)
        return out
