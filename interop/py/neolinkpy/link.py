"""Links: many conns multiplexed over one TCP connection, with asyncio.

A :class:`Link` carries packets ``(msg_id, msg_code, args)``; the msg_id names a
*conn* (a stream, like an HTTP/2 stream id). The dialer allocates odd ids
(1, 3, 5, ...) and the listener even ids (2, 4, ...).

Incoming packets are routed in one of two ways (``routing``):

``"parity"`` (default for N)
    An unknown id of the peer's parity opens a new incoming conn (see
    :meth:`Link.accept`); an unknown id of our parity is answered with
    ``Error(PROTOCOL_ERROR, "connection closed")``. Like NEO/go's neonet.

``"answerbit"`` (default for M; how NEO/py master routes)
    A packet whose code has the answer bit (0x8000) is looked up only among the
    conns we initiated; when its id is unknown it is dropped, and an unknown-id
    Error goes to :attr:`Link.on_unsolicited_error`. A packet without the answer
    bit belongs to the peer's id namespace: a new id opens a new incoming conn.
    This works with unpatched NEO/py, whose ids 0, 1, 2... overlap ours.

No packet opens or closes a conn: a conn starts with its first packet and ends
when both sides stop using it. Two styles of use:

* full mode: ``conn = link.new_conn()``, then ``send``/``recv``/``ask`` on it as
  long as needed; the peer gets it from ``link.accept()``;
* lightweight mode: one fresh id per request: :meth:`Link.send1`,
  :meth:`Link.ask1`, and :meth:`Link.recv1` on the other side.

When the link goes down (peer gone, malformed stream, :meth:`Link.close`), every
pending and later operation raises :class:`LinkClosedError`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import (Any, AsyncIterator, Awaitable, Callable, Deque, Dict, List, Optional,
                    Set, Tuple)

from . import catalog
from .catalog import Message
from .errors import (ConnClosedError, DecodeError, FramingError, HandshakeError,
                     LinkClosedError, NeoError, NeoLinkError, UnexpectedAnswerError)
from .framing import Framing, classify_handshake, framing
from .schema import ANSWER_BIT, ERROR_CODE

log = logging.getLogger("neolinkpy")

#: Routing modes of a link.
ROUTINGS = ("parity", "answerbit")
#: Routing used when none is given, per encoding.
DEFAULT_ROUTING = {"N": "parity", "M": "answerbit"}
#: How long a closed peer-initiated conn id keeps answering "connection closed"
#: instead of opening a new conn (full mode only, like neonet).
KEEP_CLOSED_SECONDS = 60.0
#: Default time allowed for connecting and for the handshake, in seconds.
HANDSHAKE_TIMEOUT = 10.0
#: Default time :meth:`Link.aclose` lets queued output drain before aborting.
CLOSE_TIMEOUT = 5.0

#: ``handler(conn, msg)`` coroutine for :meth:`Link.serve`.
RequestHandler = Callable[["Conn", Message], Awaitable[None]]
#: ``callback(link, msg_id, error)`` for Error packets that answer nothing we asked.
UnsolicitedErrorCallback = Callable[["Link", int, Message], None]


def _error_packet(text: str) -> Message:
    return catalog.Error(catalog.ErrorCodes.PROTOCOL_ERROR, text)


def check_answer(request: Message, answer: Message) -> Message:
    """Return ``answer`` if it answers ``request``, else raise.

    An Error raises :class:`NeoError`, except ACK for an ``errreq`` request, which
    is its success answer and is returned. Any other message than the request's
    answer raises :class:`UnexpectedAnswerError`.
    """
    if type(answer) is catalog.Error:
        if request.kind == "errreq" and answer.code == catalog.ErrorCodes.ACK:
            return answer
        raise NeoError(answer.code, answer.message, answer)
    if type(answer) is not type(request).answer:
        raise UnexpectedAnswerError(request, answer)
    return answer


def _check_request(request: Message) -> None:
    if type(request).answer is None:
        raise TypeError(f"{type(request).__name__} is a {request.kind} packet, not a request")


class Conn:
    """One conn (stream) of a link, named by its msg_id.

    Obtain one with :meth:`Link.new_conn` (initiated by us) or :meth:`Link.accept`
    (initiated by the peer).
    """
    __slots__ = ("link", "id", "initiated_by_us", "_rxq", "_waiter", "_rx_open",
                 "_closed", "_light", "_dispatch")

    def __init__(self, link: "Link", conn_id: int, initiated_by_us: bool) -> None:
        self.link = link
        self.id = conn_id
        self.initiated_by_us = initiated_by_us
        self._rxq: Deque[Tuple[int, Any]] = collections.deque()
        self._waiter: Optional[asyncio.Future] = None
        self._rx_open = True
        self._closed = False
        self._light = False
        self._dispatch: Optional[RequestHandler] = None

    def __repr__(self) -> str:
        side = "local" if self.initiated_by_us else "peer"
        state = " closed" if self._closed else ""
        return f"<Conn {self.id} ({side}){state} on {self.link}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    async def send(self, msg: Message) -> None:
        """Send ``msg`` on this conn."""
        if self._closed:
            raise ConnClosedError(f"conn {self.id} is closed")
        await self.link._send(self.id, msg)

    async def recv(self) -> Message:
        """Wait for the next message of this conn.

        Raises :class:`DecodeError` for a packet that does not decode (the packet is
        consumed), :class:`ConnClosedError` once closed, and :class:`LinkClosedError`
        when the link is down and nothing is left to read.
        """
        if self._dispatch is not None:
            raise RuntimeError("recv() on a conn served by Link.serve()")
        while not self._rxq:
            if self._closed:
                raise ConnClosedError(f"conn {self.id} is closed")
            if self.link._down:
                raise self.link._down_error()
            self._waiter = self.link._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        code, body = self._rxq.popleft()
        return self.link._framing.decode_body(code, body)

    async def ask(self, request: Message) -> Message:
        """Send a request and return its answer.

        An Error answer raises :class:`NeoError` (except ACK answering an ``errreq``
        request, which is returned); another unexpected message raises
        :class:`UnexpectedAnswerError`.
        """
        _check_request(request)
        await self.send(request)
        return check_answer(request, await self.recv())

    def close(self) -> None:
        """Close the conn on our side. Unread packets are dropped; pending
        :meth:`recv` calls raise :class:`ConnClosedError`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._rx_open = False
        self._rxq.clear()
        self.link._forget(self)
        self._wake()

    def _deliver(self, code: int, body: Any) -> None:
        if self._dispatch is not None:
            self.link._spawn_dispatch(self, code, body)
            return
        self._rxq.append((code, body))
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Request:
    """A request received with :meth:`Link.recv1` (lightweight mode).

    Answer it with :meth:`reply`, then call :meth:`close` exactly once.
    """
    __slots__ = ("msg", "conn")

    def __init__(self, conn: Conn, msg: Message) -> None:
        self.conn = conn
        self.msg = msg

    @property
    def id(self) -> int:
        """The msg_id the request came on."""
        return self.conn.id

    def __repr__(self) -> str:
        return f"<Request {self.msg!r} on id {self.conn.id}>"

    async def reply(self, msg: Message) -> None:
        """Send ``msg`` (normally the answer or an Error) on the request's id."""
        if self.conn.closed:
            raise ConnClosedError(f"request on id {self.conn.id} is closed")
        await self.conn.link._send(self.conn.id, msg)

    def close(self) -> None:
        """Release the request's id. A later packet from the peer with this id
        starts a new request."""
        self.conn.close()


def _log_unsolicited_error(link: "Link", msg_id: int, error: Message) -> None:
    log.warning("%s: Error on id %d answers nothing we asked: %s", link, msg_id, error)


class Link:
    """One established link: the handshake is done and packets flow.

    Get one with :func:`dial` or from :func:`listen`. Usable as an async context
    manager (closes on exit).
    """

    def __init__(self, transport: asyncio.Transport, framing_: Framing, routing: str,
                 dialer: bool, on_unsolicited_error: Optional[UnsolicitedErrorCallback] = None
                 ) -> None:
        if routing not in ROUTINGS:
            raise ValueError(f"unknown routing {routing!r} (want one of {ROUTINGS})")
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._framing = framing_
        self._decoder = framing_.decoder()
        #: "N" or "M".
        self.encoding: str = framing_.name
        #: "parity" or "answerbit".
        self.routing: str = routing
        #: True on the dialing side (odd ids), False on the listening side (even ids).
        self.dialer: bool = dialer
        #: Called for each Error that answers nothing we asked (answerbit routing).
        self.on_unsolicited_error: UnsolicitedErrorCallback = (
            on_unsolicited_error or _log_unsolicited_error)
        #: Our socket address.
        self.local_address: Any = transport.get_extra_info("sockname")
        #: The peer's socket address.
        self.peer_address: Any = transport.get_extra_info("peername")
        self._answerbit = routing == "answerbit"
        self._our_parity = 1 if dialer else 0
        self._next_id = 1 if dialer else 2
        self._local: Dict[int, Conn] = {}
        self._remote: Dict[int, Conn] = {}
        self._keep_closed: "collections.OrderedDict[int, float]" = collections.OrderedDict()
        self._acceptq: Deque[Conn] = collections.deque()
        self._accept_event = asyncio.Event()
        self._accepting = True
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._tasks: Set[asyncio.Task] = set()
        self._serve_handler: Optional[RequestHandler] = None
        self._down = False
        self._down_reason = ""
        self._down_cause: Optional[BaseException] = None
        self._lost = self._loop.create_future()

    def __repr__(self) -> str:
        return (f"<Link {self.encoding}/{self.routing} {_fmt_addr(self.local_address)} - "
                f"{_fmt_addr(self.peer_address)}{' down' if self._down else ''}>")

    # -- state -----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the link is down (closed by us, by the peer, or on error)."""
        return self._down

    def _down_error(self) -> LinkClosedError:
        err = LinkClosedError(f"link {_fmt_addr(self.local_address)} - "
                              f"{_fmt_addr(self.peer_address)}: {self._down_reason}")
        err.__cause__ = self._down_cause
        return err

    def _shutdown(self, reason: str, cause: Optional[BaseException] = None) -> None:
        """Mark the link down and wake everything waiting on it."""
        if self._down:
            return
        self._down = True
        self._down_reason = reason
        self._down_cause = cause
        for conn in (*self._local.values(), *self._remote.values()):
            conn._wake()
        self._accept_event.set()
        self._can_write.set()

    def close(self) -> None:
        """Close the link: queued output is flushed, then the connection closes.
        Pending operations raise :class:`LinkClosedError`. Idempotent."""
        self._shutdown("link is closed")
        self._transport.close()

    def abort(self) -> None:
        """Close the link at once, dropping queued output. Idempotent."""
        self._shutdown("link is closed (aborted)")
        self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the underlying connection is closed."""
        await asyncio.shield(self._lost)

    async def aclose(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close the link and wait until it is closed; abort it if flushing the
        queued output takes more than ``timeout`` seconds."""
        self.close()
        try:
            await asyncio.wait_for(self.wait_closed(), timeout)
        except asyncio.TimeoutError:
            self.abort()
            await self.wait_closed()

    async def __aenter__(self) -> "Link":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # -- conns -----------------------------------------------------------------

    def _alloc_id(self) -> int:
        for _ in range(1 << 31):
            conn_id = self._next_id
            self._next_id = (conn_id + 2) & 0xffffffff
            if conn_id not in self._local:
                return conn_id
        raise NeoLinkError("too many open connections")

    def new_conn(self) -> Conn:
        """Open a new conn initiated by us (nothing is sent until its first packet)."""
        if self._down:
            raise self._down_error()
        conn = Conn(self, self._alloc_id(), True)
        self._local[conn.id] = conn
        return conn

    async def accept_one(self) -> Conn:
        """Wait for the next conn opened by the peer.

        Raises :class:`LinkClosedError` when the link is down, and
        :class:`NeoLinkError` after :meth:`close_accept`.
        """
        while not self._acceptq:
            if self._down:
                raise self._down_error()
            if not self._accepting:
                raise NeoLinkError("link does not accept connections (close_accept was called)")
            self._accept_event.clear()
            await self._accept_event.wait()
        return self._acceptq.popleft()

    async def accept(self) -> AsyncIterator[Conn]:
        """Iterate over the conns opened by the peer until the link goes down."""
        while True:
            try:
                conn = await self.accept_one()
            except NeoLinkError:
                return
            yield conn

    def close_accept(self) -> None:
        """Stop accepting conns: new ones and those not yet accepted get
        ``Error(PROTOCOL_ERROR, "connection refused")``. Idempotent."""
        if not self._accepting:
            return
        self._accepting = False
        while self._acceptq:
            conn = self._acceptq.popleft()
            for code, _ in conn._rxq:
                self._refuse(conn.id, code, "connection refused")
            conn._light = True
            conn.close()
        self._accept_event.set()

    def _forget(self, conn: Conn) -> None:
        table = self._local if conn.initiated_by_us else self._remote
        if table.get(conn.id) is conn:
            del table[conn.id]
        if not conn.initiated_by_us and not conn._light and not self._down:
            self._prune_keep_closed()
            self._keep_closed[conn.id] = self._loop.time() + KEEP_CLOSED_SECONDS

    def _prune_keep_closed(self) -> None:
        keep, now = self._keep_closed, self._loop.time()
        while keep:
            conn_id, deadline = next(iter(keep.items()))
            if deadline > now:
                break
            del keep[conn_id]

    # -- lightweight mode ------------------------------------------------------

    async def send1(self, msg: Message) -> None:
        """Send ``msg`` alone on a fresh id (a notification; no answer is awaited)."""
        if self._down:
            raise self._down_error()
        await self._send(self._alloc_id(), msg)

    async def ask1(self, request: Message) -> Message:
        """Send ``request`` on a fresh id and return its answer (see :meth:`Conn.ask`)."""
        _check_request(request)
        conn = self.new_conn()
        conn._light = True
        try:
            return await conn.ask(request)
        finally:
            conn.close()

    async def recv1(self) -> Request:
        """Wait for the next conn opened by the peer and return its first message
        as a :class:`Request`. Later packets on that id are answered with
        ``Error(PROTOCOL_ERROR, "connection closed")``."""
        conn = await self.accept_one()
        conn._light = True
        try:
            msg = await conn.recv()
        except BaseException:
            conn.close()
            raise
        conn._rx_open = False
        while conn._rxq:
            code, _ = conn._rxq.popleft()
            self._refuse(conn.id, code, "connection closed")
        return Request(conn, msg)

    # -- serving ---------------------------------------------------------------

    async def serve(self, handler: RequestHandler) -> None:
        """Call ``await handler(conn, msg)`` for every message the peer sends on
        conns it opens, each in its own task, until the link goes down.

        Instead of queueing conns for :meth:`accept`, every incoming packet gets a
        short-lived :class:`Conn` naming its id, to reply on; nothing is kept per
        conn, so serving any number of conns (e.g. lightweight-mode requests, one
        id each) takes memory only for the requests in progress. A packet that
        does not decode is answered with ``Error(PROTOCOL_ERROR, ...)`` unless it
        is an answer itself. Returns once the link is down and the running
        handlers have finished.
        """
        if self._serve_handler is not None:
            raise RuntimeError("serve() is already running on this link")
        self._serve_handler = handler
        try:
            while self._acceptq:
                conn = self._acceptq.popleft()
                conn._dispatch = handler
                while conn._rxq:
                    code, body = conn._rxq.popleft()
                    self._spawn_dispatch(conn, code, body)
            await asyncio.shield(self._lost)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self._serve_handler = None

    def _spawn_dispatch(self, conn: Conn, code: int, body: Any) -> None:
        task = self._loop.create_task(self._dispatch_one(conn, code, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch_one(self, conn: Conn, code: int, body: Any) -> None:
        try:
            msg = self._framing.decode_body(code, body)
        except DecodeError as e:
            log.warning("%s: malformed packet on id %d: %s", self, conn.id, e)
            if not code & ANSWER_BIT and not conn.closed:
                await self._send_quietly(conn.id, _error_packet(f"malformed packet: {e}"))
            return
        handler = conn._dispatch
        assert handler is not None
        try:
            await handler(conn, msg)
        except (LinkClosedError, ConnClosedError):
            pass
        except Exception:
            log.exception("%s: handler failed on %r", self, msg)

    async def _send_quietly(self, conn_id: int, msg: Message) -> None:
        try:
            await self._send(conn_id, msg)
        except LinkClosedError:
            pass

    # -- output ----------------------------------------------------------------

    async def _send(self, conn_id: int, msg: Message) -> None:
        data = self._framing.encode(conn_id, msg)
        self._write(data)
        while not self._can_write.is_set():
            await self._can_write.wait()
            if self._down:
                raise self._down_error()

    def _write(self, data: bytes) -> None:
        if self._down:
            raise self._down_error()
        self._transport.write(data)

    def _refuse(self, conn_id: int, code: int, text: str) -> None:
        """Answer a packet we cannot take with an Error, unless it is an Error."""
        if code == ERROR_CODE:
            log.debug("%s: dropping Error on id %d (%s)", self, conn_id, text)
            return
        if not self._down:
            self._write(self._framing.encode(conn_id, _error_packet(text)))

    def _pause_writing(self) -> None:
        self._can_write.clear()

    def _resume_writing(self) -> None:
        self._can_write.set()

    # -- input -----------------------------------------------------------------

    def _data_received(self, data: bytes) -> None:
        if self._down:
            return
        try:
            packets = self._decoder.feed(data)
        except FramingError as e:
            log.warning("%s: %s", self, e)
            self._shutdown(f"malformed stream: {e}", e)
            self._transport.abort()
            return
        for pkt in packets:
            self._route(pkt.msg_id, pkt.code, pkt.body)

    def _connection_lost(self, exc: Optional[BaseException]) -> None:
        reason = "peer closed the connection" if exc is None else f"connection lost: {exc}"
        pending = self._decoder.pending
        if pending:
            reason += f" in the middle of a packet ({pending} bytes received)"
        self._shutdown(reason, exc)
        if not self._lost.done():
            self._lost.set_result(None)

    def _route(self, msg_id: int, code: int, body: Any) -> None:
        if self._answerbit:
            if code & ANSWER_BIT:
                conn = self._local.get(msg_id)
                if conn is not None:
                    conn._deliver(code, body)
                elif code == ERROR_CODE:
                    self._unsolicited_error(msg_id, body)
                else:
                    log.debug("%s: dropping answer %#06x on unknown id %d", self, code, msg_id)
                return
        elif msg_id & 1 == self._our_parity:
            conn = self._local.get(msg_id)
            if conn is not None:
                conn._deliver(code, body)
            else:
                self._refuse(msg_id, code, "connection closed")
            return
        self._route_peer(msg_id, code, body)

    def _route_peer(self, msg_id: int, code: int, body: Any) -> None:
        conn = self._remote.get(msg_id)
        if conn is not None:
            if conn._rx_open:
                conn._deliver(code, body)
            else:
                self._refuse(msg_id, code, "connection closed")
            return
        if self._keep_closed:
            self._prune_keep_closed()
            if msg_id in self._keep_closed:
                self._refuse(msg_id, code, "connection closed")
                return
        if not self._accepting:
            self._refuse(msg_id, code, "connection refused")
            return
        conn = Conn(self, msg_id, False)
        if self._serve_handler is not None:
            conn._light = True
            conn._dispatch = self._serve_handler
            self._spawn_dispatch(conn, code, body)
            return
        self._remote[msg_id] = conn
        conn._rxq.append((code, body))
        self._acceptq.append(conn)
        self._accept_event.set()

    def _unsolicited_error(self, msg_id: int, body: Any) -> None:
        try:
            error = self._framing.decode_body(ERROR_CODE, body)
        except DecodeError as e:
            log.warning("%s: malformed Error on unknown id %d: %s", self, msg_id, e)
            return
        try:
            self.on_unsolicited_error(self, msg_id, error)
        except Exception:
            log.exception("%s: on_unsolicited_error callback failed", self)


def _fmt_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr)


# -- handshake and connection setup ---------------------------------------------

LinkCallback = Callable[[Optional[Link], Optional[BaseException]], None]


class _LinkProtocol(asyncio.Protocol):
    """asyncio protocol: runs the handshake, then hands the stream to a Link."""

    def __init__(self, encoding: Optional[str], routing: Optional[str], dialer: bool,
                 on_done: LinkCallback, timeout: float,
                 on_unsolicited_error: Optional[UnsolicitedErrorCallback]) -> None:
        self._encoding = encoding
        self._routing = routing
        self._dialer = dialer
        self._on_done = on_done
        self._timeout = timeout
        self._on_unsolicited_error = on_unsolicited_error
        self._transport: Optional[asyncio.Transport] = None
        self._buf = bytearray()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._paused = False
        self._finished = False
        self.link: Optional[Link] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._encoding is not None:
            transport.write(framing(self._encoding).handshake)
        self._timer = asyncio.get_running_loop().call_later(
            self._timeout, self._fail, HandshakeError(
                f"no handshake from the peer within {self._timeout:g}s"))

    def data_received(self, data: bytes) -> None:
        if self.link is not None:
            self.link._data_received(data)
            return
        if self._finished:
            return
        self._buf += data
        try:
            enc = classify_handshake(bytes(self._buf), self._encoding)
        except HandshakeError as e:
            self._fail(e)
            return
        if enc is None:
            return
        assert self._transport is not None
        fr = framing(enc)
        if self._encoding is None:
            self._transport.write(fr.handshake)
        rest = bytes(self._buf[len(fr.handshake):])
        self._buf.clear()
        link = Link(self._transport, fr, self._routing or DEFAULT_ROUTING[enc], self._dialer,
                    self._on_unsolicited_error)
        if self._paused:
            link._pause_writing()
        self.link = link
        self._finish(link, None)
        if rest:
            link._data_received(rest)

    def _finish(self, link: Optional[Link], exc: Optional[BaseException]) -> None:
        if self._finished:
            return
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
        self._on_done(link, exc)

    def _fail(self, exc: BaseException) -> None:
        if self._finished:
            return
        if self._transport is not None:
            self._transport.close()
        self._finish(None, exc)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.link is not None:
            self.link._connection_lost(exc)
            return
        err = HandshakeError("peer closed the connection during the handshake"
                             + (f": {exc}" if exc else ""))
        err.__cause__ = exc
        self._fail(err)

    def pause_writing(self) -> None:
        self._paused = True
        if self.link is not None:
            self.link._pause_writing()

    def resume_writing(self) -> None:
        self._paused = False
        if self.link is not None:
            self.link._resume_writing()


def _check_params(encoding: str, routing: Optional[str], allow_auto: bool) -> Optional[str]:
    if routing is not None and routing not in ROUTINGS:
        raise ValueError(f"unknown routing {routing!r} (want one of {ROUTINGS})")
    if allow_auto and encoding.lower() == "auto":
        return None
    return framing(encoding).name


async def dial(host: str, port: int, encoding: str = "N", routing: Optional[str] = None, *,
               timeout: float = HANDSHAKE_TIMEOUT,
               on_unsolicited_error: Optional[UnsolicitedErrorCallback] = None) -> Link:
    """Connect to ``host:port`` and return the link once the handshake is done.

    ``encoding`` is ``"N"`` or ``"M"``; ``routing`` defaults to ``"parity"`` for N
    and ``"answerbit"`` for M. Raises ``OSError`` if the connection fails,
    ``asyncio.TimeoutError`` if connecting takes more than ``timeout`` seconds,
    and :class:`HandshakeError` if the peer's handshake is not ours or does not
    come within ``timeout`` seconds.
    """
    enc = _check_params(encoding, routing, allow_auto=False)
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def on_done(link: Optional[Link], exc: Optional[BaseException]) -> None:
        if done.done():
            if link is not None:
                link.abort()
        elif exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(link)

    transport, _ = await asyncio.wait_for(loop.create_connection(
        lambda: _LinkProtocol(enc, routing, True, on_done, timeout, on_unsolicited_error),
        host, port), timeout)
    try:
        return await done
    except BaseException:
        transport.abort()
        raise


LinkHandler = Callable[[Link], Awaitable[None]]
HandshakeErrorCallback = Callable[[Any, BaseException], None]


def _log_handshake_error(peer: Any, exc: BaseException) -> None:
    log.warning("rejected connection from %s: %s", _fmt_addr(peer), exc)


class Listener:
    """A listening socket that hands out links (see :func:`listen`)."""

    def __init__(self, encoding: Optional[str], routing: Optional[str],
                 handler: Optional[LinkHandler], handshake_timeout: float,
                 on_unsolicited_error: Optional[UnsolicitedErrorCallback],
                 on_handshake_error: Optional[HandshakeErrorCallback]) -> None:
        self._encoding = encoding
        self._routing = routing
        self._handler = handler
        self._timeout = handshake_timeout
        self._on_unsolicited_error = on_unsolicited_error
        self._on_handshake_error = on_handshake_error or _log_handshake_error
        self._server: Optional[asyncio.AbstractServer] = None
        self._links: Set[Link] = set()
        self._tasks: Set[asyncio.Task] = set()
        self._queue: Deque[Link] = collections.deque()
        self._queue_event = asyncio.Event()
        self._closed = False

    async def _start(self, host: Optional[str], port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host, port)

    def _protocol(self) -> _LinkProtocol:
        proto: _LinkProtocol

        def on_done(link: Optional[Link], exc: Optional[BaseException]) -> None:
            if exc is not None or link is None:
                peer = proto._transport.get_extra_info("peername") if proto._transport else None
                self._on_handshake_error(peer, exc or HandshakeError("no link"))
            else:
                self._add_link(link)

        proto = _LinkProtocol(self._encoding, self._routing, False, on_done, self._timeout,
                              self._on_unsolicited_error)
        return proto

    def _add_link(self, link: Link) -> None:
        if self._closed:
            link.abort()
            return
        self._links.add(link)
        link._lost.add_done_callback(lambda _: self._links.discard(link))
        if self._handler is not None:
            task = asyncio.get_running_loop().create_task(self._run_handler(link))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._queue.append(link)
            self._queue_event.set()

    async def _run_handler(self, link: Link) -> None:
        assert self._handler is not None
        try:
            await self._handler(link)
        except LinkClosedError:
            pass
        except Exception:
            log.exception("%s: link handler failed", link)
        finally:
            link.close()

    @property
    def address(self) -> Tuple[str, int]:
        """The (host, port) the listener is bound to (the first socket's)."""
        assert self._server is not None
        return self._server.sockets[0].getsockname()[:2]

    @property
    def links(self) -> List[Link]:
        """The links currently established through this listener."""
        return list(self._links)

    async def accept(self) -> Link:
        """Wait for the next link (only when :func:`listen` got no handler)."""
        if self._handler is not None:
            raise RuntimeError("accept() on a listener with a handler")
        while not self._queue:
            if self._closed:
                raise LinkClosedError("listener is closed")
            self._queue_event.clear()
            await self._queue_event.wait()
        return self._queue.popleft()

    def close(self) -> None:
        """Stop listening and close every link of this listener."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.close()
        self._queue_event.set()

    async def wait_closed(self) -> None:
        """Wait until the listener and its links are closed and handlers are done."""
        if self._server is not None:
            await self._server.wait_closed()
        for link in list(self._links):
            await link.aclose()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def serve_forever(self) -> None:
        """Wait until the listener is closed (or the awaiting task is cancelled)."""
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> "Listener":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()


async def listen(host: Optional[str], port: int, encoding: str = "auto",
                 handler: Optional[LinkHandler] = None, routing: Optional[str] = None, *,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 on_unsolicited_error: Optional[UnsolicitedErrorCallback] = None,
                 on_handshake_error: Optional[HandshakeErrorCallback] = None) -> Listener:
    """Listen on ``host:port`` (port 0 picks a free one; see :attr:`Listener.address`).

    ``encoding`` is ``"N"``, ``"M"`` or ``"auto"``: an auto listener reads the
    peer's handshake first and answers in the same encoding; a fixed one sends its
    handshake at once. For every link, ``await handler(link)`` runs in its own task
    and the link is closed when it returns; without a handler, take links with
    :meth:`Listener.accept`. Connections whose handshake fails are closed and
    reported to ``on_handshake_error(peer_address, exc)`` (default: a log warning).
    """
    enc = _check_params(encoding, routing, allow_auto=True)
    listener = Listener(enc, routing, handler, handshake_timeout, on_unsolicited_error,
                        on_handshake_error)
    await listener._start(host, port)
    return listener

