"""Evidence: incidents, holds, requests → resolution → transfer, and verifiable packages
(R7, A4.6–A4.11, MVS-3). Design: docs/design/evidence.md; for users: docs/evidence.md."""
