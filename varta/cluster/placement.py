"""Which node should do a camera's work: weighted rendezvous hashing (pure, no I/O).

Every node computes the same answer from the same inputs (the live nodes, the cameras), so
no node has to decide for the others and nothing is stored: the lease says who *does*
record a camera, this says who *should*. Rendezvous (highest random weight) hashing moves
only the cameras of a node that leaves or joins (about 1/N of them), never reshuffles the
rest, and gives each node a share proportional to its weight.

Rules, in order (docs/design/cluster.md, "Placement"):

1. a camera pinned to a node (``varta camera add --recorder NAME``) goes to that node while
   it is live and not draining;
2. otherwise to the nodes that serve its group (a district's cameras on its servers);
3. otherwise to the nodes that serve no group in particular and take unpinned cameras;
4. otherwise, rather than leave it dark (R4), to any live node.

Each node's ``capacity`` (cameras; 0 = no limit) is its weight and a hard limit: a camera
whose first choice is full goes to its next. Cameras are taken in a fixed order (pinned,
then by id) so that every node fills capacities identically.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field

DEFAULT_WEIGHT = 100.0  # the weight of a node without a capacity


@dataclass(frozen=True)
class NodeInfo:
    id: str
    name: str = ""
    capacity: int = 0
    groups: tuple[str, ...] = ()
    takes_unpinned: bool = True

    @property
    def weight(self) -> float:
        return float(self.capacity) if self.capacity > 0 else DEFAULT_WEIGHT


@dataclass(frozen=True)
class CameraInfo:
    id: str
    pin: str | None = None  # a node's name or id
    group: str = ""


def _unit(camera_id: str, node_id: str) -> float:
    """A uniform number in (0, 1) fixed by the pair."""
    digest = hashlib.blake2b(f"{camera_id}\x00{node_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0 ** 64


def score(camera_id: str, node: NodeInfo) -> float:
    """Weighted rendezvous score: the node with the highest score wins the camera."""
    return -node.weight / math.log(_unit(camera_id, node.id))


def candidates(cam: CameraInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    if cam.pin:
        pinned = [n for n in nodes if cam.pin in (n.name, n.id)]
        if pinned:
            return pinned
    if cam.group:
        serving = [n for n in nodes if cam.group in n.groups]
        if serving:
            return serving
    general = [n for n in nodes if not n.groups and n.takes_unpinned]
    return general or list(nodes)


@dataclass
class Placer:
    """``place`` with each (camera, node) score kept: scores never change, so when a node
    dies only the sorting is redone (6,000 cameras × 30 nodes hash once, not at every change
    of the live node set)."""

    _scores: dict = field(default_factory=dict)

    def _score(self, cam_id: str, node: NodeInfo) -> float:
        key = (cam_id, node.id, node.weight)
        sc = self._scores.get(key)
        if sc is None:
            sc = self._scores[key] = score(cam_id, node)
        return sc

    def place(self, cameras: list[CameraInfo], nodes: list[NodeInfo]) -> dict[str, str | None]:
        load: Counter = Counter()
        out: dict[str, str | None] = {}
        order = sorted(cameras, key=lambda c: (c.pin is None, c.id))
        cands: dict[tuple, list[NodeInfo]] = {}  # most cameras share their candidates
        for cam in order:
            ck = (cam.pin, cam.group)
            if ck not in cands:
                cands[ck] = candidates(cam, nodes)
            pool = cands[ck]
            if not any(n.capacity for n in pool):  # no limits: the highest score wins
                chosen = max(pool, key=lambda n: self._score(cam.id, n)) if pool else None
                out[cam.id] = chosen.id if chosen else None
                if chosen:
                    load[chosen.id] += 1
                continue
            ranked = sorted(pool, key=lambda n: self._score(cam.id, n), reverse=True)
            chosen = next((n for n in ranked if not n.capacity or load[n.id] < n.capacity), None)
            if chosen is None and ranked:
                # Every candidate is full: any node with room, else the first choice anyway
                # (over capacity is better than not recorded; the Nodes page shows it).
                spare = [n for n in nodes if n.capacity and load[n.id] < n.capacity]
                chosen = max(spare, key=lambda n: self._score(cam.id, n)) if spare else ranked[0]
            out[cam.id] = chosen.id if chosen else None
            if chosen:
                load[chosen.id] += 1
        return out


def place(cameras: list[CameraInfo], nodes: list[NodeInfo]) -> dict[str, str | None]:
    """camera id → the id of the node that should record it (None: no node is live)."""
    return Placer().place(cameras, nodes)
