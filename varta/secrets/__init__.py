"""Secrets at rest: what the database holds of passwords, camera credentials and second
factors is sealed with the instance's secrets key, which never lies in the database
(docs/design/secrets.md)."""
