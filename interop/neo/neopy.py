"""Real NEO/py peers for neolink's interop tests (run with Debian's python3).

Subcommands:

  run        the harness behind `make interop-neo`: finds NEO/py, ZODB and
             ZConfig sources, extracts them under a build directory, installs
             the Debian packages they need, starts a NEO/py cluster (one master,
             one SQLite storage, no admin node) in plain TCP and another in TLS,
             commits objects with NEO/py's ZODB client, writes what NEO/py's own
             client loads back to a manifest, runs the given command (the Go
             tests) with the clusters' addresses in its environment, and stops
             every process it started, also on failure or interruption.
  commit     commit a new revision of one object with NEO/py's ZODB client
             and print {"oid", "tid"} as JSON (the invalidation test uses it).
  node-serve a NEO/py listening node built from neo.lib's connection classes:
             it answers RequestIdentification, Ping and AskObject (data of
             oid & 0xffffffff bytes, byte i = i % 251, checksum SHA-1) and
             prints "listening on HOST:PORT".
  node-client a NEO/py client built from the same classes: it identifies to
             ADDR, pings it and asks objects of the given sizes, checking oid,
             length and checksum; it prints one JSON line per answer.

The NEO/py sources are used as peers only; nothing from them is copied here.
"""

import argparse
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEBS = ['python3-msgpack', 'python3-six', 'python3-persistent', 'python3-btrees',
        'python3-transaction', 'python3-zc.lockfile', 'python3-zope.interface',
        'python3-zodbpickle']
MODULES = ['msgpack', 'six', 'persistent', 'BTrees', 'transaction', 'zc.lockfile',
           'zope.interface', 'zodbpickle']
# (environment variable, tarball name, top directory, what must be inside)
SOURCES = [
    ('NEOPY_SRC', 'neoppod-neo-master.tar.gz', 'neoppod', 'neo/lib/protocol.py'),
    ('ZODB_SRC', 'ZODB-5.8.1-src.tar.gz', 'ZODB-5.8.1', 'src/ZODB/DB.py'),
    ('ZCONFIG_SRC', 'ZConfig-src.tar.gz', 'ZConfig', 'src/ZConfig/__init__.py'),
]
CLUSTER = 'neolink-interop'


def log(*a):
    print('interop-neo:', *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- sources


def find_sources(peers):
    """Returns {var: path} (a directory or a tarball), or None with the
    reason when one is missing."""
    found = {}
    for var, tarball, _, _ in SOURCES:
        p = os.environ.get(var)
        if not p:
            p = os.path.join(peers, tarball)
        if not os.path.exists(p):
            return None, '%s not found (set %s, or NEO_PEERS to a directory with %s)' % (p, var, tarball)
        found[var] = os.path.abspath(p)
    return found, None


def extract(found, build):
    """Makes every source available under build/src and returns PYTHONPATH."""
    src = os.path.join(build, 'src')
    os.makedirs(src, exist_ok=True)
    paths = []
    for var, _, top, probe in SOURCES:
        p = found[var]
        if os.path.isdir(p):
            root = p
        else:
            dest = os.path.join(src, top)
            stamp = dest + '.stamp'
            want = '%s %d %d' % (p, os.path.getsize(p), int(os.path.getmtime(p)))
            if not (os.path.exists(stamp) and open(stamp).read() == want):
                shutil.rmtree(dest, ignore_errors=True)
                tmp = tempfile.mkdtemp(dir=src)
                with tarfile.open(p) as tf:
                    if hasattr(tarfile, 'data_filter'):
                        tf.extractall(tmp, filter='data')
                    else:  # Python < 3.11.4; the tarballs are trusted inputs
                        tf.extractall(tmp)
                entries = os.listdir(tmp)
                if len(entries) != 1:
                    raise SystemExit('interop-neo: %s: expected one top directory, got %s' % (p, entries))
                os.rename(os.path.join(tmp, entries[0]), dest)
                os.rmdir(tmp)
                with open(stamp, 'w') as f:
                    f.write(want)
            root = dest
        if not os.path.exists(os.path.join(root, probe)):
            raise SystemExit('interop-neo: %s has no %s' % (root, probe))
        paths.append(os.path.join(root, 'src') if probe.startswith('src/') else root)
    return os.pathsep.join(paths)


def ensure_debs():
    """Installs the Debian packages NEO/py and ZODB need, as `make py-deps`
    does for the Python peer: with apt-get when root, else a clear error."""
    probe = 'import ' + ', '.join(MODULES)
    if subprocess.run([sys.executable, '-c', probe], capture_output=True).returncode == 0:
        return
    if os.geteuid() != 0 or not shutil.which('apt-get'):
        raise SystemExit('interop-neo: %s lacks some of %s: run "sudo apt-get install %s"'
                         % (sys.executable, ', '.join(MODULES), ' '.join(DEBS)))
    log('installing', ' '.join(DEBS), 'with apt-get')
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    subprocess.run(['apt-get', 'update', '-qq'], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(['apt-get', 'install', '-y', '-qq'] + DEBS, check=True, env=env,
                   stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------- processes


def _die_with_parent():
    """Runs in the child before exec: a new process group (so that the whole
    group can be killed) and SIGKILL when the harness dies, even by SIGKILL."""
    os.setpgrp()
    try:
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Procs:
    """The processes the harness started; stop() ends them all."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, **kw):
        p = subprocess.Popen(argv, preexec_fn=_die_with_parent, **kw)
        p.name = name
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)  # stragglers of the group, too
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()
        self.procs = []


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- TLS


def make_certs(d):
    """Writes ca.crt, node.crt and node.key (EC P-256) with the extensions
    that OpenSSL's X509 strict mode, which NEO/py enables, insists on."""
    def ossl(*args):
        subprocess.run(['openssl'] + list(args), check=True, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(os.path.join(d, 'ca.ext'), 'w') as f:
        f.write('basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n'
                'subjectKeyIdentifier=hash\n')
    with open(os.path.join(d, 'node.ext'), 'w') as f:
        f.write('basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'
                'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n'
                'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n')
    ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key')
    ossl('req', '-new', '-key', 'ca.key', '-subj', '/CN=neolink interop CA', '-out', 'ca.csr')
    ossl('x509', '-req', '-in', 'ca.csr', '-signkey', 'ca.key', '-days', '2',
         '-extfile', 'ca.ext', '-out', 'ca.crt')
    ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'node.key')
    ossl('req', '-new', '-key', 'node.key', '-subj', '/CN=neolink interop node', '-out', 'node.csr')
    ossl('x509', '-req', '-in', 'node.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
         '-days', '2', '-extfile', 'node.ext', '-out', 'node.crt')
    return tuple(os.path.join(d, n) for n in ('ca.crt', 'node.crt', 'node.key'))


# ---------------------------------------------------------------- cluster


def start_cluster(procs, d, ssl):
    """Starts one master and one SQLite storage in d; returns the master's
    address. free_port's ports could be taken meanwhile: then the node dies
    and wait_operational reports it."""
    os.makedirs(d, exist_ok=True)
    mp, sp = free_port(), free_port()
    tls = ['--ca', ssl[0], '--cert', ssl[1], '--key', ssl[2]] if ssl else []
    common = ['-c', CLUSTER, '-m', '127.0.0.1:%d' % mp] + tls
    nodes = [
        ('master', 'neomaster', ['-b', '127.0.0.1:%d' % mp, '-A', '1', '-p', '4', '-r', '0', '-l', 'master.log']),
        ('storage', 'neostorage', ['-b', '127.0.0.1:%d' % sp, '-a', 'SQLite', '-d', 'storage.sqlite',
                                   '-l', 'storage.log']),
    ]
    with open(os.path.join(d, 'nodes.out'), 'wb') as out:  # the children keep their own copies
        for name, script, args in nodes:
            procs.start(name, [sys.executable, '-c', 'from neo.scripts.%s import main; main()' % script]
                        + common + args, cwd=d, stdout=out, stderr=subprocess.STDOUT)
    return '127.0.0.1:%d' % mp


def open_db(master, ssl):
    from ZODB import DB
    from neo.client.Storage import Storage
    kw = {}
    if ssl:
        kw = dict(ca=ssl[0], cert=ssl[1], key=ssl[2])
    st = Storage(master_nodes=master, name=CLUSTER, **kw)
    return DB(st), st


def populate(master, ssl):
    """Commits the test objects with NEO/py's ZODB client and returns the
    manifest: every revision as NEO/py's client loads it back."""
    import transaction
    from persistent.mapping import PersistentMapping
    db, st = open_db(master, ssl)
    try:
        conn = db.open()
        root = conn.root()
        rnd = os.urandom
        objs = {
            'small': b'x',
            'kib': rnd(1024),
            'compressible': b'neolink ' * 40000,   # 320 kB, zlib shrinks it
            'incompressible': rnd(300000),         # zlib cannot: stored as is
            'mib4': rnd(4 << 20),
            'twice': b'first revision ' * 10,
            'inval': b'the invalidation test commits over this',
        }
        for k, v in objs.items():
            root[k] = PersistentMapping({'payload': v})
        transaction.commit()
        root['twice']['payload'] = b'second revision ' * 500
        root['twice']._p_changed = True
        transaction.commit()
        names = {k: root[k]._p_oid for k in objs}
        names['root'] = root._p_oid
        conn.close()

        manifest = {'objects': {}, 'last_tid': st.lastTransaction().hex()}
        for name, oid in names.items():
            revs = []
            for h in reversed(st.history(oid, size=100)):  # oldest first
                serial = h['tid']
                data = st.loadSerial(oid, serial)
                revs.append({'serial': serial.hex(), 'data': data.hex(),
                             'sha1': hashlib.sha1(data).hexdigest()})
            data, serial = st.load(oid)
            assert serial.hex() == revs[-1]['serial'] and data.hex() == revs[-1]['data'], name
            manifest['objects'][name] = {'oid': oid.hex(), 'revisions': revs}
        return manifest
    finally:
        db.close()


def wait_operational(procs, master, ssl, deadline):
    """Waits until NEO/py's client can open the database (the cluster is
    RUNNING), or dies: at the deadline, or as soon as a node has exited."""
    code = 'import sys; sys.path[:0] = %r; import neopy; db, st = neopy.open_db(%r, %r); db.close()' % (
        [HERE], master, list(ssl) if ssl else None)
    while True:
        dead = [p.name for p in procs.procs if p.poll() is not None]
        if dead:
            raise SystemExit('interop-neo: %s exited before the cluster at %s was up (see nodes.out)'
                             % (' and '.join(dead), master))
        left = deadline - time.time()
        if left <= 0:
            raise SystemExit('interop-neo: cluster at %s did not become operational' % master)
        try:
            r = subprocess.run([sys.executable, '-c', code], capture_output=True, timeout=left)
        except subprocess.TimeoutExpired:
            continue
        if r.returncode == 0:
            return
        time.sleep(0.2)


def cmd_run(a):
    found, why = find_sources(a.peers)
    if found is None:
        print('interop-neo: skipped: NEO/py sources not found: %s' % why, flush=True)
        return 0
    build = os.path.abspath(a.build_dir)
    os.makedirs(build, exist_ok=True)
    pypath = extract(found, build)
    ensure_debs()
    os.environ['PYTHONPATH'] = pypath + (os.pathsep + os.environ['PYTHONPATH'] if os.environ.get('PYTHONPATH') else '')
    sys.path[:0] = pypath.split(os.pathsep)

    run = tempfile.mkdtemp(prefix='run-', dir=build)
    procs = Procs()
    # SIGTERM and SIGHUP end the harness through the finally below, like ^C.
    def interrupt(*_):
        raise KeyboardInterrupt
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupt)
    ok = False
    try:
        ssl = make_certs(run)
        plain = start_cluster(procs, os.path.join(run, 'plain'), None)
        tls = start_cluster(procs, os.path.join(run, 'tls'), ssl)
        deadline = time.time() + 30
        wait_operational(procs, plain, None, deadline)
        wait_operational(procs, tls, ssl, deadline)
        manifest = populate(plain, None)
        path = os.path.join(run, 'manifest.json')
        with open(path, 'w') as f:
            json.dump(manifest, f)
        tls_manifest = populate(tls, ssl)
        tpath = os.path.join(run, 'manifest-tls.json')
        with open(tpath, 'w') as f:
            json.dump(tls_manifest, f)
        log('clusters up: plain %s, TLS %s; %d objects committed' % (plain, tls, len(manifest['objects'])))
        env = dict(os.environ,
                   NEO_MASTER=plain, NEO_CLUSTER=CLUSTER, NEO_MANIFEST=path,
                   NEO_TLS_MASTER=tls, NEO_TLS_MANIFEST=tpath,
                   NEO_CA=ssl[0], NEO_CERT=ssl[1], NEO_KEY=ssl[2],
                   NEO_PYTHON=sys.executable, NEO_HELPER=os.path.abspath(__file__))
        if a.neolink:
            env['NEOLINK_BIN'] = os.path.abspath(a.neolink)
        cmd = a.command[1:] if a.command[:1] == ['--'] else a.command
        r = procs.start('tests', cmd, env=env, cwd=REPO)
        rc = r.wait()
        for p in procs.procs:
            if p.name != 'tests' and p.poll() is not None:
                log('%s exited early with status %s' % (p.name, p.returncode))
                rc = rc or 1
        ok = rc == 0
        return rc
    except KeyboardInterrupt:
        log('interrupted')
        return 130
    finally:
        procs.stop()
        if ok and not a.keep:
            shutil.rmtree(run, ignore_errors=True)
        else:
            log('logs kept in', run)


# ---------------------------------------------------------------- commit


def cmd_commit(a):
    import transaction
    db, st = open_db(a.master, (a.ca, a.cert, a.key) if a.ca else None)
    try:
        conn = db.open()
        obj = conn.root()[a.key_name]
        obj['payload'] = os.urandom(64)
        obj._p_changed = True
        transaction.commit()
        data, serial = st.load(obj._p_oid)
        print(json.dumps({'oid': obj._p_oid.hex(), 'tid': serial.hex(), 'data': data.hex()}), flush=True)
        conn.close()
    finally:
        db.close()
    return 0


# ---------------------------------------------------------------- neo.lib nodes


def object_data(oid):
    n = oid & 0xffffffff
    pattern = bytes(range(251))
    return (pattern * (n // 251 + 1))[:n]


def make_app(ssl):
    from neo.lib.app import BaseApplication
    return BaseApplication(ssl_credentials=tuple(ssl) if ssl else None)


def cmd_node_serve(a):
    from neo.lib.connection import ListeningConnection
    from neo.lib.handler import EventHandler
    from neo.lib.protocol import Packets, Errors, NodeTypes
    from neo.lib.util import p64, u64

    app = make_app((a.ca, a.cert, a.key) if a.ca else None)
    ids = {'next': 0}

    class Handler(EventHandler):
        def requestIdentification(self, conn, node_type, uuid, address, name, id_timestamp, extra):
            if name != a.cluster:
                conn.answer(Errors.ProtocolError('invalid cluster name'))
                conn.abort()
                return
            ids['next'] += 1
            conn.answer(Packets.AcceptIdentification(NodeTypes.STORAGE, 1, -0x20 << 24 | ids['next']))

        def askObject(self, conn, oid, at, before):
            data = object_data(u64(oid))
            conn.answer(Packets.AnswerObject(oid, p64(1), None, 0, hashlib.sha1(data).digest(), data, None))

        def connectionClosed(self, conn):
            pass

    ListeningConnection(app, Handler(app), (b'127.0.0.1', a.port))
    port = [c for c in app.em.getConnectionList() if c.isListening()][0].getAddress()[1]
    print('listening on 127.0.0.1:%d' % port, flush=True)
    # Runs until the test closes our stdin (or kills us).
    os.set_blocking(sys.stdin.fileno(), False)
    while True:
        app.em.poll(0.1)
        try:
            if sys.stdin.buffer.read() == b'':
                return 0
        except (BlockingIOError, TypeError):
            pass


class _Node:
    """The minimum of a neo.lib node that ClientConnection needs."""

    def __init__(self, addr):
        self.addr = addr

    def getAddress(self):
        return self.addr

    def setConnection(self, conn, force=None):
        self.conn = conn


def cmd_node_client(a):
    from neo.lib.connection import ClientConnection
    from neo.lib.handler import EventHandler
    from neo.lib.protocol import Packets, NodeTypes
    from neo.lib.util import p64

    app = make_app((a.ca, a.cert, a.key) if a.ca else None)
    host, port = a.addr.rsplit(':', 1)
    state = {'answers': [], 'closed': False, 'error': None}

    class Handler(EventHandler):
        def acceptIdentification(self, conn, node_type, uuid, your_uuid):
            state['answers'].append(('AcceptIdentification', str(node_type), uuid, your_uuid))

        def pong(self, conn):
            state['answers'].append(('Pong',))

        def answerObject(self, conn, oid, serial, next_serial, compression, checksum, data, data_serial):
            state['answers'].append(('AnswerObject', oid, compression, checksum, data))

        def protocolError(self, conn, message):
            state['error'] = 'PROTOCOL_ERROR: %s' % message

        def connectionClosed(self, conn):
            state['closed'] = True

        connectionFailed = connectionClosed

    h = Handler(app)
    conn = ClientConnection(app, h, _Node((host.encode(), int(port))))

    def wait(n, what):
        deadline = time.time() + a.timeout
        while len(state['answers']) < n:
            if state['closed'] or state['error']:
                raise SystemExit('node-client: %s: connection closed (%s) while waiting for %s'
                                 % (a.addr, state['error'], what))
            if time.time() > deadline:
                raise SystemExit('node-client: %s: no %s within %ss' % (a.addr, what, a.timeout))
            app.em.poll(0.1)
        return state['answers'][n - 1]

    conn.ask(Packets.RequestIdentification(NodeTypes.CLIENT, None, None, a.cluster, None, {}))
    ans = wait(1, 'AcceptIdentification')
    print(json.dumps({'packet': ans[0], 'node_type': ans[1], 'uuid': ans[2], 'your_uuid': ans[3]}), flush=True)
    conn.ask(Packets.Ping())
    print(json.dumps({'packet': wait(2, 'Pong')[0]}), flush=True)
    n = 2
    for size in a.sizes:
        conn.ask(Packets.AskObject(p64(size), None, None))
        n += 1
        _, oid, compression, checksum, data = wait(n, 'AnswerObject(%d)' % size)
        ok = (oid == p64(size) and len(data) == size and checksum == hashlib.sha1(data).digest()
              and compression == 0 and data == object_data(size))
        print(json.dumps({'packet': 'AnswerObject', 'size': size, 'len': len(data), 'ok': ok}), flush=True)
        if not ok:
            return 1
        state['answers'][n - 1] = None  # free the data
    conn.close()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)

    p = sub.add_parser('run')
    p.add_argument('--build-dir', default=os.path.join(REPO, 'build', 'neopy'))
    p.add_argument('--peers', required=True, help='directory with the three source tarballs')
    p.add_argument('--neolink', help='bin/neolink, exported as NEOLINK_BIN')
    p.add_argument('--keep', action='store_true', help='keep the run directory (logs, databases)')
    p.add_argument('command', nargs=argparse.REMAINDER, help='-- the test command')
    p.set_defaults(fn=cmd_run)

    def tls_args(p):
        p.add_argument('--ca')
        p.add_argument('--cert')
        p.add_argument('--key')

    p = sub.add_parser('commit')
    p.add_argument('--master', required=True)
    p.add_argument('--key-name', default='twice')
    tls_args(p)
    p.set_defaults(fn=cmd_commit)

    p = sub.add_parser('node-serve')
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--cluster', default=CLUSTER)
    tls_args(p)
    p.set_defaults(fn=cmd_node_serve)

    p = sub.add_parser('node-client')
    p.add_argument('--addr', required=True)
    p.add_argument('--cluster', default=CLUSTER)
    p.add_argument('--timeout', type=float, default=60)
    p.add_argument('--sizes', type=lambda s: [int(x) for x in s.split(',') if x], default=[])
    tls_args(p)
    p.set_defaults(fn=cmd_node_client)

    a = ap.parse_args()
    sys.exit(a.fn(a))


if __name__ == '__main__':
    main()
