"""Live alarms for the web node's WebSocket and SSE clients.

Each web process polls the events table for rows created or changed since the last look
(one query every ``poll_s`` however many operators are connected) and hands them to every
subscriber whose filter admits them. Workers and web nodes share only the database, so
any number of each can run (docs/design/analytics.md, "Alarms reach operators").

"Since the last look" is a position in the database's own order of commits
(``events.feed_pos``, EventStore.changes_from), not a wall-clock time: a late commit, or a
worker whose clock lags, can no longer slip an alarm behind the feed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Callable

from starlette.concurrency import run_in_threadpool

from varta.events.store import EventStore

log = logging.getLogger("varta.alarms")


@dataclass(eq=False)
class Subscriber:
    admits: Callable[[dict], bool]
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    dropped: int = 0


class EventFeed:
    def __init__(self, store: EventStore, poll_s: float = 0.5):
        self.store = store
        self.poll_s = poll_s
        self._subs: set[Subscriber] = set()
        self._task: asyncio.Task | None = None
        self._cursor: int | None = None

    def subscribe(self, admits: Callable[[dict], bool]) -> Subscriber:
        sub = Subscriber(admits)
        self._subs.add(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    async def _run(self) -> None:
        while self._subs:
            try:
                if self._cursor is None:
                    self._cursor = await run_in_threadpool(self.store.feed_head)
                rows, self._cursor = await run_in_threadpool(self.store.changes_from, self._cursor)
            except Exception:
                log.exception("alarm feed: reading events failed; retrying")
                rows = []
            for row in rows:
                row.pop("feed_pos", None)
                for sub in list(self._subs):
                    if not sub.admits(row):
                        continue
                    try:
                        sub.queue.put_nowait(row)
                    except asyncio.QueueFull:  # a stalled client loses alarms, not the server
                        sub.dropped += 1
            await asyncio.sleep(self.poll_s)
