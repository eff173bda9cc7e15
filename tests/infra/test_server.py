"""The lab server, on every host that runs it, under whatever manager runs it."""

from __future__ import annotations

import json

import pytest

from tests.support.project import APP_DIR, CONFIG_DIR, SERVER_LOG
from tests.support.testinfra_host import poll_until, service_pids

testinfra_hosts = ["ansible://lab_server_hosts"]

FETCH = ("python3 -c 'import sys, urllib.request; "
         "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' {}")


def test_port_8080_listens(host):
    poll_until(lambda: host.socket("tcp://0.0.0.0:8080").is_listening, 30, "listener on 0.0.0.0:8080")


def test_root_reports_this_host(host):
    body = json.loads(host.check_output(FETCH.format("http://127.0.0.1:8080/")))
    assert body["hostname"] == host.check_output("hostname")
    assert body["pid"] == service_pids(host, "lab-server")[0]
    assert body["container"] is True


def test_healthz(host):
    assert json.loads(host.check_output(FETCH.format("http://127.0.0.1:8080/healthz"))) == {"status": "ok"}


@pytest.mark.parametrize(("path", "owner", "group", "mode"), [
    (f"{APP_DIR}/server.py", "root", "root", 0o755),
    (f"{APP_DIR}/server.pyc", "root", "root", 0o644),
    (f"{APP_DIR}/labkit.py", "root", "root", 0o644),
    (f"{CONFIG_DIR}/lab-server.env", "root", "lab", 0o640),
])
def test_installed_files(host, path, owner, group, mode):
    installed = host.file(path)
    assert (installed.user, installed.group, installed.mode) == (owner, group, mode), path


def test_server_log_file_written_by_lab(host):
    log = host.file(SERVER_LOG)
    assert (log.user, log.group) == ("lab", "lab")
    assert not log.mode & 0o002, "the log must not be world-writable"
    assert log.contains('"event":"started"')
