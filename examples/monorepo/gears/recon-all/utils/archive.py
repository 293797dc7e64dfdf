"""Zipping result directories for upload (standard library only)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path


def zip_directory(source: Path, destination: Path) -> int:
    """Write ``source`` (recursively) to the zip file ``destination``.

    Entries are stored as ``<source name>/<relative path>`` so the archive
    unpacks to a single directory, in sorted order for reproducible archives.
    Returns the number of files written.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(source):
            dirs.sort()
            root_path = Path(root)
            # Keep empty directories (FreeSurfer creates e.g. tmp/, trash/).
            if not files and not dirs:
                archive.write(root_path, root_path.relative_to(source.parent).as_posix() + "/")
            for name in sorted(files):
                file_path = root_path / name
                archive.write(file_path, file_path.relative_to(source.parent).as_posix())
                count += 1
    return count
