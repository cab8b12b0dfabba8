"""Answer-bit routing against a simulated unpatched NEO/py peer.

Unpatched NEO/py numbers its packets 0, 1, 2... on both ends of a connection, so
its ids overlap ours; it routes by the answer bit. A NEO/py master answers
RequestIdentification and right away sends NotifyNodeInformation and
SendPartitionTable with ids from its own counter (spec §1.10, §4).
"""

import asyncio

from neolinkpy import catalog as c
from neolinkpy import dial, listen
from neolinkpy.cli import Master
from neolinkpy.framing import FRAMINGS, HANDSHAKE_M

from support import RawPeer, async_test

M = FRAMINGS["M"]
M1 = -0x0fffffff
NODE = c.NodeInfo(c.NodeTypes.STORAGE, ("127.0.0.1", 5000), 1, c.NodeStates.RUNNING, 1.25)


@async_test(timeout=10)
async def test_dialer_vs_neopy_master():
    received = []
    done = asyncio.Event()

    async def neopy_master(reader, writer):
        peer = RawPeer(reader, writer, "M")
        await peer.handshake()
        msg_id, req = await peer.recv()
        received.append((msg_id, req))
        # answer on the request's id, then notifications from our own counter
        # (0, 1 -- id 1 collides with the dialer's conn 1), all in one segment
        peer.send_raw(M.encode(msg_id, c.AcceptIdentification(c.NodeTypes.MASTER, M1, -0x1fffffff))
                      + M.encode(0, c.NotifyNodeInformation(1.5, [NODE]))
                      + M.encode(1, c.SendPartitionTable(1, 1, [[(1, c.CellStates.UP_TO_DATE)]]))
                      + M.encode(2, c.Ping())
                      + M.encode(7, c.Error(c.ErrorCodes.PROTOCOL_ERROR, "fresh-id error"))
                      + M.encode(99, c.Pong()))
        received.append(await peer.recv())        # our Pong for its Ping (id 2)
        msg_id, ping = await peer.recv()          # our next ask
        received.append((msg_id, ping))
        peer.send(msg_id, c.Pong())
        await peer.expect_nothing(0.3)            # no "connection closed" Errors
        done.set()
        await reader.read()

    server = await asyncio.start_server(neopy_master, "127.0.0.1", 0)
    unsolicited = []
    async with await dial("127.0.0.1", server.sockets[0].getsockname()[1], "M",
                          on_unsolicited_error=lambda link, i, e: unsolicited.append((i, e))
                          ) as link:
        assert link.routing == "answerbit"
        ident = link.new_conn()
        accept = await ident.ask(c.RequestIdentification(c.NodeTypes.CLIENT, None, None,
                                                         "neo", None, {}))
        assert accept.uuid == M1
        incoming = [await link.accept() for _ in range(3)]
        assert [conn.id for conn in incoming] == [0, 1, 2]
        assert isinstance(await incoming[0].recv(), c.NotifyNodeInformation)
        table = await incoming[1].recv()
        assert table == c.SendPartitionTable(1, 1, [[c.CellInfo(1, c.CellStates.UP_TO_DATE)]])
        assert await incoming[2].recv() == c.Ping()
        await incoming[2].send(c.Pong())
        assert not ident._rxq                     # id 1 notification did not land here
        assert await link.new_conn().ask(c.Ping()) == c.Pong()
        await asyncio.wait_for(done.wait(), 5)
        assert unsolicited == [(7, c.Error(6, "fresh-id error"))]
    server.close()
    assert received[0][0] == 1 and isinstance(received[0][1], c.RequestIdentification)
    assert received[1:] == [(2, c.Pong()), (3, c.Ping())]


@async_test(timeout=10)
async def test_neopy_client_vs_listener():
    """A NEO/py client sends ids 0, 1, 2... with RequestIdentification glued to its
    handshake; the listener also asks it something on its own (even) ids."""
    server_asks = []

    async def handler(link):
        serving = asyncio.ensure_future(Master("neo", None).serve_link(link))
        server_asks.append(await link.ask1(c.Ping()))          # id 2 on our side
        await serving

    async with await listen("127.0.0.1", 0, "auto", handler=handler) as lst:
        reader, writer = await asyncio.open_connection("127.0.0.1", lst.address[1])
        peer = RawPeer(reader, writer, "M")
        writer.write(HANDSHAKE_M + M.encode(0, c.RequestIdentification(
            c.NodeTypes.CLIENT, None, None, "neo", None, {})))
        assert await reader.readexactly(6) == HANDSHAKE_M
        answers = {}
        requests = []
        for msg_id, msg in ((1, c.Ping()), (2, c.AskObject(5, None, None)), (3, c.NotifyReady()),
                            (4, c.AskLastTransaction())):
            peer.send(msg_id, msg)
        while len(answers) < 4 or not requests:
            msg_id, msg = await peer.recv()
            if msg.is_answer:
                assert msg_id not in answers
                answers[msg_id] = msg
            else:
                requests.append((msg_id, msg))
                peer.send(msg_id, c.Pong())            # NEO/py answers on the same id
        assert answers[0] == c.AcceptIdentification(c.NodeTypes.MASTER, M1, -0x1fffffff)
        assert answers[1] == c.Pong()
        assert len(answers[2].data) == 5
        assert answers[4] == c.Error(6, "unexpected packet AskLastTransaction")
        assert requests == [(2, c.Ping())]
        while not server_asks:
            await asyncio.sleep(0.01)
        assert server_asks == [c.Pong()]
        await peer.expect_nothing(0.2)
        peer.close()


@async_test(timeout=10)
async def test_neopy_client_vs_parity_listener():
    """The documented incompatibility (spec §4.2): with parity routing, NEO/py's
    first packet (id 0, the listener's parity) is refused."""
    async with await listen("127.0.0.1", 0, "M", routing="parity",
                            handler=Master("neo", None).serve_link) as lst:
        reader, writer = await asyncio.open_connection("127.0.0.1", lst.address[1])
        peer = RawPeer(reader, writer, "M")
        await peer.handshake()
        peer.send(0, c.RequestIdentification(c.NodeTypes.CLIENT, None, None, "neo", None, {}))
        assert await peer.recv() == (0, c.Error(6, "connection closed"))
        peer.close()
