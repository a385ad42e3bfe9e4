"""The one reader and writer of an artifact's `model.json`, importable without torch.

`vision.artifact` builds a loadable `ModelMeta` from what this reads (strictly: every field);
`services.registry` lists artifacts from it (leniently: a minimal or damaged file still lists).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "META",
    "ArtifactError",
    "is_artifact",
    "read_meta_json",
    "update_domain",
    "update_metrics",
    "write_meta_json",
]

META = "model.json"


class ArtifactError(ValueError):
    """The directory is not a loadable model artifact."""


def is_artifact(directory: Path) -> bool:
    return (directory / META).is_file()


def read_meta_json(directory: Path) -> dict[str, Any]:
    """The parsed `model.json` of `directory`. Raises OSError (missing or unreadable file) or
    ValueError (not JSON, or not a JSON object); callers word the error for their audience."""
    data = json.loads((directory / META).read_text())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def write_meta_json(directory: Path, data: dict[str, Any]) -> None:
    # sorted and indented: artifacts are diffed and reviewed by people
    (directory / META).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def update_metrics(directory: Path, metrics: dict[str, Any]) -> None:
    """Merge `metrics` into the artifact's stored metrics (top-level keys are replaced)."""
    data = read_meta_json(directory)
    data["metrics"] = {**data.get("metrics", {}), **metrics}
    write_meta_json(directory, data)


def update_domain(directory: Path, domain: dict[str, Any], *, monitor: dict[str, Any] | None = None) -> None:
    """Replace the artifact's `domain` block (the domain gate's accepted ranges) and, when given, its
    `monitor` block (reference distributions); weights are untouched."""
    data = read_meta_json(directory)
    data["domain"] = domain
    if monitor is not None:
        data["monitor"] = monitor
    write_meta_json(directory, data)
