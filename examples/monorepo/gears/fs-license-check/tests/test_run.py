"""End-to-end checks of run.py (standard library only).

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

REAL_LOOKING_LICENSE = "someone@example.org\n12345\n *AbCdEfGhIjKl\n FSaBcDeFgHiJk\n"


class RunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="fs-license-check-"))
        self.addCleanup(shutil.rmtree, self.tmp)
        self.base = self.tmp / "flywheel"
        self.base.mkdir()
        self.fs_home = self.tmp / "freesurfer"
        self.fs_home.mkdir()

    def run_gear(self, config: dict, fs_home: str | None = None) -> tuple[int, dict]:
        (self.base / "config.json").write_text(json.dumps({"config": config, "inputs": {}}))
        env = {**os.environ, "FLYWHEEL": str(self.base), "FREESURFER_HOME": fs_home or str(self.fs_home)}
        env.pop("FS_LICENSE", None)
        proc = subprocess.run([sys.executable, str(GEAR_DIR / "run.py")], env=env, capture_output=True, text=True)
        report = json.loads((self.base / "output" / "license-report.json").read_text())
        return proc.returncode, report

    def test_license_present(self):
        (self.fs_home / "license.txt").write_text(REAL_LOOKING_LICENSE)
        code, report = self.run_gear({"strict": True})
        self.assertEqual(code, 0)
        self.assertTrue(report["ok"])
        self.assertTrue(report["license_looks_valid"])
        self.assertEqual(report["warnings"], [])
        self.assertNotIn("someone@example.org", json.dumps(report))

    def test_placeholder_is_only_a_warning(self):
        (self.fs_home / "license.txt").write_text("PLACEHOLDER -- not a real license\n")
        code, report = self.run_gear({})
        self.assertEqual(code, 0)
        self.assertTrue(report["license_placeholder"])
        self.assertEqual(len(report["warnings"]), 1)

    def test_missing_license_fails_when_strict(self):
        code, report = self.run_gear({"strict": True})
        self.assertEqual(code, 1)
        self.assertFalse(report["ok"])
        self.assertFalse(report["license_exists"])

    def test_missing_license_is_reported_when_not_strict(self):
        code, report = self.run_gear({"strict": False}, fs_home=str(self.tmp / "nowhere"))
        self.assertEqual(code, 0)
        self.assertFalse(report["freesurfer_home_exists"])
        self.assertEqual(len(report["problems"]), 1)


if __name__ == "__main__":
    unittest.main()
