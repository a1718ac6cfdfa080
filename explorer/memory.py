"""Give memory that the app has freed back to the operating system.

glibc keeps what Python, NumPy and PyTorch free in its heaps for reuse, and with the threads of a web
server (one heap per thread, a mmap threshold that rises after the first large frees) a long-running
app's RSS climbs far above what it holds. Measured in one process serving P9's simulated readers
(`benchmarks/rows_memory.py`, 40 sessions, 4 at a time, the session store full at 320 MB):

* default: RSS 830 -> 2628 MB; after one ``malloc_trim(0)``, 775 MB: the rest was free memory;
* ``malloc_trim(0)`` every 2 s from a daemon thread (`start_trimming`): 824 MB, readers as fast;
* M_MMAP_THRESHOLD fixed at 1 MB: 793 MB, but the readers took 20% longer (a page fault for every
  large tensor); M_ARENA_MAX=2: 1721 MB.

Elsewhere than glibc (macOS, musl) there is no ``malloc_trim``; `start_trimming` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("cam.app")
TRIM_EVERY_S = 2.0
_started = threading.Event()


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def start_trimming(every_s: float = TRIM_EVERY_S) -> bool:
    """Start (once per process) a daemon thread that calls ``malloc_trim(0)`` every ``every_s``
    seconds. Returns whether trimming runs (False without glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    if _started.is_set():
        return True
    _started.set()

    def run() -> None:
        while True:
            time.sleep(every_s)
            trim(0)

    threading.Thread(target=run, name="malloc-trim", daemon=True).start()
    log.info("Returning freed memory to the OS every %.0f s (malloc_trim).", every_s)
    return True
