"""The docker CLI for tests and the benchmark: a failure raises with the engine's own words."""

from __future__ import annotations

import json
import subprocess


def docker(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    result = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                            check=False)
    if result.returncode:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def inspect(container: str) -> dict:
    return json.loads(docker("inspect", container))[0]
