"""A container's security posture: measured the same way by the fault suite and the benchmark, and
judged by one list of checks (CIS Docker Benchmark numbers where one applies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark import stats
from tests.support import cgroup_reach
from tests.support.docker import ENGINE, inspect, processes, read_file, unit_security
from tests.support.project import LABEL

POSTURE_CHECKS = [
    ("5.4 not privileged", lambda c: not c["privileged"]),
    # --privileged grants every capability and turns seccomp off without listing either.
    ("5.3 no capabilities added", lambda c: not c["cap_add"] and not c["privileged"]),
    # Measured: PID 1's bounding set is empty (Podman lists each dropped capability, Docker says ALL).
    # Results measured before pid1_capabilities existed are judged by the engine's list.
    ("5.3 all capabilities dropped", lambda c: c["pid1_capabilities"] == 0 if "pid1_capabilities" in c
     else "ALL" in [cap.upper() for cap in c["cap_drop"]]),
    ("5.5/5.17 no host paths mounted", lambda c: not c["host_bind_mounts"]),
    ("5.12 read-only root filesystem", lambda c: c["readonly_rootfs"]),
    ("5.10 memory limit", lambda c: c["memory_limit"] > 0),
    ("5.28 pids limit", lambda c: c["pids_limit"] > 0),
    ("5.11 CPU shares set", lambda c: c["cpu_shares"] > 0),
    # Measured as root inside the container (tests/support/cgroup_reach.py), with a real neighbour.
    (CGROUP_CHECK := "cgroups: root writes only its own", lambda c: c["cgroup_reach"] == "its own cgroup only"),
    ("5.25 no-new-privileges", lambda c: any("no-new-privileges" in s for s in c["security_opt"])),
    ("5.21 default seccomp profile", lambda c: not c["privileged"]
     and not any("seccomp=unconfined" in s for s in c["security_opt"])),
    ("4.6/5.27 health check", lambda c: c["healthcheck"]),
    ("4.1 container user is not root", lambda c: c["user"] not in ("", "root", "0")),
    ("4.1 services run as non-root", lambda c: all(p["user"] != "root" for r, p in c["processes"].items()
                                                   if r in ("server", "client"))),
]


def exposure_above_target(container: str, unit: str, engine: str = ENGINE) -> str:
    """'' when a systemd unit in the container is within the lab's exposure target (stats.UNIT_EXPOSURE_MAX);
    else what is wrong: its score, the target and the checks that count most against it."""
    score, checks = unit_security(container, unit, engine)
    print(f"{unit} in {container}: overall exposure {score}")
    if score <= stats.UNIT_EXPOSURE_MAX:
        return ""
    heaviest = ", ".join(f"{check} {weight:g}" for check, weight in stats.heaviest_checks(checks))
    return (f"{unit} in {container}: exposure {score}, the lab's target is {stats.UNIT_EXPOSURE_MAX} "
            f"(counting most against it: {heaviest})")


def judge(containers: Any) -> dict[str, bool]:
    """{check: passes} for a topology: a check passes only if every one of its containers' postures
    (measure()'s values) passes it."""
    containers = list(containers)
    return {check: all(test(c) for c in containers) for check, test in POSTURE_CHECKS}


PRIVILEGED_DERIVED = "systemd --privileged (derived, not run)"
# Every capability this kernel knows, which --privileged grants.
ALL_CAPABILITIES = int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1


def with_privileged(container: dict[str, Any]) -> dict[str, Any]:
    """A measured container's posture as the privileged recipe would have it: --privileged, and with it
    the whole host cgroup tree writable (the recipe's rw mount, every capability)."""
    return container | {"privileged": True, "cgroup_reach": "every container's cgroups",
                        "pid1_capabilities": ALL_CAPABILITIES}


def measure(containers: list[str], engine: str = ENGINE) -> dict[str, Any]:
    """Each container's posture as the engine reports it and as measured inside it (cgroup reach, the
    services' users and capabilities); POSTURE_CHECKS judges it."""
    out = {}
    reach = {container: cgroup_reach.measure_beside(container, engine) for container in containers}
    for container in containers:
        info = inspect(container, engine)
        host = info["HostConfig"]
        procs = {}
        for row in processes(container, engine):
            role = stats.role_of(str(row["args"]))
            if role:
                status = read_file(container, f"/proc/{row['pid']}/status", engine)
                procs[role] = {"user": row["user"], **stats.status_capabilities(status)}
        out[container] = {
            "privileged": host["Privileged"], "cap_add": host.get("CapAdd") or [],
            "cap_drop": host.get("CapDrop") or [],
            "security_opt": host.get("SecurityOpt") or [], "readonly_rootfs": host["ReadonlyRootfs"],
            "apparmor_profile": info.get("AppArmorProfile") or "none (not enabled on this engine)",
            "cgroupns": host.get("CgroupnsMode"), "memory_limit": host.get("Memory", 0),
            "pids_limit": host.get("PidsLimit") or 0, "cpu_shares": host.get("CpuShares") or 0,
            "cgroup_reach": reach[container].summary, "cgroup_reach_detail": vars(reach[container]),
            "systemd_recipe": (info["Config"].get("Labels") or {}).get(f"{LABEL}.systemd-recipe", ""),
            "restart_policy": host["RestartPolicy"]["Name"] or "no",
            "healthcheck": bool(info["Config"].get("Healthcheck")), "user": info["Config"].get("User") or "root",
            "host_bind_mounts": [m["Source"] for m in info["Mounts"] if m["Type"] == "bind"],
            "writable_host_mounts": [m["Source"] for m in info["Mounts"] if m["Type"] == "bind" and m["RW"]],
            "processes": procs,
            "pid1_capabilities": stats.status_capabilities(read_file(container, "/proc/1/status", engine))["CapBnd"],
        }
    return out
