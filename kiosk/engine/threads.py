"""Background threads that give way to the screen.

On a 2-core kiosk the models' own thread pools (onnxruntime's for the voice and the embeddings,
CTranslate2's for recognition) can take both cores just when the visitor watches the screen, and the GUI
thread then waits its turn: stalls of 45-60 ms while a question was answered (``bench/ui.py``, idle
machine).  Those pools are started on the thread that loads the models and inherit its niceness, so the
loaders run a few steps nicer than the GUI thread, and so do the speech-cache prewarm and the telemetry
threads.  Threads that run Python for a turn (the turn, the listener, the stage watchdogs, the face
renderer) keep the normal priority: a nicer thread descheduled while it holds the GIL makes the GUI
thread wait longer, not shorter (measured: stalls of 96 ms under a concurrent load).  Audio playback
keeps the normal priority too: a late audio buffer is heard.
"""

from __future__ import annotations

import os
import threading

# how much nicer than the process a worker runs (Linux nice steps; 19 is the nicest)
WORKER_NICENESS = 5


def lower_priority(steps: int = WORKER_NICENESS) -> bool:
    """Make the calling thread ``steps`` nicer than the process's main thread (not nicer still when a worker
    starts a worker); False where the system does not allow it (no harm done)."""
    try:
        tid = threading.get_native_id()
        target = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + steps)
        if os.getpriority(os.PRIO_PROCESS, tid) < target:
            os.setpriority(os.PRIO_PROCESS, tid, target)
        return True
    except (OSError, AttributeError):  # not Linux, or not permitted
        return False


class WorkerThread(threading.Thread):
    """A ``threading.Thread`` that runs its target at a lower priority than the GUI thread."""

    def run(self) -> None:
        lower_priority()
        super().run()
