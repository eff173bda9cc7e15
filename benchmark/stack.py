"""A stack (stacks/*.yml) measured in its three topologies, side by side in one run.

Usage: python -m benchmark.stack --stack stacks/postgres.yml [--runs 3] [--pgbench-seconds 10] [--out results]
(scripts/lab bench --stack FILE). Deploys the stack with playbooks/stack.yml, measures, and writes
<out>/<time>/stack-<name>.json and stack-<name>.md; removes what it deployed (the lab's label, value stack).

Any stack, per topology: image sizes; start (the engine's StartedAt to every health check passing); memory;
docker stop time, and which services were SIGKILLed, by the engine or by their manager (a stop signal not
obeyed within the grace); kill -9 of each service's main process, a single crash each: until it is back, that is
its manager (the engine, in split) runs it again, its container passes its health check and nothing of the killed
run is still running (not back within BACK_WITHIN_S: its container is restarted); the privilege posture.
The PostgreSQL stack's shape (services postgres and writer) adds: start to the first row the writer commits;
commits per second at a fixed concurrency (pgbench, in the database's container, beside the writer); kill -9
of the postmaster: the writer's outage (its last commit before to its first after), with PostgreSQL's own WAL
replay time; whether PostgreSQL reported a clean shutdown at its next start; acknowledged rows lost over all
of it (the data-loss tests' check).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
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
# A single crash, as the lab's pair is measured: made once the service has run this long (seconds). The
# engine doubles its restart delay for a container that dies within 10 s of its start; supervisord counts
# a program that dies within startsecs (1 s) as a failed start and backs off (1 s, 2 s, ...).
SINGLE_CRASH_AFTER_S = {"split": 10.0, "single": 2.0, "systemd": 2.0}
# Seconds a service has to be back after a kill -9 before it counts as not back.
BACK_WITHIN_S = 30
# The posture checks that judge the lab's own server and client by name do not apply to a stack's services.
STACK_POSTURE = [(name, check) for name, check in posture.POSTURE_CHECKS if "services run as non-root" not in name]
# Processes a manager runs as root by design (the manager itself and its helpers).
MANAGER_PROCESSES = ("supervisord", "supervisord-waker", "/lib/systemd/", "/usr/lib/systemd/", "/sbin/init",
                     "dbus-daemon", "(sd-pam)")


def first_commit_after(stack: stacks.Stack, topology: str, after: float, deadline_s: float = 120) -> float:
    return process.wait_for(lambda: stats.first_event_after(stack.writer_events(topology), "committed", after),
                            deadline_s, f"{topology}: a row committed after {after:.3f}", 0.05)


def start_and_stop(stack: stacks.Stack, topology: str) -> dict[str, Any]:
    """docker stop of the topology's containers (timed; which services were SIGKILLed, by the engine or by
    their manager, their stop signal not obeyed within the grace?), then docker start (the engine's StartedAt
    to every health check passing; the PostgreSQL stack's: to the first committed row, and whether
    PostgreSQL's shutdown was clean)."""
    containers = stack.containers(topology)
    since, t0 = time.time(), time.monotonic()
    process.at_once(lambda c: docker.engine("stop", c, timeout=60), containers)
    stop_s = time.monotonic() - t0
    # 128 + 9: the engine's SIGKILL at the end of its grace, a stop signal nothing in the container handled.
    sigkilled = {s["name"] for s in stack.services
                 if docker.inspect(stack.container(topology, s["name"]))["State"]["ExitCode"] == 128 + signal.SIGKILL}
    process.at_once(lambda c: docker.engine("start", c, timeout=60), containers)
    started = min(docker.started_at(c) for c in containers)
    found: dict[str, Any] = {"stop_s": stop_s,
                             "sigkilled": sorted(sigkilled | set(stack.manager_sigkilled(topology, since)))}
    if stack.is_database:
        found["first_commit_s"] = first_commit_after(stack, topology, started) - started
    process.wait_for(lambda: stack.healthy(topology), 120, f"{topology}: every health check passing", 0.05)
    found["healthy_s"] = time.time() - started
    if stack.is_database:
        found["clean"] = stack.last_stop(topology) == "shut down"
    return found


def service_kill9(stack: stacks.Stack, topology: str, service: str) -> dict[str, Any]:
    """kill -9 of the service's main process, a single crash (SINGLE_CRASH_AFTER_S). When its manager (or the
    engine, in split) runs it again and its container passes its health check: how many processes of the killed
    run (its children: workers, helpers) are still running. Then the seconds until it is back: a new run, the
    health check passing, nothing of the killed run left (a leftover worker may hold the port and answer the
    health check while the new run cannot start); None when that takes longer than BACK_WITHIN_S."""
    need = SINGLE_CRASH_AFTER_S[topology]
    process.wait_for(lambda: stack.process_uptime_s(topology, service) >= need, need + 60,
                     f"{topology}: {service} up {need} s (a single crash, not a crash loop)", 0.2)
    container, before = stack.container(topology, service), stack.incarnation(topology, service)
    run = stack.run_of(topology, service)
    killed = time.time()
    stack.kill9(topology, service)

    def running_again() -> bool:
        now = stack.incarnation(topology, service)
        return now != before and now[0] > 0 and stack.container_healthy(container)

    process.wait_for(running_again, 120, f"{topology}: {service} running again and healthy after kill -9", 0.02)
    healthy_s = time.time() - killed
    left = stack.still_running(topology, service, run)
    if not left:
        return {"back_s": healthy_s, "left": 0}
    try:  # the leftovers first (one exec a poll), then the service's own new run, healthy
        process.wait_for(lambda: not stack.still_running(topology, service, run), BACK_WITHIN_S,
                         f"{topology}: nothing of {service}'s killed run left", 0.02)
        process.wait_for(running_again, max(BACK_WITHIN_S - (time.time() - killed), 0.1),
                         f"{topology}: {service} running again and healthy, nothing of its killed run left", 0.02)
    except TimeoutError:
        return {"back_s": None, "left": left}
    return {"back_s": time.time() - killed, "left": left}


def service_kill9_rounds(stack: stacks.Stack, topology: str, service: str, runs: int) -> list[dict[str, Any]]:
    """`runs` kill -9 rounds of the service, ended by the first it is not back from: what is left of the killed
    run still holds it then, and a restart of its container ends that for the rounds that follow."""
    rounds = []
    for _ in range(runs):
        rounds.append(service_kill9(stack, topology, service))
        if rounds[-1]["back_s"] is None:
            restart(stack, stack.container(topology, service))
            break
    return rounds


def restart(stack: stacks.Stack, container: str) -> None:
    docker.engine("restart", container, timeout=60)
    process.wait_for(lambda: stack.container_healthy(container), 120, f"{container} healthy after its restart", 0.05)


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


def kill9(stack: stacks.Stack, topology: str) -> dict[str, Any]:
    """kill -9 of the postmaster (in split, the container's PID 1, from the host): the writer's outage (last
    commit before to first commit after), and PostgreSQL's WAL replay time from its log."""
    first_commit_after(stack, topology, time.time())
    need = SINGLE_CRASH_AFTER_S[topology]
    postmaster = None if topology == "split" else stack.postmaster_pid(stack.container(topology, DATABASE))
    process.wait_for(lambda: stack.process_uptime_s(topology, DATABASE, postmaster) >= need, need + 60,
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
    """Processes the container runs as root that are not the manager's own. What was exec'd into it from
    outside (the engine's health check, this benchmark's own commands) is not the container's: its tree
    starts at a parent outside the container (ppid 0), PID 1 aside."""
    rows = docker.processes(container)
    parent = {row["pid"]: row["ppid"] for row in rows}

    def execd(pid: int) -> bool:
        while pid != 1 and pid in parent:
            if parent[pid] == 0:
                return True
            pid = parent[pid]
        return False

    return [row["args"] for row in rows if row["user"] == "root" and not execd(row["pid"])
            and not any(m in row["args"] for m in MANAGER_PROCESSES)]


def measure_topology(stack: stacks.Stack, topology: str, runs: int, seconds: int, clients: int) -> dict[str, Any]:
    containers = stack.containers(topology)
    starts = [start_and_stop(stack, topology) for _ in range(runs)]
    progress(f"{topology}: kill -9 of each service, {runs} single crashes each")
    found: dict[str, Any] = {
        "containers": containers,
        "start_healthy_s": stats.summarize([s["healthy_s"] for s in starts]),
        "stop_s": stats.summarize([s["stop_s"] for s in starts]),
        "stops_sigkilled": sum(bool(s["sigkilled"]) for s in starts), "stops": len(starts),
        "sigkilled_services": sorted({name for s in starts for name in s["sigkilled"]}),
    }
    crashes = {s["name"]: service_kill9_rounds(stack, topology, s["name"], runs) for s in stack.services}
    found |= {"service_kill9_back_s": {name: stats.summarize([c["back_s"] for c in cs if c["back_s"] is not None])
                                       | {"not_back": sum(c["back_s"] is None for c in cs)}
                                       for name, cs in crashes.items()},
              # Per service: the most processes of a killed run left running when it was back, over the kills.
              "service_kill9_left": {name: max(c["left"] for c in cs) for name, cs in crashes.items()}}
    if stack.is_database:
        kills = [kill9(stack, topology) for _ in range(runs)]
        progress(f"{topology}: pgbench {seconds} s at {clients} clients")
        found |= {"start_first_commit_s": stats.summarize([s["first_commit_s"] for s in starts]),
                  "stops_clean": sum(s["clean"] for s in starts),
                  "kill9_back_s": stats.summarize([k["back_s"] for k in kills]),
                  "redo_s": stats.summarize([k["redo_s"] for k in kills]),
                  "tps": pgbench(stack, topology, seconds, clients), "pgbench_clients": clients,
                  "pgbench_seconds": seconds}
        first_commit_after(stack, topology, time.time())
        found |= {"lost_rows": len(stack.lost(topology)), "acknowledged_rows": len(stack.acknowledged(topology))}
    else:
        process.wait_for(lambda: stack.healthy(topology), 120, f"{topology}: every health check passing", 0.2)
    postures = posture.measure(containers)
    return found | {
        "image_mib": {c: json.loads(docker.engine("image", "inspect", docker.inspect(c)["Config"]["Image"]))[0]["Size"]
                      / 2**20 for c in containers},
        "memory_mib": sum(container_mem_mib(containers).values()),
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
    began = time.time()
    progress(f"deploying {stack.path} (playbooks/stack.yml)")
    stacks.deploy(stack)
    results: dict[str, Any] = {"stack": stack.name, "file": str(stack.path.relative_to(stacks.ROOT))
                               if stack.path.is_relative_to(stacks.ROOT) else str(stack.path),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
                               "engine": docker.ENGINE, "machine": machine(), "runs": args.runs,
                               "single_crash_after_s": SINGLE_CRASH_AFTER_S, "back_within_s": BACK_WITHIN_S,
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
