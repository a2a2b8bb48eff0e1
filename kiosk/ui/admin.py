"""The technician's side of the screen: the ops panel (built on first use), its admin actions behind the
PIN, and the worker threads that run the slow commands (reload, self-test, a session reset) off the GUI
thread and report back on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut

from kiosk.engine.commands import EngineCommands
from kiosk.engine.selftest import run_self_test
from kiosk.engine.threads import WorkerThread

if TYPE_CHECKING:
    from kiosk.ui.window import KioskWindow

log = logging.getLogger(__name__)

OPS_KEYS = ("F12", "Ctrl+Shift+O")
CORNER_HOLD_MS = 2000


def is_ops_key(event: QKeyEvent) -> bool:
    """F12 or Ctrl+Shift+O: open or close the ops panel."""
    if event.isAutoRepeat():
        return False
    wanted = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    return event.key() == Qt.Key.Key_F12 or (
        event.key() == Qt.Key.Key_O and (event.modifiers() & wanted) == wanted
    )


class Workers(QObject):
    """Runs work on daemon threads; ``done(ok, result)`` is called on the GUI thread afterwards."""

    _finished = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads: list[threading.Thread] = []
        self.closed = False
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def run(self, work: Callable[[], Any], done: Callable[[bool, Any], None] | None = None) -> threading.Thread:
        def body() -> None:
            try:
                payload = (done, True, work())
            except Exception as exc:
                log.exception("background work failed")
                payload = (done, False, exc)
            if not self.closed:
                self._finished.emit(payload)

        thread = WorkerThread(target=body, name="ui-work", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _deliver(self, payload: tuple) -> None:
        done, ok, result = payload
        if done is not None and not self.closed:
            done(ok, result)

    def wait(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)


class Admin:
    """Opens and closes the ops panel and carries out what it asks for."""

    def __init__(self, window: KioskWindow, engine: EngineCommands, workers: Workers) -> None:
        self.window = window
        self.engine = engine
        self.workers = workers
        self._panel: Any = None
        self.last_self_test: Any = None
        self.quit_requested = False  # the only way the window accepts a close

    def install_keys(self, corner: Any) -> None:
        """F12 / Ctrl+Shift+O (shortcuts where the platform routes them; the window's keyPressEvent
        otherwise) and a two-second press on the hot corner toggle the panel."""
        self.corner_timer = QTimer(self.window)
        self.corner_timer.setSingleShot(True)
        self.corner_timer.setInterval(CORNER_HOLD_MS)
        self.corner_timer.timeout.connect(self.toggle)
        corner.pressed.connect(self._corner_pressed)
        corner.released.connect(self.corner_timer.stop)
        self._shortcuts = []
        for keys in OPS_KEYS:
            shortcut = QShortcut(QKeySequence(keys), self.window)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            shortcut.activated.connect(self.toggle)
            self._shortcuts.append(shortcut)

    def _corner_pressed(self) -> None:
        self.window.note_activity()
        self.corner_timer.start()

    @property
    def built(self) -> bool:
        return self._panel is not None

    @property
    def panel(self) -> Any:
        if self._panel is None:
            from kiosk.ui.ops_panel import OpsPanel  # brings in pyqtgraph: only when first opened

            w = self.window
            ui = w.config.ui
            panel = OpsPanel(
                self.engine,
                w.resources,
                w.ops_model,
                ui.admin_pin,
                w.telemetry,
                w.started_at,
                w,
                lock_s=ui.panel_lock_s,
            )
            panel.close_requested.connect(self.close)
            panel.timed_out.connect(lambda: self.close(activity=False))
            panel.exit_requested.connect(self._exit)
            panel.reload_requested.connect(self._reload)
            panel.hands_free_requested.connect(w.set_hands_free)
            panel.self_test_requested.connect(self._self_test)
            panel.set_listening(w.model.microphone, w.model.hands_free)
            panel.set_metrics(w.layout_.metrics)
            panel.setGeometry(w.rect())
            self._panel = panel
        return self._panel

    def is_open(self) -> bool:
        return self._panel is not None and self._panel.isVisible()

    def toggle(self) -> None:
        if self.is_open():
            self.close()
        else:
            self.open()

    def open(self) -> None:
        self.panel.open()
        self.window.layout_.hot_corner.raise_()  # the same long press closes it

    def close(self, activity: bool = True) -> None:
        """``activity``: someone closed it (a touch on the screen); False when it closed itself, left
        untouched, which must not hold off the visitor's idle reset."""
        if self._panel is not None:
            self._panel.close_panel()
        if activity:
            self.window.model.touched()

    def _exit(self) -> None:
        log.warning("screen: exit requested from the ops panel")
        self.quit_requested = True
        self.window.exit_requested.emit()

    def _reload(self) -> None:
        self.panel.show_result("Reloading the exhibit pack…")

        def done(ok: bool, result: Any) -> None:
            if ok:
                exhibit = self.engine.exhibit
                self.window.exhibit_changed()
                self.panel.show_result(f"Reloaded {exhibit.title} ({len(exhibit.sections)} topics).")
            else:
                self.panel.show_result(f"Reload failed: {result}", ok=False)

        self.workers.run(self.engine.reload_exhibit, done)

    def _self_test(self) -> None:
        self.panel.self_test_button.setEnabled(False)
        self.panel.show_result("Self-test running…")

        def done(ok: bool, result: Any) -> None:
            self.panel.self_test_button.setEnabled(True)
            if ok:
                self.last_self_test = result
                self.panel.show_result(f"Self-test {result.summary}", ok=result.passed)
            else:
                self.panel.show_result(f"Self-test failed to run: {result}", ok=False)

        face = self.window.face
        self.workers.run(lambda: run_self_test(self.engine, lambda: face.frames_presented), done)
