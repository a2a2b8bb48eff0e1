"""Engine events into the GUI thread.

The engine calls its observers on worker threads and wants them back quickly.  The bridge's observer
only emits a Qt signal; the bridge lives on the GUI thread and its receivers are connected with
``Qt.QueuedConnection``, so every event reaches the widgets on the GUI thread, in publication order,
even when it was published from the GUI thread itself (``engine.ask`` publishes ``TurnStarted``
synchronously: a queued delivery keeps the handler from running inside that call).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal

from kiosk.engine import events as ev


class EventBridge(QObject):
    event = Signal(object)

    def __init__(self, bus: ev.EventBus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bus = bus
        self._unsubscribe: Callable[[], None] | None = bus.subscribe(self._observe)
        self._closed = False

    def connect_to(self, slot: Callable[[ev.Event], None]) -> None:
        self.event.connect(slot, Qt.ConnectionType.QueuedConnection)

    def _observe(self, event: ev.Event) -> None:
        if not self._closed:
            self.event.emit(event)

    def close(self) -> None:
        """Stop observing (before the bridge is destroyed: a worker must never emit into a dead object)."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
