"""The project's layout and the facts the roles and the inventory own, read from them (never retyped):
where things are, the lab's label, where the services log."""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "files"


class RoleYaml(yaml.SafeLoader):
    """Reads role files as data: Ansible's !unsafe marks a literal string."""


RoleYaml.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def role_yaml(path: Path) -> dict:
    loader = RoleYaml(path.read_text())
    try:
        return loader.get_single_data() or {}
    finally:
        loader.dispose()


def role_defaults(role: str) -> dict:
    """A role's defaults, what a host gets where its inventory sets nothing: a value that names lab_layout's
    paths (the roles depend on it) rendered as Ansible renders it; one needing more than that stays a template."""
    raw = role_yaml(ROOT / "roles" / role / "defaults" / "main.yml")
    context = {**role_yaml(ROOT / "roles" / "lab_layout" / "defaults" / "main.yml"), **raw}
    # A default may name another (lab_layout_client_log names lab_layout_log_dir): render until nothing changes.
    for _ in context:
        rendered = {key: _render(value, context) for key, value in context.items()}
        if rendered == context:
            break
        context = rendered
    return {key: context[key] for key in raw}


# Paths, not HTML: nothing to escape.
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined)  # noqa: S701


def _render(value: object, context: dict) -> object:
    if isinstance(value, list):
        return [_render(item, context) for item in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    try:
        return _JINJA.from_string(value).render(context)
    except jinja2.TemplateError:  # UndefinedError included: a default needing more than lab_layout
        return value


# Every container, network, volume and image the lab creates carries this label (its value says who).
LABEL: str = role_yaml(ROOT / "inventory/lab/group_vars/all.yml")["lab_label"]
# On each Swarm service: why it has its endpoint mode (roles/lab_swarm chooses it, auto by the kernel's IPVS).
SWARM_MODE_REASON_LABEL: str = _render(role_yaml(ROOT / "roles/lab_swarm/vars/main.yml")[
    "__lab_swarm_mode_reason_label"], role_defaults("lab_swarm"))
CLIENT_LOG: str = role_defaults("lab_client")["lab_client_log_file"]
SERVER_LOG: str = role_defaults("lab_server")["lab_server_log_file"]


def service_name(role: str) -> str:
    """The program/unit name a service role gives lab_service (lab-server, lab-client)."""
    tasks = role_yaml(ROOT / "roles" / role / "tasks" / "main.yml")
    return next(task["vars"]["lab_service_name"] for task in tasks if "ansible.builtin.include_role" in task)


SERVICE_NAMES: dict[str, str] = {"server": service_name("lab_server"), "client": service_name("lab_client")}


# Where the services live in every container (roles/lab_layout).
LAYOUT: dict = role_defaults("lab_layout")
APP_DIR: str = LAYOUT["lab_layout_app_dir"]
CONFIG_DIR: str = LAYOUT["lab_layout_config_dir"]
LOG_DIR: str = LAYOUT["lab_layout_log_dir"]
