"""Split containers run hardened (roles/lab_harden): checked from inside and from the engine."""

from __future__ import annotations

import pytest

from tests.support.docker import ENGINE, health_status
from tests.support.docker import inspect as docker_inspect
from tests.support.project import APP_DIR, LOG_DIR
from tests.support.testinfra_host import host_vars, poll_until

testinfra_hosts = ["ansible://lab_split_hosts"]


def inspect(host) -> dict:
    return docker_inspect(host_vars(host)["inventory_hostname"])


def status_fields(host) -> dict[str, str]:
    text = host.file("/proc/1/status").content_string
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_main_process_has_no_capabilities_and_no_new_privileges(host):
    fields = status_fields(host)
    assert int(fields["Uid"].split()[0]) != 0, "the service runs as root"
    for cap in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[cap], 16) == 0, f"{cap} is {fields[cap]}"
    assert fields["NoNewPrivs"].strip() == "1"


def test_root_filesystem_is_read_only_and_logs_are_on_a_volume(host):
    mounts = {line.split()[1]: line.split()[3].split(",") for line in
              host.file("/proc/mounts").content_string.splitlines()}
    assert "ro" in mounts["/"], f"/ is mounted {mounts['/']}"
    attempt = host.run(f"touch {APP_DIR}/written")
    assert attempt.rc != 0 and "Read-only file system" in attempt.stderr, attempt
    assert "rw" in mounts[LOG_DIR], "the log directory must be a writable mount of its own"
    assert "rw" in mounts["/tmp"]


@pytest.mark.parametrize(("field", "check"), [
    ("ReadonlyRootfs", lambda hc, c: hc["ReadonlyRootfs"] is True),
    # Docker keeps the flag (ALL); Podman expands it and reports what is left (BoundingCaps, null when none).
    ("CapDrop", lambda hc, c: not hc.get("CapAdd") and (hc["CapDrop"] == ["ALL"] if ENGINE == "docker"
                                                        else not hc["BoundingCaps"])),
    ("SecurityOpt", lambda hc, c: "no-new-privileges" in (hc.get("SecurityOpt") or [])),
    ("Privileged", lambda hc, c: hc["Privileged"] is False),
    ("Memory", lambda hc, c: hc["Memory"] > 0),
    ("PidsLimit", lambda hc, c: (hc.get("PidsLimit") or 0) > 0),
    ("RestartPolicy", lambda hc, c: hc["RestartPolicy"]["Name"] in ("unless-stopped", "on-failure", "always")),
    ("User", lambda hc, c: c["User"] not in ("", "root", "0")),
    ("Healthcheck", lambda hc, c: bool((c.get("Healthcheck") or {}).get("Test"))),
])
def test_engine_runs_the_container_hardened(host, field, check):
    info = inspect(host)
    info["HostConfig"].setdefault("BoundingCaps", info.get("BoundingCaps"))  # Podman reports it at the top
    value = info["HostConfig"].get(field, info["Config"].get(field))
    assert check(info["HostConfig"], info["Config"]), f"{field}: {value}"


def test_health_check_reports_healthy(host):
    name = host_vars(host)["inventory_hostname"]
    assert poll_until(lambda: health_status(name), 60, "the health check to settle") == "healthy"
