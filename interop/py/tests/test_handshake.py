"""Handshake classification (sans I/O) and over real loopback sockets."""

import asyncio

import pytest

from neolinkpy import dial, listen
from neolinkpy.errors import (EncodingMismatchError, HandshakeError, NotNeoError,
                              OldProtocolError, PeerTLSError, VersionMismatchError)
from neolinkpy.framing import HANDSHAKE_M, HANDSHAKE_N, classify_handshake

from support import async_test

M_HS, N_HS = HANDSHAKE_M, HANDSHAKE_N


@pytest.mark.parametrize("data, expected", [
    (M_HS, "M"),
    (N_HS, "N"),
    (M_HS + b"\x93\x00\x02\x90", "M"),              # packets may follow in the same read
    (N_HS + b"\x00" * 11, "N"),
])
def test_complete(data, expected):
    assert classify_handshake(data) == expected


@pytest.mark.parametrize("data", [
    b"", M_HS[:1], M_HS[:3], M_HS[:5], N_HS[:1], N_HS[:4], N_HS[:5],
    b"\x00", b"\x00\x00", b"\x00\x00\x00",
])
def test_prefix_waits(data):
    assert classify_handshake(data) is None


@pytest.mark.parametrize("data, exc, text", [
    (b"\x16", PeerTLSError, "peer started TLS"),
    (b"\x16\x03\x01\x02\x00\x01", PeerTLSError, "peer started TLS"),
    (b"\x00\x00\x00\x06", OldProtocolError, "protocol v6"),
    (b"\x00\x00\x00\x06" + b"\x00" * 10, OldProtocolError, "NEO/go 2020"),
    (b"\x00\x00\x00\x07", NotNeoError, "00 00 00 07"),
    (b"\x00\x01", NotNeoError, "not NEO"),
    (b"\x92\xa3NEO\x04", VersionMismatchError, "peer M encoding version 4, ours 5"),
    (b"\x92\xa3NEO\xcc\x80", VersionMismatchError, "0xcc"),
    (b"NEON\x01\x04", VersionMismatchError, "peer N framing 1 protocol 4, ours framing 1 protocol 5"),
    (b"NEON\x02", VersionMismatchError, "peer N framing 2 protocol ?"),
    (b"\x92\xa3NEX", NotNeoError, "not NEO"),
    (b"NEOX", NotNeoError, "4e 45 4f 58"),
    (b"GET / HTTP/1.1\r\n", NotNeoError, "47 45 54 20"),
    (b"G", NotNeoError, "not NEO"),
])
def test_errors(data, exc, text):
    with pytest.raises(exc, match=text.replace("?", r"\?")):
        classify_handshake(data)


def test_expected_encoding():
    assert classify_handshake(M_HS, "M") == "M"
    assert classify_handshake(N_HS[:3], "M") is None
    with pytest.raises(EncodingMismatchError, match="peer speaks the N encoding, we use M"):
        classify_handshake(N_HS, "M")
    with pytest.raises(EncodingMismatchError, match="peer speaks the M encoding, we use N"):
        classify_handshake(M_HS, "N")


async def _raw_exchange(port: int, send: bytes, read_for: float = 2.0) -> bytes:
    """Connect, send bytes, keep the socket open, return all bytes until the peer closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(send)
    got = b""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(4096), read_for)
            if not data:
                break
            got += data
    finally:
        writer.close()
    return got


@pytest.mark.parametrize("first, exc", [
    (b"\x16\x03\x01", PeerTLSError),
    (b"\x00\x00\x00\x06", OldProtocolError),     # 4 bytes, then the peer waits
    (b"\x92\xa3NEO\x07", VersionMismatchError),
    (b"NEOX", NotNeoError),
])
@async_test(timeout=10)
async def test_auto_listener_rejects_promptly(first, exc):
    """An auto listener classifies as soon as possible, sends nothing and closes."""
    errors = []
    async with await listen("127.0.0.1", 0, "auto", handler=lambda link: None,
                            on_handshake_error=lambda peer, e: errors.append(e)) as lst:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        got = await _raw_exchange(lst.address[1], first)
        assert got == b""
        assert loop.time() - t0 < 1.0
        assert len(errors) == 1 and isinstance(errors[0], exc)


@async_test(timeout=10)
async def test_fixed_listener_sends_handshake_first():
    async with await listen("127.0.0.1", 0, "N", handler=lambda link: None,
                            on_handshake_error=lambda peer, e: None) as lst:
        reader, writer = await asyncio.open_connection("127.0.0.1", lst.address[1])
        assert await asyncio.wait_for(reader.readexactly(6), 2) == N_HS
        writer.close()


@pytest.mark.parametrize("enc", ["N", "M"])
@async_test(timeout=10)
async def test_auto_listener_answers_in_peer_encoding(enc):
    async def handler(link):
        links.append(link)
        await link.wait_closed()

    links = []
    async with await listen("127.0.0.1", 0, "auto", handler=handler) as lst:
        async with await dial("127.0.0.1", lst.address[1], enc) as link:
            assert link.encoding == enc
            assert link.routing == {"N": "parity", "M": "answerbit"}[enc]
            while not links:
                await asyncio.sleep(0.01)
            assert links[0].encoding == enc and links[0].routing == link.routing


@async_test(timeout=10)
async def test_dial_encoding_mismatch():
    async with await listen("127.0.0.1", 0, "M", handler=lambda link: None,
                            on_handshake_error=lambda peer, e: None) as lst:
        with pytest.raises(EncodingMismatchError):
            await dial("127.0.0.1", lst.address[1], "N")


@async_test(timeout=10)
async def test_dial_handshake_timeout_and_close():
    async def silent(reader, writer):
        await reader.read()        # never send anything; close when the dialer does

    async def closer(reader, writer):
        writer.close()

    for cb, exc in ((silent, HandshakeError), (closer, HandshakeError)):
        server = await asyncio.start_server(cb, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(exc):
            await dial("127.0.0.1", port, "M", timeout=0.3)
        server.close()
