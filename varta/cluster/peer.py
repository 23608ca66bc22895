"""Node-to-node HTTP: signed requests and a small client (adapter).

A node asks another for what only that node has: a segment or picture on its disk, its
live relay of a camera. Each request carries ``X-Varta-Node: <node id>;<unix time>;<sig>``,
an Ed25519 signature of the node id, the time, the method and the path with its query,
made with the asking node's own key (``identity.py``). The answering node checks it
against the public key the asker registered in ``cluster_nodes`` and refuses anything
unsigned, badly signed, or older than ``MAX_SKEW_S`` (a replayed request). No shared
secret exists, so nothing secret is stored in the database; the user's own rights were
checked by the web node that asks.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from varta.cluster.identity import NodeIdentity

HEADER = "X-Varta-Node"
MAX_SKEW_S = 120  # node clocks are NTP-synchronised; this bounds replays, it decides nothing


class PeerError(RuntimeError):
    pass


def _message(node_id: str, ts: int, method: str, target: str) -> bytes:
    return f"varta-node-request\n{node_id}\n{ts}\n{method.upper()}\n{target}".encode()


def sign_request(identity: NodeIdentity, method: str, target: str) -> str:
    ts = int(time.time())
    sig = identity.sign_key.sign(_message(identity.id, ts, method, target))
    return f"{identity.id};{ts};{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"


class PeerVerifier:
    """Checks signed requests against the nodes' registered public keys (cached)."""

    def __init__(self, registry):
        self.registry = registry
        self._keys: dict[str, object] = {}
        self._lock = threading.Lock()

    def _key(self, node_id: str):
        with self._lock:
            key = self._keys.get(node_id)
        if key is None:
            rows = {n.id: n for n in self.registry.list()}
            node = rows.get(node_id)
            if node is None or not node.public_key:
                return None
            key = load_pem_public_key(node.public_key.encode())
            with self._lock:
                self._keys[node_id] = key
        return key

    def verify(self, header: str | None, method: str, target: str) -> str:
        """The asking node's id, or PermissionError with the reason."""
        if not header:
            raise PermissionError("not a signed node request")
        try:
            node_id, ts_s, sig_s = header.split(";", 2)
            ts = int(ts_s)
            sig = base64.urlsafe_b64decode(sig_s + "=" * (-len(sig_s) % 4))
        except ValueError:
            raise PermissionError("malformed node signature") from None
        if abs(time.time() - ts) > MAX_SKEW_S:
            raise PermissionError("node request too old or from the future (check the nodes' clocks)")
        key = self._key(node_id)
        if key is None:
            raise PermissionError(f"unknown node {node_id}")
        try:
            key.verify(sig, _message(node_id, ts, method, target))
        except InvalidSignature:
            with self._lock:  # the node may have been re-keyed: look again next time
                self._keys.pop(node_id, None)
            raise PermissionError("bad node signature") from None
        return node_id


class PeerClient:
    """Requests to other nodes, signed with this node's key."""

    def __init__(self, identity: NodeIdentity, registry, timeout_s: float = 10.0):
        self.identity = identity
        self.registry = registry
        self.timeout_s = timeout_s
        self._addresses: dict[str, str] = {}

    def address(self, node_id: str) -> str:
        addr = self._addresses.get(node_id)
        if addr is None:
            nodes = {n.id: n for n in self.registry.list()}
            node = nodes.get(node_id)
            if node is None:
                raise PeerError(f"node {node_id} is not in the registry")
            if not node.alive:
                raise PeerError(f"node {node.name} is down (last heartbeat from the database's clock lapsed)")
            if not node.address:
                raise PeerError(f"node {node.name} has no address other nodes can reach")
            addr = node.address.rstrip("/")
            self._addresses[node_id] = addr
        return addr

    def forget(self, node_id: str) -> None:
        self._addresses.pop(node_id, None)

    def headers(self, method: str, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        return {HEADER: sign_request(self.identity, method, target)}

    def url(self, node_id: str, path: str) -> str:
        return self.address(node_id) + path

    def get(self, node_id: str, path: str, headers: dict | None = None, timeout: float | None = None):
        import httpx

        url = self.url(node_id, path)
        try:
            return httpx.get(url, headers={**(headers or {}), **self.headers("GET", url)},
                             timeout=timeout or self.timeout_s)
        except httpx.HTTPError as exc:
            self.forget(node_id)
            raise PeerError(f"node {node_id} did not answer: {exc}") from None

    def stream(self, node_id: str, path: str, headers: dict | None = None, timeout: float | None = None):
        """A streaming request (``with client.stream(...) as r``)."""
        import httpx

        url = self.url(node_id, path)
        client = httpx.Client(timeout=httpx.Timeout(timeout or self.timeout_s, read=None))
        return _ClosingStream(client, client.stream("GET", url, headers={**(headers or {}),
                                                                         **self.headers("GET", url)}))

    def fetch_to(self, node_id: str, path: str, dest: Path) -> Path:
        """Copy a file from another node to ``dest`` (atomically)."""
        import httpx

        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            with self.stream(node_id, path, timeout=30) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise PeerError(f"node {node_id} answered {resp.status_code} for {path}: {resp.text[:200]}")
                with open(tmp, "wb") as fh:
                    for chunk in resp.iter_bytes(1 << 20):
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            tmp.unlink(missing_ok=True)
            raise PeerError(f"copying {path} from node {node_id} failed: {exc}") from None
        tmp.replace(dest)
        return dest


class _ClosingStream:
    def __init__(self, client, cm):
        self.client, self.cm = client, cm

    def __enter__(self):
        return self.cm.__enter__()

    def __exit__(self, *exc):
        try:
            return self.cm.__exit__(*exc)
        finally:
            self.client.close()
