"""Exchange with outside systems (R11, MVS-3; docs/police-exchange.md): subscriptions of
receivers and the deliveries Varta owes them, in order, signed, retried."""
