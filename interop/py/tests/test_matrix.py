"""Cross-language matrix: {Go, Python} client x {Go, Python} server x {N, M} x
{full, light}, plus the Go/Python codec cross-check.

The Go side is the ``neolink`` CLI named by ``$NEOLINK_BIN``; a cell that needs it
fails (it is not skipped) when the variable is unset. Servers run as processes
(``serve``); the Python client is the library itself, in-process, plus one run of
its ``ping`` CLI; the Go client is ``$NEOLINK_BIN ping``.

Each cell checks: handshake + identification, Ping -> Pong, AskObject -> 1 MiB
AnswerObject, an Error answer surfaced as an error, 1000 concurrent conns (or
light asks) on one link, and an abrupt close mid-exchange (``--abort-oid``) that
the client reports as an error instead of hanging. Full-mode cells run the server
with ``--encoding auto``, light-mode cells with the cell's encoding.
"""

import asyncio
import collections
import hashlib
import json
import os
import subprocess


import pytest

from neolinkpy import catalog as c
from neolinkpy import TLSConfig, dial
from neolinkpy.cli import codec_echo_line, codec_random_lines
from neolinkpy.errors import LinkClosedError, NeoError

from support import PYTHON, ServerProcess, python_env, tls_flags

CLUSTER = "neotest"
ABORT_OID = 7
#: --abort-oid argument: 16 hex digits, read as 7 by any reasonable hex parser.
ABORT_OID_ARG = f"{ABORT_OID:016x}"
MIB = 1 << 20
CLIENT_TIMEOUT = 60


def go_bin() -> str:
    """Path of the Go CLI; fails the test if it is not configured."""
    path = os.environ.get("NEOLINK_BIN")
    if not path:
        pytest.fail("NEOLINK_BIN is not set: it must name the built Go `neolink` CLI "
                    "(e.g. NEOLINK_BIN=$PWD/bin/neolink); this cell needs the Go side",
                    pytrace=False)
    if not os.access(path, os.X_OK):
        pytest.fail(f"NEOLINK_BIN={path} is not an executable file", pytrace=False)
    return path


def cli(impl: str) -> list[str]:
    """Command prefix of the CLI of implementation ``impl`` ("go" or "py")."""
    return [go_bin()] if impl == "go" else [PYTHON, "-m", "neolinkpy"]


def start_server(impl: str, encoding: str, tls: list[str] = ()) -> ServerProcess:
    argv = cli(impl) + ["serve", "--listen", "127.0.0.1:0", "--encoding", encoding,
                        "--cluster", CLUSTER, "--abort-oid", ABORT_OID_ARG, *tls]
    return ServerProcess(argv, env=python_env())


def run_ping(impl: str, address: str, enc: str, light: bool, *args: str,
             timeout: float = CLIENT_TIMEOUT, tls: list[str] = ()) -> subprocess.CompletedProcess:
    argv = cli(impl) + ["ping", "--encoding", enc, *(["--light"] if light else []),
                        *args, *tls, address]
    if "--cluster" not in args:
        argv[-1:-1] = ["--cluster", CLUSTER]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=python_env())
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(argv)} did not finish within {timeout}s (hang?)")


def ping_json(impl: str, address: str, enc: str, light: bool, *args: str,
              tls: list[str] = ()) -> dict:
    res = run_ping(impl, address, enc, light, "--json", *args, tls=tls)
    assert res.returncode == 0, f"ping {args} failed: {res.stderr}"
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print one line, got {res.stdout!r}"
    stats = json.loads(lines[0])
    assert {"count", "errors", "p50_us", "p90_us", "p99_us", "max_us", "rps"} <= set(stats)
    assert stats["errors"] == 0
    assert stats["p50_us"] <= stats["p90_us"] <= stats["p99_us"] <= stats["max_us"]
    return stats


def cli_client_cell(impl: str, address: str, enc: str, light: bool,
                    tls: list[str] = ()) -> None:
    """The cell's checks with a CLI client (the Go one, or Python's own CLI)."""
    # handshake + identification + Ping -> Pong
    assert ping_json(impl, address, enc, light, "-n", "10", tls=tls)["count"] == 10
    # AskObject -> 1 MiB AnswerObject (the client checks length and SHA-1)
    assert ping_json(impl, address, enc, light, "-n", "3", "--size", str(MIB),
                     tls=tls)["count"] == 3
    # an Error answer is an error: wrong cluster name
    res = run_ping(impl, address, enc, light, "-n", "1", "--cluster", "wrong-" + CLUSTER,
                   tls=tls)
    assert res.returncode == 1, res
    assert "invalid cluster name" in res.stderr, res.stderr
    # 1000 concurrent conns (or light asks) on one link
    stats = ping_json(impl, address, enc, light, "-c", "1000", "-n", "1000", tls=tls)
    assert stats["count"] == 1000
    # abrupt close mid-exchange: reported, exit status 1, no hang
    res = run_ping(impl, address, enc, light, "-n", "3", "--size", str(ABORT_OID), timeout=30,
                   tls=tls)
    assert res.returncode == 1, res
    assert res.stderr.strip(), "the client must say what failed"


async def py_client_cell(host: str, port: int, enc: str, light: bool,
                         tls: TLSConfig | None = None) -> None:
    """The cell's checks with the Python library as client."""
    async with dial(host, port, enc, tls=tls) as link:
        assert (link.tls is not None) == (tls is not None)
        def asker():
            return link.ask1 if light else link.new_conn().ask
        ask = asker()
        ident = c.RequestIdentification(c.NodeTypes.CLIENT, None, None, CLUSTER, None, {})
        accept = await ask(ident)
        assert accept.node_type == c.NodeTypes.MASTER and accept.uuid == -0x0fffffff
        assert accept.your_uuid >> 24 == -0x20, hex(accept.your_uuid)   # a CLIENT id
        assert await ask(c.Ping()) == c.Pong()
        obj = await ask(c.AskObject(MIB, None, None))
        assert obj.oid == MIB and obj.serial == 1 and obj.next_serial is None
        assert obj.data == (bytes(range(251)) * (MIB // 251 + 1))[:MIB]
        assert obj.checksum == hashlib.sha1(obj.data).digest()
        assert obj.compression == 0 and obj.data_serial is None
        with pytest.raises(NeoError) as info:
            await ask(c.AskLastTransaction())
        assert info.value.code == c.ErrorCodes.PROTOCOL_ERROR
        assert info.value.message == "unexpected packet AskLastTransaction"
        with pytest.raises(NeoError, match="invalid cluster name"):
            await ask(c.RequestIdentification(c.NodeTypes.CLIENT, None, None, "x", None, {}))
        answers = await asyncio.gather(*(asker()(c.Ping()) for _ in range(1000)))
        assert answers == [c.Pong()] * 1000
        # abrupt close: the aborting ask fails, and so does every other ask still
        # in flight (a server may refuse those with an Error before it closes)
        in_flight = [asyncio.ensure_future(asker()(c.AskObject(MIB, None, None)))
                     for _ in range(3)]
        async with asyncio.timeout(20):
            with pytest.raises((LinkClosedError, NeoError)):
                await ask(c.AskObject(ABORT_OID, None, None))
            await link.wait_closed()
        for result in await asyncio.gather(*in_flight, return_exceptions=True):
            assert isinstance(result, (c.AnswerObject, LinkClosedError, NeoError)), result
        with pytest.raises(LinkClosedError):
            await ask(c.Ping())


CELLS = [(cl, sv, enc, mode) for cl in ("go", "py") for sv in ("go", "py")
         for enc in ("N", "M") for mode in ("full", "light")]


@pytest.mark.parametrize("client, server, enc, mode", CELLS,
                         ids=[f"{cl}-client-{sv}-server-{enc}-{mode}" for cl, sv, enc, mode in CELLS])
def test_cell(client: str, server: str, enc: str, mode: str) -> None:
    light = mode == "light"
    with start_server(server, enc if light else "auto") as srv:
        if client == "py":
            asyncio.run(asyncio.wait_for(py_client_cell(srv.host, srv.port, enc, light), 60))
            stats = ping_json("py", srv.address, enc, light, "-c", "1000", "-n", "1000")
            assert stats["count"] == 1000
        else:
            cli_client_cell("go", srv.address, enc, light)
        status, err = srv.stop()
        assert status == 0, f"server exit status {status}; stderr:\n{err}"
        assert "Traceback" not in err and "panic" not in err, err


TLS_CELLS = [(cl, sv, enc, mode) for cl in ("go", "py") for sv in ("go", "py")
             for enc, mode in (("N", "full"), ("M", "full"), ("M", "light"))]


@pytest.mark.parametrize("client, server, enc, mode", TLS_CELLS,
                         ids=[f"tls-{cl}-client-{sv}-server-{enc}-{mode}"
                              for cl, sv, enc, mode in TLS_CELLS])
def test_tls_cell(client: str, server: str, enc: str, mode: str,
                  tls_files: dict[str, str]) -> None:
    """The same checks over TLS (NEO/py's model: mutual, CA-checked), both sides
    using the same certificate files."""
    light = mode == "light"
    flags = tls_flags(tls_files)
    with start_server(server, enc if light else "auto", flags) as srv:
        if client == "py":
            tls = TLSConfig(tls_files["ca"], tls_files["cert"], tls_files["key"])
            asyncio.run(asyncio.wait_for(
                py_client_cell(srv.host, srv.port, enc, light, tls), 60))
        else:
            cli_client_cell("go", srv.address, enc, light, tls=flags)
        # a client without TLS is rejected, and says so instead of hanging
        res = run_ping(client, srv.address, enc, light, "-n", "1", timeout=30)
        assert res.returncode == 1 and "cannot connect" in res.stderr, res
        status, err = srv.stop()
        assert status == 0, f"server exit status {status}; stderr:\n{err}"
        assert "Traceback" not in err and "panic" not in err, err


def test_python_cli_client_cell() -> None:
    """The CLI checks of the Go client, run with the Python CLI (Python x Python),
    so that the Go-client cells' expectations are verified here too."""
    for enc, light in (("N", False), ("M", True)):
        with start_server("py", "auto") as srv:
            cli_client_cell("py", srv.address, enc, light)
            status, err = srv.stop()
            assert status == 0, err


# -- codec cross-check -----------------------------------------------------------

SEED, PER_TYPE = 20240611, 20

#: Malformed args both decoders must reject: (code, hex args).
BAD_LINES = [
    (9999, "90"),                                             # unknown code
    (c.Ping.msg_code, "9100"),                                # wrong arity
    (c.AskObject.msg_code, "93c40700000000000000c0c0"),       # 7-byte oid
    (c.AskNodeList.msg_code, "91d40302"),                     # wrong ext code
    (c.AskNodeList.msg_code, "91d40409"),                     # bad enum value
    (c.Error.msg_code, "9206a3616263"),                       # str for text
    (c.StartOperation.msg_code, "9101"),                      # int for bool
    (c.AskNewOIDs.msg_code, "91cf0000000100000000"),          # u32 out of range
]


def _run_go(args: list[str], stdin: str | None = None) -> list[str]:
    res = subprocess.run([go_bin(), *args], input=stdin, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, f"neolink {' '.join(args)}: {res.stderr}"
    return [line for line in res.stdout.splitlines() if line.strip()]


def _first_difference(sent: list[str], got: list[str]) -> str:
    for a, b in zip(sent, got):
        if a.lower() != b.lower():
            cls = c.PACKETS.get(int(a.split()[0]))
            hint = ""
            if "duplicate key" in b:
                hint = ("\n(the generator made a map with duplicate keys: not a valid NEO "
                        "value, since NEO/py maps are dicts; random maps need unique keys)")
            return f"{cls.__name__ if cls else '?'}:\n  sent {a}\n  got  {b}{hint}"
    return f"{len(sent)} lines sent, {len(got)} received"


def test_codec_go_random_python_echo() -> None:
    """Python decodes Go's random packets of every type and re-encodes them
    byte for byte."""
    lines = _run_go(["codec-random", "--seed", str(SEED), "--per-type", str(PER_TYPE)])
    counts = collections.Counter(int(line.split()[0]) for line in lines)
    assert set(counts) == set(c.PACKETS), set(c.PACKETS) ^ set(counts)
    assert set(counts.values()) == {PER_TYPE}
    echoed = [codec_echo_line(line) for line in lines]
    assert [e.lower() for e in echoed] == [line.lower() for line in lines], \
        _first_difference(lines, echoed)


def test_codec_python_random_go_echo() -> None:
    """Go decodes Python's random packets of every type and re-encodes them
    byte for byte."""
    lines = codec_random_lines(SEED, PER_TYPE)
    echoed = _run_go(["codec-echo"], "\n".join(lines) + "\n")
    assert [e.lower() for e in echoed] == [line.lower() for line in lines], \
        _first_difference(lines, echoed)


def test_codec_both_reject_malformed() -> None:
    lines = [f"{code} {hexargs}" for code, hexargs in BAD_LINES]
    go = _run_go(["codec-echo"], "\n".join(lines) + "\n")
    py = [codec_echo_line(line) for line in lines]
    assert len(go) == len(lines), go
    for line, g, p in zip(lines, go, py):
        assert p.split()[1] == "ERROR", (line, p)
        assert g.split()[:2] == [line.split()[0], "ERROR"], f"Go accepted {line!r}: {g!r}"
