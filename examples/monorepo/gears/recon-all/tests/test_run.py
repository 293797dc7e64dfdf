"""End-to-end checks of run.py with the fake recon-all in tests/bin.

Run from the gear directory with ``python3 -m unittest discover -s tests``.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

GEAR_DIR = Path(__file__).resolve().parent.parent
FAKE_BIN = GEAR_DIR / "tests" / "bin"


class RunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="recon-all-"))
        self.addCleanup(shutil.rmtree, self.tmp)
        self.base = self.tmp / "flywheel"
        self.fs_home = self.tmp / "freesurfer"
        self.fs_home.mkdir()
        (self.fs_home / "license.txt").write_text("PLACEHOLDER test license\n")
        t1 = self.base / "input" / "t1" / "T1w.nii.gz"
        t1.parent.mkdir(parents=True)
        t1.write_bytes(b"not really nifti")
        self.t1 = t1

    def run_gear(self, config: dict, **env: str) -> subprocess.CompletedProcess:
        config_json = {
            "config": config,
            "inputs": {
                "t1": {
                    "base": "file",
                    "location": {"path": str(self.t1), "name": self.t1.name},
                    "object": {"type": "nifti"},
                },
                "api-key": {"base": "api-key", "key": "example.flywheel.io:not-a-key"},
            },
            "destination": {"type": "analysis", "id": "000000000000000000000000"},
        }
        (self.base / "config.json").write_text(json.dumps(config_json))
        environ = {
            **os.environ,
            "FLYWHEEL": str(self.base),
            "FREESURFER_HOME": str(self.fs_home),
            "PATH": f"{FAKE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **env,
        }
        environ.pop("FS_LICENSE", None)
        return subprocess.run(
            [sys.executable, str(GEAR_DIR / "run.py")], env=environ, capture_output=True, text=True
        )

    def test_success_zips_subject_dir(self):
        proc = self.run_gear({"subject_id": "sub-42", "openmp": 4, "parallel": True, "directive": "autorecon1"})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(
            f"recon-all -s sub-42 -i {self.t1} -autorecon1 -openmp 4 -sd {self.base / 'work'} -parallel",
            proc.stdout,
        )
        with zipfile.ZipFile(self.base / "output" / "sub-42.zip") as archive:
            names = archive.namelist()
        self.assertIn("sub-42/stats/aseg.stats", names)
        self.assertIn("sub-42/tmp/", names)

    def test_expert_options_are_passed_as_file(self):
        proc = self.run_gear({"expert_opts": "mris_inflate -n 30"})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        expert = self.base / "work" / "expert.opts"
        self.assertIn(f"-all -openmp 2 -sd {self.base / 'work'} -expert {expert}", proc.stdout)
        self.assertEqual(expert.read_text(), "mris_inflate -n 30\n")

    def test_missing_license_fails(self):
        (self.fs_home / "license.txt").unlink()
        proc = self.run_gear({})
        self.assertEqual(proc.returncode, 1)
        self.assertIn("FreeSurfer license not found", proc.stderr)

    def test_recon_all_failure_fails_and_keeps_log(self):
        proc = self.run_gear({}, FAKE_RECON_ALL_FAIL="1")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("recon-all failed with exit status 3", proc.stderr)
        self.assertTrue((self.base / "output" / "sub-01.recon-all.log").is_file())

    def test_bad_config_fails(self):
        proc = self.run_gear({"subject_id": "../escape"})
        self.assertEqual(proc.returncode, 1)
        self.assertIn("subject_id", proc.stderr)


if __name__ == "__main__":
    unittest.main()
