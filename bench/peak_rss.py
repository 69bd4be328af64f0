"""Peak RSS of this process while a block runs, shared by the benchmarks (run as ``python bench/<name>.py``,
so this folder is on ``sys.path``)."""

from __future__ import annotations

import threading
import time


class PeakRss:
    """Samples this process's RSS every 20 ms (ru_maxrss cannot be reset after imports)."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self.base = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
