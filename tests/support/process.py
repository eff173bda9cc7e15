"""Commands, polling and ports: the one implementation the tests, the fault suite and the benchmark share."""

from __future__ import annotations

import concurrent.futures
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class CommandFailed(RuntimeError):
    """A command exited non-zero; the message carries its own words (stderr, else the end of stdout)."""


def run(*args: str, check: bool = True, stdin: str | None = None, timeout: float = 120,
        env: dict[str, str] | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=timeout,
                            env=env, cwd=cwd, check=False)
    if check and result.returncode:
        detail = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise CommandFailed(f"{' '.join(args[:4])} failed ({result.returncode}): {detail}")
    return result


def sh(*args: str, **kwargs) -> str:
    """run(), its stdout stripped."""
    return run(*args, **kwargs).stdout.strip()


def at_once(action: Callable[[str], T], items: Iterable[str]) -> list[T]:
    """`action` on every item at the same time (as compose up and compose stop do), each in its own thread;
    the results in order, or the first item's exception once all have finished."""
    items = list(items)
    with concurrent.futures.ThreadPoolExecutor(max(len(items), 1)) as pool:
        futures = [pool.submit(action, item) for item in items]
    return [future.result() for future in futures]


def wait_for(check: Callable[[], T], deadline_s: float, what: str, step_s: float = 0.05) -> T:
    """Poll `check` until it returns something truthy, and return that; TimeoutError naming `what` at the
    deadline. An OSError or ValueError from `check` (a port not open yet, half a line) counts as not yet."""
    end = time.monotonic() + deadline_s
    last: object = None
    while time.monotonic() < end:
        try:
            result = check()
        except (OSError, ValueError) as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        time.sleep(step_s)
    raise TimeoutError(f"timed out after {deadline_s}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
