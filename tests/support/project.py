"""The project's layout and the facts the roles and the inventory own, read from them (never retyped):
where things are, the lab's label, where the services log."""

from __future__ import annotations

from pathlib import Path

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
    """A role's defaults: what a host gets where its inventory sets nothing."""
    return role_yaml(ROOT / "roles" / role / "defaults" / "main.yml")


# Every container, network, volume and image the lab creates carries this label (its value says who).
LABEL: str = role_yaml(ROOT / "inventory/lab/group_vars/all.yml")["lab_label"]
CLIENT_LOG: str = role_defaults("lab_client")["lab_client_log_file"]
SERVER_LOG: str = role_defaults("lab_server")["lab_server_log_file"]
