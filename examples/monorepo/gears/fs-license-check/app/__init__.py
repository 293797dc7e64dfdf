"""fs-license-check: report whether FreeSurfer and its license are in place."""
