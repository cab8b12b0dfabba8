"""Random round trips of every packet type, and malformed input."""

import random

import msgpack
import pytest

from neolinkpy import catalog as c
from neolinkpy.codec import MAX_PACKET_SIZE, pack
from neolinkpy.errors import DecodeError, FramingError, PacketTooBigError
from neolinkpy.framing import FRAMINGS, N_HEADER, MDecoder, NDecoder
from neolinkpy.randgen import RandomValues

PER_TYPE = 25


def _feed_in_pieces(decoder, data, rng):
    out, i = [], 0
    while i < len(data):
        n = rng.choice((1, 2, 7, 64, 1000, len(data)))
        out += decoder.feed(data[i:i + n])
        i += n
    return out


@pytest.mark.parametrize("encoding", ["N", "M"])
def test_random_round_trip_all_types(encoding):
    """Every packet type: encode, parse from a stream cut at random places,
    decode, compare, re-encode byte for byte."""
    fr = FRAMINGS[encoding]
    rng = random.Random(f"round-trip-{encoding}")
    gen = RandomValues(rng)
    seen = set()
    for cls in c.MESSAGES.values():
        msgs = [(rng.getrandbits(32), gen.message(cls)) for _ in range(PER_TYPE)]
        stream = b"".join(fr.encode(i, m) for i, m in msgs)
        decoder = fr.decoder()
        packets = _feed_in_pieces(decoder, stream, rng)
        assert decoder.pending == 0
        assert len(packets) == len(msgs)
        for (msg_id, msg), pkt in zip(msgs, packets):
            got = fr.decode_body(pkt.code, pkt.body)
            assert pkt.msg_id == msg_id and type(got) is cls
            assert got == msg, (msg, got)
            assert fr.encode(msg_id, got) == fr.encode(msg_id, msg)
            seen.add(cls.msg_code)
    assert len(seen) == 111


def test_random_values_cover_the_int_forms():
    gen = RandomValues(random.Random(7))
    wire = b"".join(gen.message(c.AnswerObject).encode_args() for _ in range(400))
    for marker in (b"\xcc", b"\xcd", b"\xce", b"\xcf", b"\xd0", b"\xd3", b"\xc5"):
        assert marker in wire


def test_any_values():
    m = c.NotifyMonitorInformation({"a": [1, b"x", "s", None, True, -5, 2.5],
                                    "b": {"k": c.NodeTypes.ADMIN}, "c": bytearray(b"y")})
    assert m.info == {"a": (1, b"x", "s", None, True, -5, 2.5),
                      "b": {"k": c.NodeTypes.ADMIN}, "c": b"y"}
    data = m.encode_args()
    assert b"\xd4\x04\x03" in data              # enum inside any -> ExtType
    assert b"\xa1s" in data                     # a str inside any stays a msgpack str
    back = c.NotifyMonitorInformation.decode_args(data)
    assert back == m and back.encode_args() == data
    unknown_ext = pack([{b"k": msgpack.ExtType(42, b"zz")}])
    assert c.NotifyMonitorInformation.decode_args(unknown_ext).encode_args() == unknown_ext


def _args(*values):
    return pack(list(values))


P8 = b"\0" * 8


@pytest.mark.parametrize("code, data, text", [
    (9999, b"\x90", "unknown packet code 9999"),
    (c.Ping.msg_code, b"\x91\x00", "Ping: expected 0 args, got 1"),
    (c.AskObject.msg_code, _args(P8, None), "AskObject: expected 3 args, got 2"),
    (c.AskObject.msg_code, b"\x80", "AskObject: args must be an array, got map"),
    (c.AskObject.msg_code, _args(b"\0" * 7, None, None), "AskObject.oid: oid must be 8 bytes, got 7"),
    (c.AskObject.msg_code, _args(1, None, None), "AskObject.oid: expected oid (8-byte bin), got int"),
    (c.AskNodeList.msg_code, b"\x91\xd4\x03\x01", "AskNodeList.node_type: expected NodeTypes (ext 4), got ext 3"),
    (c.AskNodeList.msg_code, b"\x91\xd4\x04\x09", "AskNodeList.node_type: bad NodeTypes value"),
    (c.AskNodeList.msg_code, b"\x91\xd5\x04\x00\x01", "bad NodeTypes value"),
    (c.AskNodeList.msg_code, b"\x91\x02", "expected NodeTypes (ext 4), got int"),
    (c.Error.msg_code, b"\x92\x06\xa3abc", "Error.message: expected text (bin), got str"),
    (c.Error.msg_code, b"\x92\x06\xc4\x02\xff\xfe", "Error.message: text is not valid UTF-8"),
    (c.Error.msg_code, b"\x92\xc3\xc4\x00", "Error.code: expected int/ErrorCodes, got bool"),
    (c.StartOperation.msg_code, b"\x91\x01", "StartOperation.backup: expected bool, got int"),
    (c.AskNewOIDs.msg_code, b"\x91\xc3", "AskNewOIDs.num_oids: expected u32 (int), got bool"),
    (c.AskNewOIDs.msg_code, b"\x91\xcf\x00\x00\x00\x01\x00\x00\x00\x00", "out of the range of u32"),
    (c.AskNewOIDs.msg_code, b"\x91\xff", "-1 is out of the range of u32"),
    (c.AnswerPrimary.msg_code, b"\x91\xce\x80\x00\x00\x00", "out of the range of uuid"),
    (c.NotifyNodeInformation.msg_code, b"\x92\x01\x90", "NotifyNodeInformation.timestamp: expected float, got int"),
    (c.NotifyUpstreamAdmin.msg_code, _args([b"h"]), "NotifyUpstreamAdmin.address: Address has 2 fields, got 1"),
    (c.NotifyUpstreamAdmin.msg_code, _args([b"h", 70000]), "address.port: 70000 is out of the range of u16"),
    (c.AnswerNodeList.msg_code, _args([[msgpack.ExtType(4, b"\0"), None, None, msgpack.ExtType(3, b"\x09"), None]]),
     "AnswerNodeList.node_list[0].state: bad NodeStates value"),
    (c.AnswerLockedTransactions.msg_code, b"\x91\x82" + b"\xc4\x08" + P8 + b"\xc0" + b"\xc4\x08" + P8 + b"\xc0",
     "duplicate key in map"),
    (c.AnswerLockedTransactions.msg_code, b"\x91\x81\x01\xc0", "tid_dict[key 1]: expected tid (8-byte bin), got int"),
    (c.AnswerLockedTransactions.msg_code, b"\x91\x90", "expected a map for {tid:?tid}, got array"),
    (c.AnswerTIDs.msg_code, b"\x91\x80", "expected an array for [tid], got map"),
    (c.NotifyMonitorInformation.msg_code, b"\x91\x81\xc4\x01k\x81\x80\x01", "not hashable"),
    (c.NotifyMonitorInformation.msg_code, b"\x91\x82\xc4\x01k\xc0\xc4\x01k\xc0", "duplicate key in map"),
    (c.Ping.msg_code, b"\x90\x90", "1 trailing bytes"),
    (c.Ping.msg_code, b"\x91", "malformed msgpack"),
    (c.Ping.msg_code, b"\xc1", "malformed msgpack"),
])
def test_decode_errors(code, data, text):
    with pytest.raises(DecodeError) as info:
        c.decode_args(code, data)
    assert text in str(info.value)


def test_n_decoder_truncated_and_oversize():
    fr = FRAMINGS["N"]
    packet = fr.encode(5, c.AskObject(1, None, None))
    d = NDecoder()
    assert d.feed(packet[:-1]) == [] and d.pending == len(packet) - 1
    [pkt] = d.feed(packet[-1:])
    assert pkt.msg_id == 5 and d.pending == 0
    # truncated payload: the header says 3 bytes but the args array is cut short
    bad = N_HEADER.pack(1, c.AskObject.msg_code, 3) + b"\x93\xc4\x08"
    [pkt] = NDecoder().feed(bad)
    with pytest.raises(DecodeError, match="malformed msgpack"):
        fr.decode_body(pkt.code, pkt.body)
    # the largest packet passes, one byte more fails on its header alone
    limit = MAX_PACKET_SIZE - N_HEADER.size
    assert NDecoder().feed(N_HEADER.pack(1, 2, limit)) == []
    with pytest.raises(PacketTooBigError, match="exceeds the maximum"):
        NDecoder().feed(N_HEADER.pack(1, 2, limit + 1))


def test_m_decoder_truncated():
    fr = FRAMINGS["M"]
    packet = fr.encode(7, c.AnswerObject(1, 2, None, 0, b"c" * 20, b"d" * 300, None))
    d = MDecoder()
    for i in range(len(packet) - 1):
        assert d.feed(packet[i:i + 1]) == []
    assert d.pending == len(packet) - 1
    [pkt] = d.feed(packet[-1:])
    assert pkt.msg_id == 7 and d.pending == 0


@pytest.mark.parametrize("data, text", [
    (pack([1, 2]), "got a 2-element array"),
    (pack([1, 2, [], 4]), "got a 4-element array"),
    (pack({"a": 1}), "got a map"),
    (pack(5), "got a int"),
    (pack([-1, 2, []]), "bad msg_id -1"),
    (pack([1 << 32, 2, []]), "bad msg_id"),
    (pack([1, 0x10000, []]), "bad msg_code"),
    (pack([1, "2", []]), "bad msg_code '2'"),
    (b"\xc1", "malformed msgpack stream"),
    (b"\xdd\xff\xff\xff\xff", "malformed msgpack stream"),
])
def test_m_decoder_bad_stream(data, text):
    with pytest.raises(FramingError, match=text):
        MDecoder().feed(data)


def test_m_decoder_args_errors_are_per_packet():
    """A bad args array is a DecodeError of that packet; the stream goes on."""
    d = MDecoder()
    fr = FRAMINGS["M"]
    pkts = d.feed(pack([1, c.Ping.msg_code, [1]]) + fr.encode(3, c.Ping()))
    with pytest.raises(DecodeError):
        fr.decode_body(pkts[0].code, pkts[0].body)
    assert fr.decode_body(pkts[1].code, pkts[1].body) == c.Ping()


def test_m_decoder_oversize():
    """A packet growing past 64 MiB is rejected before more is buffered."""
    head = b"\x93\x01\x02\x91\xc6" + (MAX_PACKET_SIZE).to_bytes(4, "big")
    d = MDecoder()
    chunk = b"\0" * (1 << 20)
    with pytest.raises(PacketTooBigError, match="exceeds the maximum"):
        d.feed(head)
        for _ in range(70):
            d.feed(chunk)
    assert d.pending <= MAX_PACKET_SIZE + (1 << 20)
    # many small elements: the limit applies to the whole object, not to the buffer
    d = MDecoder()
    element = b"\xc6" + (1 << 20).to_bytes(4, "big") + chunk
    with pytest.raises(PacketTooBigError):
        d.feed(b"\x93\x01\x02\xdc\x00\x50")
        for _ in range(0x50):
            d.feed(element)


def test_m_decoder_accepts_max_size():
    size = MAX_PACKET_SIZE
    head = b"\x93\x01\x02\x91\xc6"
    payload_len = size - len(head) - 4
    data = head + payload_len.to_bytes(4, "big") + b"\0" * payload_len
    assert len(data) == size
    [pkt] = MDecoder().feed(data)
    assert len(pkt.body[0]) == payload_len


def test_encode_rejects_oversize():
    big = c.AddObject(1, 2, 0, b"", b"\0" * MAX_PACKET_SIZE, None)
    for fr in FRAMINGS.values():
        with pytest.raises(PacketTooBigError):
            fr.encode(1, big)
