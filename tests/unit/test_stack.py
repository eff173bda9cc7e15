"""A stack is data: a wrong stack file fails before anything changes, naming the service and the field
(playbooks/stack_hosts.yml, the first part of playbooks/stack.yml, run for real on the controller)."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from tests.support import ansible
from tests.support import stack as stacks
from tests.support.project import LOG_DIR, ROOT

SHIPPED = ROOT / "stacks/postgres.yml"


def check(tmp_path, mutate=None):
    """playbooks/stack_hosts.yml over the shipped stack after `mutate(data)`, in a copy of stacks/."""
    shutil.copytree(SHIPPED.parent, tmp_path / "stacks")
    path = tmp_path / "stacks/postgres.yml"
    data = yaml.safe_load(SHIPPED.read_text())
    if mutate:
        mutate(data)
    path.write_text(yaml.safe_dump(data))
    result = ansible.playbook("playbooks/stack_hosts.yml", timeout=120, env={"LAB_STACK": str(path)})
    return result, result.stdout + result.stderr


def service(data, name):
    return next(s for s in data["services"] if s["name"] == name)


def added(output: str) -> list[str]:
    """The containers stack_hosts.yml added, as its loop labels them: "name (topology: services)"."""
    return re.findall(r"\(item=(\S+ \([a-z]+: [^)]*\))\)", output)


def test_the_shipped_stack_passes_and_yields_every_topology(tmp_path):
    result, output = check(tmp_path)
    assert result.returncode == 0, output
    names = [s["name"] for s in stacks.load(SHIPPED).data["services"]]
    assert added(output) == [f"lab-postgres-single (single: {', '.join(names)})",
                             f"lab-postgres-systemd (systemd: {', '.join(names)})"] + [
                             f"lab-postgres-split-{name} (split: {name})" for name in names]


@pytest.mark.parametrize("path", sorted((ROOT / "stacks").glob("*.yml")), ids=lambda p: p.name)
def test_every_shipped_stack_passes(path):
    result = ansible.playbook("playbooks/stack_hosts.yml", timeout=120, env={"LAB_STACK": str(path)})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert len(added(output)) == 2 + len(stacks.load(path).data["services"]), output


def test_under_molecule_only_the_scenarios_topology_with_the_projects_file(tmp_path):
    """Molecule's inventory (molecule/hosts.yml with the lab's group_vars, as .config/molecule links them)
    asks for the scenario's topology only, names the containers molecule-*, and a relative LAB_STACK names
    the project's file (Molecule runs in the scenario's directory): here a copy, renamed, under tmp_path."""
    shutil.copytree(SHIPPED.parent, tmp_path / "stacks")
    copy = tmp_path / "stacks/postgres.yml"
    copy.write_text(SHIPPED.read_text().replace("name: postgres\n", "name: copy\n", 1))
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    shutil.copy(ROOT / "molecule/hosts.yml", inventory / "hosts.yml")
    (inventory / "group_vars").symlink_to(ROOT / "inventory/lab/group_vars")
    result = ansible.playbook("-i", str(inventory), "playbooks/stack_hosts.yml", timeout=120, env={
        "LAB_STACK": "stacks/postgres.yml", "MOLECULE_PROJECT_DIRECTORY": str(tmp_path),
        "MOLECULE_SCENARIO_NAME": "systemd"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert added(output) == ["molecule-copy-systemd (systemd: postgres, writer)"]


CASES = [
    ("missing command", lambda d: service(d, "writer").pop("command"), "missing required arguments: command"),
    ("misspelt field", lambda d: service(d, "writer").update(comand="x"), "comand"),
    ("two health checks", lambda d: service(d, "writer")["health"].update(tcp=5432), "mutually exclusive"),
    ("no health check", lambda d: service(d, "writer").update(health={}), "one of the following is required"),
    ("after an unknown service", lambda d: service(d, "writer").update(after=["db"]),
     "service writer: after: 'db' is not a service listed before it"),
    ("after a later service", lambda d: d["services"].reverse(),
     "service writer: after: 'postgres' is not a service listed before it"),
    ("root", lambda d: service(d, "writer").update(user="root"), "service writer: user: must not be root"),
    ("bad signal", lambda d: service(d, "postgres").update(stop_signal="KILL"), "stop_signal"),
    ("grace past the engine's", lambda d: service(d, "postgres").update(stop_grace=30),
     "service postgres: stop_grace: must be 0-9 s"),
    ("missing file", lambda d: service(d, "writer").update(files=[{"src": "postgres/nope.py"}]),
     "service writer: files:"),
    ("quote in a value", lambda d: service(d, "writer")["environment"].update(X="it's"),
     "service writer: environment: X must be"),
    ("logs shared across users", lambda d: service(d, "postgres").update(logs=LOG_DIR),
     f"service writer: logs: {LOG_DIR} is also postgres's"),
    ("bad name", lambda d: d.update(name="My Stack"), "name 'My Stack' must be lowercase"),
    ("same name twice", lambda d: d["services"].append(dict(service(d, "writer"))),
     "service writer: name is used twice"),
    ("relative state", lambda d: service(d, "postgres").update(state=["data"]), "service postgres: state/logs: 'data'"),
    ("http without a port", lambda d: service(d, "writer").update(health={"http": "/"}),
     "service writer: health: http needs a port"),
    ("pip option", lambda d: service(d, "writer").update(pip=["--pre", "gunicorn"]),
     "service writer: pip: '--pre' must be a requirement"),
    ("pip not a list", lambda d: service(d, "writer").update(pip={"gunicorn": "23"}),
     "argument 'pip' is of type dict found in 'lab_stack_definition -> services'"),
]


def test_a_topology_that_is_not_one_is_named():
    result = ansible.playbook("playbooks/stack_hosts.yml", "-e", '{"lab_stack_topologies": ["split", "swarm"]}',
                              timeout=120, env={"LAB_STACK": str(SHIPPED)})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "lab_stack_topologies must name single, systemd or split" in output and "swarm" in output, output


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_wrong_stack_fails_before_anything_changes_naming_the_field(tmp_path, mutate, message):
    result, output = check(tmp_path, mutate)
    assert result.returncode != 0, output
    assert message in output, output
    assert "changed=0" in output or "PLAY RECAP" not in output, "nothing may change before the stack is checked"


def test_no_stack_file_is_a_clear_error():
    result = ansible.playbook("playbooks/stack_hosts.yml", timeout=120, env={"LAB_STACK": ""})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Name a stack file: LAB_STACK=stacks/postgres.yml" in output, output


def test_a_pip_ca_bundle_that_is_not_there_is_named_before_any_build(tmp_path):
    """PIP_CERT (lab_images_pip_cert) naming a missing file fails before the engine is asked anything."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(f"""
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: {ROOT / 'roles/lab_images'}
        tasks_from: stack
      vars:
        lab_images_stack_name: web
        lab_images_stack_images: [{{from: "lab-python:latest", name: "lab-python-web:latest"}}]
        lab_images_stack_venvs: [{{path: /srv/venv, requirements: [gunicorn]}}]
""")
    missing = tmp_path / "no-such-ca.pem"
    result = ansible.playbook("-i", "localhost,", str(playbook), timeout=120, env={"PIP_CERT": str(missing)})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"lab_images_pip_cert (from PIP_CERT) names {missing}, which is not a file" in output, output
    assert "docker_image_info" not in output and "Read the lab images" not in output, output
