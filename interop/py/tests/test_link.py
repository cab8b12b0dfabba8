"""Python <-> Python links over loopback: full and light mode, N and M, routing,
closing, errors."""

import asyncio
import hashlib

import pytest

from neolinkpy import catalog as c
from neolinkpy import dial, listen
from neolinkpy.cli import Master
from neolinkpy.errors import (ConnClosedError, DecodeError, FramingError, LinkClosedError,
                              NeoError, NeoLinkError, PacketTooBigError, UnexpectedAnswerError)
from neolinkpy.codec import MAX_PACKET_SIZE, pack
from neolinkpy.framing import N_HEADER

from support import RawPeer, async_test

CLUSTER = "test"
ABORT_OID = 7
IDENT = c.RequestIdentification(c.NodeTypes.CLIENT, None, None, CLUSTER, None, {})
ENCODINGS = pytest.mark.parametrize("enc", ["N", "M"])


def master_listener(encoding="auto", **kw):
    return listen("127.0.0.1", 0, encoding, handler=Master(CLUSTER, ABORT_OID).serve_link, **kw)


def check_object(answer, size):
    assert isinstance(answer, c.AnswerObject)
    assert answer.oid == size
    assert answer.data == (bytes(range(251)) * (size // 251 + 1))[:size]
    assert answer.checksum == hashlib.sha1(answer.data).digest()


@ENCODINGS
@async_test(timeout=20)
async def test_full_mode(enc):
    async with await master_listener() as lst:
        async with await dial("127.0.0.1", lst.address[1], enc) as link:
            conn = link.new_conn()
            assert conn.id == 1 and conn.initiated_by_us
            accept = await conn.ask(IDENT)
            assert accept == c.AcceptIdentification(c.NodeTypes.MASTER, -0x0fffffff, -0x1fffffff)
            assert await conn.ask(c.Ping()) == c.Pong()
            for size in (0, 1, 251, 1 << 20):
                check_object(await conn.ask(c.AskObject(size, None, None)), size)
            with pytest.raises(NeoError) as info:
                await conn.ask(c.AskLastTransaction())
            assert info.value.code == c.ErrorCodes.PROTOCOL_ERROR
            assert info.value.message == "unexpected packet AskLastTransaction"
            assert str(info.value) == "PROTOCOL_ERROR: unexpected packet AskLastTransaction"
            # the conn stays usable after an Error answer; a second conn gets id 3
            assert await conn.ask(c.Ping()) == c.Pong()
            conn2 = link.new_conn()
            assert conn2.id == 3
            second = await conn2.ask(IDENT)
            assert second.your_uuid == -0x1ffffffe          # C2
            with pytest.raises(NeoError, match="invalid cluster name"):
                await conn2.ask(c.RequestIdentification(c.NodeTypes.CLIENT, None, None, "x",
                                                        None, {}))


@ENCODINGS
@async_test(timeout=20)
async def test_light_mode(enc):
    async def handler(link):
        while True:
            req = await link.recv1()
            if isinstance(req.msg, c.Ping):
                await req.reply(c.Pong())
            elif isinstance(req.msg, c.SetClusterState):
                await req.reply(c.Error(c.ErrorCodes.ACK, "done"))
            elif isinstance(req.msg, c.NotifyReady):
                notified.append(req.id)
            else:
                await req.reply(c.Error(c.ErrorCodes.DENIED, "no"))
            req.close()

    notified = []
    async with await listen("127.0.0.1", 0, enc, handler=handler) as lst:
        async with await dial("127.0.0.1", lst.address[1], enc) as link:
            assert await link.ask1(c.Ping()) == c.Pong()
            assert await link.ask1(c.Ping()) == c.Pong()
            ack = await link.ask1(c.SetClusterState(c.ClusterStates.RUNNING))
            assert ack == c.Error(c.ErrorCodes.ACK, "done")
            with pytest.raises(NeoError, match="DENIED: no") as info:
                await link.ask1(c.AskLastTransaction())
            assert info.value.code is c.ErrorCodes.DENIED
            await link.send1(c.NotifyReady())
            assert await link.ask1(c.Ping()) == c.Pong()
            assert notified == [9]              # ids 1, 3, 5, 7, then 9
            with pytest.raises(TypeError, match="notify packet, not a request"):
                await link.ask1(c.NotifyReady())
            assert not link._local                # light conns are released


@ENCODINGS
@async_test(timeout=30)
async def test_1000_concurrent_conns(enc):
    async with await master_listener() as lst:
        async with await dial("127.0.0.1", lst.address[1], enc) as link:
            conns = [link.new_conn() for _ in range(1000)]
            assert len({conn.id for conn in conns}) == 1000
            answers = await asyncio.gather(*(conn.ask(c.Ping()) for conn in conns))
            assert answers == [c.Pong()] * 1000
            answers = await asyncio.gather(*(conn.ask(c.AskObject(1000 + i, None, None))
                                             for i, conn in enumerate(conns)))
            assert [len(a.data) for a in answers] == list(range(1000, 2000))
            answers = await asyncio.gather(*(link.ask1(c.Ping()) for _ in range(1000)))
            assert answers == [c.Pong()] * 1000
            for conn in conns:
                conn.close()
            assert not link._local
            [served] = lst.links
            assert not served._remote and not served._tasks   # serve() keeps nothing


@ENCODINGS
@async_test(timeout=20)
async def test_abrupt_close_ends_pending_asks(enc):
    """The server drops the link on AskObject(ABORT_OID): every pending ask fails."""
    async with await master_listener() as lst:
        link = await dial("127.0.0.1", lst.address[1], enc)
        assert await link.ask1(c.Ping()) == c.Pong()
        slow = [link.new_conn() for _ in range(5)]
        pending = [asyncio.ensure_future(conn.recv()) for conn in slow]
        accepting = asyncio.ensure_future(link.accept())
        with pytest.raises(LinkClosedError, match="peer closed the connection"):
            await link.ask1(c.AskObject(ABORT_OID, None, None))
        for fut in pending:
            with pytest.raises(LinkClosedError):
                await fut
        with pytest.raises(LinkClosedError):
            await accepting
        with pytest.raises(LinkClosedError):
            await slow[0].ask(c.Ping())
        with pytest.raises(LinkClosedError):
            link.new_conn()
        assert [conn async for conn in link.incoming()] == []
        await link.wait_closed()


async def raw_server(script):
    """A listener whose connections are driven by ``script(RawPeer)``."""
    async def on_conn(reader, writer):
        peer = RawPeer(reader, writer, encoding)
        try:
            await script(peer)
        finally:
            writer.close()

    encoding = script.encoding
    return await asyncio.start_server(on_conn, "127.0.0.1", 0)


def with_encoding(enc):
    def deco(fn):
        fn.encoding = enc
        return fn
    return deco


@ENCODINGS
@async_test(timeout=10)
async def test_peer_vanishes_mid_packet(enc):
    @with_encoding(enc)
    async def script(peer):
        await peer.handshake()
        await peer.recv()
        peer.send_raw(peer.framing.encode(1, c.AnswerObject(1, 1, None, 0, b"", b"x" * 100,
                                                            None))[:50])
        await peer.writer.drain()

    server = await raw_server(script)
    async with await dial("127.0.0.1", server.sockets[0].getsockname()[1], enc) as link:
        with pytest.raises(LinkClosedError, match="in the middle of a packet"):
            await link.new_conn().ask(c.AskObject(1, None, None))
    server.close()


@async_test(timeout=10)
async def test_parity_routing():
    """N/parity: unknown ids, Errors, keep-closed ids, close_accept, recv1 reuse."""
    async with await listen("127.0.0.1", 0, "N", routing="parity") as lst:
        reader, writer = await asyncio.open_connection("127.0.0.1", lst.address[1])
        peer = RawPeer(reader, writer, "N")
        await peer.handshake()
        link = await lst.accept()
        assert not link.dialer and link.routing == "parity"
        # our parity (even on the listener), unknown id -> "connection closed"
        peer.send(2, c.Ping())
        assert await peer.recv() == (2, c.Error(6, "connection closed"))
        # ... but never an Error in reply to an Error
        peer.send(4, c.Error(6, "whatever"))
        await peer.expect_nothing()
        # peer parity: a new conn, which we answer
        peer.send(1, c.Ping())
        conn = await link.accept()
        assert conn.id == 1 and not conn.initiated_by_us
        assert await conn.recv() == c.Ping()
        await conn.send(c.Pong())
        assert await peer.recv() == (1, c.Pong())
        # a closed peer conn keeps answering "connection closed"
        conn.close()
        peer.send(1, c.Ping())
        assert await peer.recv() == (1, c.Error(6, "connection closed"))
        # recv1: a second packet on the same id is refused while the request is open
        peer.send(3, c.Ping())
        peer.send(3, c.Ping())
        req = await link.recv1()
        assert req.id == 3 and req.msg == c.Ping()
        assert await peer.recv() == (3, c.Error(6, "connection closed"))
        await req.reply(c.Pong())
        assert await peer.recv() == (3, c.Pong())
        req.close()
        with pytest.raises(ConnClosedError):
            await req.reply(c.Pong())
        # after close, the id stays closed (peers never reuse ids under parity
        # routing), as do ids far below the newest
        peer.send(3, c.Ping())
        assert await peer.recv() == (3, c.Error(6, "connection closed"))
        peer.send(1 + 2 * 40000, c.NotifyReady())
        assert (await link.recv1()).id == 1 + 2 * 40000
        peer.send(5 + 2 * 40000, c.Ping())    # a new id above: accepted...
        assert (await link.recv1()).id == 5 + 2 * 40000
        peer.send(3 + 2 * 40000, c.Ping())    # ...and one skipped in the window too
        assert (await link.recv1()).id == 3 + 2 * 40000
        peer.send(5, c.Ping())                 # below the window: taken as closed
        assert await peer.recv() == (5, c.Error(6, "connection closed"))
        # our own conns are even, from 2
        mine = link.new_conn()
        assert mine.id == 2
        await mine.send(c.Ping())
        assert await peer.recv() == (2, c.Ping())
        peer.send(2, c.Pong())
        assert await mine.recv() == c.Pong()
        # close_accept: new peer conns are refused
        peer.send(7 + 2 * 40000, c.Ping())
        await asyncio.sleep(0.05)
        link.close_accept()
        assert await peer.recv() == (7 + 2 * 40000, c.Error(6, "connection refused"))
        peer.send(9 + 2 * 40000, c.Ping())
        assert await peer.recv() == (9 + 2 * 40000, c.Error(6, "connection refused"))
        with pytest.raises(NeoLinkError, match="close_accept"):
            await link.accept()
        peer.close()
        with pytest.raises(LinkClosedError):
            await mine.recv()


@async_test(timeout=10)
async def test_conn_close_and_errors():
    async with await listen("127.0.0.1", 0, "M") as lst:
        reader, writer = await asyncio.open_connection("127.0.0.1", lst.address[1])
        peer = RawPeer(reader, writer, "M")
        await peer.handshake()
        link = await lst.accept()
        conn = link.new_conn()
        waiting = asyncio.ensure_future(conn.recv())
        await asyncio.sleep(0)
        conn.close()
        with pytest.raises(ConnClosedError):
            await waiting
        with pytest.raises(ConnClosedError):
            await conn.send(c.Ping())
        # an answer that is not the request's answer
        conn = link.new_conn()
        asking = asyncio.ensure_future(conn.ask(c.Ping()))
        msg_id, msg = await peer.recv()
        assert (msg_id, msg) == (conn.id, c.Ping())
        peer.send(msg_id, c.AnswerPrimary(1))
        with pytest.raises(UnexpectedAnswerError, match="unexpected answer to Ping: AnswerPrimary"):
            await asking
        # an unknown code on a peer conn: recv raises DecodeError, the link lives on
        peer.send_raw(pack([0, 9999, []]) + peer.framing.encode(2, c.Ping()))
        bad = await link.accept()
        with pytest.raises(DecodeError, match="unknown packet code 9999"):
            await bad.recv()
        good = await link.accept()
        assert await good.recv() == c.Ping()
        # too big to send: refused before anything is written, link still fine
        with pytest.raises(PacketTooBigError):
            await good.send(c.AddObject(1, 1, 0, b"", b"\0" * MAX_PACKET_SIZE, None))
        await good.send(c.Pong())
        assert await peer.recv() == (2, c.Pong())
        peer.close()
        await link.wait_closed()


@async_test(timeout=10)
async def test_serve_answers_malformed_requests():
    async with await master_listener("N") as lst:
        reader, writer = await asyncio.open_connection("127.0.0.1", lst.address[1])
        peer = RawPeer(reader, writer, "N")
        await peer.handshake()
        peer.send_raw(N_HEADER.pack(1, 9999, 1) + b"\x90")
        msg_id, err = await peer.recv()
        assert msg_id == 1 and err.code == 6
        assert "unknown packet code 9999" in err.message
        peer.send_raw(N_HEADER.pack(3, c.AskObject.msg_code, 1) + b"\x90")
        msg_id, err = await peer.recv()
        assert msg_id == 3 and "expected 3 args, got 0" in err.message
        peer.send(5, c.NotifyReady())        # a notification: no answer
        peer.send(7, c.Ping())
        assert await peer.recv() == (7, c.Pong())
        peer.close()


@pytest.mark.parametrize("enc, junk", [
    ("M", b"\xc1"),
    ("M", pack([1, 2])),
    ("N", N_HEADER.pack(1, 2, MAX_PACKET_SIZE)),
])
@async_test(timeout=10)
async def test_malformed_stream_takes_link_down(enc, junk):
    async with await listen("127.0.0.1", 0, enc) as lst:
        reader, writer = await asyncio.open_connection("127.0.0.1", lst.address[1])
        peer = RawPeer(reader, writer, enc)
        await peer.handshake()
        link = await lst.accept()
        conn = link.new_conn()
        peer.send_raw(junk)
        with pytest.raises(LinkClosedError, match="malformed stream") as info:
            await conn.recv()
        assert isinstance(info.value.__cause__, FramingError)
        assert await reader.read() == b""        # we closed the connection
        peer.close()


@async_test(timeout=20)
async def test_large_transfers_both_ways():
    """Write flow control: several 8 MiB packets in flight on both sides."""
    async def handler(link):
        async def echo(conn, msg):
            await conn.send(c.AnswerObject(msg.oid, 1, None, 0, b"", msg.data, None))
        await link.serve(echo)

    async with await listen("127.0.0.1", 0, "N", handler=handler) as lst:
        async with await dial("127.0.0.1", lst.address[1], "N") as link:
            data = [bytes([i]) * (8 << 20) for i in range(4)]

            async def one(i):
                conn = link.new_conn()
                await conn.send(c.AddObject(i, 0, 0, b"", data[i], None))
                return await conn.recv()
            answers = await asyncio.gather(*(one(i) for i in range(4)))
            assert [a.data for a in answers] == data


@async_test(timeout=10)
async def test_listener_close_closes_links():
    lst = await master_listener()
    port = lst.address[1]
    link = await dial("127.0.0.1", port, "N")
    assert await link.ask1(c.Ping()) == c.Pong()
    assert len(lst.links) == 1
    lst.close()
    await lst.wait_closed()
    with pytest.raises(LinkClosedError):
        await link.ask1(c.Ping())
    with pytest.raises(OSError):
        await dial("127.0.0.1", port, "N")
