"""recon-all: FreeSurfer cortical reconstruction of one T1-weighted image."""
