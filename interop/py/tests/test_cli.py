"""The command line: serve, ping, codec-echo, codec-random (Python only)."""

import collections
import json
import signal
import socket
import subprocess

import pytest

from neolinkpy import catalog as c
from neolinkpy.cli import codec_echo_line, codec_random_lines, make_uuid, percentile

from support import PYTHON, ServerProcess, python_env, python_serve


def run_cli(*args, stdin=None, timeout=30):
    return subprocess.run([PYTHON, "-m", "neolinkpy", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=python_env())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly(sig):
    with python_serve("--cluster", "t") as srv:
        assert srv.host == "127.0.0.1" and srv.port > 0
        res = run_cli("ping", "-n", "5", "--cluster", "t", srv.address)
        assert res.returncode == 0, res.stderr
        status, err = srv.stop(sig)
        assert status == 0 and err == ""


def test_serve_fixed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ServerProcess([PYTHON, "-m", "neolinkpy", "serve", "--listen", f"127.0.0.1:{port}",
                        "--encoding", "M", "--cluster", "t"], env=python_env()) as srv:
        assert srv.port == port
        res = run_cli("ping", "-n", "3", "--encoding", "M", "--cluster", "t", srv.address)
        assert res.returncode == 0, res.stderr
        res = run_cli("ping", "-n", "3", "--encoding", "N", "--cluster", "t", srv.address)
        assert res.returncode == 1 and "peer speaks the M encoding, we use N" in res.stderr
        assert srv.stop()[0] == 0


def test_ping_output():
    with python_serve("--cluster", "t", "--abort-oid", "0x10") as srv:
        res = run_cli("ping", "-n", "20", "-c", "3", "--cluster", "t", srv.address)
        assert res.returncode == 0, res.stderr
        assert "20 of 20 round trips ok" in res.stdout
        assert "p50" in res.stdout and "p99" in res.stdout and "round trips/s" in res.stdout
        res = run_cli("ping", "-n", "20", "--light", "-c", "4", "--size", "1000", "--json",
                      "--encoding", "M", "--cluster", "t", srv.address)
        assert res.returncode == 0, res.stderr
        stats = json.loads(res.stdout)
        assert stats["count"] == 20 and stats["errors"] == 0 and stats["rps"] > 0
        res = run_cli("ping", "-n", "4", "-c", "2", "--size", "16", "--json", "--cluster", "t",
                      srv.address)
        assert res.returncode == 1
        assert json.loads(res.stdout)["errors"] == 4
        assert "LinkClosedError" in res.stderr
        assert srv.stop()[0] == 0


def test_ping_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run_cli("ping", "-n", "1", f"127.0.0.1:{port}")
    assert res.returncode == 1 and "cannot connect" in res.stderr


def test_codec_echo_cli():
    lines = codec_random_lines(3, 2)
    bad = ["", "32768 9206a3616263", "9999 90", "xx 90", "1 zz", "1"]
    res = run_cli("codec-echo", stdin="\n".join(lines + bad) + "\n")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[:len(lines)] == lines
    assert out[len(lines):] == [
        "32768 ERROR Error.message: expected text (bin), got str",
        "9999 ERROR unknown packet code 9999 (0x270f)",
        "xx ERROR bad line: invalid literal for int() with base 10: 'xx'",
        "1 ERROR bad line: non-hexadecimal number found in fromhex() arg at position 0",
        "1 ERROR bad line: want 'CODE HEXARGS'",
    ]


def test_codec_random_cli():
    res = run_cli("codec-random", "--seed", "42", "--per-type", "3")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines == codec_random_lines(42, 3)
    counts = collections.Counter(int(line.split()[0]) for line in lines)
    assert set(counts) == set(c.PACKETS) and set(counts.values()) == {3}
    assert [line.split()[0] for line in lines[:3]] == ["32768"] * 3     # schema order
    assert codec_random_lines(43, 3) != lines
    assert all(codec_echo_line(line) == line for line in lines)


def test_helpers():
    assert make_uuid(c.NodeTypes.MASTER, 1) == -0x0fffffff          # 0xf0000001
    assert make_uuid(c.NodeTypes.CLIENT, 3) & 0xffffffff == 0xe0000003
    assert make_uuid(c.NodeTypes.ADMIN, 4) & 0xffffffff == 0xd0000004
    assert make_uuid(c.NodeTypes.STORAGE, 1) == 1
    values = sorted(range(1, 101))
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100 and percentile([], 0.5) == 0
