"""`pip install ./interop/py` into a venv over Debian's python3-msgpack, offline,
from the files git tracks (what a fresh clone has)."""

import shutil
import subprocess
import textwrap
from pathlib import Path

from support import PY_DIR, PYTHON

#: Checks run by the installed package, from outside the source tree.
SMOKE = textwrap.dedent("""
    import asyncio, sys
    import neolinkpy
    from neolinkpy import Ping, Pong, catalog, dial, listen
    assert neolinkpy.__file__.startswith(sys.prefix), neolinkpy.__file__
    assert catalog.SCHEMA.path == "neolinkpy/neo-v5.schema" and len(catalog.PACKETS) == 111

    async def main():
        async def handler(link):
            conn = await link.accept()
            assert await conn.recv() == Ping()
            await conn.send(Pong())
            conn.close()
        async with listen("127.0.0.1", 0, handler=handler) as lst:
            async with dial("127.0.0.1", lst.address[1], "M") as link:
                assert await link.new_conn().ask(Ping()) == Pong()
    asyncio.run(main())
    print("ok")
""")


def tracked_copy(dest: Path) -> None:
    """Copy the files of interop/py that git tracks (or, outside a git checkout,
    the tree without build leftovers) to ``dest``."""
    res = subprocess.run(["git", "ls-files", "-z", "."], cwd=PY_DIR, capture_output=True,
                         timeout=30)
    if res.returncode != 0:
        shutil.copytree(PY_DIR, dest, ignore=shutil.ignore_patterns(
            "__pycache__", "build", "*.egg-info", ".pytest_cache"))
        return
    for name in res.stdout.decode().split("\0"):
        if name:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PY_DIR / name, dest / name)


def test_pip_install_into_system_site_packages_venv(tmp_path: Path) -> None:
    src, venv = tmp_path / "src", tmp_path / "venv"
    src.mkdir()
    tracked_copy(src)
    assert (src / "pyproject.toml").is_file() and (src / "neolinkpy" / "neo-v5.schema").is_file()

    def run(*argv: str) -> str:
        res = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"{' '.join(argv)}:\n{res.stdout}\n{res.stderr}"
        return res.stdout

    run(PYTHON, "-m", "venv", "--system-site-packages", str(venv))
    run(str(venv / "bin" / "python"), "-m", "pip", "install", "--no-build-isolation",
        "--no-index", "--no-cache-dir", "--quiet", str(src))
    assert run(str(venv / "bin" / "python"), "-c", SMOKE).strip() == "ok"
    lines = run(str(venv / "bin" / "neolinkpy"), "codec-random", "--per-type", "1").splitlines()
    assert len(lines) == 111
