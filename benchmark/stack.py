"""A stack (stacks/*.yml) measured in its three topologies, side by side in one run.

Usage: python -m benchmark.stack --stack stacks/postgres.yml [--runs 3] [--pgbench-seconds 10] [--out results]
(scripts/lab bench --stack FILE). Deploys the stack with playbooks/stack.yml, measures, and writes
<out>/<time>/stack-<name>.json and stack-<name>.md; removes what it deployed (the lab's label, value stack).

Per topology: image sizes; start (the engine's StartedAt to every health check passing, and to the first
row the writer commits); memory; commits per second at a fixed concurrency (pgbench, in the database's
container, beside the writer); kill -9 of the postmaster: the writer's outage (its last commit before to
its first after), with PostgreSQL's own WAL replay time; docker stop time, and whether PostgreSQL reported
a clean shutdown at its next start; acknowledged rows lost over all of it (the data-loss tests' check);
the privilege posture.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from benchmark import stats
from benchmark.lab import container_mem_mib, progress
from benchmark.report import stack_markdown
from benchmark.run import machine
from tests.support import docker, posture, process
from tests.support import stack as stacks

DATABASE, WRITER = stacks.DATABASE, stacks.WRITER
# PostgreSQL's own words for its WAL replay after a crash, and pgbench's for its rate.
REDO = re.compile(r"redo done at \S+ system usage: .*? elapsed: ([0-9.]+) s")
TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")
# A single crash, as the lab's pair is measured: made once the database has run this long (seconds). The
# engine doubles its restart delay for a container that dies within 10 s of its start; supervisord counts
# a program that dies within startsecs (1 s) as a failed start and backs off (1 s, 2 s, ...).
SINGLE_CRASH_AFTER_S = {"split": 10.0, "single": 2.0, "systemd": 2.0}
# The posture checks that judge the lab's own server and client by name do not apply to a stack's services.
STACK_POSTURE = [(name, check) for name, check in posture.POSTURE_CHECKS if "services run as non-root" not in name]
# Processes a manager runs as root by design (the manager itself and its helpers).
MANAGER_PROCESSES = ("supervisord", "supervisord-waker", "/lib/systemd/", "/usr/lib/systemd/", "/sbin/init",
                     "dbus-daemon", "(sd-pam)")


def first_commit_after(stack: stacks.Stack, topology: str, after: float, deadline_s: float = 120) -> float:
    return process.wait_for(lambda: stats.first_event_after(stack.writer_events(topology), "committed", after),
                            deadline_s, f"{topology}: a row committed after {after:.3f}", 0.05)


def start_and_stop(stack: stacks.Stack, topology: str) -> dict[str, Any]:
    """docker stop of the topology's containers (timed; was PostgreSQL's shutdown clean?), then docker start
    (the engine's StartedAt to every health check passing, and to the first committed row)."""
    containers = stack.containers(topology)
    t0 = time.monotonic()
    process.at_once(lambda c: docker.engine("stop", c, timeout=60), containers)
    stop_s = time.monotonic() - t0
    process.at_once(lambda c: docker.engine("start", c, timeout=60), containers)
    started = min(docker.started_at(c) for c in containers)
    commit = first_commit_after(stack, topology, started)
    process.wait_for(lambda: stack.healthy(topology), 120, f"{topology}: every health check passing", 0.05)
    healthy_at = time.time()
    return {"stop_s": stop_s, "clean": stack.last_stop(topology) == "shut down", "first_commit_s": commit - started,
            "healthy_s": healthy_at - started}


def outage_s(events: list[dict], after: float) -> float | None:
    """The writer's outage around a crash: from its last commit before its first error at or after `after`
    to its first commit after that error (the kill itself takes a docker exec, during which it commits on)."""
    error = stats.first_event_after(events, "db_error", after)
    if error is None:
        return None
    back = stats.first_event_after(events, "committed", error)
    last = max((stats.parse_ts(e["ts"]) for e in events if e.get("event") == "committed"
                and stats.parse_ts(e["ts"]) <= error), default=None)
    return None if back is None or last is None else back - last


def uptime_s(stack: stacks.Stack, topology: str) -> float:
    """How long the database has run: its container (split, where it is PID 1), else its postmaster."""
    container = stack.container(topology, DATABASE)
    if topology == "split":
        return time.time() - docker.started_at(container)
    pid = stack.postmaster_pid(container)
    return float(docker.engine("exec", container, "ps", "-o", "etimes=", "-p", str(pid)))


def kill9(stack: stacks.Stack, topology: str) -> dict[str, Any]:
    """kill -9 of the postmaster (in split, the container's PID 1, from the host): the writer's outage (last
    commit before to first commit after), and PostgreSQL's WAL replay time from its log."""
    first_commit_after(stack, topology, time.time())
    need = SINGLE_CRASH_AFTER_S[topology]
    process.wait_for(lambda: uptime_s(stack, topology) >= need, need + 60,
                     f"{topology}: the database up {need} s (a single crash, not a crash loop)", 0.2)
    before = len(REDO.findall(stack.output(topology, DATABASE)))
    killed = time.time()
    stack.kill_database(topology)
    back = process.wait_for(lambda: outage_s(stack.writer_events(topology), killed), 120,
                            f"{topology}: the writer committing again after the kill", 0.05)
    replays = process.wait_for(lambda: REDO.findall(stack.output(topology, DATABASE))[before:], 30,
                               f"{topology}: PostgreSQL's redo line", 0.2)
    return {"back_s": back, "redo_s": float(replays[-1])}


def pgbench(stack: stacks.Stack, topology: str, seconds: int, clients: int) -> float:
    """Transactions per second of pgbench's TPC-B-like script at `clients` connections, beside the writer."""
    container = stack.container(topology, DATABASE)
    env = ("-e", f"PGPASSWORD={stack.setting(DATABASE, 'POSTGRES_PASSWORD')}")
    conn = ("--host=127.0.0.1", "--username=postgres", "postgres")
    docker.engine("exec", *env, container, "pgbench", "--initialize", "--quiet", "--scale=1", *conn, timeout=120)
    out = docker.engine("exec", *env, container, "pgbench", f"--client={clients}", "--jobs=2", f"--time={seconds}",
                        *conn, timeout=seconds + 120)
    return float(TPS.search(out).group(1))


def root_processes(container: str) -> list[str]:
    """Processes running as root that are not the manager's own."""
    return [row["args"] for row in docker.processes(container)
            if row["user"] == "root" and not any(m in row["args"] for m in MANAGER_PROCESSES)]


def measure_topology(stack: stacks.Stack, topology: str, runs: int, seconds: int, clients: int) -> dict[str, Any]:
    containers = stack.containers(topology)
    starts = [start_and_stop(stack, topology) for _ in range(runs)]
    kills = [kill9(stack, topology) for _ in range(runs)]
    progress(f"{topology}: pgbench {seconds} s at {clients} clients")
    tps = pgbench(stack, topology, seconds, clients)
    first_commit_after(stack, topology, time.time())
    postures = posture.measure(containers)
    images = {}
    for c in containers:
        image = docker.inspect(c)["Config"]["Image"]
        images[c] = json.loads(docker.engine("image", "inspect", image))[0]["Size"] / 2**20
    return {
        "containers": containers,
        "image_mib": images,
        "start_first_commit_s": stats.summarize([s["first_commit_s"] for s in starts]),
        "start_healthy_s": stats.summarize([s["healthy_s"] for s in starts]),
        "stop_s": stats.summarize([s["stop_s"] for s in starts]),
        "stops_clean": sum(s["clean"] for s in starts), "stops": len(starts),
        "kill9_back_s": stats.summarize([k["back_s"] for k in kills]),
        "redo_s": stats.summarize([k["redo_s"] for k in kills]),
        "memory_mib": sum(container_mem_mib(containers).values()),
        "tps": tps, "pgbench_clients": clients, "pgbench_seconds": seconds,
        "lost_rows": len(stack.lost(topology)), "acknowledged_rows": len(stack.acknowledged(topology)),
        "posture": {name: all(check(p) for p in postures.values()) for name, check in STACK_POSTURE},
        "root_processes": {c: root_processes(c) for c in containers},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default=str(stacks.DEFAULT))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--pgbench-clients", type=int, default=4)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.pgbench_seconds < 1 or args.pgbench_clients < 1:
        parser.error("--runs, --pgbench-seconds and --pgbench-clients must be at least 1")
    stack = stacks.load(args.stack)
    if not {DATABASE, WRITER} <= {s["name"] for s in stack.data["services"]}:
        parser.error(f"{args.stack}: this comparison needs the services {DATABASE} and {WRITER} "
                     "(stacks/postgres.yml's); its stack has "
                     f"{', '.join(s['name'] for s in stack.data['services'])}")
    began = time.time()
    progress(f"deploying {stack.path} (playbooks/stack.yml)")
    stacks.deploy(stack)
    results: dict[str, Any] = {"stack": stack.name, "file": str(stack.path.relative_to(stacks.ROOT))
                               if stack.path.is_relative_to(stacks.ROOT) else str(stack.path),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
                               "engine": docker.ENGINE, "machine": machine(), "runs": args.runs,
                               "single_crash_after_s": SINGLE_CRASH_AFTER_S,
                               "topologies": {}}
    try:
        for topology in stacks.TOPOLOGIES:
            progress(f"{topology}: {args.runs} stop/start and kill -9 rounds")
            results["topologies"][topology] = measure_topology(stack, topology, args.runs, args.pgbench_seconds,
                                                               args.pgbench_clients)
    finally:
        progress("removing the stack (playbooks/teardown.yml, lab_teardown_scope=stack)")
        stacks.teardown()
    results["duration_s"] = time.time() - began
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S", time.gmtime(began))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"stack-{stack.name}.json").write_text(json.dumps(results, indent=2))
    (out / f"stack-{stack.name}.md").write_text("\n".join(stack_markdown(results)) + "\n")
    print(out / f"stack-{stack.name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
