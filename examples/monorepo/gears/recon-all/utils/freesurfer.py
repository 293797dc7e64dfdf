"""Locating FreeSurfer and its license file (standard library only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from utils.context import GearError


@dataclass(frozen=True)
class LicenseInfo:
    """What could be found out about a FreeSurfer license file without using it."""

    path: Path
    exists: bool
    non_empty: bool
    placeholder: bool
    looks_valid: bool


def freesurfer_home() -> Path:
    """Return ``$FREESURFER_HOME``, which the FreeSurfer base image sets."""
    value = os.environ.get("FREESURFER_HOME")
    if not value:
        raise GearError("FREESURFER_HOME is not set; is this running in the FreeSurfer image?")
    home = Path(value)
    if not home.is_dir():
        raise GearError(f"FREESURFER_HOME={home} is not a directory")
    return home


def license_path(home: Path) -> Path:
    """FreeSurfer reads ``$FS_LICENSE`` if set, else ``$FREESURFER_HOME/license.txt``."""
    override = os.environ.get("FS_LICENSE")
    return Path(override) if override else home / "license.txt"


def inspect_license(path: Path) -> LicenseInfo:
    """Check a license file's presence and rough shape (never its validity).

    A license issued by https://surfer.nmr.mgh.harvard.edu/registration.html
    has three or four short lines, the first an e-mail address. The example
    monorepo ships a placeholder that says so in its text.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return LicenseInfo(path, exists=path.exists(), non_empty=False, placeholder=False, looks_valid=False)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    placeholder = "placeholder" in text.lower()
    looks_valid = not placeholder and 3 <= len(lines) <= 5 and "@" in lines[0]
    return LicenseInfo(path, exists=True, non_empty=bool(lines), placeholder=placeholder, looks_valid=looks_valid)
