"""Byte-exact vectors: spec §1.11 (verified against NEO/py master) and N framing."""

import pytest

from neolinkpy import catalog as c
from neolinkpy.codec import pack
from neolinkpy.framing import (FRAMINGS, HANDSHAKE_M, HANDSHAKE_N, N_HEADER, MDecoder,
                               NDecoder)

M, N = FRAMINGS["M"], FRAMINGS["N"]

# (msg_id, message, bytes of the M packet) -- docs/reference.md §1.11
VECTORS = [
    (0, c.Ping(), "93 00 02 90"),
    (0, c.Pong(), "93 00 cd 80 02 90"),
    (5, c.CloseClient(), "93 05 03 90"),
    (3, c.Error(c.ErrorCodes.PROTOCOL_ERROR, "connection closed"),
     "93 03 cd 80 00 92 06 c4 11 63 6f 6e 6e 65 63 74 69 6f 6e 20 63 6c 6f 73 65 64"),
    (1, c.Error(c.ErrorCodes.ACK, ""), "93 01 cd 80 00 92 00 c4 00"),
    (0, c.RequestIdentification(c.NodeTypes.CLIENT, None, None, "test", None, {}),
     "93 00 01 96 d4 04 02 c0 c0 c4 04 74 65 73 74 c0 80"),
    (0, c.RequestIdentification(c.NodeTypes.STORAGE, 7, ("127.0.0.1", 5000), "test", 1.5,
                                {"new_nid": ()}),
     "93 00 01 96 d4 04 01 07 92 c4 09 31 32 37 2e 30 2e 30 2e 31 cd 13 88 c4 04 74 65 73 74 "
     "cb 3f f8 00 00 00 00 00 00 81 c4 07 6e 65 77 5f 6e 69 64 90"),
    (0, c.AcceptIdentification(c.NodeTypes.MASTER, -0x0fffffff, 1),
     "93 00 cd 80 01 93 d4 04 00 d2 f0 00 00 01 01"),
    (9, c.AskObject(oid=1, at=None, before=5),
     "93 09 20 93 c4 08 00 00 00 00 00 00 00 01 c0 c4 08 00 00 00 00 00 00 00 05"),
    (0xffffffff, c.AskLastTransaction(), "93 ce ff ff ff ff 3c 90"),
]


def test_handshakes():
    assert HANDSHAKE_M == bytes.fromhex("92 a3 4e 45 4f 05")
    assert HANDSHAKE_N == bytes.fromhex("4e 45 4f 4e 01 05")


@pytest.mark.parametrize("msg_id, msg, wire", VECTORS, ids=[repr(v[1])[:40] for v in VECTORS])
def test_vector_m_encode(msg_id, msg, wire):
    assert M.encode(msg_id, msg) == bytes.fromhex(wire)


@pytest.mark.parametrize("msg_id, msg, wire", VECTORS, ids=[repr(v[1])[:40] for v in VECTORS])
def test_vector_m_decode(msg_id, msg, wire):
    [pkt] = MDecoder().feed(bytes.fromhex(wire))
    assert pkt.msg_id == msg_id and pkt.code == msg.msg_code
    got = M.decode_body(pkt.code, pkt.body)
    assert type(got) is type(msg) and got == msg
    assert M.encode(pkt.msg_id, got) == bytes.fromhex(wire)


@pytest.mark.parametrize("msg_id, msg, wire", VECTORS, ids=[repr(v[1])[:40] for v in VECTORS])
def test_vector_n(msg_id, msg, wire):
    """N carries the same args bytes as M, after a 10-byte header."""
    m_packet = bytes.fromhex(wire)
    args = m_packet[1 + len(pack(msg_id)) + len(pack(msg.msg_code)):]
    assert args == msg.encode_args()
    n_packet = N.encode(msg_id, msg)
    assert n_packet == N_HEADER.pack(msg_id, msg.msg_code, len(args)) + args
    [pkt] = NDecoder().feed(n_packet)
    assert (pkt.msg_id, pkt.code, pkt.body) == (msg_id, msg.msg_code, args)
    assert N.decode_body(pkt.code, pkt.body) == msg


@pytest.mark.parametrize("msg_id, msg, wire", [
    (1, c.Ping(), "00 00 00 01  00 02  00 00 00 01  90"),
    (1, c.Pong(), "00 00 00 01  80 02  00 00 00 01  90"),
    (2, c.Error(c.ErrorCodes.PROTOCOL_ERROR, "connection closed"),
     "00 00 00 02  80 00  00 00 00 15  92 06 c4 11" + "connection closed".encode().hex()),
    (0xfffffffe, c.AskLastTransaction(), "ff ff ff fe  00 3c  00 00 00 01  90"),
    (3, c.AskObject(1, None, 5),
     "00 00 00 03  00 20  00 00 00 16  93 c4 08 00 00 00 00 00 00 00 01 c0"
     " c4 08 00 00 00 00 00 00 00 05"),
])
def test_n_header_examples(msg_id, msg, wire):
    data = bytes.fromhex(wire)
    assert N.encode(msg_id, msg) == data
    [pkt] = NDecoder().feed(data)
    assert pkt.msg_id == msg_id and N.decode_body(pkt.code, pkt.body) == msg


def test_answer_codes_use_cd():
    """Answers >= 0x8000 encode the code as cd 80 xx; small ids/codes as fixints."""
    assert M.encode(0x100, c.Pong())[:6] == bytes.fromhex("93 cd 01 00 cd 80")
    assert M.encode(0x80, c.Ping())[:4] == bytes.fromhex("93 cc 80 02")


def test_enum_wire_form():
    assert c.AskNodeList(c.NodeTypes.CLIENT).encode_args() == bytes.fromhex("91 d4 04 02")
    assert c.SetClusterState(c.ClusterStates.RUNNING).encode_args() == \
        bytes.fromhex("91 d4 01 02")
    row = c.AnswerPartitionTable(1, 2, [[(3, c.CellStates.FEEDING)]])
    assert row.encode_args() == bytes.fromhex("93 01 02 91 91 92 03 d4 00 02")


def test_int_forms():
    """Non-negative ints use unsigned forms, negative ones the smallest signed form."""
    cases = {0: "00", 127: "7f", 128: "cc 80", 255: "cc ff", 256: "cd 01 00",
             65536: "ce 00 01 00 00", 1 << 32: "cf 00 00 00 01 00 00 00 00",
             (1 << 63) - 1: "cf 7f ff ff ff ff ff ff ff", -1: "ff", -32: "e0",
             -33: "d0 df", -129: "d1 ff 7f", -(1 << 31): "d2 80 00 00 00",
             -(1 << 63): "d3 80 00 00 00 00 00 00 00"}
    for value, wire in cases.items():
        # AnswerObject.compression is an ?int between 22 bytes of args and 5 after
        assert c.AnswerObject(0, 0, None, value, b"", b"", None).encode_args()[22:-5] == \
            bytes.fromhex(wire), value
    assert c.AskTIDs((1 << 64) - 1, 0, 0).encode_args() == \
        bytes.fromhex("93 cf ff ff ff ff ff ff ff ff 00 00")
