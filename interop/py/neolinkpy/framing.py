"""Wire framings, handshakes and incremental packet parsers (no I/O).

Two framings carry packets on a byte stream, each announced by a 6-byte handshake
that both sides send at once, without waiting for the peer's:

* **M**, NEO/py master's stream: handshake ``92 a3 4e 45 4f 05`` (msgpack
  ``["NEO", 5]``), then one msgpack array ``[msg_id, msg_code, args]`` per packet,
  with no length prefix.
* **N**: handshake ``4e 45 4f 4e 01 05`` ("NEON", framing version 1, protocol
  version 5), then per packet a 10-byte big-endian header ``>IHI`` (id, code,
  payload length) followed by the payload, the same msgpack args array as in M.

A packet may not exceed :data:`MAX_PACKET_SIZE` bytes (the whole msgpack object
in M, header plus payload in N). Parsers check this before buffering more.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import msgpack

from . import catalog
from .codec import MAX_PACKET_SIZE, UNPACK_OPTIONS, pack, wire_name
from .errors import (EncodingMismatchError, FramingError, NotNeoError, OldProtocolError,
                     PacketTooBigError, PeerTLSError, VersionMismatchError)

#: NEO protocol version carried by both handshakes.
PROTOCOL_VERSION = 5
#: Version of the N framing.
N_FRAMING_VERSION = 1

#: Handshake of the M encoding: msgpack ``["NEO", 5]``.
HANDSHAKE_M = pack(["NEO", PROTOCOL_VERSION])
#: Handshake of the N encoding: ``"NEON"``, framing version, protocol version.
HANDSHAKE_N = b"NEON" + bytes((N_FRAMING_VERSION, PROTOCOL_VERSION))
#: Handshake of NEO's old binary protocol v6 (NEO/go 2020, NEO/py old-proto).
HANDSHAKE_V6 = b"\x00\x00\x00\x06"
#: First byte of a TLS ClientHello.
TLS_HANDSHAKE_BYTE = 0x16

#: Header of an N packet: msg_id u32, msg_code u16, payload length u32 (big-endian).
N_HEADER = struct.Struct(">IHI")

#: The two encodings.
ENCODINGS = ("N", "M")

_M_MAGIC = HANDSHAKE_M[:5]
_N_MAGIC = HANDSHAKE_N[:4]
_READ_CHUNK = 256 * 1024


def classify_handshake(data: bytes, expected: str | None = None) -> str | None:
    """Classify the first bytes received from a peer.

    Returns ``"M"`` or ``"N"`` when ``data`` starts with that handshake (the bytes
    after its 6 bytes are packets), or None while ``data`` is still a proper prefix
    of a known handshake. Otherwise raises a :class:`HandshakeError` subclass as
    soon as the bytes seen rule out every known handshake: :class:`PeerTLSError`,
    :class:`OldProtocolError`, :class:`VersionMismatchError`, :class:`NotNeoError`,
    or :class:`EncodingMismatchError` when ``expected`` is given and differs.
    """
    if not data:
        return None
    if data[0] == TLS_HANDSHAKE_BYTE:
        raise PeerTLSError("peer started TLS (first byte 0x16); this link is plain TCP")
    for enc, hs in (("M", HANDSHAKE_M), ("N", HANDSHAKE_N)):
        if data[:len(hs)] == hs:
            if expected is not None and enc != expected:
                raise EncodingMismatchError(
                    f"peer speaks the {enc} encoding, we use {expected}")
            return enc
        if hs.startswith(data):
            return None
    if HANDSHAKE_V6.startswith(data[:4]):
        if len(data) < len(HANDSHAKE_V6):
            return None
        raise OldProtocolError(
            "peer speaks NEO's old binary protocol v6 (NEO/go 2020 or NEO/py old-proto, "
            "handshake 00000006), not protocol 5")
    if data[:5] == _M_MAGIC:
        peer = data[5]
        version = str(peer) if peer < 0x80 else f"(msgpack byte {peer:#04x})"
        raise VersionMismatchError(
            f"protocol version mismatch: peer M encoding version {version}, "
            f"ours {PROTOCOL_VERSION}")
    if data[:4] == _N_MAGIC:
        framing = data[4]
        proto = str(data[5]) if len(data) > 5 else "?"
        raise VersionMismatchError(
            f"protocol version mismatch: peer N framing {framing} protocol {proto}, "
            f"ours framing {N_FRAMING_VERSION} protocol {PROTOCOL_VERSION}")
    raise NotNeoError(f"peer is not NEO: first bytes {data[:8].hex(' ')}")


class RawPacket(NamedTuple):
    """One framed packet before decoding its args.

    ``body`` is the payload in N (``bytes``, or a ``memoryview`` of a buffer of
    its own for a packet larger than the read buffer) and the unpacked args
    object in M; pass it to :meth:`Framing.decode_body`. ``size`` is the packet's size on the wire
    (what receive bounds count).
    """
    msg_id: int
    code: int
    body: Any
    size: int = 0


class NDecoder:
    """Incremental parser of an N packet stream (after the handshake).

    It owns its receive buffer: :meth:`get_buffer` says where the next bytes
    go (for asyncio's ``BufferedProtocol``, so that the transport receives, or
    TLS decrypts, straight into it) and :meth:`buffer_updated` parses them. A
    packet larger than the buffer gets a buffer of its own, exactly its size,
    which becomes the packet's body: a large payload is received in place, not
    copied. :meth:`feed` does the same for bytes received elsewhere.
    """

    def __init__(self, max_size: int = MAX_PACKET_SIZE) -> None:
        self._buf = bytearray(_READ_CHUNK)
        self._view = memoryview(self._buf)
        self._start = 0         # unparsed bytes are _buf[_start:_end]
        self._end = 0
        self._big: bytearray | None = None      # the packet being received in place
        self._big_size = 0
        self._big_fill = 0
        self._spare: bytearray | None = None    # a big buffer given back by recycle()
        self._max_payload = max_size - N_HEADER.size

    @property
    def pending(self) -> int:
        """Number of buffered bytes of an incomplete packet."""
        return self._big_fill if self._big is not None else self._end - self._start

    def get_buffer(self) -> memoryview:
        """Where to put the next received bytes (never empty)."""
        big = self._big
        if big is not None:
            return memoryview(big)[self._big_fill:self._big_size]
        if self._end == len(self._buf):
            n = self._end - self._start
            self._buf[:n] = self._view[self._start:self._end]
            self._start, self._end = 0, n
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> list[RawPacket]:
        """Parse ``nbytes`` new bytes written at :meth:`get_buffer`; return the
        packets they complete, in order.

        Raises :class:`PacketTooBigError` as soon as a header announces a packet
        larger than the maximum size.
        """
        big = self._big
        if big is not None:
            self._big_fill += nbytes
            size = self._big_size
            if self._big_fill < size:
                return []
            self._big = None
            msg_id, code, _ = N_HEADER.unpack_from(big)
            return [RawPacket(msg_id, code, memoryview(big)[N_HEADER.size:size], size)]
        self._end += nbytes
        out = []
        view, start, end = self._view, self._start, self._end
        header = N_HEADER.size
        while end - start >= header:
            msg_id, code, length = N_HEADER.unpack_from(view, start)
            if length > self._max_payload:
                raise PacketTooBigError(
                    f"N packet of {length + header} bytes exceeds the maximum "
                    f"of {self._max_payload + header}")
            total = header + length
            if end - start < total:
                if total > len(view):
                    # receive the rest in place, in a buffer of its own
                    have = end - start
                    big = self._spare
                    if big is not None and len(big) >= total:
                        self._spare = None
                    else:
                        big = bytearray(total)
                    big[:have] = view[start:end]
                    self._big, self._big_size, self._big_fill = big, total, have
                    start = end
                break
            out.append(RawPacket(msg_id, code, bytes(view[start + header:start + total]), total))
            start += total
        if start == end:
            start = end = 0
        self._start, self._end = start, end
        return out

    def recycle(self, body: Any) -> None:
        """Give back the body of a packet once decoded: a large one's buffer
        is then reused for the next large packet (fresh memory costs page
        faults). The body must not be used afterwards."""
        if type(body) is not memoryview:
            return
        buf = body.obj
        try:
            body.release()
        except BufferError:
            return
        if type(buf) is bytearray and (self._spare is None or len(buf) > len(self._spare)):
            self._spare = buf

    def feed(self, data: bytes) -> list[RawPacket]:
        """Add bytes received elsewhere; return the packets they complete."""
        out: list[RawPacket] = []
        src = memoryview(data)
        i, size = 0, len(src)
        while i < size:
            buf = self.get_buffer()
            n = min(len(buf), size - i)
            buf[:n] = src[i:i + n]
            i += n
            out += self.buffer_updated(n)
        return out


class MDecoder:
    """Incremental parser of an M packet stream (after the handshake)."""

    def __init__(self, max_size: int = MAX_PACKET_SIZE) -> None:
        self._max = max_size
        self._unpacker = msgpack.Unpacker(max_buffer_size=max_size + _READ_CHUNK,
                                          read_size=65536, **UNPACK_OPTIONS)
        self._fed = 0
        self._start = 0
        self._scratch = memoryview(bytearray(_READ_CHUNK))

    @property
    def pending(self) -> int:
        """Number of bytes received of an incomplete packet."""
        return self._fed - self._start

    def get_buffer(self) -> memoryview:
        """Where to put the next received bytes (see :class:`NDecoder`)."""
        return self._scratch

    def buffer_updated(self, nbytes: int) -> list[RawPacket]:
        """Parse ``nbytes`` new bytes written at :meth:`get_buffer`."""
        return self.feed(self._scratch[:nbytes])

    def recycle(self, body: Any) -> None:
        """Nothing to give back in M (see :meth:`NDecoder.recycle`)."""

    def feed(self, data: bytes) -> list[RawPacket]:
        """Add received bytes; return the packets they complete, in order.

        Raises :class:`PacketTooBigError` as soon as the current packet has grown
        past the maximum size, and :class:`FramingError` on malformed msgpack or a
        top-level object that is not ``[msg_id, msg_code, args]``.
        """
        out = []
        unpacker = self._unpacker
        with memoryview(data) as view:
            for off in range(0, len(view), _READ_CHUNK):
                chunk = view[off:off + _READ_CHUNK]
                unpacker.feed(chunk)
                self._fed += len(chunk)
                try:
                    for obj in unpacker:
                        end = unpacker.tell()
                        if end - self._start > self._max:
                            raise PacketTooBigError(
                                f"M packet of {end - self._start} bytes exceeds the maximum "
                                f"of {self._max}")
                        out.append(self._packet(obj, end - self._start))
                        self._start = end
                except (ValueError, msgpack.UnpackException) as e:
                    raise FramingError(f"malformed msgpack stream: {e}") from None
                if self._fed - self._start > self._max:
                    raise PacketTooBigError(
                        f"M packet exceeds the maximum of {self._max} bytes "
                        f"({self._fed - self._start} received so far)")
        return out

    @staticmethod
    def _packet(obj: Any, size: int) -> RawPacket:
        if type(obj) is not tuple or len(obj) != 3:
            what = f"{len(obj)}-element array" if type(obj) is tuple else wire_name(obj)
            raise FramingError(f"packet must be [msg_id, msg_code, args], got a {what}")
        msg_id, code, args = obj
        if type(msg_id) is not int or not 0 <= msg_id <= 0xffffffff:
            raise FramingError(f"bad msg_id {msg_id!r} (want u32)")
        if type(code) is not int or not 0 <= code <= 0xffff:
            raise FramingError(f"bad msg_code {code!r} (want u16)")
        return RawPacket(msg_id, code, args, size)


class Framing:
    """One encoding: its handshake, packet encoder, parser and body decoder."""

    #: "N" or "M".
    name: str
    #: The handshake bytes this encoding starts with.
    handshake: bytes

    def pack_packet(self, msg_id: int, code: int, payload: bytes) -> bytes:
        """Frame an already encoded args array; raise :class:`PacketTooBigError`."""
        raise NotImplementedError

    def decoder(self) -> "NDecoder | MDecoder":
        """A new incremental parser for this encoding."""
        raise NotImplementedError

    def decode_body(self, code: int, body: Any) -> "catalog.Message":
        """Decode the body of a :class:`RawPacket`; raise :class:`DecodeError`."""
        raise NotImplementedError

    def encode(self, msg_id: int, msg: "catalog.Message") -> bytes:
        """Encode a whole packet: message ``msg`` on id ``msg_id``."""
        return self.pack_packet(msg_id, msg.msg_code, msg.encode_args())

    def __repr__(self) -> str:
        return f"<Framing {self.name}>"


class FramingN(Framing):
    """The N encoding (10-byte header + msgpack args)."""
    name = "N"
    handshake = HANDSHAKE_N

    def pack_packet(self, msg_id: int, code: int, payload: bytes) -> bytes:
        if not 0 <= msg_id <= 0xffffffff:
            raise ValueError(f"msg_id {msg_id} is not a u32")
        size = N_HEADER.size + len(payload)
        if size > MAX_PACKET_SIZE:
            raise PacketTooBigError(
                f"packet of {size} bytes exceeds the maximum of {MAX_PACKET_SIZE}")
        return N_HEADER.pack(msg_id, code, len(payload)) + payload

    def decoder(self) -> NDecoder:
        return NDecoder()

    def decode_body(self, code: int, body: Any) -> "catalog.Message":
        return catalog.decode_args(code, body)


class FramingM(Framing):
    """The M encoding (NEO/py master's msgpack stream)."""
    name = "M"
    handshake = HANDSHAKE_M

    def pack_packet(self, msg_id: int, code: int, payload: bytes) -> bytes:
        if not 0 <= msg_id <= 0xffffffff:
            raise ValueError(f"msg_id {msg_id} is not a u32")
        data = b"\x93" + pack(msg_id) + pack(code) + payload
        if len(data) > MAX_PACKET_SIZE:
            raise PacketTooBigError(
                f"packet of {len(data)} bytes exceeds the maximum of {MAX_PACKET_SIZE}")
        return data

    def decoder(self) -> MDecoder:
        return MDecoder()

    def decode_body(self, code: int, body: Any) -> "catalog.Message":
        return catalog.decode_message(code, body)


#: The framing of each encoding.
FRAMINGS = {"N": FramingN(), "M": FramingM()}


def framing(encoding: str) -> Framing:
    """Return the framing of ``"N"`` or ``"M"`` (either case)."""
    try:
        return FRAMINGS[encoding.upper()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown encoding {encoding!r} (want N or M)") from None
