"""Run FreeSurfer's recon-all on the ``t1`` input and zip the subject directory.

The command line is::

    recon-all -s SUBJECT -i T1 -DIRECTIVE -openmp N -sd /flywheel/v0/work
              [-parallel] [-expert work/expert.opts]

and the result is ``output/<subject_id>.zip`` containing ``<subject_id>/...``.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.archive import zip_directory
from utils.context import GearContext, GearError
from utils.freesurfer import freesurfer_home, inspect_license, license_path

log = logging.getLogger("recon-all")

#: recon-all stages the gear exposes (the ``directive`` config option).
DIRECTIVES = ("all", "autorecon1", "autorecon2", "autorecon3")

#: Same pattern as the ``subject_id`` option in Gear.toml: a plain directory name.
SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Options:
    """Validated gear configuration (defaults mirror Gear.toml)."""

    subject_id: str
    openmp: int
    parallel: bool
    directive: str
    expert_opts: str | None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Options":
        subject_id = config.get("subject_id", "sub-01")
        if not isinstance(subject_id, str) or not SUBJECT_ID.match(subject_id):
            raise GearError(f"config 'subject_id' must be a plain name like sub-01, got {subject_id!r}")

        openmp = config.get("openmp", 2)
        if isinstance(openmp, bool) or not isinstance(openmp, int) or not 1 <= openmp <= 64:
            raise GearError(f"config 'openmp' must be an integer from 1 to 64, got {openmp!r}")

        parallel = config.get("parallel", False)
        if not isinstance(parallel, bool):
            raise GearError(f"config 'parallel' must be true or false, got {parallel!r}")

        directive = config.get("directive", "all")
        if directive not in DIRECTIVES:
            raise GearError(f"config 'directive' must be one of {', '.join(DIRECTIVES)}, got {directive!r}")

        expert_opts = config.get("expert_opts") or None
        if expert_opts is not None and not isinstance(expert_opts, str):
            raise GearError("config 'expert_opts' must be a string")

        return cls(subject_id, openmp, parallel, directive, expert_opts)


def build_command(options: Options, t1: Path, subjects_dir: Path, expert_file: Path | None) -> list[str]:
    """The recon-all argument vector for these options."""
    command = [
        "recon-all",
        "-s", options.subject_id,
        "-i", str(t1),
        f"-{options.directive}",
        "-openmp", str(options.openmp),
        "-sd", str(subjects_dir),
    ]
    if options.parallel:
        command.append("-parallel")
    if expert_file is not None:
        command += ["-expert", str(expert_file)]
    return command


def check_freesurfer() -> None:
    """Fail early, with a clear message, if FreeSurfer cannot possibly run."""
    home = freesurfer_home()
    info = inspect_license(license_path(home))
    if not info.exists:
        raise GearError(f"FreeSurfer license not found at {info.path}")
    if not info.non_empty:
        raise GearError(f"FreeSurfer license {info.path} is empty")
    if info.placeholder:
        log.warning("%s is a placeholder, not a real FreeSurfer license; real recon-all will refuse to run", info.path)
    if shutil.which("recon-all") is None:
        raise GearError("recon-all is not on PATH")
    log.info("FREESURFER_HOME=%s, license %s", home, info.path)


def run(context: GearContext) -> int:
    """Gear entry point: returns the process exit code."""
    options = Options.from_config(context.config)
    t1 = context.input_path("t1")
    if t1 is None:
        raise GearError("required input 't1' is missing from config.json")
    check_freesurfer()
    # The read-only api-key input is declared so a later version can attach
    # results to the session via the SDK; this version does not use it.

    subjects_dir = context.work_dir
    subject_dir = subjects_dir / options.subject_id
    if subject_dir.exists():
        raise GearError(f"subject directory {subject_dir} already exists; recon-all -i needs a fresh one")
    subjects_dir.mkdir(parents=True, exist_ok=True)

    expert_file = None
    if options.expert_opts:
        expert_file = subjects_dir / "expert.opts"
        expert_file.write_text(options.expert_opts.strip() + "\n", encoding="utf-8")

    command = build_command(options, t1, subjects_dir, expert_file)
    log.info("running: %s", shlex.join(command))
    # recon-all's own output goes straight to the job log.
    result = subprocess.run(command, env={**os.environ, "SUBJECTS_DIR": str(subjects_dir)}, check=False)
    if result.returncode != 0:
        # Keep recon-all's log as an output so the failure can be diagnosed.
        recon_log = subject_dir / "scripts" / "recon-all.log"
        if recon_log.is_file():
            context.output_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(recon_log, context.output_dir / f"{options.subject_id}.recon-all.log")
        raise GearError(f"recon-all failed with exit status {result.returncode}")
    if not subject_dir.is_dir():
        raise GearError(f"recon-all succeeded but did not create {subject_dir}")

    archive = context.output_dir / f"{options.subject_id}.zip"
    count = zip_directory(subject_dir, archive)
    log.info("wrote %s (%d files)", archive, count)
    return 0
