"""Precompile a lab service: SCRIPT.py to SCRIPT.pyc (what the manager runs) and each module it imports to
its __pycache__ file. Compiling at every start costs a service about 0.7 MiB of memory and time; the
service account cannot write the cache itself. Prints "compiled" when it wrote anything, so Ansible can
report a change; a file is rewritten only when its source or the interpreter changed. With --check first
it writes nothing and exits 1 when a file is not current (the testinfra checks use it)."""

import importlib.util
import os
import py_compile
import sys


def current(source: str, compiled: str) -> bool:
    """The header import itself checks: interpreter magic, then the source's mtime and size."""
    try:
        with open(compiled, "rb") as handle:
            header = handle.read(16)
    except OSError:
        return False
    info = os.stat(source)
    return (header[:4] == importlib.util.MAGIC_NUMBER
            and int.from_bytes(header[8:12], "little") == int(info.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(header[12:16], "little") == info.st_size & 0xFFFFFFFF)


def main(script: str, *modules: str, check: bool = False) -> int:
    stale = []
    for source, compiled in [(script, script + "c")] + [(m, importlib.util.cache_from_source(m)) for m in modules]:
        if not current(source, compiled):
            stale.append(compiled)
            if not check:
                py_compile.compile(source, cfile=compiled, doraise=True)
                os.chmod(compiled, 0o644)
    if check:
        print("stale: " + " ".join(stale) if stale else "current")
        return 1 if stale else 0
    print("compiled" if stale else "current")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(*args[1:], check=True) if args[:1] == ["--check"] else main(*args))
