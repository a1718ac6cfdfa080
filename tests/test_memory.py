"""explorer.memory: the thread that hands freed memory back to the OS (P9 measures what it saves)."""

from __future__ import annotations

import threading

from explorer import memory


def test_trimming_starts_one_thread_per_process() -> None:
    assert memory.start_trimming(every_s=60) is True  # glibc, as on a Space
    assert memory.start_trimming() is True
    assert [t.name for t in threading.enumerate()].count("malloc-trim") == 1
    assert memory._malloc_trim() is not None
