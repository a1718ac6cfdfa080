"""What readers have computed, kept within a byte budget for all sessions together.

Gradio's ``gr.State`` bounds sessions by count, not by size, and a session that opened every tab at
every layer holds ~25 MB: 200 sessions held 5 GB. Here every cached value is an *item* with its size
in bytes and a cost class:

* ``CHEAP`` items (one forward pass: the main explanation, the Methods maps) are evicted first and
  recomputed when asked for again;
* ``EXPENSIVE`` items (Score-CAM, faithfulness curves, sanity checks: tens to hundreds of passes) are
  evicted only when no cheap item is left to evict.

Two budgets hold at once: ``budget_bytes`` for everything, and ``client_share`` of it per client
(an IP address), so one client minting many sessions evicts only its own items, never everyone's.
Items older than ``ttl_s`` are dropped. The store is thread-safe; values are computed outside its
lock (two events of one session may compute the same item twice: harmless, one copy is kept).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Literal, TypeVar, cast

import numpy as np
from PIL import Image

T = TypeVar("T")
Cost = Literal["cheap", "expensive"]
CHEAP: Cost = "cheap"
EXPENSIVE: Cost = "expensive"


def nbytes(value: Any, _seen: set[int] | None = None) -> int:
    """Approximate memory held by ``value``: numpy buffers, PIL pixels, and the containers and
    dataclasses around them (shared objects counted once)."""
    seen = _seen if _seen is not None else set()
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + 112
    if isinstance(value, Image.Image):
        return value.width * value.height * len(value.getbands()) + 200
    if isinstance(value, (bytes, bytearray, str)):
        return sys.getsizeof(value)
    if isinstance(value, dict):
        return 64 + sum(nbytes(k, seen) + nbytes(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return 56 + sum(nbytes(v, seen) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return 64 + sum(nbytes(getattr(value, f.name), seen) for f in fields(value))
    return sys.getsizeof(value)


@dataclass(frozen=True)
class Who:
    """Whose request: the session its items belong to, and the client its memory share is charged to."""

    session: str  # Gradio's session hash
    client: str  # the reader's address: each client gets a share of the session budget

    @classmethod
    def of(cls, request: Any) -> Who:
        """From a Gradio request. Behind the Spaces proxy the client is the X-Forwarded-For hop the
        proxy appended (the last; a client can forge the ones before it); elsewhere the peer address."""
        forwarded = request.headers.get("x-forwarded-for", "") if os.environ.get("SYSTEM") == "spaces" else ""
        client = forwarded.split(",")[-1].strip() or (request.client.host if request.client else "unknown")
        return cls(session=request.session_hash or "no-session", client=client)


@dataclass
class _Item:
    client: str
    session: str
    value: Any
    size: int
    cost: Cost
    stamp: float


class SessionStore:
    """A byte-bounded, per-client-fair cache of ``(session, key) -> value``."""

    def __init__(self, budget_bytes: int, client_share: float = 0.25, ttl_s: float = 30 * 60) -> None:
        if budget_bytes <= 0 or not 0 < client_share <= 1:
            raise ValueError("budget_bytes must be positive and client_share in (0, 1].")
        self.budget_bytes = budget_bytes
        self.client_bytes = int(budget_bytes * client_share)
        self.ttl_s = ttl_s
        self._items: OrderedDict[tuple[str, Hashable], _Item] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self.evictions = 0

    # -- reading and writing -------------------------------------------------------------------

    def get(self, session: str, key: Hashable) -> Any | None:
        with self._lock:
            item = self._items.get((session, key))
            if item is None:
                return None
            if time.monotonic() - item.stamp > self.ttl_s:
                del self._items[(session, key)]
                return None
            item.stamp = time.monotonic()
            self._items.move_to_end((session, key))
            return item.value

    def put(self, session: str, client: str, key: Hashable, value: Any, cost: Cost = CHEAP) -> None:
        size = nbytes(value)
        with self._lock:
            self._items.pop((session, key), None)
            if size > self.client_bytes:
                return  # larger than a client's whole share: serve it, do not keep it
            self._items[(session, key)] = _Item(client, session, value, size, cost, time.monotonic())
            self._evict(client)

    def get_or_compute(
        self, session: str, client: str, key: Hashable, compute: Callable[[], T], cost: Cost = CHEAP
    ) -> T:
        found = self.get(session, key)
        if found is not None:
            return cast(T, found)
        value = compute()
        self.put(session, client, key, value, cost)
        return value

    def drop_session(self, session: str) -> None:
        with self._lock:
            for k in [k for k in self._items if k[0] == session]:
                del self._items[k]

    # -- accounting ----------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(i.size for i in self._items.values())

    def client_total(self, client: str) -> int:
        with self._lock:
            return sum(i.size for i in self._items.values() if i.client == client)

    def __len__(self) -> int:
        return len(self._items)

    def _evict(self, client: str) -> None:
        """Called with the lock held, after an insert by ``client``."""
        now = time.monotonic()
        for k in [k for k, i in self._items.items() if now - i.stamp > self.ttl_s]:
            del self._items[k]
        mine = sum(i.size for i in self._items.values() if i.client == client)
        while mine > self.client_bytes and self._evict_one(lambda i: i.client == client, protect_newest=True):
            mine = sum(i.size for i in self._items.values() if i.client == client)
        total = sum(i.size for i in self._items.values())
        while total > self.budget_bytes and self._evict_one(lambda i: True, protect_newest=True):
            total = sum(i.size for i in self._items.values())

    def _evict_one(self, eligible: Callable[[_Item], bool], protect_newest: bool) -> bool:
        """Drop the least recently used eligible cheap item, else the least recently used eligible
        expensive one. The item just inserted (the newest) goes last of all."""
        keys = list(self._items)
        candidates = keys[:-1] if protect_newest and len(keys) > 1 else keys
        for cost in (CHEAP, EXPENSIVE):
            for k in candidates:
                item = self._items[k]
                if item.cost == cost and eligible(item):
                    del self._items[k]
                    self.evictions += 1
                    return True
        return False
