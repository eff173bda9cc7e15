"""The systemd topology once per cgroup recipe (roles/lab_container), side by side, deployed by the lab's
own playbooks with inventory/recipes beside the lab's inventory. Shared by the fault suite and the benchmark."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass

from tests.support import ansible

# Docker's, tightest first as roles/lab_container probes them, then Podman's --systemd=always.
RECIPES = ("own-slice", "host-rw", "privileged", "podman-systemd")
ENGINES = {"podman-systemd": "podman"}
INVENTORIES = ("-i", "inventory/lab/", "-i", "inventory/recipes/hosts.yml")
PLAYBOOKS = ("playbooks/deploy.yml", "playbooks/configure.yml", "playbooks/verify.yml")
# What root in the container can write, as docs/architecture.md and the report state it.
STATED_REACH = {"own-slice": "its own cgroup only", "host-rw": "every container's cgroups",
                "privileged": "every container's cgroups",
                "podman-systemd": "cgroups outside its own in the systemd hierarchy"}


@dataclass(frozen=True)
class Deployed:
    recipe: str
    container: str
    refusal: str  # the engine's one-line reason when it refused the recipe; "" when it runs
    engine: str = "docker"

    @property
    def runs(self) -> bool:
        return not self.refusal


def container(recipe: str) -> str:
    return f"lab-recipe-{recipe}"


def deploy(recipe: str) -> Deployed:
    """Create, configure and verify the recipe's container. A recipe the engine refuses comes back with the
    role's one-line message; any other failure raises with the playbook's output."""
    name, engine = container(recipe), ENGINES.get(recipe, "docker")
    if shutil.which(engine) is None:
        return Deployed(recipe, name, f"{name}: {engine} is not installed here", engine)
    result = ansible.playbook(*INVENTORIES, "-l", f"localhost,{name}", *PLAYBOOKS,
                              env={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"})
    if result.returncode == 0:
        return Deployed(recipe, name, "", engine)
    refused = re.search(r'"msg": ("[^"\\]*(?:\\.[^"\\]*)*the engine refused the [^"\\]*(?:\\.[^"\\]*)*")',
                        result.stdout)
    if not refused:
        raise RuntimeError(f"deploying the {recipe} recipe failed:\n{result.stdout[-3000:]}{result.stderr[-1000:]}")
    return Deployed(recipe, name, json.loads(refused.group(1)), engine)


def remove(recipes: tuple[str, ...] = RECIPES) -> None:
    """Remove the recipes' containers and their cgroup parents."""
    names = ",".join(container(r) for r in recipes)
    result = ansible.playbook(*INVENTORIES, "-l", names, "playbooks/remove.yml")
    if result.returncode:
        raise RuntimeError(f"removing {names} failed:\n{result.stdout[-2000:]}")
