"""Background jobs (exports, evidence packages, transfers) run by lease on web nodes."""
