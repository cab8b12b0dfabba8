"""Links: many conns multiplexed over one TCP (or TLS) connection, with asyncio.

A :class:`Link` carries packets ``(msg_id, msg_code, args)``; the msg_id names a
*conn* (a stream, like an HTTP/2 stream id). The dialer allocates odd ids
(1, 3, 5, ...) and the listener even ids (2, 4, ...).

Incoming packets are routed in one of two ways (``routing``):

``"parity"`` (default for N)
    An id of our parity belongs to a conn we opened; an unknown one is answered
    with ``Error(PROTOCOL_ERROR, "connection closed")``. An id of the peer's
    parity opens a new incoming conn (see :meth:`Link.accept`) the first time it
    is seen, and is answered "connection closed" once that conn is closed. Like
    neolink's Go ``neonet``.

``"answerbit"`` (default for M; how NEO/py routes)
    A packet whose code has the answer bit (0x8000) belongs to a conn we opened;
    so do ``AddObject`` and ``AddTransaction`` when their id is one of our open
    conns (NEO/py streams them on the id of the request that asked for them).
    An answer for an unknown id is dropped, an unknown-id Error goes to
    :attr:`Link.on_unsolicited_error`, and nothing is ever sent back on an id of
    ours. Any other packet belongs to the peer's id space: a new id opens a new
    incoming conn. This works with unpatched NEO/py, whose ids 0, 1, 2...
    overlap ours.

No packet opens or closes a conn: a conn starts with its first packet and ends
when both sides stop using it. Two styles of use:

* full mode: ``conn = link.new_conn()``, then ``send``/``recv``/``ask`` on it as
  long as needed; the peer gets it from ``await link.accept()``;
* lightweight mode: one fresh id per request: :meth:`Link.send1`,
  :meth:`Link.ask1`, and :meth:`Link.recv1` on the other side.

Receiving is bounded as in ``neonet`` (see :class:`Config`): what the peer sent
and the application has not taken yet is limited per conn and per link, and
the number of peer-opened conns waiting to be accepted is limited too. When the
link bound is reached and nobody waits for a packet, the link stops reading
from the socket until the application catches up, so a fast sender is slowed
down by TCP instead of filling memory.

When the link goes down (peer gone, malformed stream, :meth:`Link.close`), every
pending and later operation raises :class:`LinkClosedError`.

Every object here belongs to the event loop that created it and is not thread
safe; any number of tasks of that loop may use a link and its conns at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import catalog
from .catalog import Message
from .errors import (ConnClosedError, ConnOverflowError, DecodeError, FramingError,
                     HandshakeError, LinkClosedError, NeoError, NeoLinkError,
                     PlainPeerError, UnexpectedAnswerError)
from .framing import TLS_HANDSHAKE_BYTE, Framing, RawPacket, classify_handshake, framing
from .schema import ANSWER_BIT, ERROR_CODE

log = logging.getLogger("neolinkpy")

#: Routing modes of a link.
ROUTINGS = ("parity", "answerbit")
#: Routing used when none is given, per encoding.
DEFAULT_ROUTING = {"N": "parity", "M": "answerbit"}
#: Default time allowed for connecting and for the handshakes (TLS and NEO), in seconds.
HANDSHAKE_TIMEOUT = 10.0
#: Default time :meth:`Link.aclose` lets queued output drain before aborting.
CLOSE_TIMEOUT = 5.0
#: Default bound of the unread bytes of one conn (as neonet's ConnRecvBuffer).
CONN_RECV_BUFFER = 16 << 20
#: Default bound of the unread bytes of all conns of a link (neonet's LinkRecvBuffer).
LINK_RECV_BUFFER = 64 << 20
#: Default bound of the peer-opened conns waiting to be accepted (neonet's AcceptBacklog).
ACCEPT_BACKLOG = 1024
#: TCP keepalive as NEO/py sets it: idle 60 s, then 3 probes 10 s apart.
TCP_KEEPALIVE = (60, 10, 3)

#: ``handler(conn, msg)`` coroutine for :meth:`Link.serve`.
RequestHandler = Callable[["Conn", Message], Awaitable[None]]
#: ``callback(link, msg_id, error)`` for Error packets that answer nothing we asked.
UnsolicitedErrorCallback = Callable[["Link", int, Message], None]

# Looked up by name: a catalog built from another schema may lack them.
_ADD_CODES = frozenset(getattr(catalog, name).msg_code for name in ("AddObject", "AddTransaction")
                       if hasattr(catalog, name))
_PING_CODE = catalog.Ping.msg_code if hasattr(catalog, "Ping") else -1
_REQUEST_KINDS = ("request", "errreq")


@dataclass(frozen=True)
class Config:
    """Receive bounds and liveness settings of a link; the defaults are neonet's.

    ``conn_recv_buffer``: bytes queued for one conn that its reader has not taken
    yet. A conn that overflows it is aborted alone: its receivers get
    :class:`ConnOverflowError` and the peer gets ``Error(PROTOCOL_ERROR,
    "receive queue overflow")`` on its id (never on an id of ours under answer-bit
    routing, where the peer would take it for an answer: then it is only counted
    in :attr:`LinkStats.unreported_overflows`). A packet arriving for an empty
    queue is always accepted.

    ``link_recv_buffer``: bytes queued for all conns of the link (including
    conns waiting to be accepted and packets :meth:`Link.serve` has not
    decoded yet). When it is reached the link stops reading from the socket,
    unless some receiver waits for a packet: then it reads on, and a conn whose
    packet would exceed the bound is aborted as for ``conn_recv_buffer``. The
    worst case is thus ``link_recv_buffer`` plus one packet per conn.

    ``accept_backlog``: peer-opened conns waiting for :meth:`Link.accept` or
    :meth:`Link.recv1` (or requests being handled by :meth:`Link.serve`).
    Beyond it, a request gets ``Error(PROTOCOL_ERROR, "connection refused")``;
    any other packet cannot be refused and takes the link down.

    ``keepalive``: if positive, a Ping is sent after nothing arrived for that
    many seconds, and the link goes down if its Pong does not come within
    ``keepalive_timeout``. TCP keepalive (60 s idle, 10 s interval, 3 probes,
    as NEO/py) is always on.

    ``answer_ping``: answer a Ping on a new peer id with Pong at once instead of
    handing it to the application, as NEO/py's default handler does.
    """
    conn_recv_buffer: int = CONN_RECV_BUFFER
    link_recv_buffer: int = LINK_RECV_BUFFER
    accept_backlog: int = ACCEPT_BACKLOG
    keepalive: float = 0.0
    keepalive_timeout: float = 30.0
    answer_ping: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.conn_recv_buffer <= self.link_recv_buffer:
            raise ValueError("config: need 0 < conn_recv_buffer <= link_recv_buffer")
        if self.accept_backlog <= 0:
            raise ValueError("config: accept_backlog must be positive")
        if self.keepalive < 0 or (self.keepalive > 0 and self.keepalive_timeout <= 0):
            raise ValueError("config: keepalive needs a positive keepalive_timeout")


DEFAULT_CONFIG = Config()


@dataclass
class LinkStats:
    """Counters of one link (read them from :attr:`Link.stats`)."""
    #: Packets received.
    packets_in: int = 0
    #: Bytes currently received but not yet taken by the application.
    queued: int = 0
    #: Highest value ``queued`` reached.
    max_queued: int = 0
    #: Times reading from the socket was paused because the link bound was reached.
    pauses: int = 0
    #: Conns aborted for overflowing a receive bound.
    overflows: int = 0
    #: Of those, conns of ours under answer-bit routing, not reported to the peer.
    unreported_overflows: int = 0
    #: Highest number of peer-opened conns waiting to be accepted at once.
    max_backlog: int = 0
    #: Requests refused with "connection refused".
    refused: int = 0
    #: Answers dropped because they matched no conn (answer-bit routing).
    dropped_answers: int = 0


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
    (initiated by the peer). Any number of tasks of the link's event loop may
    :meth:`send`, :meth:`recv` and :meth:`ask` at once: receivers get the
    packets in the order they called :meth:`recv`, so concurrent :meth:`ask`
    calls on one conn only make sense when the peer answers in order. NEO has
    no close frame: :meth:`close` only ends our use of the id; a conn also
    ends when its link goes down.
    """
    __slots__ = ("link", "id", "initiated_by_us", "_rxq", "_rxbytes", "_waiters",
                 "_rx_open", "_closed", "_error", "_light", "_dispatch")

    def __init__(self, link: Link, conn_id: int, initiated_by_us: bool) -> None:
        self.link = link
        self.id = conn_id
        self.initiated_by_us = initiated_by_us
        self._rxq: collections.deque[tuple[int, Any, int]] = collections.deque()
        self._rxbytes = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._rx_open = True
        self._closed = False
        self._error: NeoLinkError | None = None
        self._light = False
        self._dispatch: RequestHandler | None = None

    def __repr__(self) -> str:
        side = "local" if self.initiated_by_us else "peer"
        state = " closed" if self._closed else ""
        return f"<Conn {self.id} ({side}){state} on {self.link}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    async def send(self, msg: Message) -> None:
        """Send ``msg`` on this conn; wait while the link's output is over its
        high-water mark (the transport's flow control)."""
        if self._closed:
            raise ConnClosedError(f"conn {self.id} is closed")
        await self.link._send(self.id, msg)

    async def recv(self) -> Message:
        """Wait for the next message of this conn.

        Raises :class:`DecodeError` for a packet that does not decode (the packet is
        consumed), :class:`ConnOverflowError` once the conn was aborted for
        overflowing its receive bound, :class:`ConnClosedError` once closed, and
        :class:`LinkClosedError` when the link is down and nothing is left to read.
        Cancelling a waiting recv loses no packet.
        """
        if self._dispatch is not None:
            raise RuntimeError("recv() on a conn served by Link.serve()")
        link = self.link
        while True:
            if self._rxq:
                code, body, size = self._rxq.popleft()
                self._rxbytes -= size
                link._taken(size)
                return link._decode(code, body)
            if self._error is not None:
                raise self._error
            if self._closed:
                raise ConnClosedError(f"conn {self.id} is closed")
            if link._down:
                raise link._down_error()
            # link._wait, inlined: this is the path of every round trip
            fut = link._loop.create_future()
            self._waiters.append(fut)
            link._hungry += 1
            if link._paused:
                link._maybe_resume()
            try:
                item = await fut
            except asyncio.CancelledError:
                link._cancelled(fut, self._waiters, self._requeue)
                raise
            if item is not None:
                return link._decode(item[0], item[1])

    async def ask(self, request: Message) -> Message:
        """Send a request and return its answer (the next message of this conn).

        An Error answer raises :class:`NeoError` (except ACK answering an ``errreq``
        request, which is returned); another unexpected message raises
        :class:`UnexpectedAnswerError`.
        """
        if type(request).answer is None:
            _check_request(request)
        if self._closed:
            raise ConnClosedError(f"conn {self.id} is closed")
        link = self.link
        if link._down:
            raise link._down_error()
        link._transport.write(link._framing.encode(self.id, request))
        if not link._can_write.is_set():
            await link._drain()
        answer = await self.recv()
        if type(answer) is type(request).answer:
            return answer
        return check_answer(request, answer)

    def close(self) -> None:
        """Close the conn on our side. Unread packets are dropped; pending
        :meth:`recv` calls raise :class:`ConnClosedError`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._rx_open = False
        self._drop_queue()
        self.link._forget(self)
        self._wake_all()

    def _drop_queue(self) -> None:
        if self._rxbytes:
            self.link._taken(self._rxbytes)
            self._rxbytes = 0
        self._rxq.clear()

    def _deliver(self, code: int, body: Any, size: int) -> None:
        if self._dispatch is not None:
            self.link._spawn_dispatch(self, code, body, size)
            return
        link = self.link
        if self._waiters and link._give(self._waiters, (code, body)):
            return
        if self._rxq and (self._rxbytes + size > link.config.conn_recv_buffer
                          or link.stats.queued + size > link.config.link_recv_buffer):
            self._overflow()
            return
        self._rxq.append((code, body, size))
        self._rxbytes += size
        link._queue(size)

    def _requeue(self, item: tuple[int, Any]) -> None:
        """Put back a packet given to a recv that was cancelled before taking it."""
        if self._closed or self._error is not None:
            return
        if self._waiters and self.link._give(self._waiters, item):
            return
        self._rxq.appendleft((item[0], item[1], 0))   # counted as taken already

    def _overflow(self) -> None:
        link = self.link
        link.stats.overflows += 1
        self._error = ConnOverflowError(
            f"conn {self.id} aborted: receive queue overflow (more than "
            f"{link.config.conn_recv_buffer} bytes for the conn or "
            f"{link.config.link_recv_buffer} for the link not read)")
        self._rx_open = False
        self._drop_queue()
        if self.initiated_by_us and link._answerbit:
            link.stats.unreported_overflows += 1
        else:
            link._reply_error(self.id, "receive queue overflow")
        self._wake_all()

    def _wake_all(self) -> None:
        self.link._give_all(self._waiters)


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
        """Release the request's id."""
        self.conn.close()


def _log_unsolicited_error(link: Link, msg_id: int, error: Message) -> None:
    log.warning("%s: Error on id %d answers nothing we asked: %s", link, msg_id, error)


_WINDOW = 32768


class _IdWindow:
    """Which peer-opened ids were already used (parity routing), so that a late
    packet for a closed conn is refused instead of opening a new one.

    Peers allocate ids in increasing order (+2, modulo 2**32): keep the highest
    id seen and one slot per id for the ``_WINDOW`` ids below it; an id below
    the window is taken as long closed. Needs no timer and fixed memory.
    """
    __slots__ = ("top", "started", "bits")

    def __init__(self) -> None:
        self.top = 0
        self.started = False
        self.bits = bytearray(_WINDOW)

    def _offset(self, conn_id: int) -> int:
        d = (self.top - conn_id) & 0xffffffff
        if d >= 1 << 31:
            d -= 1 << 32
        return d // 2

    def seen(self, conn_id: int) -> bool:
        if not self.started:
            return False
        k = self._offset(conn_id)
        if k < 0:
            return False
        return k >= _WINDOW or self.bits[(conn_id >> 1) % _WINDOW] != 0

    def mark(self, conn_id: int) -> None:
        if not self.started:
            self.started, self.top = True, conn_id
        k = self._offset(conn_id)
        if k >= _WINDOW:
            return
        if k < 0:
            n = -k
            if n >= _WINDOW:
                self.bits = bytearray(_WINDOW)
            else:
                start = ((self.top >> 1) + 1) % _WINDOW
                end = start + n
                if end <= _WINDOW:
                    self.bits[start:end] = bytes(n)
                else:
                    self.bits[start:] = bytes(_WINDOW - start)
                    self.bits[:end - _WINDOW] = bytes(end - _WINDOW)
            self.top = conn_id
        self.bits[(conn_id >> 1) % _WINDOW] = 1


class Link:
    """One established link: the handshakes are done and packets flow.

    Get one with :func:`dial` or from :func:`listen`. Usable as an async context
    manager (:meth:`aclose` on exit). Any number of tasks of the event loop
    that made it may use it and its conns at once; it is not thread safe. Once
    down (:attr:`closed`), it stays down: every pending and later operation
    raises :class:`LinkClosedError`, and :meth:`wait_closed` returns once the
    connection is closed.
    """

    def __init__(self, transport: asyncio.Transport, framing_: Framing, routing: str,
                 dialer: bool, on_unsolicited_error: UnsolicitedErrorCallback | None = None,
                 config: Config | None = None) -> None:
        if routing not in ROUTINGS:
            raise ValueError(f"unknown routing {routing!r} (want one of {ROUTINGS})")
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._framing = framing_
        self._decoder = framing_.decoder()
        #: The receive bounds and keepalive settings.
        self.config: Config = config or DEFAULT_CONFIG
        #: Counters.
        self.stats = LinkStats()
        #: "N" or "M".
        self.encoding: str = framing_.name
        #: "parity" or "answerbit".
        self.routing: str = routing
        #: True on the dialing side (odd ids), False on the listening side (even ids).
        self.dialer: bool = dialer
        #: Called for each Error that answers nothing we asked.
        self.on_unsolicited_error: UnsolicitedErrorCallback = (
            on_unsolicited_error or _log_unsolicited_error)
        #: Our socket address.
        self.local_address: Any = transport.get_extra_info("sockname")
        #: The peer's socket address.
        self.peer_address: Any = transport.get_extra_info("peername")
        #: The TLS object of the connection (``ssl.SSLObject``), or None.
        self.tls: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        self._answerbit = routing == "answerbit"
        self._our_parity = 1 if dialer else 0
        self._next_id = 1 if dialer else 2
        self._local: dict[int, Conn] = {}
        self._remote: dict[int, Conn] = {}
        self._peer_ids = _IdWindow()
        self._acceptq: collections.deque[Conn] = collections.deque()
        self._accept_waiters: collections.deque[asyncio.Future] = collections.deque()
        self._accepting = True
        self._hungry = 0                  # futures waiting in recv/accept
        self._paused = False              # reading from the socket is paused
        self._held: collections.deque = collections.deque()   # parsed, not routed yet
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._tasks: set[asyncio.Task] = set()
        self._serve_handler: RequestHandler | None = None
        self._serving = 0                 # serve() dispatches in progress
        self._idle_waiter: asyncio.Future | None = None
        self._last_recv = self._loop.time()
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._down = False
        self._down_reason = ""
        self._down_cause: BaseException | None = None
        self._lost = self._loop.create_future()
        if self.config.keepalive > 0:
            self._arm_keepalive(self.config.keepalive)

    def __repr__(self) -> str:
        return (f"<Link {self.encoding}/{self.routing}{'/TLS' if self.tls else ''} "
                f"{_fmt_addr(self.local_address)} - "
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

    def _shutdown(self, reason: str, cause: BaseException | None = None) -> None:
        """Mark the link down and wake everything waiting on it."""
        if self._down:
            return
        self._down = True
        self._down_reason = reason
        self._down_cause = cause
        self._held.clear()
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
        for conn in (*self._local.values(), *self._remote.values()):
            conn._wake_all()
        self._give_all(self._accept_waiters)
        self._can_write.set()
        self._check_idle()

    def _fail(self, reason: str, cause: BaseException | None = None) -> None:
        """Take the link down on an error: the connection is dropped at once."""
        log.warning("%s: %s", self, reason)
        self._shutdown(reason, cause)
        self._transport.abort()

    def close(self) -> None:
        """Close the link: output already queued is flushed, then the connection
        closes. Pending operations raise :class:`LinkClosedError`. Idempotent."""
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
            async with asyncio.timeout(timeout):
                await self.wait_closed()
        except TimeoutError:
            self.abort()
            await self.wait_closed()

    async def shutdown(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Close the link gracefully, like neonet's ``Shutdown``: stop accepting
        (new conns from the peer are refused), wait until every open conn has been
        closed and every :meth:`serve` handler has returned, flush the output,
        then close. NEO has no close frames, so a conn the peer opened stays open
        until this side closes it. After ``timeout`` seconds the link is aborted.
        Returns True if the shutdown was graceful."""
        self.close_accept()
        graceful = True
        try:
            async with asyncio.timeout(timeout):
                if not self._down and not self._is_idle():
                    self._idle_waiter = self._loop.create_future()
                    await self._idle_waiter
                self.close()
                await self.wait_closed()
        except TimeoutError:
            graceful = False
            self.abort()
            await self.wait_closed()
        return graceful

    def _is_idle(self) -> bool:
        return not self._local and not self._remote and not self._serving

    def _check_idle(self) -> None:
        w = self._idle_waiter
        if w is not None and not w.done() and (self._down or self._is_idle()):
            w.set_result(None)

    async def __aenter__(self) -> Link:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _decode(self, code: int, body: Any) -> Message:
        try:
            return self._framing.decode_body(code, body)
        finally:
            if type(body) is memoryview:
                self._decoder.recycle(body)

    # -- waiting and receive bounds --------------------------------------------

    async def _wait(self, waiters: collections.deque[asyncio.Future],
                    requeue: Callable[[Any], None]) -> Any:
        """Wait in ``waiters`` (FIFO) for an item; None means "look again".

        Every future in a waiters deque counts in ``_hungry`` until it leaves the
        deque; an item given to a waiter cancelled before it ran goes back
        through ``requeue``, so that nothing is lost."""
        fut = self._loop.create_future()
        waiters.append(fut)
        self._hungry += 1
        if self._paused:
            self._maybe_resume()
        try:
            return await fut
        except asyncio.CancelledError:
            self._cancelled(fut, waiters, requeue)
            raise

    def _cancelled(self, fut: asyncio.Future, waiters: collections.deque[asyncio.Future],
                   requeue: Callable[[Any], None]) -> None:
        if not fut.cancelled():
            item = fut.result()
            if item is not None:
                requeue(item)
            return
        try:
            waiters.remove(fut)
            self._hungry -= 1
        except ValueError:
            pass

    def _give(self, waiters: collections.deque[asyncio.Future], item: Any) -> bool:
        """Give ``item`` to the first waiter not cancelled; False if there is none."""
        while waiters:
            fut = waiters.popleft()
            self._hungry -= 1
            if not fut.done():
                fut.set_result(item)
                return True
        return False

    def _give_all(self, waiters: collections.deque[asyncio.Future]) -> None:
        """Wake every waiter to look at the state again."""
        while waiters:
            fut = waiters.popleft()
            self._hungry -= 1
            if not fut.done():
                fut.set_result(None)

    def _queue(self, size: int) -> None:
        st = self.stats
        st.queued += size
        if st.queued > st.max_queued:
            st.max_queued = st.queued

    def _taken(self, size: int) -> None:
        self.stats.queued -= size
        if self._paused:
            self._maybe_resume()

    def _blocked(self, size: int) -> bool:
        """Whether a packet of ``size`` bytes must wait: it would take the link
        past its bound and no receiver is starving (then neonet's overflow rule
        applies instead)."""
        queued = self.stats.queued
        return (queued > 0 and queued + size > self.config.link_recv_buffer
                and not self._hungry)

    def _maybe_resume(self) -> None:
        if not self._paused or self._down:
            return
        if self._held:
            if self._blocked(self._held[0].size):
                return
            self._paused = False
            self._loop.call_soon(self._route_held)
            return
        if self.stats.queued >= self.config.link_recv_buffer and not self._hungry:
            return
        self._paused = False
        self._transport.resume_reading()

    def _route_held(self) -> None:
        held = self._held
        while held and not self._down and not self._paused:
            if self._blocked(held[0].size):
                self._pause()
                return
            self._route(*held.popleft())
        if not self._paused and not self._down:
            self._transport.resume_reading()

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            self.stats.pauses += 1
            self._transport.pause_reading()

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

    async def accept(self) -> Conn:
        """Wait for the next conn opened by the peer (the one whose first packet
        came first; concurrent callers are served in call order).

        Raises :class:`LinkClosedError` when the link is down, and
        :class:`NeoLinkError` after :meth:`close_accept`.
        """
        while True:
            if self._acceptq:
                return self._acceptq.popleft()
            if self._down:
                raise self._down_error()
            if not self._accepting:
                raise NeoLinkError("link does not accept connections (close_accept was called)")
            conn = await self._wait(self._accept_waiters, self._requeue_accept)
            if conn is not None:
                return conn

    def _requeue_accept(self, conn: Conn) -> None:
        if not (self._accept_waiters and self._give(self._accept_waiters, conn)):
            self._acceptq.appendleft(conn)

    async def incoming(self) -> AsyncIterator[Conn]:
        """Iterate over the conns opened by the peer (:meth:`accept` in a loop)
        until the link goes down or :meth:`close_accept` is called."""
        while True:
            try:
                conn = await self.accept()
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
            for code, _, _ in conn._rxq:
                self._refuse(conn.id, code, "connection refused")
            conn._light = True
            conn.close()
        self._give_all(self._accept_waiters)

    def _forget(self, conn: Conn) -> None:
        table = self._local if conn.initiated_by_us else self._remote
        if table.get(conn.id) is conn:
            del table[conn.id]
            if self._idle_waiter is not None:
                self._check_idle()

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
        conn = await self.accept()
        conn._light = True
        try:
            msg = await conn.recv()
        except BaseException:
            conn.close()
            raise
        conn._rx_open = False
        while conn._rxq:
            code, _, size = conn._rxq.popleft()
            conn._rxbytes -= size
            self._taken(size)
            self._refuse(conn.id, code, "connection closed")
        return Request(conn, msg)

    # -- serving ---------------------------------------------------------------

    async def serve(self, handler: RequestHandler) -> None:
        """Call ``await handler(conn, msg)`` for every message the peer sends on
        conns it opens, each in its own task, until the link goes down.

        Instead of queueing conns for :meth:`accept`, every incoming packet gets a
        short-lived :class:`Conn` naming its id, to reply on; nothing is kept per
        conn, so serving any number of conns (e.g. lightweight-mode requests, one
        id each) takes memory only for the requests in progress, of which there
        are at most ``config.accept_backlog`` (beyond, as for a full accept queue).
        A packet that does not decode is answered with ``Error(PROTOCOL_ERROR,
        ...)`` unless it is an answer itself. Returns once the link is down and the
        running handlers have finished.
        """
        if self._serve_handler is not None:
            raise RuntimeError("serve() is already running on this link")
        self._serve_handler = handler
        try:
            while self._acceptq:
                conn = self._acceptq.popleft()
                self._remote.pop(conn.id, None)
                conn._dispatch = handler
                conn._light = True
                while conn._rxq:
                    code, body, size = conn._rxq.popleft()
                    conn._rxbytes -= size
                    self._taken(size)
                    self._spawn_dispatch(conn, code, body, size)
            await asyncio.shield(self._lost)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self._serve_handler = None

    def _spawn_dispatch(self, conn: Conn, code: int, body: Any, size: int) -> None:
        self._serving += 1
        self._queue(size)
        task = self._loop.create_task(self._dispatch_one(conn, code, body, size))
        self._tasks.add(task)
        task.add_done_callback(self._dispatch_done)

    def _dispatch_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._serving -= 1
        if self._idle_waiter is not None:
            self._check_idle()

    async def _dispatch_one(self, conn: Conn, code: int, body: Any, size: int) -> None:
        try:
            msg = self._decode(code, body)
        except DecodeError as e:
            log.warning("%s: malformed packet on id %d: %s", self, conn.id, e)
            if not code & ANSWER_BIT and not conn.closed:
                await self._send_quietly(conn.id, _error_packet(f"malformed packet: {e}"))
            return
        finally:
            self._taken(size)
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

    # -- keepalive -------------------------------------------------------------

    def _arm_keepalive(self, delay: float) -> None:
        self._keepalive_timer = self._loop.call_later(delay, self._keepalive_check)

    def _keepalive_check(self) -> None:
        if self._down:
            return
        idle = self._loop.time() - self._last_recv
        if idle < self.config.keepalive:
            self._arm_keepalive(self.config.keepalive - idle)
            return
        task = self._loop.create_task(self._keepalive_ping())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keepalive_ping(self) -> None:
        timeout = self.config.keepalive_timeout
        try:
            async with asyncio.timeout(timeout):
                await self.ask1(catalog.Ping())
        except TimeoutError:
            self._fail(f"keepalive: peer did not answer Ping within {timeout:g}s")
            return
        except NeoLinkError:
            pass    # an Error answer still proves the peer alive; link down ends it
        if not self._down:
            self._arm_keepalive(self.config.keepalive)

    # -- output ----------------------------------------------------------------

    async def _send(self, conn_id: int, msg: Message) -> None:
        if self._down:
            raise self._down_error()
        self._transport.write(self._framing.encode(conn_id, msg))
        if not self._can_write.is_set():
            await self._drain()

    async def _drain(self) -> None:
        while not self._can_write.is_set():
            await self._can_write.wait()
        if self._down:
            raise self._down_error()

    def _reply_error(self, conn_id: int, text: str) -> None:
        """Send ``Error(PROTOCOL_ERROR, text)`` on ``conn_id`` without waiting."""
        if not self._down:
            self._transport.write(self._framing.encode(conn_id, _error_packet(text)))

    def _refuse(self, conn_id: int, code: int, text: str) -> None:
        """Answer a packet we cannot take with an Error, unless it is an Error."""
        if code == ERROR_CODE:
            log.debug("%s: dropping Error on id %d (%s)", self, conn_id, text)
            return
        self._reply_error(conn_id, text)

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
            self._fail(f"malformed stream: {e}", e)
            return
        if packets:
            self._packets_received(packets)

    def _buffer_updated(self, nbytes: int) -> None:
        if self._down:
            return
        try:
            packets = self._decoder.buffer_updated(nbytes)
        except FramingError as e:
            self._fail(f"malformed stream: {e}", e)
            return
        if packets:
            self._packets_received(packets)

    def _packets_received(self, packets: list[RawPacket]) -> None:
        self._last_recv = self._loop.time()
        if self._held:
            self._held.extend(packets)
            return
        route = self._route
        for i, pkt in enumerate(packets):
            if self._down:
                return
            if not self._hungry and self._blocked(pkt.size):
                self._held.extend(packets[i:])
                self._pause()
                return
            route(*pkt)
        if self.stats.queued >= self.config.link_recv_buffer and not self._hungry:
            self._pause()

    def _connection_lost(self, exc: BaseException | None) -> None:
        reason = "peer closed the connection" if exc is None else f"connection lost: {exc}"
        pending = self._decoder.pending
        if pending:
            reason += f" in the middle of a packet ({pending} bytes received)"
        self._shutdown(reason, exc)
        if not self._lost.done():
            self._lost.set_result(None)

    def _route(self, msg_id: int, code: int, body: Any, size: int) -> None:
        self.stats.packets_in += 1
        if self._answerbit:
            if code & ANSWER_BIT or (code in _ADD_CODES and msg_id in self._local):
                conn = self._local.get(msg_id)
                if conn is not None and conn._rx_open:
                    conn._deliver(code, body, size)
                elif code == ERROR_CODE:
                    self._unsolicited_error(msg_id, body)
                else:
                    self.stats.dropped_answers += 1
                return
        elif msg_id & 1 == self._our_parity:
            conn = self._local.get(msg_id)
            if conn is not None and conn._rx_open:
                conn._deliver(code, body, size)
            elif code == ERROR_CODE:
                self._unsolicited_error(msg_id, body)
            else:
                self._reply_error(msg_id, "connection closed")
            return
        self._route_peer(msg_id, code, body, size)

    def _route_peer(self, msg_id: int, code: int, body: Any, size: int) -> None:
        conn = self._remote.get(msg_id)
        if conn is not None:
            if conn._rx_open:
                conn._deliver(code, body, size)
            else:
                self._refuse(msg_id, code, "connection closed")
            return
        handler = self._serve_handler
        window = handler is None and not self._answerbit
        if window and self._peer_ids.seen(msg_id):
            self._refuse(msg_id, code, "connection closed")
            return
        if code == ERROR_CODE:
            self._unsolicited_error(msg_id, body)       # an Error never opens a conn
            return
        if window:
            self._peer_ids.mark(msg_id)
        if code == _PING_CODE and self.config.answer_ping:
            self._transport.write(self._framing.encode(msg_id, catalog.Pong()))
            return
        if not self._accepting:
            self.stats.refused += 1
            self._refuse(msg_id, code, "connection refused")
            return
        waiting = len(self._acceptq) + self._serving
        if waiting >= self.config.accept_backlog and not (
                handler is None and self._accept_waiters):
            self._backlog_full(msg_id, code)
            return
        conn = Conn(self, msg_id, False)
        if handler is not None:
            conn._light = True
            conn._dispatch = handler
            self._spawn_dispatch(conn, code, body, size)
            return
        self._remote[msg_id] = conn
        conn._rxq.append((code, body, size))
        conn._rxbytes += size
        self._queue(size)
        if self._accept_waiters and self._give(self._accept_waiters, conn):
            return
        self._acceptq.append(conn)
        if len(self._acceptq) > self.stats.max_backlog:
            self.stats.max_backlog = len(self._acceptq)

    def _backlog_full(self, msg_id: int, code: int) -> None:
        cls = catalog.PACKETS.get(code)
        kind = cls.kind if cls is not None else "request"
        if kind in _REQUEST_KINDS:
            self.stats.refused += 1
            self._reply_error(msg_id, "connection refused")
            return
        name = cls.__name__ if cls is not None else f"packet {code:#06x}"
        self._fail(f"accept backlog full ({self.config.accept_backlog} conns not accepted): "
                   f"cannot queue {name} on new id {msg_id}, and a {kind} cannot be refused")

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


# -- TLS --------------------------------------------------------------------------

@dataclass(frozen=True)
class TLSConfig:
    """TLS in NEO/py's model: TLS 1.2 or later, mutual authentication with
    certificates that must chain to the CA ``ca``, and, unless
    ``verify_hostname`` is set, no check of the peer's host name (NEO nodes are
    identified by certificate, not by address). Files are PEM. The same
    configuration serves dialing and listening. Certificates are checked with
    ``VERIFY_X509_STRICT``, as NEO/py does, so they need proper X.509v3
    extensions (basic constraints, key usage, key identifiers)."""
    ca: str
    cert: str
    key: str
    verify_hostname: bool = False

    def _context(self, purpose: int) -> ssl.SSLContext:
        ctx = ssl.SSLContext(purpose)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
        if purpose == ssl.PROTOCOL_TLS_CLIENT:
            ctx.check_hostname = self.verify_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        ctx.load_verify_locations(self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A context for dialing."""
        return self._context(ssl.PROTOCOL_TLS_CLIENT)

    def server_context(self) -> ssl.SSLContext:
        """A context for listening (client certificates required)."""
        return self._context(ssl.PROTOCOL_TLS_SERVER)


TLSArg = TLSConfig | ssl.SSLContext | None


# -- handshake and connection setup ---------------------------------------------

LinkCallback = Callable[[Link | None, BaseException | None], None]


def _set_tcp_keepalive(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM or sock.family == socket.AF_UNIX:
        return
    idle, interval, count = TCP_KEEPALIVE
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for opt, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval),
                           ("TCP_KEEPCNT", count)):
            if hasattr(socket, opt):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)
    except OSError as e:
        log.debug("cannot set TCP keepalive: %s", e)


class _LinkProtocol(asyncio.BufferedProtocol):
    """asyncio protocol: runs the NEO handshake, then hands the stream to a Link.

    Buffered: the transport receives (or TLS decrypts) straight into the
    buffers of the link's packet parser."""

    def __init__(self, encoding: str | None, routing: str | None, dialer: bool,
                 on_done: LinkCallback, timeout: float,
                 on_unsolicited_error: UnsolicitedErrorCallback | None,
                 config: Config | None) -> None:
        self._encoding = encoding
        self._routing = routing
        self._dialer = dialer
        self._on_done = on_done
        self._timeout = timeout
        self._on_unsolicited_error = on_unsolicited_error
        self._config = config
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._scratch = memoryview(bytearray(4096))    # until the handshake is done
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._finished = False
        self.link: Link | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        _set_tcp_keepalive(transport)
        if self._encoding is not None:
            transport.write(framing(self._encoding).handshake)
        self._timer = asyncio.get_running_loop().call_later(
            self._timeout, self._fail, HandshakeError(
                f"no handshake from the peer within {self._timeout:g}s"))

    def get_buffer(self, sizehint: int) -> memoryview:
        link = self.link
        if link is not None:
            return link._decoder.get_buffer()
        return self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        link = self.link
        if link is not None:
            link._buffer_updated(nbytes)
            return
        self._handshake_data(bytes(self._scratch[:nbytes]))

    def _handshake_data(self, data: bytes) -> None:
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
                    self._on_unsolicited_error, self._config)
        if self._paused:
            link._pause_writing()
        self.link = link
        self._finish(link, None)
        if rest:
            link._data_received(rest)

    def _finish(self, link: Link | None, exc: BaseException | None) -> None:
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
            self._transport.abort()
        self._finish(None, exc)

    def connection_lost(self, exc: Exception | None) -> None:
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


def _check_params(encoding: str, routing: str | None, allow_auto: bool) -> str | None:
    if routing is not None and routing not in ROUTINGS:
        raise ValueError(f"unknown routing {routing!r} (want one of {ROUTINGS})")
    if allow_auto and encoding.lower() == "auto":
        return None
    return framing(encoding).name


def _tls_error(where: str, exc: BaseException) -> HandshakeError:
    hint = ""
    if isinstance(exc, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(exc):
        hint = " (the peer does not speak TLS?)"
    elif isinstance(exc, (ConnectionResetError, ssl.SSLEOFError)):
        hint = " (the peer closed the connection: does it speak TLS, and accept our certificate?)"
    err = HandshakeError(f"TLS handshake with {where} failed: {exc}{hint}")
    err.__cause__ = exc
    return err


async def _dial(host: str, port: int, encoding: str, routing: str | None, timeout: float,
                on_unsolicited_error: UnsolicitedErrorCallback | None, config: Config | None,
                tls: TLSArg) -> Link:
    enc = _check_params(encoding, routing, allow_auto=False)
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def on_done(link: Link | None, exc: BaseException | None) -> None:
        if done.done():
            if link is not None:
                link.abort()
        elif exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(link)

    kw: dict[str, Any] = {}
    if tls is not None:
        ctx = tls.client_context() if isinstance(tls, TLSConfig) else tls
        kw = dict(ssl=ctx, server_hostname=host if ctx.check_hostname else "",
                  ssl_handshake_timeout=timeout)

    def factory() -> _LinkProtocol:
        return _LinkProtocol(enc, routing, True, on_done, timeout, on_unsolicited_error, config)

    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(factory, host, port, **kw)
    except (ssl.SSLError, ConnectionResetError) as e:
        if tls is None:
            raise
        raise _tls_error(_fmt_addr((host, port)), e) from e
    try:
        return await done
    except BaseException:
        transport.abort()
        raise


_T = TypeVar("_T", "Link", "Listener")


class Opening(Generic[_T]):
    """What :func:`dial` and :func:`listen` return: await it for the link (or
    listener), or use it in ``async with`` to also close that on exit. It can be
    used once."""
    __slots__ = ("_coro", "_obj")

    def __init__(self, coro: Coroutine[Any, Any, _T]) -> None:
        self._coro = coro
        self._obj: _T | None = None

    def __await__(self) -> Generator[Any, None, _T]:
        return self._coro.__await__()

    async def __aenter__(self) -> _T:
        self._obj = await self._coro
        return await self._obj.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        assert self._obj is not None
        await self._obj.__aexit__(*exc)


def dial(host: str, port: int, encoding: str = "N", routing: str | None = None, *,
         timeout: float = HANDSHAKE_TIMEOUT, config: Config | None = None,
         tls: TLSArg = None,
         on_unsolicited_error: UnsolicitedErrorCallback | None = None) -> Opening[Link]:
    """Connect to ``host:port`` and return the link once the handshakes are done.

    Use ``link = await dial(...)`` or ``async with dial(...) as link:`` (which
    closes it on exit). ``encoding`` is ``"N"`` or ``"M"``; ``routing`` defaults
    to ``"parity"`` for N and ``"answerbit"`` for M; ``config`` sets receive
    bounds and keepalive (:class:`Config`). With ``tls`` (a :class:`TLSConfig`,
    or a client ``ssl.SSLContext``), TLS runs first and the NEO handshake inside
    it, as NEO/py does. Raises ``OSError`` if the connection fails,
    ``TimeoutError`` if connecting takes more than ``timeout`` seconds, and
    :class:`HandshakeError` if the TLS handshake fails or the peer's NEO
    handshake is not ours or does not come within ``timeout`` seconds.
    """
    return Opening(_dial(host, port, encoding, routing, timeout, on_unsolicited_error,
                             config, tls))


LinkHandler = Callable[[Link], Awaitable[None]]
HandshakeErrorCallback = Callable[[Any, BaseException], None]


def _log_handshake_error(peer: Any, exc: BaseException) -> None:
    log.warning("rejected connection from %s: %s", _fmt_addr(peer), exc)


class Listener:
    """A listening socket that hands out links (see :func:`listen`).

    Usable as an async context manager (on exit: :meth:`close`, then
    :meth:`wait_closed`). :meth:`close` stops listening and closes every link
    it handed out; it belongs to the event loop that made it."""

    def __init__(self, encoding: str | None, routing: str | None,
                 handler: LinkHandler | None, handshake_timeout: float,
                 on_unsolicited_error: UnsolicitedErrorCallback | None,
                 on_handshake_error: HandshakeErrorCallback | None,
                 config: Config | None, tls: ssl.SSLContext | None) -> None:
        self._encoding = encoding
        self._routing = routing
        self._handler = handler
        self._timeout = handshake_timeout
        self._on_unsolicited_error = on_unsolicited_error
        self._on_handshake_error = on_handshake_error or _log_handshake_error
        self._config = config
        self._tls = tls
        self._server: asyncio.AbstractServer | None = None
        self._sock: socket.socket | None = None
        self._accept_task: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()     # TLS handshakes in progress
        self._links: set[Link] = set()
        self._tasks: set[asyncio.Task] = set()
        self._queue: collections.deque[Link] = collections.deque()
        self._queue_event = asyncio.Event()
        self._closed = False

    async def _start(self, host: str | None, port: int) -> None:
        loop = asyncio.get_running_loop()
        if self._tls is None:
            self._server = await loop.create_server(self._protocol, host, port)
            return
        # With TLS, accept ourselves: asyncio's server reports no failed TLS
        # handshake, and we want to tell a plain NEO peer apart, as NEO/py does.
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._accept_task = loop.create_task(self._accept_loop(sock))

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as e:
                if self._closed:
                    return
                log.warning("accept failed: %s", e)
                await asyncio.sleep(0.1)
                continue
            task = loop.create_task(self._tls_accept(conn, peer))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _tls_accept(self, conn: socket.socket, peer: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                readable = loop.create_future()
                loop.add_reader(conn.fileno(), lambda: readable.done() or readable.set_result(None))
                try:
                    await readable
                finally:
                    loop.remove_reader(conn.fileno())
                # Peek, as NEO/py does, to tell a plain peer from a failed TLS one.
                first = conn.recv(1, socket.MSG_PEEK)
                if not first:
                    raise HandshakeError("peer closed the connection before TLS started")
                if first[0] != TLS_HANDSHAKE_BYTE:
                    raise PlainPeerError(
                        f"peer did not start TLS (first byte {first[0]:#04x}, a plain NEO "
                        f"handshake?), but TLS is required")
                await loop.connect_accepted_socket(self._protocol, conn, ssl=self._tls,
                                                   ssl_handshake_timeout=self._timeout)
        except (OSError, HandshakeError, TimeoutError) as e:
            conn.close()
            if isinstance(e, TimeoutError):
                e = HandshakeError(f"no TLS handshake within {self._timeout:g}s")
            elif not isinstance(e, HandshakeError):
                e = _tls_error(_fmt_addr(peer), e)
            self._on_handshake_error(peer, e)
        except BaseException:
            conn.close()
            raise

    def _protocol(self) -> _LinkProtocol:
        proto: _LinkProtocol

        def on_done(link: Link | None, exc: BaseException | None) -> None:
            if exc is not None or link is None:
                peer = proto._transport.get_extra_info("peername") if proto._transport else None
                self._on_handshake_error(peer, exc or HandshakeError("no link"))
            else:
                self._add_link(link)

        proto = _LinkProtocol(self._encoding, self._routing, False, on_done, self._timeout,
                              self._on_unsolicited_error, self._config)
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
    def address(self) -> tuple[str, int]:
        """The (host, port) the listener is bound to (the first socket's)."""
        if self._sock is not None:
            return self._sock.getsockname()[:2]
        assert self._server is not None
        return self._server.sockets[0].getsockname()[:2]

    @property
    def links(self) -> list[Link]:
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

    async def incoming(self) -> AsyncIterator[Link]:
        """Iterate over the links (:meth:`accept` in a loop) until closed."""
        while True:
            try:
                link = await self.accept()
            except LinkClosedError:
                return
            yield link

    def close(self) -> None:
        """Stop listening and close every link of this listener."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        if self._accept_task is not None:
            self._accept_task.cancel()
        for task in self._pending:
            task.cancel()
        if self._sock is not None:
            self._sock.close()
        for link in list(self._links):
            link.close()
        self._queue_event.set()

    async def wait_closed(self) -> None:
        """Wait until the listener and its links are closed and handlers are done."""
        if self._server is not None:
            await self._server.wait_closed()
        if self._accept_task is not None:
            await asyncio.gather(self._accept_task, *self._pending, return_exceptions=True)
        for link in list(self._links):
            await link.aclose()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def serve_forever(self) -> None:
        """Wait until the listener is closed (or the awaiting task is cancelled)."""
        if self._server is not None:
            await self._server.serve_forever()
        elif self._accept_task is not None:
            await asyncio.shield(self._accept_task)

    async def __aenter__(self) -> Listener:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


async def _listen(host: str | None, port: int, encoding: str, handler: LinkHandler | None,
                  routing: str | None, handshake_timeout: float,
                  on_unsolicited_error: UnsolicitedErrorCallback | None,
                  on_handshake_error: HandshakeErrorCallback | None,
                  config: Config | None, tls: TLSArg) -> Listener:
    enc = _check_params(encoding, routing, allow_auto=True)
    ctx = tls.server_context() if isinstance(tls, TLSConfig) else tls
    listener = Listener(enc, routing, handler, handshake_timeout, on_unsolicited_error,
                        on_handshake_error, config, ctx)
    await listener._start(host, port)
    return listener


def listen(host: str | None, port: int, encoding: str = "auto",
           handler: LinkHandler | None = None, routing: str | None = None, *,
           handshake_timeout: float = HANDSHAKE_TIMEOUT, config: Config | None = None,
           tls: TLSArg = None,
           on_unsolicited_error: UnsolicitedErrorCallback | None = None,
           on_handshake_error: HandshakeErrorCallback | None = None) -> Opening[Listener]:
    """Listen on ``host:port`` (port 0 picks a free one; see :attr:`Listener.address`).

    Use ``listener = await listen(...)`` or ``async with listen(...) as
    listener:``. ``encoding`` is ``"N"``, ``"M"`` or ``"auto"``: an auto listener
    reads the peer's handshake first and answers in the same encoding; a fixed
    one sends its handshake at once. For every link, ``await handler(link)``
    runs in its own task and the link is closed when it returns; without a
    handler, take links with :meth:`Listener.accept`. ``config`` applies to
    every link. With ``tls`` (a :class:`TLSConfig` or a server
    ``ssl.SSLContext``) every peer must run TLS first, with a certificate the
    CA signed; a peer that starts with a plain NEO handshake is rejected.
    Connections whose handshake fails are closed and reported to
    ``on_handshake_error(peer_address, exc)`` (default: a log warning).
    """
    return Opening(_listen(host, port, encoding, handler, routing, handshake_timeout,
                                 on_unsolicited_error, on_handshake_error, config, tls))
