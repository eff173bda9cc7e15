"""scripts/lab refuses a wrong setting before it changes anything, naming the setting and what it accepts."""

from __future__ import annotations

import os

import pytest

from tests.support.process import run
from tests.support.project import ROOT


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("LAB_ENGINE", "lxc", "LAB_ENGINE=lxc: use docker (the default) or podman"),
    ("LAB_SYSTEMD_RECIPE", "wide-open", "LAB_SYSTEMD_RECIPE=wide-open: use auto, own-slice, host-rw or privileged"),
    ("LAB_STRICT", "true", "LAB_STRICT=true: use 1 (on) or 0 (off)"),
    ("LAB_ENGINE_TESTS_ONLY", "yes", "LAB_ENGINE_TESTS_ONLY=yes: use 1 (on) or 0 (off)"),
])
def test_a_wrong_setting_stops_the_lab_before_anything_runs(setting, value, message):
    result = run(str(ROOT / "scripts/lab"), "test", check=False, timeout=60, env=dict(os.environ, **{setting: value}))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"lab: error: {message}" in result.stderr
    assert "==>" not in result.stdout, "nothing may start before the settings are checked"
