"""Parsing and statistics for the benchmark: pure functions, tested on real captured inputs."""

from __future__ import annotations

import json
import math
import re
import statistics
from datetime import UTC, datetime

UNITS = {"b": 1 / 2**20, "kib": 1 / 1024, "kb": 1e3 / 2**20, "mib": 1.0, "mb": 1e6 / 2**20,
         "gib": 1024.0, "gb": 1e9 / 2**20}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(values: list[float]) -> dict[str, float | int]:
    """Median, p95, p99, min, max and the run count; empty input gives n=0 only."""
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": statistics.median(values), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "min": min(values), "max": max(values)}


def parse_size_mib(text: str) -> float:
    """'33.7MiB', '8.8 MB', '1.2GiB', '512B' -> MiB."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMG]?i?B)\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    return float(match.group(1)) * UNITS[match.group(2).lower()]


def parse_docker_stats_mem(mem_usage: str) -> float:
    """docker stats MemUsage column ('33.7MiB / 23.5GiB') -> used MiB."""
    return parse_size_mib(mem_usage.split("/", maxsplit=1)[0])


# One process table for every reader: a pid alone may be used again, (pid, started) names one process.
PS_COLUMNS = "pid=,ppid=,user=,rss=,lstart=,args="


def parse_ps(text: str) -> list[dict[str, object]]:
    """Output of `ps -eo PS_COLUMNS` -> [{pid, ppid, user, rss_mib, started, args}]; lstart is five words
    ("Mon Dec  7 09:31:58 2026"), kept whole with single spaces."""
    rows = []
    for line in text.splitlines():
        parts = line.split(None, 9)
        if len(parts) == 10 and parts[0].isdigit():
            pid, ppid, user, rss, *started, args = parts
            rows.append({"pid": int(pid), "ppid": int(ppid), "user": user, "rss_mib": int(rss) / 1024,
                         "started": " ".join(started), "args": args})
    return rows


def role_of(args: str) -> str | None:
    """Which lab process a command line is: manager, server, client, or None."""
    if "server.py" in args:
        return "server"
    if "client.py" in args:
        return "client"
    if "supervisord-waker" in args:
        return "waker"
    if "supervisord" in args:
        return "supervisord"
    if args.split(maxsplit=1)[0] in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd", "/sbin/init"):
        return "systemd"
    return None


def parse_ts(stamp: str) -> float:
    """The services' log timestamp ('2026-11-25T06:22:25.182Z') -> epoch seconds."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def parse_json_lines(text: str) -> list[dict]:
    """JSON log lines, skipping anything that is not a JSON object (other programs' output)."""
    events = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def first_event_after(events: list[dict], name: str, after: float, **match: object) -> float | None:
    """Epoch time of the first `name` event at or after `after` whose fields match."""
    for event in events:
        if event.get("event") != name or "ts" not in event:
            continue
        if any(event.get(key) != value for key, value in match.items()):
            continue
        when = parse_ts(event["ts"])
        if when >= after:
            return when
    return None


def first_poll_of_restarted_client(events: list[dict], since: float) -> float | None:
    """Epoch time of the first success logged by a client process that started at or after `since`."""
    restarted = first_event_after(events, "started", since)
    return None if restarted is None else first_event_after(events, "poll_ok", restarted)


def status_capabilities(status_text: str) -> dict[str, int]:
    """CapEff/CapPrm/CapBnd from /proc/<pid>/status -> the number of capabilities in each set."""
    caps = {}
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key in ("CapEff", "CapPrm", "CapBnd"):
            caps[key] = bin(int(value.strip(), 16)).count("1")
    return caps


# The lab's target for each of its units' overall exposure (0 the most restricted, 10 the least); systemd's
# defaults score about 9.6. The benchmark's target row and the testinfra check read it here.
UNIT_EXPOSURE_MAX = 1.5


def parse_unit_security(text: str) -> tuple[float, dict[str, float]]:
    """`systemd-analyze security <unit>` -> the unit's overall exposure (0-10) and each check that counts
    against it (marked ✗) with its weight. ValueError when the text carries no overall level (no such unit)."""
    overall = re.search(r"^→ Overall exposure level for \S+: ([0-9.]+)", text, re.MULTILINE)
    if not overall:
        raise ValueError(f"no overall exposure level in systemd-analyze's output: {text.strip()[-300:]!r}")
    checks = {}
    for line in text.splitlines():
        if line.startswith("✗ "):
            fields = line[2:].split()
            checks[fields[0]] = float(fields[-1])
    return float(overall.group(1)), checks


def heaviest_checks(checks: dict[str, float], count: int = 4) -> list[tuple[str, float]]:
    """The checks that count most against a unit, heaviest first."""
    return sorted(checks.items(), key=lambda check: -check[1])[:count]


def ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else numerator / denominator
