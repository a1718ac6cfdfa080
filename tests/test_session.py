"""The per-session store: a byte budget for everyone, a share per client, cheap items evicted
before expensive ones, a time to live; and the Explorer keeping to its store's budget."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from explorer.explorer import Explorer, Settings, Who
from explorer.session import CHEAP, EXPENSIVE, SessionStore, nbytes

MB = 1024 * 1024


def blob(mb: float) -> np.ndarray:
    return np.zeros(int(mb * MB), dtype=np.uint8)


def test_sizes_are_counted_in_bytes() -> None:
    a = blob(1)
    assert nbytes(a) == pytest.approx(MB, abs=200)
    assert nbytes({"a": a, "b": [a, a]}) == pytest.approx(MB, abs=600), "a shared array counts once"
    assert nbytes((blob(1), blob(2))) == pytest.approx(3 * MB, abs=600)


def test_many_sessions_stay_within_the_budget() -> None:
    store = SessionStore(budget_bytes=20 * MB, client_share=0.5)
    for i in range(200):  # 200 readers from 40 addresses, 1 MB each
        store.put(f"s{i}", f"10.0.0.{i % 40}", ("explanation", i), blob(1))
        assert store.total_bytes <= 20 * MB
    assert 15 <= len(store) <= 20 and store.evictions >= 180
    assert store.get("s199", ("explanation", 199)) is not None, "the newest item is kept"
    assert store.get("s0", ("explanation", 0)) is None, "the least recently used went first"


def test_a_client_over_its_share_evicts_only_its_own_items() -> None:
    store = SessionStore(budget_bytes=40 * MB, client_share=0.25)  # 10 MB each
    for i in range(5):
        store.put(f"victim{i}", "192.0.2.1", "x", blob(1))
    for i in range(100):  # one address, many sessions (a script minting session hashes)
        store.put(f"greedy{i}", "198.51.100.7", "x", blob(1))
        assert store.client_total("198.51.100.7") <= 10 * MB
    assert all(store.get(f"victim{i}", "x") is not None for i in range(5)), "other clients keep everything"
    assert store.client_total("192.0.2.1") == pytest.approx(5 * MB, rel=0.01)


def test_cheap_items_are_evicted_before_expensive_ones() -> None:
    store = SessionStore(budget_bytes=10 * MB, client_share=1.0)
    store.put("s", "c", "faithfulness", blob(3), EXPENSIVE)  # oldest, yet kept
    store.put("s", "c", "explanation", blob(3), CHEAP)
    store.put("s", "c", "methods", blob(3), CHEAP)
    store.put("s", "c", "channels", blob(3), CHEAP)  # 12 MB > 10 MB: one cheap item must go
    assert store.get("s", "faithfulness") is not None
    assert store.get("s", "explanation") is None, "the least recently used cheap item goes"
    assert store.get("s", "methods") is not None and store.get("s", "channels") is not None
    # Only when no cheap item is left does an expensive one go (never the one just stored).
    store.put("s", "c", "scorecam", blob(9), EXPENSIVE)
    assert store.get("s", "scorecam") is not None and store.total_bytes <= 10 * MB
    assert store.get("s", "faithfulness") is None


def test_an_item_larger_than_a_share_is_served_not_kept() -> None:
    store = SessionStore(budget_bytes=8 * MB, client_share=0.25)
    calls: list[int] = []

    def compute() -> np.ndarray:
        calls.append(1)
        return blob(3)

    value = store.get_or_compute("s", "c", "big", compute)
    assert value.nbytes == 3 * MB and len(store) == 0
    store.get_or_compute("s", "c", "big", compute)
    assert len(calls) == 2


def test_get_or_compute_computes_once_and_keeps_recently_used_items() -> None:
    store = SessionStore(budget_bytes=3 * MB + 1000, client_share=1.0)
    calls: list[str] = []

    def compute(key: str) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            calls.append(key)
            return blob(1)

        return run

    for key in ("a", "b", "c"):
        store.get_or_compute("s", "c", key, compute(key))
    store.get_or_compute("s", "c", "a", compute("a"))  # a hit: "a" is now the most recently used
    store.put("s", "c", "d", blob(1))  # evicts "b", the least recently used
    assert calls == ["a", "b", "c"]
    assert store.get("s", "a") is not None and store.get("s", "b") is None


def test_items_older_than_the_time_to_live_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    import explorer.session

    now = [1000.0]
    monkeypatch.setattr(explorer.session.time, "monotonic", lambda: now[0])
    store = SessionStore(budget_bytes=10 * MB, client_share=1.0, ttl_s=60)
    store.put("s", "c", "old", blob(1))
    now[0] += 30
    assert store.get("s", "old") is not None  # a read refreshes it
    now[0] += 59
    store.put("s", "c", "new", blob(1))
    assert store.get("s", "old") is not None
    now[0] += 61
    assert store.get("s", "old") is None, "expired on read"
    store.put("other", "c2", "x", blob(1))  # an insert sweeps what expired
    assert store.total_bytes == pytest.approx(MB, abs=200)


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="budget_bytes must be positive"):
        SessionStore(0)
    with pytest.raises(ValueError, match="client_share in"):
        SessionStore(MB, client_share=1.5)


def test_concurrent_writers_keep_to_the_budget() -> None:
    store = SessionStore(budget_bytes=16 * MB, client_share=0.5)
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(60):
                store.put(f"s{t}-{i % 7}", f"client{t % 3}", i, blob(0.5))
                store.get(f"s{t}-{(i + 3) % 7}", i - 3)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and store.total_bytes <= 16 * MB
    assert all(store.client_total(f"client{c}") <= 8 * MB for c in range(3))


def test_the_explorer_keeps_to_its_store_s_budget(
    make_explorer: Callable[..., Explorer], photos: dict[str, Path]
) -> None:
    """Real explanations (2.8 MB each with the loaded image) from many sessions and one address."""
    store = SessionStore(budget_bytes=8 * MB, client_share=1.0)
    ex = make_explorer(store=store)
    for i in range(4):
        ex.explanation(Who(f"reader{i}", "203.0.113.9"), str(photos["teal"]), "conv3")
        assert 0 < store.total_bytes <= 8 * MB
    assert len(store) < 8, "some of the sessions' items were evicted"
    # An evicted explanation is simply computed again when its reader comes back.
    view = ex.main_view(Who("reader0", "203.0.113.9"), str(photos["teal"]), Settings())
    assert view.prediction and store.total_bytes <= 8 * MB
