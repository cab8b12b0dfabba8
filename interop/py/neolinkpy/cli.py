"""Command line: ``python -m neolinkpy serve|ping|codec-echo|codec-random``.

``serve`` and ``ping`` behave like the Go ``neolink`` CLI so that the
cross-language test matrix can swap implementations:

* ``serve --listen HOST:PORT [--encoding auto|N|M] [--cluster NAME] [--abort-oid HEX]
  [--ca FILE --cert FILE --key FILE]``
  prints ``listening on HOST:PORT`` first, then answers like a NEO master:
  RequestIdentification → AcceptIdentification (or Error "invalid cluster name"),
  Ping → Pong, AskObject(oid) → AnswerObject with ``oid & 0xffffffff`` bytes of
  data (``data[i] = i % 251``), other requests → Error(PROTOCOL_ERROR,
  "unexpected packet <Name>"). An AskObject for ``--abort-oid`` closes the whole
  link abruptly instead (a test hook). SIGINT/SIGTERM stop it with exit status 0.
* ``ping [-n COUNT] [-c CONCURRENCY] [--light] [--encoding N|M] [--size BYTES]
  [--cluster NAME] [--json] [--ca FILE --cert FILE --key FILE] HOST:PORT`` identifies as a client, then does COUNT
  round trips (Ping, or AskObject of SIZE bytes) over CONCURRENCY conns or
  concurrent light asks, and prints RTT percentiles. Exit status 0 only if every
  round trip succeeded.

With ``--ca``, ``--cert`` and ``--key``, both run TLS as NEO/py does (see
:class:`~neolinkpy.link.TLSConfig`).

``codec-echo`` and ``codec-random`` implement the line protocol of the Go/Python
codec cross-check: lines ``CODE HEXARGS`` (decimal packet code, hex of the msgpack
args array).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import math
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

from . import catalog
from .catalog import (AcceptIdentification, AnswerObject, AskObject, Error, ErrorCodes,
                      Message, NodeTypes, Ping, Pong, RequestIdentification)
from .errors import CodecError, NeoLinkError, PacketTooBigError
from .link import Conn, Link, TLSConfig, dial, listen
from .randgen import RandomValues

#: Cluster name used when --cluster is not given.
DEFAULT_CLUSTER = "neo"

#: High byte of node ids per node type (NEO/py UUID_NAMESPACES).
UUID_NAMESPACES = {NodeTypes.STORAGE: 0x00, NodeTypes.MASTER: -0x10,
                   NodeTypes.CLIENT: -0x20, NodeTypes.ADMIN: -0x30}


def make_uuid(node_type: NodeTypes, number: int) -> int:
    """The node id ``number`` in the namespace of ``node_type`` (e.g. M1 = 0xf0000001),
    as the signed 32-bit int NEO sends."""
    return (UUID_NAMESPACES[node_type] << 24) | (number & 0xffffff)


@functools.lru_cache(maxsize=4)
def object_data(size: int) -> tuple[bytes, bytes]:
    """The test object of ``size`` bytes (``data[i] = i % 251``) and its SHA-1."""
    pattern = bytes(range(251))
    data = (pattern * (size // 251 + 1))[:size]
    return data, hashlib.sha1(data).digest()


def parse_hostport(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"bad address {text!r} (want HOST:PORT)")
    return host.strip("[]"), int(port)


def format_hostport(host: str, port: int) -> str:
    """Inverse of :func:`parse_hostport`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- serve ---------------------------------------------------------------------

class Master:
    """The request handler of ``serve``: a minimal NEO master."""

    def __init__(self, cluster: str, abort_oid: int | None) -> None:
        self.cluster = cluster
        self.abort_oid = abort_oid
        self._uuid_counters: dict[NodeTypes, int] = {}

    def _next_uuid(self, node_type: NodeTypes) -> int:
        n = self._uuid_counters.get(node_type, 0) + 1
        self._uuid_counters[node_type] = n
        return make_uuid(node_type, n)

    def answer(self, conn: Conn, msg: Message) -> Message | None:
        """The answer to ``msg``, or None for no answer (and for --abort-oid)."""
        t = type(msg)
        if t is Ping:
            return Pong()
        if t is AskObject:
            if msg.oid == self.abort_oid:
                conn.link.abort()
                return None
            data, checksum = object_data(msg.oid & 0xffffffff)
            return AnswerObject(oid=msg.oid, serial=1, next_serial=None, compression=0,
                                checksum=checksum, data=data, data_serial=None)
        if t is RequestIdentification:
            if msg.name != self.cluster:
                return Error(ErrorCodes.PROTOCOL_ERROR, "invalid cluster name")
            return AcceptIdentification(node_type=NodeTypes.MASTER,
                                        uuid=make_uuid(NodeTypes.MASTER, 1),
                                        your_uuid=self._next_uuid(msg.node_type))
        if msg.kind in ("request", "errreq"):
            return Error(ErrorCodes.PROTOCOL_ERROR, f"unexpected packet {t.__name__}")
        return None

    async def handle(self, conn: Conn, msg: Message) -> None:
        """:meth:`Link.serve` handler: send the answer, if any."""
        reply = self.answer(conn, msg)
        if reply is None:
            return
        try:
            await conn.send(reply)
        except (PacketTooBigError, CodecError) as e:
            await conn.send(Error(ErrorCodes.PROTOCOL_ERROR, f"cannot answer: {e}"))

    async def serve_link(self, link: Link) -> None:
        """:func:`listen` handler."""
        await link.serve(self.handle)


async def serve_main(args: argparse.Namespace) -> int:
    host, port = args.listen
    master = Master(args.cluster, args.abort_oid)
    listener = await listen(host or None, port, args.encoding, handler=master.serve_link,
                            tls=tls_config(args))
    bound_host, bound_port = listener.address
    print(f"listening on {format_hostport(bound_host, bound_port)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)      # a second ^C must not break the shutdown
    listener.close()
    async with asyncio.timeout(10):
        await listener.wait_closed()
    return 0


# -- ping ----------------------------------------------------------------------

def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 if empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class Pinger:
    """Round trips of ``ping``: makes requests and checks their answers."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        if size is not None:
            self._data_len = size & 0xffffffff
            self._checksum = object_data(self._data_len)[1]
        self.rtts_ns: list[int] = []
        self.errors: list[str] = []

    def request(self) -> Message:
        """The request of one round trip."""
        if self.size is None:
            return Ping()
        return AskObject(oid=self.size, at=None, before=None)

    def check(self, answer: Message) -> None:
        """Check the data of an AnswerObject (ask() already checked the type)."""
        if self.size is None:
            return
        if answer.oid != self.size or len(answer.data) != self._data_len:
            raise NeoLinkError(f"bad AnswerObject: oid {answer.oid}, "
                               f"{len(answer.data)} bytes of data (want {self._data_len})")
        if answer.checksum != self._checksum or \
                hashlib.sha1(answer.data).digest() != self._checksum:
            raise NeoLinkError("bad AnswerObject: checksum mismatch")

    async def round_trips(self, ask: Callable[[Message], Awaitable[Message]],
                          count: int) -> None:
        """Do ``count`` round trips with ``ask(request)``; stop at the first error."""
        for _ in range(count):
            req = self.request()
            t0 = time.perf_counter_ns()
            try:
                self.check(await ask(req))
            except (NeoLinkError, OSError) as e:
                self.errors.append(f"{type(e).__name__}: {e}")
                return
            self.rtts_ns.append(time.perf_counter_ns() - t0)


async def ping_main(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    host, port = args.address
    count, concurrency = args.count, max(1, args.concurrency)
    try:
        link = await dial(host, port, args.encoding, tls=tls_config(args))
    except (OSError, NeoLinkError, TimeoutError) as e:
        print(f"ping: cannot connect to {format_hostport(host, port)}: {e}", file=sys.stderr)
        return 1
    pinger = Pinger(args.size)
    async with link:
        ident = RequestIdentification(NodeTypes.CLIENT, None, None, args.cluster, None, {})
        try:
            if args.light:
                await link.ask1(ident)
            else:
                conn = link.new_conn()
                await conn.ask(ident)
                conn.close()
        except (NeoLinkError, OSError) as e:
            print(f"ping: identification failed: {e}", file=sys.stderr)
            return 1
        shares = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
        start = time.perf_counter()
        if args.light:
            jobs = [pinger.round_trips(link.ask1, n) for n in shares if n]
        else:
            jobs = [pinger.round_trips(link.new_conn().ask, n) for n in shares if n]
        await asyncio.gather(*jobs)
        elapsed = time.perf_counter() - start
    ok = len(pinger.rtts_ns)
    rtts = sorted(ns / 1000 for ns in pinger.rtts_ns)
    stats = {
        "count": count,
        "errors": count - ok,
        "p50_us": round(percentile(rtts, 0.50), 1),
        "p90_us": round(percentile(rtts, 0.90), 1),
        "p99_us": round(percentile(rtts, 0.99), 1),
        "max_us": round(rtts[-1] if rtts else 0.0, 1),
        "rps": round(ok / elapsed if elapsed > 0 else 0.0, 1),
    }
    if args.json:
        print(json.dumps(stats), file=out)
    else:
        mode = "light" if args.light else f"{concurrency} conn{'s' if concurrency > 1 else ''}"
        print(f"{format_hostport(host, port)} ({args.encoding}, {mode}): {ok} of {count} "
              f"round trips ok\nrtt p50 {stats['p50_us']}µs  p90 {stats['p90_us']}µs  "
              f"p99 {stats['p99_us']}µs  max {stats['max_us']}µs; "
              f"{stats['rps']} round trips/s", file=out)
    out.flush()
    if ok != count:
        first = pinger.errors[0] if pinger.errors else "not done"
        print(f"ping: {count - ok} of {count} round trips failed: {first}", file=sys.stderr)
        return 1
    return 0


# -- codec cross-check -----------------------------------------------------------

def codec_echo_line(line: str) -> str | None:
    """Decode then re-encode one ``CODE HEXARGS`` line; None for a blank line."""
    parts = line.split()
    if not parts:
        return None
    code_text = parts[0]
    try:
        if len(parts) != 2:
            raise ValueError("want 'CODE HEXARGS'")
        code = int(code_text)
        data = bytes.fromhex(parts[1])
    except ValueError as e:
        return f"{code_text} ERROR bad line: {e}"
    try:
        msg = catalog.decode_args(code, data)
        return f"{code} {msg.encode_args().hex()}"
    except CodecError as e:
        return f"{code} ERROR {' '.join(str(e).split())}"


def codec_echo_main(stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    for line in stdin:
        result = codec_echo_line(line)
        if result is not None:
            out.write(result + "\n")
            out.flush()
    return 0


def codec_random_lines(seed: int, per_type: int) -> list[str]:
    """``per_type`` random ``CODE HEXARGS`` lines for every packet, in schema order."""
    gen = RandomValues(random.Random(seed))
    return [f"{cls.msg_code} {gen.message(cls).encode_args().hex()}"
            for cls in catalog.MESSAGES.values() for _ in range(per_type)]


def codec_random_main(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    for line in codec_random_lines(args.seed, args.per_type):
        out.write(line + "\n")
    out.flush()
    return 0


# -- main ------------------------------------------------------------------------

def _hex_int(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad hex number {text!r}") from None


def add_tls_flags(p: argparse.ArgumentParser) -> None:
    """The --ca, --cert and --key flags (as -ca, -cert, -key of the Go CLI)."""
    p.add_argument("--ca", "-ca", metavar="FILE",
                   help="CA certificate (PEM) that peers' certificates must chain to; "
                        "enables TLS")
    p.add_argument("--cert", "-cert", metavar="FILE", help="this node's certificate (PEM)")
    p.add_argument("--key", "-key", metavar="FILE", help="this node's private key (PEM)")


def tls_config(args: argparse.Namespace) -> TLSConfig | None:
    """The TLS configuration of the flags, or None without them."""
    if not (args.ca or args.cert or args.key):
        return None
    return TLSConfig(args.ca, args.cert, args.key)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neolinkpy",
                                     description="neolink Python peer")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve as a minimal NEO master")
    p.add_argument("--listen", type=parse_hostport, default=("127.0.0.1", 0),
                   metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:0)")
    p.add_argument("--encoding", default="auto", choices=["auto", "N", "M"])
    p.add_argument("--cluster", default=DEFAULT_CLUSTER, help="cluster name")
    p.add_argument("--abort-oid", type=_hex_int, metavar="HEX",
                   help="close the link abruptly on AskObject of this oid")
    add_tls_flags(p)

    p = sub.add_parser("ping", help="measure round trips to a server")
    p.add_argument("address", type=parse_hostport, metavar="HOST:PORT")
    p.add_argument("-n", dest="count", type=int, default=1000, help="round trips")
    p.add_argument("-c", dest="concurrency", type=int, default=1,
                   help="conns (full mode) or concurrent asks (--light)")
    p.add_argument("--light", action="store_true", help="lightweight mode (ask1)")
    p.add_argument("--encoding", default="N", choices=["N", "M"])
    p.add_argument("--size", type=int, metavar="BYTES",
                   help="AskObject of this many bytes instead of Ping")
    p.add_argument("--cluster", default=DEFAULT_CLUSTER, help="cluster name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_tls_flags(p)

    sub.add_parser("codec-echo", help="decode and re-encode CODE HEXARGS lines from stdin")

    p = sub.add_parser("codec-random", help="print random CODE HEXARGS lines")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--per-type", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("serve", "ping") and (args.ca or args.cert or args.key) and \
            not (args.ca and args.cert and args.key):
        parser.error("--ca, --cert and --key must be given together")
    if args.command == "serve":
        return asyncio.run(serve_main(args))
    if args.command == "ping":
        if args.count < 0 or (args.size is not None and not 0 <= args.size < 1 << 64):
            print("ping: bad -n or --size", file=sys.stderr)
            return 2
        return asyncio.run(ping_main(args))
    if args.command == "codec-echo":
        return codec_echo_main()
    return codec_random_main(args)


def console_main() -> None:
    """Entry point of the ``neolinkpy`` console script."""
    sys.exit(main())
