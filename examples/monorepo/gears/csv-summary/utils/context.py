"""Standard-library access to the Flywheel gear runtime.

Flywheel starts a gear with the working directory ``/flywheel/v0`` and writes
``config.json`` there. Its shape is::

    {
      "config": {"delimiter": ",", ...},
      "inputs": {
        "table": {
          "base": "file",
          "location": {"path": "/flywheel/v0/input/table/data.csv",
                       "name": "data.csv"},
          "object": {"type": "tabular data", ...}
        }
      },
      "destination": {"type": "acquisition", "id": "..."}
    }

The base directory can be overridden with the ``FLYWHEEL`` environment
variable, which makes it possible to run the gear locally against a temporary
directory (``FLYWHEEL=/tmp/job python3 run.py``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where Flywheel mounts the gear when no override is given.
DEFAULT_BASE_DIR = "/flywheel/v0"


class GearError(Exception):
    """A problem the gear reports to the user as a single clear log line."""


def base_dir() -> Path:
    """Return the gear base directory (``$FLYWHEEL`` or ``/flywheel/v0``)."""
    return Path(os.environ.get("FLYWHEEL") or DEFAULT_BASE_DIR)


@dataclass
class GearContext:
    """The parts of ``config.json`` a gear needs, plus the standard paths."""

    base: Path
    config: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    destination: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, base: Path | None = None) -> "GearContext":
        """Read ``<base>/config.json``; a missing file means "no config"."""
        base = base if base is not None else base_dir()
        config_path = base / "config.json"
        data: dict[str, Any] = {}
        if config_path.is_file():
            try:
                data = json.loads(config_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise GearError(f"{config_path} is not valid JSON: {err}") from err
            if not isinstance(data, dict):
                raise GearError(f"{config_path} must contain a JSON object")
        return cls(
            base=base,
            config=data.get("config") or {},
            inputs=data.get("inputs") or {},
            destination=data.get("destination") or {},
        )

    @property
    def output_dir(self) -> Path:
        """Files written here are uploaded to the destination container."""
        return self.base / "output"

    @property
    def work_dir(self) -> Path:
        """Scratch space that is discarded after the job."""
        return self.base / "work"

    def input_path(self, name: str) -> Path | None:
        """Return the local path of file input ``name``, or None if not given.

        ``location.path`` is used when it exists. Otherwise the file is looked
        up under ``<base>/input/<name>/<location.name>``, so a ``config.json``
        copied from a real job still works when ``FLYWHEEL`` points elsewhere.
        """
        entry = self.inputs.get(name)
        if not entry:
            return None
        if entry.get("base") != "file":
            raise GearError(f"input {name!r} is not a file input")
        location = entry.get("location") or {}
        path = Path(location["path"]) if location.get("path") else None
        if path is not None and path.exists():
            return path
        if location.get("name"):
            fallback = self.base / "input" / name / location["name"]
            if fallback.exists():
                return fallback
        raise GearError(f"input {name!r} was given but its file does not exist: {path}")
