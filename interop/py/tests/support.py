"""Helpers shared by the tests: async test runner, CLI processes, a raw peer."""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from neolinkpy import catalog
from neolinkpy.framing import FRAMINGS, MDecoder, NDecoder, RawPacket

#: interop/py, the directory holding the neolinkpy package.
PY_DIR = Path(__file__).resolve().parents[1]
#: The interpreter running the tests (Debian's /usr/bin/python3 with msgpack).
PYTHON = sys.executable


def async_test(timeout: float = 20.0) -> Callable:
    """Run an ``async def`` test in a fresh event loop, failing after ``timeout`` s."""
    def decorate(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            async def bounded() -> None:
                async with asyncio.timeout(timeout):
                    await fn(*args, **kwargs)
            asyncio.run(bounded())
        return run
    return decorate


def python_env() -> dict:
    """Environment for running ``python -m neolinkpy`` in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PY_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class ServerProcess:
    """A ``serve`` subprocess (Python or Go CLI) listening on a loopback port.

    Its stdout is drained by a thread (the first line must be ``listening on
    HOST:PORT``) and its stderr goes to a temporary file, so a chatty server can
    never block on a full pipe.
    """

    def __init__(self, argv: Sequence[str], env: dict | None = None,
                 start_timeout: float = 20.0) -> None:
        self.argv = list(argv)
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, env=env)
        self.stdout_lines: "queue.Queue[str]" = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        try:
            line = self.stdout_lines.get(timeout=start_timeout)
        except queue.Empty:
            line = ""
        if not line.startswith("listening on "):
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError(f"{self.argv}: expected 'listening on HOST:PORT' within "
                                 f"{start_timeout}s, got {line!r}; stderr: {self.stderr()}")
        hostport = line[len("listening on "):].strip()
        host, _, port = hostport.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.put(line)
        self.stdout_lines.put("")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, str]:
        """Send ``sig`` to the server; return its exit status and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return -1, self.stderr() + "\n(killed: did not stop after the signal)"
        return status, self.stderr()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._drainer.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def python_serve(*args: str) -> ServerProcess:
    """Start the Python CLI server."""
    return ServerProcess([PYTHON, "-m", "neolinkpy", "serve", "--listen", "127.0.0.1:0",
                          *args], env=python_env())


class RawPeer:
    """A peer speaking raw packets over asyncio streams, to script exact behaviour
    (e.g. unpatched NEO/py, whose ids count 0, 1, 2... on both sides)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 encoding: str = "M") -> None:
        self.reader, self.writer = reader, writer
        self.framing = FRAMINGS[encoding]
        self._decoder = MDecoder() if encoding == "M" else NDecoder()
        self._packets: list[RawPacket] = []

    async def handshake(self) -> None:
        """Send our handshake and check the peer's."""
        self.writer.write(self.framing.handshake)
        got = await self.reader.readexactly(len(self.framing.handshake))
        assert got == self.framing.handshake, got

    def send(self, msg_id: int, msg: catalog.Message) -> None:
        self.writer.write(self.framing.encode(msg_id, msg))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def recv(self) -> tuple[int, catalog.Message]:
        """The next packet as (msg_id, message)."""
        while not self._packets:
            data = await self.reader.read(65536)
            if not data:
                raise EOFError("peer closed")
            self._packets.extend(self._decoder.feed(data))
        pkt = self._packets.pop(0)
        return pkt.msg_id, self.framing.decode_body(pkt.code, pkt.body)

    async def expect_nothing(self, delay: float = 0.2) -> None:
        """Check that no packet arrives within ``delay`` seconds."""
        try:
            async with asyncio.timeout(delay):
                got = await self.recv()
        except TimeoutError:
            return
        raise AssertionError(f"unexpected packet {got}")

    def close(self) -> None:
        self.writer.close()


# -- TLS certificates ------------------------------------------------------------

_LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _openssl(*args: str, cwd: Path) -> None:
    try:
        res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=30)
    except FileNotFoundError:
        raise AssertionError("the openssl command is needed to make test certificates "
                             "(apt-get install openssl)") from None
    assert res.returncode == 0, f"openssl {' '.join(args)}: {res.stderr}"


def make_tls_files(directory: Path, name: str = "node") -> dict[str, str]:
    """Make a CA and a node certificate it signed, with X.509v3 extensions strict
    enough for Go and for Python's VERIFY_X509_STRICT (as NEO/py uses). Returns
    the paths as {"ca", "cert", "key"}; the same files serve the Go CLI's -ca,
    -cert and -key flags."""
    d = directory / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "leaf.ext").write_text(_LEAF_EXTENSIONS)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", f"/CN=neolink test CA {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-new", *ec, "-keyout", "key.pem", "-out", "node.csr",
             "-subj", f"/CN=neolink test {name}", cwd=d)
    _openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-set_serial", "2", "-days", "2", "-out", "cert.pem", "-extfile", "leaf.ext", cwd=d)
    return {"ca": str(d / "ca.pem"), "cert": str(d / "cert.pem"), "key": str(d / "key.pem")}


def tls_flags(files: dict[str, str]) -> list[str]:
    """The --ca/--cert/--key flags of both CLIs for ``files``."""
    return ["--ca", files["ca"], "--cert", files["cert"], "--key", files["key"]]


def rss_bytes() -> int:
    """Resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
