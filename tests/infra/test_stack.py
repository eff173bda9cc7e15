"""A stack's own checks (LAB_STACK=<file>): Molecule's verify step with a stack, and `scripts/lab up --stack`.

Read from the stack file, naming no service: each service runs under its topology's manager as its own user,
starts after what it needs, is stopped with its signal and grace, accepts on its ports (in split, by its
container's name from the stack's other containers), may write its log directory, each systemd unit is
hardened to the lab's exposure target, and every container passes the health check built from the stack's
checks. The containers are found by their labels, in the inventory's scope (lab_stack_scope); the topologies
are the Molecule scenario's, else all three. Without LAB_STACK this module is deselected
(tests/infra/conftest.py), and with it the demo pair's are.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.support import docker, posture
from tests.support import stack as stacks

testinfra_hosts = ["ansible://docker_engine"]

STACK = stacks.load()
SERVICES = STACK.services
TOPOLOGIES = [os.environ["MOLECULE_SCENARIO_NAME"]] if os.environ.get("MOLECULE_SCENARIO_NAME") else stacks.TOPOLOGIES
EACH = [(t, s["name"]) for t in TOPOLOGIES for s in SERVICES]


@pytest.fixture(scope="module")
def stack(host) -> stacks.Stack:
    """The stack as deployed in this inventory's scope, in (at least) the topologies asked for."""
    deployed = stacks.load(STACK.path, scope=host.ansible.get_variables()["lab_stack_scope"])
    found = deployed.deployed()
    # Another scenario's containers may be there too (molecule converge -s single, then test -s split).
    assert set(TOPOLOGIES) <= set(found), (
        f"the stack {STACK.name} ({deployed.scope}) is deployed in {sorted(found) or 'no topology'}, "
        f"expected {TOPOLOGIES}")
    return deployed


def run(container: str, *argv: str, user: str | None = None) -> int:
    """A command in the container (as `user`), its exit code."""
    return docker.process.run(docker.ENGINE, "exec", *(["--user", user] if user else []), container, *argv,
                              check=False).returncode


@pytest.mark.parametrize(("topology", "service"), EACH)
def test_each_service_runs_under_its_manager_as_its_user(stack, topology, service):
    container = stack.container(topology, service)
    pid = stack.main_pid(topology, service)
    assert pid > 0, f"{service} is not running under {topology}'s manager in {container}"
    user = docker.engine("exec", container, "ps", "-o", "user:32=", "-p", str(pid))
    assert user == STACK.service(service)["user"], f"{service} (pid {pid}) runs as {user} in {container}"


@pytest.mark.parametrize(("topology", "service", "needs"),
                         [(t, s["name"], dep) for t in TOPOLOGIES if t != "split" for s in SERVICES
                          for dep in s["after"]])
def test_each_service_starts_after_what_it_needs(stack, topology, service, needs):
    """supervisord starts programs in priority order; systemd orders the unit After= the other. In split
    each container starts on its own: the service waits for what it needs itself (a readiness check)."""
    container = stack.container(topology, service)
    if topology == "single":
        def priority(name: str) -> int:
            conf = docker.read_file(container, f"/etc/supervisor/conf.d/{name}.conf")
            return int(next(line.split("=", 1)[1] for line in conf.splitlines() if line.startswith("priority=")))
        assert priority(needs) < priority(service), f"supervisord starts {service} before {needs}"
    else:
        after = docker.engine("exec", container, "systemctl", "show", "--property=After", "--value", service)
        assert f"{needs}.service" in after.split(), f"{service}.service is not ordered after {needs}: {after}"


def signal_number(value: str | int) -> int:
    """A signal as supervisord, systemd or the engine spell it (INT, SIGINT, 2) as its number."""
    text = str(value)
    return int(text) if text.isdigit() else signal.Signals["SIG" + text.upper().removeprefix("SIG")].value


@pytest.mark.parametrize(("topology", "service"), EACH)
def test_the_manager_stops_each_service_with_its_signal_and_grace(stack, topology, service):
    container, want = stack.container(topology, service), STACK.service(service)
    if topology == "single":
        conf = dict(line.split("=", 1) for line in
                    docker.read_file(container, f"/etc/supervisor/conf.d/{service}.conf").splitlines() if "=" in line)
        found = signal_number(conf["stopsignal"]), int(conf["stopwaitsecs"])
    elif topology == "systemd":
        show = dict(line.split("=", 1) for line in docker.engine(
            "exec", container, "systemctl", "show", "--property=KillSignal,TimeoutStopUSec", service).splitlines())
        seconds = show["TimeoutStopUSec"]  # systemd's span: "8s", "1min 30s"
        found = signal_number(show["KillSignal"]), int(seconds.removesuffix("s")) if seconds[:-1].isdigit() else -1
    else:  # the engine's StopSignal; its grace is the engine's stop timeout, which the stack's stays under
        found = signal_number(docker.inspect(container)["Config"]["StopSignal"]), want["stop_grace"]
    assert found == (signal_number(want["stop_signal"]), want["stop_grace"]), (
        f"{service} in {container}: stopped with signal {found[0]} after {found[1]} s, the stack says "
        f"{want['stop_signal']} and {want['stop_grace']} s")


@pytest.mark.parametrize("service", [s["name"] for s in SERVICES] if "systemd" in TOPOLOGIES else [])
def test_each_unit_is_hardened_to_the_labs_exposure_target(stack, service):
    """The stack's units get the hardening the lab's own do: the same exposure target (stats.UNIT_EXPOSURE_MAX);
    a unit with systemd's defaults scores about 9.6."""
    failure = posture.exposure_above_target(stack.container("systemd", service), f"{service}.service")
    assert not failure, failure


@pytest.mark.parametrize(("topology", "service", "port"),
                         [(t, s["name"], port) for t in TOPOLOGIES for s in SERVICES for port in s["ports"]])
def test_each_port_accepts_where_the_stack_reaches_it(stack, topology, service, port):
    """On 127.0.0.1 in its container; in split also by the container's name from each other container."""
    container = stack.container(topology, service)
    connect = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)"
    froms = [(container, "127.0.0.1")] + [(other, container) for other in stack.containers(topology)
                                          if topology == "split" and other != container]
    refused = [f"{address}:{port} from {source}" for source, address in froms
               if run(source, "python3", "-c", connect, address, str(port))]
    assert not refused, f"{service} does not accept on {', '.join(refused)}"


@pytest.mark.parametrize(("topology", "service"), EACH)
def test_each_service_may_write_its_log_directory(stack, topology, service):
    container, want = stack.container(topology, service), STACK.service(service)
    # By number: the engine looks a name up in the image's /etc/passwd, not in the account Ansible added.
    user = ":".join(docker.engine("exec", container, "id", flag, want["user"]) for flag in ("-u", "-g"))
    assert run(container, "test", "-d", want["logs"], "-a", "-w", want["logs"], user=user) == 0, (
        f"{want['user']} cannot write {want['logs']} in {container}")


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_container_passes_the_stacks_health_checks(stack, topology):
    assert stack.healthy(topology), f"a container of {topology} fails its health check: {stack.containers(topology)}"
