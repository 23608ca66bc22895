"""Monitoring: what Prometheus scrapes from a web node (/metrics; docs/design/operations.md)."""
