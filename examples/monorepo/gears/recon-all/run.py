#!/usr/bin/env python3
"""Flywheel entry point of the recon-all gear (``command = "python3 run.py"``).

Run locally with ``FLYWHEEL=/some/dir python3 run.py`` where ``/some/dir``
contains a ``config.json``; outputs go to ``/some/dir/output``.
"""

import logging
import sys
from pathlib import Path

# Make app/ and utils/ importable however the script is started.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app.main import run  # noqa: E402
from utils.context import GearContext, GearError  # noqa: E402

log = logging.getLogger("recon-all")


def main() -> int:
    """Run the gear and translate expected failures into exit code 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(GearContext.load())
    except GearError as err:
        log.error("%s", err)
    except OSError as err:
        log.error("could not run recon-all or write its results: %s", err)
    return 1


if __name__ == "__main__":
    sys.exit(main())
