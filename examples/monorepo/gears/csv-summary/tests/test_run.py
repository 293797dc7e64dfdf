"""End-to-end check of run.py against tests/data (standard library only).

Run from the gear directory with ``python3 -m unittest discover -s tests``.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

GEAR_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = GEAR_DIR / "tests" / "data"


class RunTest(unittest.TestCase):
    def run_gear(self, config: dict) -> tuple[subprocess.CompletedProcess, Path]:
        """Lay out a fake /flywheel/v0 in a temp dir and run the gear in it."""
        base = Path(tempfile.mkdtemp(prefix="csv-summary-"))
        self.addCleanup(shutil.rmtree, base)
        input_dir = base / "input" / "table"
        input_dir.mkdir(parents=True)
        shutil.copy(DATA_DIR / "example.csv", input_dir)
        config_json = {
            "config": config,
            "inputs": {
                "table": {
                    "base": "file",
                    "location": {"path": str(input_dir / "example.csv"), "name": "example.csv"},
                    "object": {"type": "tabular data", "mimetype": "text/csv"},
                }
            },
            "destination": {"type": "acquisition", "id": "000000000000000000000000"},
        }
        (base / "config.json").write_text(json.dumps(config_json))
        proc = subprocess.run(
            [sys.executable, str(GEAR_DIR / "run.py")],
            env={**os.environ, "FLYWHEEL": str(base)},
            capture_output=True,
            text=True,
        )
        return proc, base

    def test_matches_expected_summary(self):
        proc, base = self.run_gear({"delimiter": ",", "precision": 3})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        expected = json.loads((DATA_DIR / "expected-summary.json").read_text())
        actual = json.loads((base / "output" / "summary.json").read_text())
        self.assertEqual(actual, expected)
        self.assertIn("| age | 8 | 0 | 36.875 |", (base / "output" / "summary.md").read_text())

    def test_non_numeric_column_is_an_error(self):
        proc, _ = self.run_gear({"columns": ["group"]})
        self.assertEqual(proc.returncode, 1)
        self.assertIn("not numeric", proc.stderr)


if __name__ == "__main__":
    unittest.main()
