"""One fact, one place: where the services live in a container is written in roles/lab_layout only; every
role, playbook, test and the benchmark reads it from there (the roles through their dependency on it, Python
through tests/support/project.py)."""

from __future__ import annotations

import re

import pytest

from tests.support.project import LAYOUT, ROOT, role_yaml

RAW = role_yaml(ROOT / "roles/lab_layout/defaults/main.yml")
# The literal paths (the others are built from them).
PATHS = sorted(value for value in RAW.values() if "{{" not in value)
SOURCES = sorted(path for pattern in ("roles/**/*", "playbooks/**/*", "inventory/**/*", "molecule/**/*",
                                      "site.yml", "benchmark/**/*", "tests/**/*.py", "files/*", "scripts/*")
                 for path in ROOT.glob(pattern)
                 if path.is_file() and path.suffix not in (".md", ".pyc", ".json", ".png", ".svg")
                 and "lab_layout" not in path.parts)


def test_the_layout_renders_to_paths():
    assert all(value.startswith("/") and "{{" not in value for value in LAYOUT.values()), LAYOUT


@pytest.mark.parametrize("path", PATHS)
def test_a_layout_path_is_written_in_lab_layout_only(path):
    word = re.compile(re.escape(path) + r"(?![\w.-])")  # a whole path, not the start of a longer name
    found = [str(source.relative_to(ROOT)) for source in SOURCES if word.search(source.read_text(errors="replace"))]
    assert found == [], f"{path} is lab_layout's; read it from there (lab_layout_* or tests.support.project)"
