"""The split topology on a real single-node Docker Swarm (playbooks/swarm.yml): N=3 clients, M=2 servers.

Run by `scripts/lab test`; alone: pytest tests/swarm. The module deploys the stack, and removes it
(leaving swarm mode if the lab entered it) when it ends, so the engine is left as it was.
The tests run in file order: they share one stack.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.support import ansible, docker
from tests.support.process import sh, wait_for
from tests.support.project import CLIENT_LOG, SWARM_MODE_REASON_LABEL

SERVER, CLIENT = "lab-swarm-server", "lab-swarm-client"
M, N = 2, 3


def playbook(name: str, *extra: str) -> str:
    """Run a lab playbook; return its output. Fails the test with the output's end if it fails."""
    result = ansible.playbook(f"playbooks/{name}", *extra, timeout=900)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-4000:]}"
    return result.stdout


def deploy(servers: int = M, clients: int = N, *extra: str) -> str:
    return playbook("swarm.yml", "-e", f"lab_swarm_server_replicas={servers}",
                    "-e", f"lab_swarm_client_replicas={clients}", *extra)


def changed(output: str) -> int:
    """Changes over every host of the run's recap; a run without localhost's recap line is a failure."""
    found = ansible.recap(output)
    assert "localhost" in found, f"no PLAY RECAP line for localhost:\n{output[-2000:]}"
    return sum(counts["changed"] for counts in found.values())


def swarm_state() -> str:
    return sh("docker", "info", "--format", "{{.Swarm.LocalNodeState}}")


def tasks(service: str) -> list[str]:
    """Names of the service's running task containers."""
    out = sh("docker", "ps", "--filter", f"label=com.docker.swarm.service.name={service}", "--format", "{{.Names}}")
    return sorted(out.split())


def running_replicas(service: str) -> int:
    out = sh("docker", "service", "ps", service, "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
    return sum(line.startswith("Running") for line in out.splitlines())


def spec(service: str) -> dict:
    return json.loads(sh("docker", "service", "inspect", service))[0]


def endpoint_mode(service: str) -> tuple[str, str]:
    """The service's endpoint mode and why it has it (roles/lab_swarm says, on the service)."""
    found = spec(service)["Spec"]
    return found["EndpointSpec"]["Mode"], found["Labels"].get(SWARM_MODE_REASON_LABEL, "")


def events(container: str) -> list[dict]:
    return docker.events(container, CLIENT_LOG)


def polls(after: float = 0.0) -> dict[str, list[dict]]:
    """Every running client task's poll results (ok or failed) logged after `after`."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(after))
    return {c: [e for e in events(c) if e.get("event") in ("poll_ok", "poll_failed") and e["ts"] >= stamp]
            for c in tasks(CLIENT)}


def all_clients_ok_after(after: float) -> dict[str, list[dict]] | None:
    found = polls(after)
    ok = len(found) == N and all(any(e["event"] == "poll_ok" for e in p) and p[-1]["event"] == "poll_ok"
                                 for p in found.values())
    return found if ok else None


@pytest.fixture(scope="module", autouse=True)
def stack():
    before = swarm_state()
    deploy()
    yield
    playbook("teardown.yml", "-e", "lab_teardown_scope=swarm")
    assert swarm_state() == before, "the teardown did not leave the engine's swarm mode as it was"
    assert not sh("docker", "ps", "-aq", "--filter", "label=container-topology-lab=swarm")


def test_every_replica_runs_healthy_under_the_same_checks_as_split():
    assert running_replicas(SERVER) == M and running_replicas(CLIENT) == N
    for container in tasks(SERVER) + tasks(CLIENT):
        info = json.loads(sh("docker", "inspect", container))[0]
        assert info["State"]["Health"]["Status"] == "healthy", container
        assert info["Config"]["User"] == "lab" and info["HostConfig"]["ReadonlyRootfs"], container
        assert info["HostConfig"]["CapDrop"] == ["ALL"], container
    split_check = json.loads(sh("docker", "image", "inspect", "lab-swarm-server:latest"))[0]["Config"]["Healthcheck"]
    assert "/healthz" in " ".join(split_check["Test"])
    spec = json.loads(sh("docker", "service", "inspect", SERVER))[0]["Spec"]
    assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    assert spec["UpdateConfig"]["Order"] == "start-first"


def test_the_endpoint_mode_says_why_and_the_virtual_ip_was_tested():
    mode, reason = endpoint_mode(SERVER)
    assert reason, f"{SERVER} does not say why its endpoint mode is {mode}"
    assert endpoint_mode(CLIENT) == (mode, reason)
    if mode != "vip":
        pytest.skip(f"Swarm's virtual-IP endpoint mode: not tested, {reason} ({mode} was tested)")


def test_a_virtual_ip_the_kernel_cannot_route_is_refused_before_any_change():
    """auto chooses by the engine's kernel; vip asked where auto would not choose it fails, changing nothing."""
    auto = ansible.include_role("lab_swarm", "-e", "lab_swarm_endpoint_mode=auto", tasks_from="endpoint_mode")
    assert auto.returncode == 0, auto.stdout[-3000:]
    if "__lab_swarm_mode: vip" in auto.stdout:
        accepted = ansible.include_role("lab_swarm", "-e", "lab_swarm_endpoint_mode=vip", tasks_from="endpoint_mode")
        assert accepted.returncode == 0, f"vip refused where the kernel has IPVS:\n{accepted.stdout[-3000:]}"
        return
    version = spec(SERVER)["Version"]["Index"]
    refused = ansible.include_role("lab_swarm", "-e", "lab_swarm_endpoint_mode=vip")
    assert refused.returncode != 0, f"vip accepted on a kernel without IPVS:\n{refused.stdout[-3000:]}"
    assert "needs IPVS in the engine's kernel" in refused.stdout, refused.stdout[-3000:]
    assert spec(SERVER)["Version"]["Index"] == version, "the refused run changed the server service"


def test_every_client_succeeds_and_every_server_replica_answers():
    want = {f"{SERVER}-{slot}" for slot in range(1, M + 1)}

    def served_by_all() -> set[str] | None:
        found = polls()
        if len(found) != N or not all(any(e["event"] == "poll_ok" for e in p) for p in found.values()):
            return None
        seen = {e["server_hostname"] for p in found.values() for e in p if e["event"] == "poll_ok"}
        return seen if want <= seen else None

    seen = wait_for(served_by_all, 90, f"every client succeeding and answers from {sorted(want)}", 1)
    assert seen == want, f"answers from {sorted(seen)}, expected exactly {sorted(want)}"


def test_a_killed_server_task_is_survived():
    victim = tasks(SERVER)[0]
    killed_at = time.time()
    sh("docker", "kill", "--signal", "KILL", victim)
    wait_for(lambda: running_replicas(SERVER) == M and victim not in tasks(SERVER), 60,
             "Swarm replacing the killed server task", 0.5)
    # Every client succeeds again, and none is left failing.
    found = wait_for(lambda: all_clients_ok_after(killed_at), 60, "every client succeeding after the kill", 1)
    for client, results in found.items():
        assert results[-1]["event"] == "poll_ok", f"{client} is stuck failing: {results[-1]}"


def test_a_rolling_update_of_the_server_never_fails_a_client_twice_in_a_row():
    started = time.time()
    revision = str(int(started))
    deploy(M, N, "-e", json.dumps({"lab_swarm_server_env": {"LAB_REVISION": revision}}))

    def updated() -> bool:
        info = json.loads(sh("docker", "service", "inspect", SERVER))[0]
        return info.get("UpdateStatus", {}).get("State") == "completed" and running_replicas(SERVER) == M

    wait_for(updated, 120, "the rolling update completing", 1)
    for container in tasks(SERVER):
        env = json.loads(sh("docker", "inspect", container))[0]["Config"]["Env"]
        assert f"LAB_REVISION={revision}" in env, f"{container} still runs the old revision"
    found = wait_for(lambda: all_clients_ok_after(started), 60, "every client succeeding after the update", 1)
    for client, results in found.items():
        # Through the update, a failed poll (a connection to a task being replaced) is retried at
        # once: a client never fails twice in a row.
        streak = longest = 0
        for result in results:
            streak = streak + 1 if result["event"] == "poll_failed" else 0
            longest = max(longest, streak)
        assert longest <= 1, f"{client} failed {longest} polls in a row during the update"


def test_scaling_up_and_down_is_idempotent():
    out = deploy(M + 1, N)
    assert changed(out) >= 1
    wait_for(lambda: running_replicas(SERVER) == M + 1, 60, f"{M + 1} server replicas", 0.5)
    assert changed(deploy(M + 1, N)) == 0, "the same replica counts again changed something"
    # Down again: the same code path, so its re-run is not repeated (CI's budget).
    assert changed(deploy(M, N - 1)) >= 1
    wait_for(lambda: running_replicas(SERVER) == M and running_replicas(CLIENT) == N - 1, 60,
             "scaled back down", 0.5)
