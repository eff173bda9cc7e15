"""The services' JSON-lines logs, read from a file on this machine."""

from __future__ import annotations

from pathlib import Path

from benchmark import stats


def json_lines(path: Path) -> list[dict]:
    """Every JSON object line of the file; nothing when it does not exist yet."""
    return stats.parse_json_lines(path.read_text()) if path.exists() else []
