"""Check the FreeSurfer installation and license and write a JSON report.

Problems (the gear fails on them when ``strict`` is true):
  * ``FREESURFER_HOME`` unset or not a directory;
  * no license file, or an empty one.
Warnings (reported, never fatal):
  * the license is a placeholder or does not look like a FreeSurfer license.

The report is ``output/license-report.json``. It never contains the license
text itself.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from utils.context import GearContext, GearError
from utils.freesurfer import freesurfer_home, inspect_license, license_path

log = logging.getLogger("fs-license-check")


def build_report() -> dict[str, Any]:
    """Inspect the environment; return the report with problems and warnings."""
    problems: list[str] = []
    warnings: list[str] = []
    report: dict[str, Any] = {
        "freesurfer_home": os.environ.get("FREESURFER_HOME"),
        "freesurfer_home_exists": False,
        "fs_license_env": os.environ.get("FS_LICENSE"),
        "license_path": None,
        "license_exists": False,
        "license_non_empty": False,
        "license_placeholder": False,
        "license_looks_valid": False,
    }

    try:
        home: Path | None = freesurfer_home()
        report["freesurfer_home_exists"] = True
    except GearError as err:
        problems.append(str(err))
        home = None

    # Without FREESURFER_HOME the license can still be found via FS_LICENSE.
    path: Path | None = None
    if home is not None:
        path = license_path(home)
    elif os.environ.get("FS_LICENSE"):
        path = Path(os.environ["FS_LICENSE"])
    if path is not None:
        info = inspect_license(path)
        report.update(
            license_path=str(info.path),
            license_exists=info.exists,
            license_non_empty=info.non_empty,
            license_placeholder=info.placeholder,
            license_looks_valid=info.looks_valid,
        )
        if not info.exists:
            problems.append(f"FreeSurfer license not found at {info.path}")
        elif not info.non_empty:
            problems.append(f"FreeSurfer license {info.path} is empty or unreadable")
        elif info.placeholder:
            warnings.append(f"{info.path} is a placeholder, not a real FreeSurfer license")
        elif not info.looks_valid:
            warnings.append(f"{info.path} does not look like a FreeSurfer license (expected 3-4 lines, the first an e-mail address)")

    report["problems"] = problems
    report["warnings"] = warnings
    report["ok"] = not problems
    return report


def run(context: GearContext) -> int:
    """Gear entry point: returns the process exit code."""
    strict = context.config.get("strict", True)
    if not isinstance(strict, bool):
        raise GearError(f"config 'strict' must be true or false, got {strict!r}")

    report = build_report()
    report["strict"] = strict
    context.output_dir.mkdir(parents=True, exist_ok=True)
    path = context.output_dir / "license-report.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s", path)

    for warning in report["warnings"]:
        log.warning("%s", warning)
    for problem in report["problems"]:
        # In strict mode problems are errors; otherwise they are only reported.
        log.log(logging.ERROR if strict else logging.WARNING, "%s", problem)
    if report["problems"] and strict:
        log.error("FreeSurfer license check failed (%d problem(s)); set strict=false to only report", len(report["problems"]))
        return 1
    if report["ok"]:
        log.info("FreeSurfer license check passed with %d warning(s)", len(report["warnings"]))
    else:
        log.info("FreeSurfer license check found problems; not failing because strict=false")
    return 0
