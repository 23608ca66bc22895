"""ONVIF cameras (issue 18; C1, R1, R5, MVS-4): found by WS-Discovery, added from their
profiles, driven by PTZ, watched for clock drift, changed streams and old firmware.
docs/design/cameras.md (ONVIF)."""
