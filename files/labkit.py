"""What server.py and client.py share: JSON-lines logs and settings from flags or LAB_* variables.

Stdlib only (Python 3.10+), installed beside the services. It replaces logging and argparse,
and never imports typing, on purpose: those three modules cost each service about 4 MiB of
resident memory, a third of what it needs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time

DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


class Log:
    """One JSON object per line, to stdout and optionally to a file.

    `event` buffers; `flush` writes the buffer in one write per target. Lifecycle lines are
    written at once (`now=True`); a busy server flushes access lines in small batches. The
    file is reopened when logrotate moved or removed it, checked at most once a second. With
    `max_bytes` the service caps the file itself, as supervisord does its program logs: past
    the size it becomes PATH.1 (PATH.1 becomes PATH.2, and so on up to `backups`), so a log
    never outgrows its disk where no logrotate runs (split's read-only containers, say).
    """

    # A server does not wait for its stdout reader (journald, the engine's log pipe, supervisord): what stdout
    # cannot take at once waits here, up to this many bytes, for the next pass. Past that, stdout loses lines
    # (counted) and the file, written in full, stays the record.
    STDOUT_BACKLOG_MAX = 1 << 20

    def __init__(self, path: str | None = None, max_bytes: int = 0, backups: int = 3,
                 wait_for_stdout: bool = True) -> None:
        self.path = path
        self.backlog = bytearray()  # for stdout, when it does not wait
        self.stdout_dropped = 0     # bytes
        self._wait_for_stdout = True
        if not wait_for_stdout:
            self.wait_for_stdout(False)
        self.max_bytes = max_bytes
        self.backups = backups
        self.buffer: list[str] = []
        self._file = -1
        self._size = 0
        self._identity = (0, 0)
        self._checked = 0.0
        self._stamp = (-1, "")
        if path:
            self._open()  # OSError here is the caller's "cannot open log file"

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        if self._file >= 0:
            os.close(self._file)
        self._file = fd
        info = os.fstat(fd)
        self._identity = (info.st_dev, info.st_ino)
        self._size = info.st_size

    def _rotate(self) -> None:
        try:
            for n in range(self.backups - 1, 0, -1):
                if os.path.exists(f"{self.path}.{n}"):
                    os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
            if self.backups:
                os.replace(self.path, f"{self.path}.1")
            else:
                os.truncate(self.path, 0)
            self._open()
        except OSError:  # a full or read-only disk: keep appending rather than lose lines
            self._size = 0

    def _reopen_if_moved(self, now: float) -> None:
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            info = os.stat(self.path)
            moved = (info.st_dev, info.st_ino) != self._identity
        except OSError:
            moved = True
        if moved:
            try:
                self._open()
            except OSError:  # keep writing to the old file rather than lose lines
                return

    def stamp(self, now: float) -> str:
        second = int(now)
        if second != self._stamp[0]:
            self._stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{self._stamp[1]}.{int((now - second) * 1000):03d}Z"

    def event(self, name: str, level: str = "INFO", now: bool = False, **fields: object) -> None:
        self.buffer.append(DUMPS({"ts": self.stamp(time.time()), "level": level, "event": name, **fields}) + "\n")
        if now:
            self.flush()

    def wait_for_stdout(self, wait: bool) -> None:
        """Whether a write to stdout may block; when it may again, the backlog is written first. A terminal
        always blocks: its descriptor is the shell's too, which a kill -9 would leave non-blocking."""
        with contextlib.suppress(OSError):  # no stdout at all: writes are dropped anyway
            wait = wait or os.isatty(1)
            os.set_blocking(1, wait)
        self._wait_for_stdout = wait
        if wait and self.backlog:
            write_all(1, bytes(self.backlog))
            self.backlog.clear()

    def drain(self) -> None:
        """Write as much of the stdout backlog as stdout takes now."""
        while self.backlog:
            try:
                written = os.write(1, self.backlog)
            except InterruptedError:
                continue
            except BlockingIOError:
                return
            except OSError:  # stdout closed: nothing more will get there
                self.stdout_dropped += len(self.backlog)
                self.backlog.clear()
                return
            del self.backlog[:written]

    def _to_stdout(self, data: bytes) -> None:
        if self._wait_for_stdout:
            write_all(1, data)
            return
        if len(self.backlog) + len(data) > self.STDOUT_BACKLOG_MAX:
            self.stdout_dropped += len(data)
            return
        self.backlog += data
        self.drain()

    def flush(self) -> None:
        if not self.buffer:
            return
        lines = self.buffer
        self.buffer = []
        data = "".join(lines).encode()
        self._to_stdout(data)
        if self._file < 0:
            return
        self._reopen_if_moved(time.monotonic())
        if not self.max_bytes or self._size + len(data) <= self.max_bytes:
            write_all(self._file, data)
            self._size += len(data)
            return
        chunk = b""  # past the cap: as many whole lines as fit, then the next file
        for line in lines:
            encoded = line.encode()
            if chunk and self._size + len(chunk) + len(encoded) > self.max_bytes:
                write_all(self._file, chunk)
                self._size += len(chunk)
                chunk = b""
            if self._size and self._size + len(chunk) + len(encoded) > self.max_bytes:
                self._rotate()
            chunk += encoded
        write_all(self._file, chunk)
        self._size += len(chunk)


def write_all(fd: int, data: bytes) -> None:
    """Write everything or drop it: a closed or full stdout never stops a service."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            continue
        except OSError:
            return


# ---- PID 1 -----------------------------------------------------------------------------

def wait_for_orphans_as_init() -> None:
    """As its container's main process (split), a service is PID 1 and inherits every orphan there: what
    `docker exec -d` started and left, a check's stray child. Unwaited, each stays a zombie until the container
    ends. Neither service starts children of its own, so waiting for any child is safe; as any other pid
    (under supervisord or systemd, which wait for orphans themselves) nothing changes."""
    if os.getpid() == 1:
        signal.signal(signal.SIGCHLD, _wait_for_children)
        _wait_for_children(signal.SIGCHLD, None)  # those adopted before the handler


def _wait_for_children(_signum: int, _frame: object) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


# ---- settings -----------------------------------------------------------------------------

class Option:
    """A setting: --flag, the LAB_* variable read when the flag is not given, the default as text
    (converted like any other value), a converter that raises UsageError, and its help."""

    __slots__ = ("convert", "default", "env", "flag", "help")

    def __init__(self, flag: str, env: str | None, default: str | None, convert, help: str) -> None:  # noqa: A002
        self.flag, self.env, self.default, self.convert, self.help = flag, env, default, convert, help


class UsageError(Exception):
    pass


def number(kind: type, low: float | None = None, high: float | None = None, above: float | None = None):
    """A converter for finite numbers of `kind` within bounds; nan and inf are refused."""

    def convert(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise UsageError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise UsageError(f"must be a finite number, got {text!r}")
        if above is not None and value <= above:
            raise UsageError(f"must be greater than {above:g}, got {text}")
        if low is not None and value < low:
            raise UsageError(f"must be at least {low:g}, got {text}")
        if high is not None and value > high:
            raise UsageError(f"must be at most {high:g}, got {text}")
        return value

    return convert


def text(value: str) -> str:
    return value


def parse(prog: str, summary: str, options: list[Option], flags: dict[str, str],
          argv: list[str] | None = None) -> dict[str, object]:
    """Flags first, then the LAB_* variable, then the default; exit 2 with the reason on bad input."""
    argv = sys.argv[1:] if argv is None else argv
    by_flag = {option.flag: option for option in options}
    given: dict[str, str] = {}
    switches = dict.fromkeys(flags, False)
    try:
        args = iter(argv)
        for arg in args:
            if arg in ("-h", "--help"):
                print(usage(prog, summary, options, flags))
                sys.exit(0)
            name, eq, value = arg.partition("=")
            if name in switches and not eq:
                switches[name] = True
            elif name in by_flag:
                if not eq:
                    value = next(args, None)
                    if value is None:
                        raise UsageError(f"{name} needs a value")
                given[name] = value
            else:
                raise UsageError(f"unknown argument {arg!r}")
        settings: dict[str, object] = {}
        for option in options:
            source, raw = option.flag, given.get(option.flag)
            if raw is None and option.env and os.environ.get(option.env):
                source, raw = option.env, os.environ[option.env]
            if raw is None:
                source, raw = f"{option.flag} (default)", option.default
            try:
                settings[key(option.flag)] = None if raw is None else option.convert(raw)
            except UsageError as exc:
                raise UsageError(f"{source}: {exc}") from None
    except UsageError as exc:
        print(f"usage: {prog} [options]\n{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    settings.update((key(flag), on) for flag, on in switches.items())
    return settings


def key(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def usage(prog: str, summary: str, options: list[Option], flags: dict[str, str]) -> str:
    lines = [f"usage: {prog} [options]", "", summary, "", "options:"]
    for option in options:
        env = f", {option.env}" if option.env else ""
        default = f" (default {option.default})" if option.default is not None else ""
        lines.append(f"  {option.flag} VALUE{' ' * max(1, 18 - len(option.flag))}{option.help}{default}{env}")
    lines.extend(f"  {flag}{' ' * max(1, 24 - len(flag))}{help_text}" for flag, help_text in flags.items())
    return "\n".join(lines)
