"""Exception hierarchy of neolinkpy.

Every exception raised on purpose by the library derives from :class:`NeoLinkError`.
"""

from __future__ import annotations

from typing import Any


class NeoLinkError(Exception):
    """Base class of every neolinkpy error."""


class SchemaError(NeoLinkError):
    """The schema file is missing or malformed."""


class CodecError(NeoLinkError, ValueError):
    """A value cannot be encoded or decoded with the catalog.

    ``reason`` says what is wrong and ``path`` where: the segments leading to the
    offending value (``["AnswerNodeList", ".node_list", "[0]", ".address"]``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    def __str__(self) -> str:
        if not self.path:
            return self.reason
        return f"{''.join(self.path)}: {self.reason}"


class EncodeError(CodecError):
    """A message field holds a value its schema type does not allow."""


class DecodeError(CodecError):
    """Bytes received from a peer do not form a valid message."""


class FramingError(NeoLinkError):
    """The byte stream of a link is malformed; the link cannot continue."""


class PacketTooBigError(FramingError):
    """A packet exceeds the maximum packet size (64 MiB)."""


class HandshakeError(NeoLinkError, ConnectionError):
    """The peer's handshake is not the one we can talk to."""


class PeerTLSError(HandshakeError):
    """The peer started a TLS handshake (first byte 0x16)."""


class PlainPeerError(HandshakeError):
    """TLS is required but the peer started without it (e.g. a plain NEO handshake)."""


class OldProtocolError(HandshakeError):
    """The peer speaks the old binary protocol v6 (NEO/go 2020, NEO/py old-proto)."""


class VersionMismatchError(HandshakeError):
    """The peer speaks a known encoding with another version."""


class NotNeoError(HandshakeError):
    """The peer's first bytes are not a NEO handshake."""


class EncodingMismatchError(HandshakeError):
    """The peer speaks the other encoding than the one we were told to use."""


class LinkClosedError(NeoLinkError, ConnectionError):
    """The link is closed or down; pending and future operations on it fail with this."""


class ConnClosedError(NeoLinkError):
    """The connection was closed on our side."""


class ConnOverflowError(NeoLinkError):
    """The conn was aborted because its unread packets exceeded a receive bound
    (:attr:`Config.conn_recv_buffer` or :attr:`Config.link_recv_buffer`)."""


class UnexpectedAnswerError(NeoLinkError):
    """An ask was answered by a message that is neither its answer nor Error."""

    def __init__(self, request: Any, answer: Any) -> None:
        super().__init__(
            f"unexpected answer to {type(request).__name__}: {type(answer).__name__}")
        self.request = request
        self.answer = answer


class NeoError(NeoLinkError):
    """A peer answered with an Error packet.

    ``code`` is the error code (an :class:`ErrorCodes` member when known, else the
    plain int) and ``message`` its text. ``str(exc)`` reads like NEO/go's
    ``proto.Error``: ``"PROTOCOL_ERROR: connection closed"``.
    """

    def __init__(self, code: int, message: str, packet: Any = None) -> None:
        name = getattr(code, "name", None) or str(int(code))
        super().__init__(f"{name}: {message}" if message else name)
        self.code = code
        self.message = message
        self.packet = packet
