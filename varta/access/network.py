"""Direct or remote? Decided by the source address (A4.3, A4.5). Pure, no I/O.

* On-site networks: the dispatch room's own network and workstations. A session from
  there is *direct* access; from anywhere else it is *remote*.
* Restricted-zone workstations (A4.5) are a subset of the on-site networks: the only
  places where recorded video may be played or exported.
* Trusted proxies: when Varta sits behind a reverse proxy (nginx, HAProxy), the proxy's
  address is not the user's; only from these addresses is ``X-Forwarded-For`` believed.
  Anyone else sending that header is ignored, so nobody can claim to be on site.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from varta.access.policy import DIRECT, REMOTE

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items, what: str) -> tuple[Network, ...]:
    out = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{what}: {item!r} is not an IP address or network (e.g. 10.20.0.0/24)") from None
    return tuple(out)


def _address(text: str):
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def _inside(addr, networks) -> bool:
    return addr is not None and any(addr.version == n.version and addr in n for n in networks)


@dataclass(frozen=True)
class Site:
    onsite: tuple[Network, ...]
    restricted: tuple[Network, ...]
    trusted_proxies: tuple[Network, ...] = ()
    remote_entrances: tuple[Network, ...] = ()  # our own addresses whose arrivals are remote

    @classmethod
    def from_settings(cls, onsite, restricted, proxies=(), remote_entrances=()) -> "Site":
        site = cls(parse_networks(onsite, "on-site networks"),
                   parse_networks(restricted, "restricted-zone workstations"),
                   parse_networks(proxies, "trusted proxies"),
                   parse_networks(remote_entrances, "remote entrances"))
        for r in site.restricted:
            if not any(r.version == o.version and r.subnet_of(o) for o in site.onsite):
                raise ValueError(f"restricted-zone workstation {r} is not inside the on-site networks: "
                                 f"a restricted zone is on site by definition (A4.5)")
        return site

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The user's address: the peer, or the proxy's report when the peer is a trusted proxy.

        Walks ``X-Forwarded-For`` from the right, skipping our own proxies, and takes the
        first address that is not one: the left part of the header is the client's to forge.
        """
        if not forwarded_for or not _inside(_address(peer), self.trusted_proxies):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not _inside(_address(hop), self.trusted_proxies):
                return hop
        return hops[0] if hops else peer

    def classify(self, address: str, entrance: str = "") -> tuple[str, bool]:
        """(direct|remote, restricted-zone) for a source address arriving at our address
        ``entrance``; unparsable means remote, and so does a remote entrance."""
        addr = _address(address)
        if not _inside(addr, self.onsite) or _inside(_address(entrance), self.remote_entrances):
            return REMOTE, False
        return DIRECT, _inside(addr, self.restricted)
