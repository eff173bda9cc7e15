"""The Dockerfile baseline: the same content as the roles install, built from benchmark/baseline.Dockerfile.j2
and run to the first client success, to compare the converge with."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jinja2

from benchmark.lab import BENCH_LABEL, anonymous_volumes, progress, remove_containers, start_topology, stop_topology
from tests.support.docker import docker, inspect
from tests.support.process import run as sh
from tests.support.project import (
    APP_DIR,
    CONFIG_DIR,
    LOG_DIR,
    SERVICE_NAMES,
    role_defaults,
)

# What the roles install beside the services' own directories, per manager (supervisord's config and
# helper, systemd's units): the files a hand-written Dockerfile copies in.
_SERVICE = role_defaults("lab_service")
UNITS = [f"{name}.service" for name in SERVICE_NAMES.values()]
BASELINE_FILES = {
    "supervisord": ["/etc/supervisor/supervisord.conf", "/etc/supervisor/conf.d", "/usr/local/sbin/supervisord-waker"],
    "systemd": [f"/etc/systemd/system/{unit}" for unit in UNITS],
    "none": [],
}
# The image each topology's containers start from, packages included, as the roles start from it too.
_IMAGES = role_defaults("lab_images")
BASELINE_BASE = {"supervisord": _IMAGES["lab_images_supervisord"], "systemd": _IMAGES["lab_images_systemd"],
                 "none": _IMAGES["lab_images_python"]}
BASELINE_TEMPLATE = Path(__file__).parent / "baseline.Dockerfile.j2"


def seconds(ns: int) -> str:
    return f"{ns / 1e9:g}s"


def baseline_dockerfile(manager: str, config: dict[str, Any]) -> str:
    """benchmark/baseline.Dockerfile.j2 for one container; `config` is its Config as the engine reports it (the
    entrypoint and health check lab_harden gave the image, where the service is the main process)."""
    health = config.get("Healthcheck") or {}
    return jinja2.Template(BASELINE_TEMPLATE.read_text(), trim_blocks=True, lstrip_blocks=True).render(
        base=BASELINE_BASE[manager], manager=manager, units=UNITS, user=_SERVICE["lab_service_user"],
        app_dir=APP_DIR, config_dir=CONFIG_DIR, log_dir=LOG_DIR, paths=baseline_paths(manager),
        entrypoint=config.get("Entrypoint"),
        health={"test": health.get("Test", [])[1:], "interval": seconds(health.get("Interval", 0)),
                "timeout": seconds(health.get("Timeout", 0)), "retries": health.get("Retries", 0),
                "start_period": seconds(health.get("StartPeriod", 0))})


def baseline_paths(manager: str) -> list[str]:
    return [APP_DIR, CONFIG_DIR, *BASELINE_FILES[manager]]


def baseline_cost(name: str, topo: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The same content as a hand-written Dockerfile: build (no cache) and run to the first client success."""
    build_s = 0.0
    images = {}
    for container in topo["containers"]:
        context = workdir / f"baseline-{container}"
        context.mkdir()
        for path in baseline_paths(topo["manager"]):
            target = context / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            docker("cp", f"{container}:{path}", str(target))
        config = inspect(container, "docker")["Config"]
        (context / "Dockerfile").write_text(baseline_dockerfile(topo["manager"], config))
        image = f"lab-baseline-{container}:latest"
        started = time.monotonic()
        sh("docker", "build", "--no-cache", "--label", BENCH_LABEL, "-t", image, str(context),
           env=dict(os.environ, DOCKER_BUILDKIT="0"), timeout=900)
        build_s += time.monotonic() - started
        images[container] = image
    remove_containers(topo)  # the Ansible-built ones: files copied, image committed
    # The baseline's files are in its image: its volumes start from it, not from the deployment's.
    run = start_topology({**topo, "containers": {c: anonymous_volumes(f) for c, f in topo["containers"].items()}},
                         images, fresh=False)
    stop_topology(topo)
    progress(f"{name}: Dockerfile baseline build {build_s:.1f}s + run to first poll {run['client_s']:.2f}s")
    return {"baseline_build_s": build_s, "baseline_run_to_client_s": run["client_s"],
            "baseline_total_s": build_s + run["client_s"]}
