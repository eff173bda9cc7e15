"""Container restarts, and in split a replaced server container with a new IP address."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.faults.conftest import ROOT, TOPOLOGIES, poll_until, sh

SPLIT = next(t for t in TOPOLOGIES if t.manager == "none")


def test_container_restart_recovers(topology):
    restarted_at = time.time()
    sh("docker", "restart", *sorted({topology.server, topology.client}), timeout=60)
    poll_until(lambda: topology.health(0.5), 60, "the server after the restart")
    poll_until(lambda: topology.client_ok_after(restarted_at), 30, "a client success after the restart")


def ip_of(container: str) -> str:
    return sh("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container)


def test_split_server_replaced_with_a_new_address():
    network = sh("docker", "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
                 SPLIT.server)
    old_ip = ip_of(SPLIT.server)
    sh("docker", "rm", "-f", SPLIT.server)
    # Hold the freed address, so the replacement really gets another one.
    placeholder = "lab-faults-placeholder"
    sh("docker", "run", "-d", "--name", placeholder, "--label", "container-topology-lab=faults",
       "--network", network, "lab-python:latest")
    try:
        replaced_at = time.time()
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
        subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "playbooks/deploy.yml",
                        "playbooks/configure.yml", "--limit", f"localhost:{SPLIT.server}"],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
        new_ip = ip_of(SPLIT.server)
        assert new_ip != old_ip, f"the replacement kept {old_ip}"
        ok = poll_until(lambda: [e for e in SPLIT.events(SPLIT.client, "/var/log/lab/client.log")
                                 if e.get("event") == "poll_ok" and e["ts"] >= time.strftime(
                                     "%Y-%m-%dT%H:%M:%S", time.gmtime(replaced_at))], 30,
                        "a client success from the replaced server")
        assert ok[-1]["server_hostname"] == SPLIT.server
    finally:
        sh("docker", "rm", "-f", placeholder, check=False)
