"""The single topology: supervisord's control surface and programs."""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://lab_supervisord_hosts"]


def test_control_socket_is_root_only(host):
    sock = host.file("/run/supervisor.sock")
    assert (sock.is_socket, sock.user, sock.mode) == (True, "root", 0o700)


def test_no_inet_listener_but_the_server(host):
    listening = {s for s in host.socket.get_listening_sockets() if s.startswith("tcp")}
    assert listening == {"tcp://0.0.0.0:8080"}, f"unexpected TCP listeners: {listening}"


@pytest.mark.parametrize("program", ["lab-server", "lab-client"])
def test_program_runs_as_lab_and_restarts(host, program):
    conf = host.file(f"/etc/supervisor/conf.d/{program}.conf")
    for line in ("user=lab", "autorestart=true", "stopsignal=TERM"):
        assert conf.contains(f"^{line}$"), f"{program}.conf lacks {line}"
    assert host.supervisor(program).is_running
