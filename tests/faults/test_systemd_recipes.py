"""Every systemd recipe the lab offers, deployed side by side on this engine by the lab's own playbooks
(inventory/recipes): it boots to `running` with no failed unit, its services come back after kill -9, and
root in it can write exactly what docs/architecture.md states. A recipe the engine refuses must say so in one line;
its other checks are reported as skipped with the engine's reason, never as passed."""

from __future__ import annotations

import pytest

from tests.support import cgroup_reach, recipes
from tests.support.docker import kill9_back_s, run
from tests.support.process import at_once


@pytest.fixture(scope="module")
def deployed() -> dict[str, recipes.Deployed]:
    # Each recipe is its own container and playbook run: deployed side by side, as the lab's topologies are.
    runs = dict(zip(recipes.RECIPES, at_once(recipes.deploy, recipes.RECIPES), strict=True))
    yield runs
    recipes.remove()


def running(deployed: dict[str, recipes.Deployed], recipe: str) -> recipes.Deployed:
    found = deployed[recipe]
    if not found.runs:
        pytest.skip(f"the {recipe} recipe did not run here: {found.refusal}")
    return found


def test_the_tightest_recipe_runs_here(deployed):
    assert deployed["own-slice"].runs, deployed["own-slice"].refusal


@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_a_refusal_is_one_clear_line(deployed, recipe):
    found = deployed[recipe]
    print(f"{recipe}: {found.refusal or 'runs'}")
    said = (f"the engine refused the {recipe} systemd recipe", f"{found.engine} is not installed here")
    assert found.runs or ("\n" not in found.refusal and any(s in found.refusal for s in said)
                          and "Traceback" not in found.refusal), found.refusal


@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_boots_to_running_with_no_failed_unit(deployed, recipe):
    found = running(deployed, recipe)
    state = run(found.engine, "exec", found.container, "systemctl", "is-system-running")
    failed = run(found.engine, "exec", found.container, "systemctl", "--failed", "--no-legend", "--plain")
    assert (state, failed) == ("running", ""), f"{found.container}: {state}; failed units: {failed}"


@pytest.mark.parametrize("recipe", recipes.RECIPES)
@pytest.mark.parametrize("role", ["server", "client"])
def test_services_come_back_after_kill9(deployed, recipe, role):
    """A new process, reported active by systemd (the wait is bounded; its length is the benchmark's)."""
    found = running(deployed, recipe)
    kill9_back_s(found.container, role, found.engine)


@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_root_writes_what_the_recipe_table_states(deployed, recipe):
    """own-slice: its own cgroup only. host-rw and privileged: every container's cgroups. Podman's
    --systemd=always: new cgroups in the host's named systemd hierarchy (measured, so the docs' claim
    about the looser recipes is checked too)."""
    found = running(deployed, recipe)
    reach = cgroup_reach.measure_beside(found.container, found.engine)
    print(f"{recipe}: root can write {reach.summary}: {reach}")
    assert reach.summary == recipes.STATED_REACH[recipe], reach
