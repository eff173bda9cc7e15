"""Bad role variables fail at validation, with a message naming the variable, before any task runs."""

from __future__ import annotations

import re

import pytest

from tests.support import ansible
from tests.support.project import ROOT, role_yaml

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: {role}
"""

CASES = [
    ("lab_server", "lab_server_port=70000", "lab_server_port must be 1-65535"),
    ("lab_server", "lab_server_port=eighty", "lab_server_port"),
    ("lab_server", "lab_server_manager=runit", "lab_server_manager"),
    ("lab_client", "lab_client_url=''", "lab_client_url must be an http(s) URL"),
    ("lab_client", "lab_client_user=root", "lab_client_user must not be root"),
    ("lab_client", "lab_client_manager=k8s", "lab_client_manager"),
    ("lab_images", "lab_images_pull=maybe", "lab_images_pull"),
    ("lab_container", "lab_container_systemd_recipe=wide-open", "lab_container_systemd_recipe"),
    ("lab_container", "lab_container_cpu_shares=lots", "lab_container_cpu_shares"),
    ("lab_container", "lab_container_restart_policy=sometimes", "lab_container_restart_policy"),
    ("lab_container", "lab_container_read_only=perhaps", "lab_container_read_only"),
    ("lab_container", "lab_container_engine=lxc", "lab_container_engine"),
    ("lab_harden", "lab_harden_service=database", "lab_harden_service"),
    ("lab_swarm", "lab_swarm_endpoint_mode=ipvs", "lab_swarm_endpoint_mode"),
    ("lab_swarm", "lab_swarm_server_replicas=many", "lab_swarm_server_replicas"),
    ("lab_layout", "lab_layout_log_dir=var/log/lab", "lab_layout paths must be absolute: lab_layout_log_dir"),
    # Internal: only lab_server and lab_client may apply it.
    ("lab_service", "lab_service_name=anything", "lab_service is internal to lab_server, lab_client and lab_stack"),
]


@pytest.mark.parametrize(("role", "extra", "message"), CASES)
def test_bad_variable_fails_before_any_change(tmp_path, role, extra, message):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.format(role=role))
    result = ansible.playbook("-i", "localhost,", "--check", "-e", extra, str(playbook), timeout=120,
                              env={"ANSIBLE_ROLES_PATH": str(ROOT / "roles")})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output
    assert "changed=0" in output, "nothing may change before validation fails"


ROLES = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_name_the_same_variables(role):
    """A default without a spec is never validated; a spec without a default is undefined at run time
    (argument specs check values, they do not set them)."""
    defaults = set(role_yaml(ROOT / "roles" / role / "defaults/main.yml"))
    specs = role_yaml(ROOT / "roles" / role / "meta/argument_specs.yml")["argument_specs"]
    specified = {name for entry in specs.values() for name in (entry.get("options") or {})}
    assert (sorted(defaults - specified), sorted(specified - defaults)) == ([], []), \
        "(defaults without a spec, specs without a default)"


def readme_variables(role: str) -> set[str]:
    """The variables a role's README lists in the first column of its "Role Variables" table."""
    text = (ROOT / "roles" / role / "README.md").read_text()
    assert "## Role Variables" in text, f"roles/{role}/README.md has no Role Variables section"
    section = text.split("## Role Variables", 1)[1].split("\n## ", 1)[0]
    first_cells = re.findall(r"^\|([^|]*)\|", section, flags=re.MULTILINE)
    return {name for cell in first_cells for name in re.findall(r"`([a-z0-9_]+)`", cell)} - {"variable"}


@pytest.mark.parametrize("role", ROLES)
def test_readme_lists_the_variables_the_specs_check(role):
    """A README drifts from its role unless it is checked: the table names exactly the specs' variables."""
    specs = role_yaml(ROOT / "roles" / role / "meta/argument_specs.yml")["argument_specs"]
    documented = {name for spec in specs.values() for name in (spec.get("options") or {})
                  if not name.startswith("__")}
    listed = readme_variables(role)
    assert listed == documented, (f"roles/{role}/README.md: not listed {sorted(documented - listed)}, "
                                  f"not in the specs {sorted(listed - documented)}")
