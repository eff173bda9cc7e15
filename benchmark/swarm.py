"""Scale-out on Swarm: the split server as a service with 1..M replicas, loaded from a container on the
overlay network."""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any

from benchmark import stats
from benchmark.lab import BENCH_LABEL, ansible, container_mem_mib, probe, progress, wait_until
from tests.support.docker import docker
from tests.support.process import run as sh
from tests.support.project import SERVER_LOG, SWARM_MODE_REASON_LABEL

# --- scale-out on Swarm ---------------------------------------------------------------------------------------------

SWARM_SERVER = "lab-swarm-server"


def swarm_deploy(servers: int, clients: int) -> None:
    ansible("playbooks/swarm.yml", "-e", f"lab_swarm_server_replicas={servers}",
            "-e", f"lab_swarm_client_replicas={clients}")
    wait_until(lambda: len(swarm_tasks(SWARM_SERVER)) == servers, 120, f"{servers} server replicas", 0.5)


def swarm_tasks(service: str) -> list[str]:
    return docker("ps", "--filter", f"label=com.docker.swarm.service.name={service}", "--filter",
                  "health=healthy", "--format", "{{.Names}}").split()


def served_per_task() -> dict[str, int]:
    """Requests each server replica has logged (the log volume is per slot, so count differences)."""
    return {task: int(sh("docker", "exec", task, "grep", "-c", '"event":"request"', SERVER_LOG,
                         check=False).stdout.strip() or 0) for task in swarm_tasks(SWARM_SERVER)}


def measure_swarm(args: argparse.Namespace) -> dict[str, Any]:
    """The split server as a Swarm service with M = 1..max replicas, loaded by args.threads workers (a connection
    per request, the client's own poll) from a container on the overlay, so that the service name spreads them
    over the replicas: the rows compare M with M, not with the topologies' loopback figures."""
    progress("swarm: deploying the stack (playbooks/swarm.yml)")
    swarm_deploy(1, 0)
    spec = json.loads(docker("service", "inspect", SWARM_SERVER))[0]["Spec"]
    loader = "lab-bench-swarm-load"
    docker("run", "-d", "--name", loader, "--label", BENCH_LABEL, "--network", "lab-swarm", "--entrypoint", "sleep",
           "lab-swarm-client:latest", "infinity")
    url = f"http://{SWARM_SERVER}:8080/"
    rows = []
    try:
        for replicas in range(1, args.swarm_max_replicas + 1):
            swarm_deploy(replicas, 0)
            progress(f"swarm: M={replicas}, {args.threads} concurrent clients for {args.load_seconds}s")
            idle = container_mem_mib(swarm_tasks(SWARM_SERVER))
            before = served_per_task()
            sampled: dict[str, Any] = {}
            sampler = threading.Timer(args.load_seconds / 2, lambda found=sampled: found.update(
                mem=container_mem_mib(swarm_tasks(SWARM_SERVER))))
            sampler.start()
            result = probe(loader, "load", url, str(args.threads), str(args.load_seconds))
            sampler.join()
            after = served_per_task()
            rows.append({"replicas": replicas, "rps": result["rps"], "failures": result["failures"],
                         "latency_ms": stats.summarize(result["latency_ms"]),
                         "memory_idle_mib": idle, "memory_load_mib": sampled.get("mem", {}),
                         "mib_per_replica": sum(idle.values()) / max(len(idle), 1),
                         "requests_per_replica": {t: n - before.get(t, 0) for t, n in after.items()}})
    finally:
        sh("docker", "rm", "-fv", loader, check=False)
        ansible("playbooks/teardown.yml", "-e", "lab_teardown_scope=swarm")
    return {"endpoint_mode": spec["EndpointSpec"]["Mode"], "threads": args.threads, "seconds": args.load_seconds,
            "rows": rows, "mode_reason": spec["Labels"].get(SWARM_MODE_REASON_LABEL, "")}
