"""Worker threads that never hold up quitting.

concurrent.futures.ThreadPoolExecutor joins its threads when the interpreter exits, so a request
hanging on an unresponsive daemon would keep dockerscope alive until its timeout after the user
pressed q. These threads are daemon threads: the process ends at once and takes them along.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

_Job = Callable[[], None]


class DaemonThreadPool:
    def __init__(self, workers: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{number}", daemon=True) for number in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def submit(self, function: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = function()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self._jobs.put(job)
        return future

    def shutdown(self) -> None:
        """Let idle threads end; a thread stuck in a request ends with the process."""
        for _ in self._threads:
            self._jobs.put(None)
