"""WS-Discovery (adapter over the `wsdiscovery` library): a multicast Probe on the local
segment, and directed (unicast) Probes to the configured address ranges, because camera
VLANs do not pass multicast. Answers are ProbeMatches: each device's endpoint, its service
addresses (XAddrs) and scopes. What the devices are is asked afterwards (client.py)."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from varta.onvif.model import OnvifError, scope_values

log = logging.getLogger("varta.onvif")
MAX_ADDRESSES = 4096  # directed probes in one search


@dataclass
class Found:
    address: str
    xaddr: str
    epr: str
    scopes: dict[str, str] = field(default_factory=dict)


def addresses(ranges: list[str]) -> list[str]:
    out: list[str] = []
    for r in ranges:
        try:
            net = ipaddress.ip_network(r.strip(), strict=False)
        except ValueError:
            raise OnvifError(f"not an address range: {r!r} (e.g. 10.20.0.0/24 or 10.20.0.15)") from None
        hosts = [str(net.network_address)] if net.num_addresses == 1 else [str(h) for h in net.hosts()]
        out += hosts
        if len(out) > MAX_ADDRESSES:
            raise OnvifError(f"more than {MAX_ADDRESSES} addresses to probe: split the ranges")
    return out


def discover(ranges: list[str] = (), timeout_s: float = 3.0, multicast: bool = True) -> list[Found]:
    """Every ONVIF device (a NetworkVideoTransmitter) that answers within ``timeout_s``:
    a multicast Probe (the library's threaded daemon) and directed Probes to each address of
    the ranges (the library's messages on a socket of our own: the daemon drops answers that
    come from one of this machine's own addresses, and does not read its unicast socket)."""
    import threading

    import wsdiscovery.discovery  # noqa: F401 — once, before two threads import its parts

    targets = addresses(list(ranges))
    answers: list = []
    directed = threading.Thread(target=lambda: answers.extend(_directed(targets, timeout_s)), daemon=True)
    directed.start()
    services = _multicast(timeout_s) if multicast else []
    directed.join(timeout_s + 5)
    found: dict[str, Found] = {}
    for s in list(services) + answers:
        types = " ".join(str(t) for t in (s.getTypes() or []))
        xaddrs = [x for x in (s.getXAddrs() or []) if x.startswith("http")]
        if not xaddrs or ("NetworkVideoTransmitter" not in types and "onvif" not in " ".join(xaddrs).lower()):
            continue
        x = xaddrs[0]
        found[x] = Found(address=urlsplit(x).hostname or "", xaddr=x, epr=str(s.getEPR()),
                         scopes=scope_values([str(getattr(sc, "getValue", lambda: sc)()) for sc in s.getScopes() or []]))
    return sorted(found.values(), key=lambda f: (_ip_key(f.address), f.xaddr))


def _multicast(timeout_s: float) -> list:
    from wsdiscovery.discovery import ThreadedWSDiscovery

    wsd = ThreadedWSDiscovery()
    wsd.start()
    try:
        return list(wsd.searchServices(timeout=timeout_s))
    finally:
        wsd.stop()


def _directed(targets: list[str], timeout_s: float) -> list:
    """A Probe to each address on UDP 3702, the ProbeMatches read back (WS-Discovery 2005/04)."""
    import socket
    import time

    from wsdiscovery.actions.probe import constructProbe
    from wsdiscovery.message import createSOAPMessage, parseSOAPMessage

    if not targets:
        return []
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for a in targets:
            data = createSOAPMessage(constructProbe(None, None)).encode("utf-8")
            for _ in range(2):  # UDP: twice, as the standard's UNICAST_UDP_REPEAT
                try:
                    sock.sendto(data, (a, 3702))
                except OSError as exc:
                    log.debug("probe to %s: %s", a, exc)
        deadline = time.monotonic() + timeout_s
        import select

        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            try:
                data, addr = sock.recvfrom(65535)
            except OSError:
                continue
            try:
                env = parseSOAPMessage(data, addr[0])
            except Exception:  # noqa: BLE001 — a stray datagram
                env = None
            if env is not None and "ProbeMatches" in str(env.getAction()):
                out += env.getProbeResolveMatches() or []
    return out


def _ip_key(text: str) -> tuple:
    try:
        return (0, int(ipaddress.ip_address(text)), "")
    except ValueError:
        return (1, 0, text)
