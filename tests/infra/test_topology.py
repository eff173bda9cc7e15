"""Who is PID 1 in every lab container."""

from __future__ import annotations

from tests.infra.conftest import host_vars

testinfra_hosts = ["ansible://lab_containers"]

PID1 = {"supervisord": "supervisord", "systemd": "systemd"}


def test_pid1_is_the_manager_or_the_service(host):
    hv = host_vars(host)
    cmdline = host.file("/proc/1/cmdline").content_string.replace("\0", " ")
    if hv["lab_manager"] == "none":
        expected = "server.py" if "lab_server_hosts" in hv["group_names"] else "client.py"
    else:
        expected = PID1[hv["lab_manager"]]
    assert expected in cmdline, f"PID 1 is {cmdline!r}, expected {expected}"
