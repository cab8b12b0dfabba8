"""Receiving under load: FIFO receivers, receive bounds with backpressure, the
accept backlog, answer-bit routing of AddObject, keepalive, graceful close.

The flood tests pit the Go ``neolink`` CLI (``$NEOLINK_BIN``), a fast sender,
against a Python receiver that reads slowly, and check that memory stays flat.
"""

import asyncio
import hashlib
import random

import pytest

from neolinkpy import Config, TLSConfig, catalog as c, dial, listen
from neolinkpy.cli import Master
from neolinkpy.framing import FRAMINGS
from neolinkpy.errors import (ConnClosedError, ConnOverflowError, HandshakeError,
                              LinkClosedError, NeoError)

from support import RawPeer, async_test, rss_bytes, tls_flags
from test_matrix import go_bin, start_server

MIB = 1 << 20
IDENT = c.RequestIdentification(c.NodeTypes.CLIENT, None, None, "neotest", None, {})


async def raw_link(encoding="N", config=None, **kw):
    """A Python listener with a RawPeer connected to it: (listener, link, peer)."""
    lst = await listen("127.0.0.1", 0, encoding, config=config, **kw)
    reader, writer = await asyncio.open_connection("127.0.0.1", lst.address[1])
    peer = RawPeer(reader, writer, encoding)
    await peer.handshake()
    link = await lst.accept()
    return lst, link, peer


# -- concurrent receivers ----------------------------------------------------------

@async_test(timeout=10)
async def test_concurrent_receivers_served_in_call_order():
    lst, link, peer = await raw_link("N")
    async with lst:
        conn = link.new_conn()
        receivers = []
        for _ in range(5):
            receivers.append(asyncio.ensure_future(conn.recv()))
            await asyncio.sleep(0)          # each recv() call is made in this order
        cancelled = asyncio.ensure_future(conn.recv())
        await asyncio.sleep(0)
        for i in range(5):
            peer.send(conn.id, c.AnswerPrimary(i))
        await peer.writer.drain()
        got = [(await r).primary_uuid for r in receivers]
        assert got == [0, 1, 2, 3, 4]
        # a recv cancelled while waiting loses nothing: the packet goes to the next
        cancelled.cancel()
        later = asyncio.ensure_future(conn.recv())
        await asyncio.sleep(0)
        peer.send(conn.id, c.AnswerPrimary(5))
        assert (await later).primary_uuid == 5
        assert link._hungry == 0
        conn.close()
        with pytest.raises(ConnClosedError):
            await conn.recv()
        peer.close()


@async_test(timeout=10)
async def test_recv_cancelled_after_delivery_keeps_the_packet():
    lst, link, peer = await raw_link("N")
    async with lst:
        conn = link.new_conn()
        first = asyncio.ensure_future(conn.recv())
        await asyncio.sleep(0)
        # the packet is given to `first`, which is cancelled before it runs
        link._data_received(FRAMINGS["N"].encode(conn.id, c.AnswerPrimary(1)))
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (await conn.recv()).primary_uuid == 1
        peer.close()


# -- receive bounds ----------------------------------------------------------------

def check_data(answer, size):
    assert isinstance(answer, c.AnswerObject), answer
    assert len(answer.data) == size and answer.data[:251] == bytes(range(251))[:size]


@pytest.mark.parametrize("enc, tls", [("N", False), ("M", False), ("M", True)],
                         ids=["N", "M", "M-TLS"])
@async_test(timeout=60)
async def test_go_flood_slow_python_reader_memory_flat(enc, tls, tls_files):
    """A Go server streams 160 MiB of 1 MiB answers on one conn as fast as it can;
    the Python reader takes one every 3 ms. Reading pauses at the link bound, so
    the Go sender blocks in TCP, nothing overflows, and memory stays flat."""
    bound = 8 * MIB
    config = Config(conn_recv_buffer=bound, link_recv_buffer=bound)
    n = 160
    flags = tls_flags(tls_files) if tls else []
    with start_server("go", enc, flags) as srv:
        async with dial(srv.host, srv.port, enc, config=config,
                        tls=TLSConfig(**tls_files) if tls else None) as link:
            conn = link.new_conn()
            await conn.ask(IDENT)
            base = rss_bytes()
            for _ in range(n):
                await conn.send(c.AskObject(MIB, None, None))
            peak = base
            for i in range(n):
                await asyncio.sleep(0.003)
                check_data(await conn.recv(), MIB)
                peak = max(peak, rss_bytes())
            st = link.stats
            assert st.overflows == 0
            assert st.pauses > 0, "reading never paused: the bound was not reached?"
            # the bound, plus what one read of the socket can hold past it
            assert st.max_queued <= bound + 2 * MIB, st
            assert peak - base < 40 * MIB, f"memory grew by {(peak - base) >> 20} MiB"
            assert await conn.ask(c.Ping()) == c.Pong()
        srv.stop()


@pytest.mark.parametrize("enc", ["N", "M"])
@async_test(timeout=30)
async def test_overflowing_conn_is_aborted_alone(enc):
    """A conn whose reader does not keep up is aborted alone: its receivers get
    ConnOverflowError, the other conns and the link carry on. Under parity
    routing (N) the Go peer is told with a PROTOCOL_ERROR on the id; under
    answer-bit routing (M) nothing is sent on an id of ours: it is counted."""
    config = Config(conn_recv_buffer=2 * MIB, link_recv_buffer=64 * MIB)
    with start_server("go", enc) as srv:
        async with dial(srv.host, srv.port, enc, config=config) as link:
            await link.new_conn().ask(IDENT)
            slow = link.new_conn()
            for _ in range(8):
                await slow.send(c.AskObject(MIB, None, None))
            other = link.new_conn()
            await asyncio.sleep(0.3)               # the 8 answers arrive unread
            assert await other.ask(c.Ping()) == c.Pong()
            with pytest.raises(ConnOverflowError, match="receive queue overflow"):
                await slow.recv()
            with pytest.raises(ConnOverflowError):
                await slow.recv()
            assert link.stats.overflows == 1
            assert link.stats.unreported_overflows == (1 if enc == "M" else 0)
            assert link.stats.queued == 0
            check_data(await other.ask(c.AskObject(MIB, None, None)), MIB)
        status, err = srv.stop()
        assert status == 0, err


@async_test(timeout=10)
async def test_waiting_receiver_is_served_past_the_link_bound():
    """When the link bound is reached, a receiver waiting on another conn makes
    the link read on (no deadlock); a conn whose packet would then exceed the
    bound is aborted, as in neonet."""
    config = Config(conn_recv_buffer=MIB, link_recv_buffer=MIB)
    lst, link, peer = await raw_link("N", config)
    async with lst:
        unread = [link.new_conn() for _ in range(3)]
        wanted = link.new_conn()
        blob = b"x" * (400 << 10)
        for conn in unread:
            peer.send(conn.id, c.AnswerObject(1, 1, None, 0, b"", blob, None))
        await peer.writer.drain()
        while not link._paused:
            await asyncio.sleep(0.01)
        assert link.stats.packets_in == 2          # the third would pass the bound
        peer.send(unread[0].id, c.AnswerObject(2, 1, None, 0, b"", blob, None))
        peer.send(wanted.id, c.AnswerPrimary(7))
        assert (await wanted.recv()).primary_uuid == 7
        with pytest.raises(ConnOverflowError):
            await unread[0].recv()
        assert await peer.recv() == (unread[0].id, c.Error(6, "receive queue overflow"))
        assert (await unread[1].recv()).data == blob
        assert (await unread[2].recv()).data == blob
        assert not link._paused and link.stats.queued == 0
        peer.close()


# -- accept backlog ----------------------------------------------------------------

@async_test(timeout=10)
async def test_full_backlog_refuses_requests_and_fails_on_notifications():
    lst, link, peer = await raw_link("N", Config(accept_backlog=4))
    async with lst:
        for i in range(5):
            peer.send(1 + 2 * i, c.Ping())
        assert await peer.recv() == (9, c.Error(6, "connection refused"))
        assert link.stats.max_backlog == 4 and link.stats.refused == 1
        assert (await link.accept()).id == 1     # room for one more
        peer.send(11, c.Ping())
        await peer.expect_nothing(0.1)
        peer.send(13, c.NotifyReady())            # cannot be refused: the link fails
        with pytest.raises(LinkClosedError, match="accept backlog full .*NotifyReady"):
            await link.new_conn().recv()
        peer.close()


@async_test(timeout=60)
async def test_go_flood_of_new_conns_slow_python_acceptor():
    """`neolink ping` opens 300 light requests at once against a Python server
    that takes one every 5 ms with a backlog of 32: the backlog never grows past
    32, the excess is refused with "connection refused", memory stays flat."""
    master = Master("neotest", None)
    links = []

    async def slow_acceptor(link):
        links.append(link)
        while True:
            req = await link.recv1()
            await asyncio.sleep(0.005)
            await req.reply(master.answer(req.conn, req.msg))
            req.close()

    async with listen("127.0.0.1", 0, "N", handler=slow_acceptor,
                      config=Config(accept_backlog=32)) as lst:
        base = rss_bytes()
        proc = await asyncio.create_subprocess_exec(
            go_bin(), "ping", "-light", "-c", "300", "-n", "300", "-cluster", "neotest",
            "-timeout", "40s", f"127.0.0.1:{lst.address[1]}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 1, (out, err)
        assert b"connection refused" in err, err
        [link] = links
        st = link.stats
        assert st.max_backlog <= 32 and st.refused > 0, st
        assert rss_bytes() - base < 32 * MIB


# -- answer-bit routing, keepalive, graceful close ---------------------------------

@async_test(timeout=10)
async def test_answerbit_routes_add_object_on_our_id():
    """NEO/py streams AddObject/AddTransaction on the id of our fetch request,
    without the answer bit: they go to our conn. On an id we did not open they
    are a new conn of the peer's."""
    lst, link, peer = await raw_link("M")
    async with lst:
        assert link.routing == "answerbit"
        fetch = link.new_conn()
        await fetch.send(c.AskFetchObjects(0, 1, 0, 10, 0, {}))
        msg_id, _ = await peer.recv()
        assert msg_id == fetch.id
        add = c.AddObject(1, 2, 0, b"", b"data", None)
        peer.send(fetch.id, add)
        peer.send(fetch.id, c.AddTransaction(2, b"u", b"d", b"", False, 2, [1], None))
        peer.send(fetch.id + 100, add)
        assert await fetch.recv() == add
        assert isinstance(await fetch.recv(), c.AddTransaction)
        incoming = await link.accept()
        assert incoming.id == fetch.id + 100 and await incoming.recv() == add
        peer.close()


@async_test(timeout=10)
async def test_keepalive_takes_a_silent_peer_down():
    lst, link, peer = await raw_link("N", Config(keepalive=0.2, keepalive_timeout=0.3))
    async with lst:
        msg_id, ping = await peer.recv()                 # the keepalive Ping
        assert ping == c.Ping()
        with pytest.raises(LinkClosedError, match="keepalive: peer did not answer Ping"):
            await link.accept()


@async_test(timeout=10)
async def test_keepalive_with_answering_peer_and_answer_ping():
    cfg = Config(keepalive=0.1, keepalive_timeout=1, answer_ping=True)
    async with listen("127.0.0.1", 0, "N", config=cfg) as lst:
        async with dial("127.0.0.1", lst.address[1], "N", config=cfg) as link:
            server = await lst.accept()
            await asyncio.sleep(0.6)
            assert not link.closed and not server.closed
            # both sides pinged, and answer_ping answered without the application
            assert link.stats.packets_in >= 3 and server.stats.packets_in >= 3
            assert not server._acceptq and not link._acceptq


@async_test(timeout=20)
async def test_shutdown_flushes_and_waits_for_conns():
    """shutdown() stops accepting, waits for the open conns to be closed, and
    flushes everything sent before closing."""
    big = bytes(range(256)) * (32 << 10)           # 8 MiB
    refused = asyncio.Event()
    result = []

    async def handler(link):
        conn = await link.accept()
        await conn.recv()
        await conn.send(c.AnswerObject(1, 1, None, 0, b"", big, None))
        closer = asyncio.ensure_future(link.shutdown(timeout=5))
        await refused.wait()
        assert not closer.done()                   # conn still open
        conn.close()
        result.append(await closer)

    async with listen("127.0.0.1", 0, "N", handler=handler) as lst:
        async with dial("127.0.0.1", lst.address[1], "N") as link:
            conn = link.new_conn()
            await conn.send(c.AskObject(1, None, None))
            answer = await conn.recv()
            assert hashlib.sha1(answer.data).digest() == hashlib.sha1(big).digest()
            with pytest.raises(NeoError, match="connection refused"):
                await link.ask1(c.Ping())
            refused.set()
            await link.wait_closed()
            assert result == [True]


@async_test(timeout=10)
async def test_shutdown_times_out_on_a_conn_left_open():
    lst, link, peer = await raw_link("N")
    async with lst:
        peer.send(1, c.Ping())
        conn = await link.accept()
        assert not await link.shutdown(timeout=0.2)     # conn never closed: aborted
        assert link.closed
        assert await conn.recv() == c.Ping()              # what was received is still read
        with pytest.raises(LinkClosedError):
            await conn.recv()
        peer.close()


# -- TLS -------------------------------------------------------------------------

@async_test(timeout=20)
async def test_tls_rejections(tls_files, other_tls_files):
    """Mutual TLS against the CA: a certificate from another CA is rejected on
    both sides, and a plain peer of a TLS listener is told apart."""
    good = TLSConfig(**tls_files)
    other = TLSConfig(**other_tls_files)
    rejected = []
    async with listen("127.0.0.1", 0, "auto", tls=good,
                      on_handshake_error=lambda peer, e: rejected.append(e)) as lst:
        port = lst.address[1]
        async with dial("127.0.0.1", port, "M", tls=good) as link:
            assert link.tls is not None and link.tls.version() in ("TLSv1.2", "TLSv1.3")
            assert (await lst.accept()).tls is not None
        with pytest.raises(HandshakeError, match="TLS handshake"):
            await dial("127.0.0.1", port, "N", tls=other)
        with pytest.raises(HandshakeError):
            await dial("127.0.0.1", port, "N")
        await asyncio.sleep(0.1)
        assert any("did not start TLS" in str(e) for e in rejected), rejected
    async with listen("127.0.0.1", 0, "auto", tls=other) as lst:
        with pytest.raises(HandshakeError):
            link = await dial("127.0.0.1", lst.address[1], "N", tls=good)
            await link.ask1(c.Ping())


@async_test(timeout=30)
async def test_cancelled_receivers_leave_no_trace():
    """Hundreds of asks and accepts cut short by timeouts at random moments: no
    waiter, queued byte or pause is left behind, and the link still works."""
    rng = random.Random(7)
    async with listen("127.0.0.1", 0, "N", handler=Master("neotest", None).serve_link,
                      config=Config(conn_recv_buffer=MIB, link_recv_buffer=2 * MIB)) as lst:
        async with dial("127.0.0.1", lst.address[1], "N",
                        config=Config(conn_recv_buffer=MIB, link_recv_buffer=2 * MIB)) as link:
            async def one(i):
                conn = link.new_conn()
                try:
                    async with asyncio.timeout(rng.random() * 0.02):
                        await conn.ask(c.AskObject(rng.choice((10, 100_000, 600_000)), None, None))
                except TimeoutError:
                    pass
                finally:
                    conn.close()

            async def accepting():
                for _ in range(50):
                    try:
                        async with asyncio.timeout(0.001):
                            await link.accept()
                    except TimeoutError:
                        pass

            await asyncio.gather(accepting(), *(one(i) for i in range(300)))
            assert link._hungry == 0 and not link._accept_waiters
            assert link.stats.queued == 0 and not link._paused and not link._local
            assert await link.ask1(c.Ping()) == c.Pong()
