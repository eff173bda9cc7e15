"""The container engine's CLI (docker or podman) for tests and the benchmark: a failure raises with the
engine's own words."""

from __future__ import annotations

import functools
import json
import subprocess


def run(engine: str, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
    result = subprocess.run([engine, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                            check=False)
    if result.returncode:
        raise RuntimeError(f"{engine} {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result.stdout.strip()


docker = functools.partial(run, "docker")


def inspect(container: str, engine: str = "docker") -> dict:
    return json.loads(run(engine, "inspect", container))[0]
