#!/usr/bin/env python3
"""neolinkpy next to NEO/py's own connection classes, against `neolink serve`.

Both clients talk to the same Go server (``neolink serve``), one process per
measurement, in interleaved rounds so that a noisy machine hurts them alike:

* serial round trips: ``Ping`` -> ``Pong`` on one connection, one at a time;
* 1 MiB throughput: ``AskObject`` of a 1 MiB object, one at a time.

NEO/py's client is built from its ``neo.lib`` classes (``BaseApplication`` for
the event manager and TLS context, ``ClientConnection``, an ``EventHandler``),
driven by its ``EventManager.poll`` loop: what a NEO/py node runs. It needs a
source tree of NEO/py (``--neopy DIR`` or a ``.tar.gz`` of it, extracted to a
temporary directory) and Debian's python3 with python3-msgpack and python3-six.
neolinkpy runs on asyncio's default event loop, in full mode (one conn).

    python3 bench_vs_neopy.py --neolink ../../bin/neolink --neopy neoppod.tar.gz [--tls]

prints a Markdown table of medians (and the best run) over ``--rounds`` rounds.
With ``--tls``, a second server runs TLS with certificates made by ``openssl``,
and both clients are measured over it too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
WARMUP = 200


# -- clients (run in a child process each) ----------------------------------------

def result(pings: int, rtt: float, rtt_cpu: float, objects: int, bulk: float,
           bulk_cpu: float) -> dict:
    """Rates, and the client's own CPU time per operation (user + system):
    that one depends little on what else the machine runs."""
    return {"rps": pings / rtt, "mibps": objects / bulk,
            "cpu_us_per_rt": rtt_cpu / pings * 1e6, "cpu_ms_per_mib": bulk_cpu / objects * 1e3}


def neopy_client(address: str, pings: int, objects: int, tls: list[str]) -> dict:
    """Measure with NEO/py's connection classes and event loop."""
    from neo.lib.app import BaseApplication
    from neo.lib.connection import ClientConnection
    from neo.lib.handler import EventHandler
    from neo.lib.protocol import NodeTypes, Packets
    from neo.lib.util import p64

    host, port = address.rsplit(":", 1)

    class Handler(EventHandler):
        def acceptIdentification(self, conn, *args):
            app.answer = args

        def pong(self, conn):
            app.answer = True

        def answerObject(self, conn, *args):
            app.answer = args

        def connectionClosed(self, conn):
            raise SystemExit("NEO/py client: connection closed")

    app = BaseApplication(ssl_credentials=tuple(tls) if tls else None)
    node = app.nm.createFromNodeType(NodeTypes.MASTER, address=(host.encode(), int(port)))
    conn = ClientConnection(app, Handler(app), node)
    poll = app.em.poll

    def ask(packet):
        app.answer = None
        conn.ask(packet)
        while app.answer is None:
            poll(1)
        return app.answer

    ask(Packets.RequestIdentification(NodeTypes.CLIENT, None, None, "neo", None, {}))
    for _ in range(WARMUP):
        ask(Packets.Ping())
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(pings):
        ask(Packets.Ping())
    rtt, rtt_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(objects):
        answer = ask(Packets.AskObject(p64(MIB), None, None))
        if len(answer[5]) != MIB:
            raise SystemExit("NEO/py client: bad object")
    bulk, bulk_cpu = time.perf_counter() - t0, time.process_time() - c0
    return result(pings, rtt, rtt_cpu, objects, bulk, bulk_cpu)


def neolinkpy_client(address: str, pings: int, objects: int, tls: list[str],
                     encoding: str) -> dict:
    """Measure with neolinkpy on asyncio."""
    sys.path.insert(0, str(HERE))
    from neolinkpy import AskObject, NodeTypes, Ping, RequestIdentification, TLSConfig, dial

    host, port = address.rsplit(":", 1)

    async def run() -> dict:
        async with dial(host, int(port), encoding, tls=TLSConfig(*tls) if tls else None) as link:
            conn = link.new_conn()
            await conn.ask(RequestIdentification(NodeTypes.CLIENT, None, None, "neo", None, {}))
            ask = conn.ask
            for _ in range(WARMUP):
                await ask(Ping())
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(pings):
                await ask(Ping())
            rtt, rtt_cpu = time.perf_counter() - t0, time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(objects):
                answer = await ask(AskObject(MIB, None, None))
                if len(answer.data) != MIB:
                    raise SystemExit("neolinkpy client: bad object")
            bulk, bulk_cpu = time.perf_counter() - t0, time.process_time() - c0
            return result(pings, rtt, rtt_cpu, objects, bulk, bulk_cpu)

    return asyncio.run(run())


def client_main(argv: list[str]) -> None:
    kind, address, pings, objects, *tls = argv
    if kind == "neopy":
        result = neopy_client(address, int(pings), int(objects), tls)
    else:
        result = neolinkpy_client(address, int(pings), int(objects), tls, kind[-1])
    print(json.dumps(result))


# -- driver -----------------------------------------------------------------------

class Server:
    """A `neolink serve` process on a free loopback port."""

    def __init__(self, neolink: str, tls: list[str]) -> None:
        flags = []
        if tls:
            flags = ["-ca", tls[0], "-cert", tls[1], "-key", tls[2]]
        self.proc = subprocess.Popen([neolink, "serve", "-listen", "127.0.0.1:0", *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise SystemExit(f"neolink serve printed {line!r}")
        self.address = line.split()[-1]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def make_certs(directory: Path) -> list[str]:
    """A CA and a node certificate with the extensions VERIFY_X509_STRICT wants."""
    (directory / "leaf.ext").write_text(
        "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth, clientAuth\nsubjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for args in (["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
                  "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                 ["req", "-new", *ec, "-keyout", "key.pem", "-out", "node.csr",
                  "-subj", "/CN=bench node"],
                 ["x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                  "-set_serial", "2", "-days", "1", "-out", "cert.pem", "-extfile",
                  "leaf.ext"]):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    return [str(directory / name) for name in ("ca.pem", "cert.pem", "key.pem")]


def neopy_source(path: str, scratch: Path) -> Path:
    """The directory holding NEO/py's ``neo`` package."""
    p = Path(path)
    if p.is_file():
        with tarfile.open(p) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(scratch, filter="data")
            else:                       # Python < 3.11.4: a trusted tarball only
                tar.extractall(scratch)
        p = scratch
    for candidate in (p, *sorted(p.iterdir())):
        if (candidate / "neo" / "lib" / "connection.py").is_file():
            return candidate
    raise SystemExit(f"no NEO/py source (neo/lib/connection.py) in {path}")


def run_client(kind: str, address: str, args: argparse.Namespace, tls: list[str],
               env: dict) -> dict:
    res = subprocess.run([sys.executable, __file__, "_client", kind, address, str(args.n),
                          str(args.objects), *tls], capture_output=True, text=True,
                         env=env, timeout=300)
    if res.returncode != 0:
        raise SystemExit(f"{kind} client failed: {res.stderr}")
    return json.loads(res.stdout)


CLIENTS = {
    "neopy": "NEO/py `neo.lib` (M, EventManager)",
    "neolinkpy-M": "neolinkpy (M, asyncio)",
    "neolinkpy-N": "neolinkpy (N, asyncio)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neolink", default=os.environ.get("NEOLINK_BIN", "neolink"),
                        help="the Go neolink binary (default $NEOLINK_BIN)")
    parser.add_argument("--neopy", required=True,
                        help="NEO/py source: a directory or a .tar.gz holding neo/lib")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=5000, help="serial round trips per run")
    parser.add_argument("--objects", type=int, default=200, help="1 MiB objects per run")
    parser.add_argument("--tls", action="store_true", help="also measure over TLS")
    args = parser.parse_args()
    if shutil.which(args.neolink) is None and not os.access(args.neolink, os.X_OK):
        raise SystemExit(f"no neolink binary at {args.neolink}")

    scratch = Path(tempfile.mkdtemp(prefix="bench-neopy-"))
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(neopy_source(args.neopy, scratch / "src"))
        setups = [("plain", [])]
        if args.tls:
            certs = scratch / "certs"
            certs.mkdir()
            setups.append(("TLS", make_certs(certs)))
        results: dict[tuple[str, str], list[dict]] = {}
        for label, tls in setups:
            server = Server(args.neolink, tls)
            kinds = list(CLIENTS)
            try:
                for _ in range(args.rounds):
                    for kind in kinds:
                        r = run_client(kind, server.address, args, tls, env)
                        results.setdefault((label, kind), []).append(r)
            finally:
                server.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"{args.rounds} rounds, interleaved; {args.n} serial Ping round trips and "
          f"{args.objects} serial 1 MiB AskObject per run; median (best); client CPU "
          f"time per operation, median\n")
    print("| transport | client | serial round trips/s | CPU µs per round trip "
          "| 1 MiB objects/s (MiB/s) | CPU ms per MiB |")
    print("|---|---|--:|--:|--:|--:|")
    for (label, kind), runs in results.items():
        def med(key: str) -> float:
            return statistics.median(r[key] for r in runs)

        def best(key: str) -> float:
            return max(r[key] for r in runs)
        print(f"| {label} | {CLIENTS[kind]} | {med('rps'):,.0f} ({best('rps'):,.0f}) "
              f"| {med('cpu_us_per_rt'):.1f} "
              f"| {med('mibps'):,.0f} ({best('mibps'):,.0f}) | {med('cpu_ms_per_mib'):.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        client_main(sys.argv[2:])
    else:
        main()
