"""Many nodes, one city: node identity and registry, leases with fencing tokens, placement,
failover and planned moves (docs/design/cluster.md)."""
