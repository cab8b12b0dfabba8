"""neolinkpy: Python peer of the neolink NEO message link layer.

* :mod:`neolinkpy.catalog`: the NEO protocol v5 message catalog, generated at
  import from the schema shipped in the package (or ``$NEOLINK_SCHEMA``):
  enums, structs and one class per packet (``Ping``, ``AskObject``, ``Error``, ...).
* :mod:`neolinkpy.framing`: the N and M wire framings, handshakes and
  incremental parsers.
* :mod:`neolinkpy.link`: asyncio links multiplexing conns: :func:`dial`,
  :func:`listen`, :class:`Link`, :class:`Conn`, :class:`Config` (receive
  bounds, keepalive), :class:`TLSConfig`.

Example::

    async with dial("127.0.0.1", 5551, encoding="M") as link:
        conn = link.new_conn()
        await conn.ask(RequestIdentification(NodeTypes.CLIENT, None, None, "neo", None, {}))
        answer = await conn.ask(AskObject(oid=1, at=None, before=None))

Everything from :mod:`neolinkpy.catalog` is re-exported here.
"""

from .catalog import *  # noqa: F401,F403  (generated names: see catalog.__all__)
from .catalog import __all__ as _catalog_all
from .codec import MAX_PACKET_SIZE
from .errors import (CodecError, ConnClosedError, ConnOverflowError, DecodeError, EncodeError,
                     EncodingMismatchError, FramingError, HandshakeError, LinkClosedError,
                     NeoError, NeoLinkError, NotNeoError, OldProtocolError, PacketTooBigError,
                     PeerTLSError, PlainPeerError, SchemaError, UnexpectedAnswerError,
                     VersionMismatchError)
from .framing import (HANDSHAKE_M, HANDSHAKE_N, PROTOCOL_VERSION, MDecoder, NDecoder,
                      classify_handshake, framing)
from .link import (ACCEPT_BACKLOG, CONN_RECV_BUFFER, LINK_RECV_BUFFER, Config, Conn, Link,
                   LinkStats, Listener, Request, TLSConfig, check_answer, dial, listen)

__all__ = [
    *_catalog_all,
    "MAX_PACKET_SIZE",
    "CodecError", "ConnClosedError", "ConnOverflowError", "DecodeError", "EncodeError", "EncodingMismatchError",
    "FramingError", "HandshakeError", "LinkClosedError", "NeoError", "NeoLinkError",
    "NotNeoError", "OldProtocolError", "PacketTooBigError", "PeerTLSError", "PlainPeerError", "SchemaError",
    "UnexpectedAnswerError", "VersionMismatchError",
    "HANDSHAKE_M", "HANDSHAKE_N", "PROTOCOL_VERSION", "MDecoder", "NDecoder",
    "classify_handshake", "framing",
    "ACCEPT_BACKLOG", "CONN_RECV_BUFFER", "LINK_RECV_BUFFER",
    "Config", "Conn", "Link", "LinkStats", "Listener", "Request", "TLSConfig",
    "check_answer", "dial", "listen",
]
