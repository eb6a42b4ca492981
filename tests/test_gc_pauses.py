"""Pauses of the garbage collector that overlap, as layer reads and list decodes in several worker
threads make them: the collector is off while any runs and on again once all have ended."""

from __future__ import annotations

import gc
import threading

from dockerscope.service.layer_files import gc_paused


def test_the_collector_stays_off_until_the_last_of_overlapping_pauses_ends() -> None:
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second pause still runs
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_many_pauses_in_threads_leave_the_collector_on() -> None:
    def pause_often() -> None:
        for _ in range(2000):
            with gc_paused():
                pass

    threads = [threading.Thread(target=pause_often) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
