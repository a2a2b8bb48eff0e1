"""Worker threads give way to the GUI thread: they run nicer than the main thread, once, not compounded."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from kiosk.engine.threads import WORKER_NICENESS, WorkerThread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_a_worker_runs_nicer_than_the_main_thread_and_its_children_no_nicer() -> None:
    main = _nice()
    seen: dict[str, int] = {}

    def inner() -> None:
        seen["inner"] = _nice()

    def outer() -> None:
        seen["outer"] = _nice()
        child = WorkerThread(target=inner, name="inner")
        child.start()
        child.join()

    worker = WorkerThread(target=outer, name="outer")
    worker.start()
    worker.join()
    expected = min(19, main + WORKER_NICENESS)
    assert seen == {"outer": expected, "inner": expected}
    assert _nice() == main  # the GUI thread keeps its priority
