"""roles/lab_swarm chooses the services' endpoint mode (tasks/endpoint_mode.yml): what it chooses, and why,
where no engine or kernel decides it. On this host's own kernel, tests/swarm checks the choice and the refusal."""

from __future__ import annotations

import pytest

from tests.support import ansible

REMOTE = {"DOCKER_HOST": "tcp://192.0.2.1:2375"}  # TEST-NET-1: never reached, only named


@pytest.mark.parametrize(("asked", "env", "mode", "reason"), [
    ("auto", REMOTE, "vip", "the engine is not on this host, so its kernel was not probed for IPVS"),
    ("vip", REMOTE, "vip", "lab_swarm_endpoint_mode says so"),
    ("dnsrr", {}, "dnsrr", "lab_swarm_endpoint_mode says so"),
], ids=["auto-remote", "vip-remote", "dnsrr"])
def test_endpoint_mode_is_chosen_and_says_why(asked, env, mode, reason):
    result = ansible.include_role("lab_swarm", "-e", f"lab_swarm_endpoint_mode={asked}",
                                  tasks_from="endpoint_mode", env=env, timeout=120)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, output[-3000:]
    assert f"Swarm endpoint mode: {mode}, because {reason}" in output, output[-3000:]
