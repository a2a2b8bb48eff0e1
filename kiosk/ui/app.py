"""``kiosk`` (no sub-command): the full-screen app.

The window comes up first (the attract screen, within a second or two); the models load behind it
(``engine.load_async``) with a progress line; the face animator is built on its own thread; telemetry
serves ``/metrics``; systemd hears READY=1 once the window is up and WATCHDOG=1 from a timer on the GUI
thread, so a frozen screen stops the pings and systemd restarts the kiosk.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from typing import Any

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6.QtCore import QObject, Qt, QTimer, Signal  # noqa: E402
from PySide6.QtGui import QCursor, QGuiApplication, QInputDevice  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from kiosk import systemd  # noqa: E402
from kiosk.config import Config  # noqa: E402
from kiosk.errors import KioskError  # noqa: E402
from kiosk.ui import theme  # noqa: E402
from kiosk.ui.face_view import make_animator  # noqa: E402
from kiosk.ui.resources import resource_source  # noqa: E402
from kiosk.ui.window import KioskWindow  # noqa: E402

log = logging.getLogger(__name__)

LOADER_GRACE_S = 2.0  # on exit, how long to let a model that is loading finish


class _Relay(QObject):
    """Carries results from worker threads to the GUI thread (queued)."""

    animator = Signal(object, str)


def start_telemetry(config: Config, engine: Any) -> Any:
    """The Telemetry facade, started; None when disabled, not installed, or it cannot start."""
    if not config.metrics.enabled:
        return None
    try:
        from kiosk.telemetry import Telemetry
    except ImportError as exc:
        log.warning("telemetry is not available (%s): no /metrics", exc)
        return None
    try:
        telemetry = Telemetry(config, engine.bus, engine.exhibit.topic_ids, engine.health)
        telemetry.start()
    except KioskError as exc:
        log.error("telemetry: %s; the kiosk runs on without it", exc)
        return None
    server = getattr(telemetry, "server", None)
    if server is not None and getattr(server, "running", False):
        log.warning("metrics: %s/metrics", server.url)
    return telemetry


def _since_process_start() -> float:
    import time

    import psutil

    return time.time() - psutil.Process().create_time()


def settle_heap() -> None:
    """Once the models are loaded: collect, then freeze what is alive.

    torch and transformers leave millions of long-lived objects; a full collection walking them takes
    about 0.3 s on a small CPU, holding the GIL, so the screen would freeze now and then.  Frozen objects
    are never walked again; this one collection happens while the attract screen is up.
    """
    gc.collect()
    gc.freeze()


def hide_cursor_wanted(choice: str, windowed: bool) -> bool:
    """``[ui] cursor``: hide, show, or auto (hidden full screen when a touch screen is attached)."""
    if choice == "hide":
        return True
    if choice == "show" or windowed:
        return False
    try:
        return any(d.type() == QInputDevice.DeviceType.TouchScreen for d in QInputDevice.devices())
    except Exception:
        return False


def run_app(config: Config, windowed: bool = False) -> int:
    log.info("screen: starting %.2f s after the process started", _since_process_start())
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "kiosk"])
    app.setApplicationName("Docent")
    app.setApplicationDisplayName("Docent")
    app.setFont(theme.font(theme.SANS, 24))

    from kiosk.engine.engine import Engine, make_source

    engine = Engine(config)
    telemetry = start_telemetry(config, engine)
    resources = resource_source(telemetry, config.sampler.interval_s, config.sampler.history)
    window = KioskWindow(
        engine,
        config,
        telemetry=telemetry,
        resources=resources,
        animator=None,
        animator_reason="face: loading",
        source_factory=lambda: make_source(config),
    )
    window.exit_requested.connect(app.quit)
    window.first_painted.connect(
        lambda: log.info("screen: first frame %.2f s after the process started", _since_process_start())
    )
    if windowed:
        screen = QGuiApplication.primaryScreen().availableGeometry()
        scale = min(1.0, 0.9 * screen.height() / 1920, 0.9 * screen.width() / 1080)
        window.resize(int(1080 * scale), int(1920 * scale))
        window.show()
    else:
        window.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
        window.setGeometry(QGuiApplication.primaryScreen().geometry())  # also without a window manager
        window.showFullScreen()
    if hide_cursor_wanted(config.ui.cursor, windowed):
        app.setOverrideCursor(QCursor(Qt.CursorShape.BlankCursor))

    relay = _Relay()
    if not hasattr(engine, "face"):  # an engine that does not load the face itself: build it here
        relay.animator.connect(window.set_animator, Qt.ConnectionType.QueuedConnection)
        threading.Thread(
            target=lambda: relay.animator.emit(*make_animator(engine)), name="face-loader", daemon=True
        ).start()

    def engine_ready(status: str) -> None:
        settle_heap()
        systemd.status(f"{engine.exhibit.id}: {status}")
        if telemetry is not None:
            try:
                telemetry.set_build_info(engine)
            except Exception:
                log.exception("telemetry build info")

    window.ready_changed.connect(engine_ready)

    loader: list[threading.Thread] = []

    def after_shown() -> None:
        loader.append(engine.load_async())
        systemd.ready(f"{engine.exhibit.id}: screen up, loading models")
        systemd.watchdog()

    QTimer.singleShot(0, after_shown)
    watchdog = QTimer()
    watchdog.setInterval(int(systemd.watchdog_interval_s() * 1000))
    watchdog.timeout.connect(systemd.watchdog)
    watchdog.start()

    previous = {sig: signal.signal(sig, lambda *_: app.quit()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        app.exec()
    finally:
        systemd.stopping()
        watchdog.stop()
        window.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if telemetry is not None:
            telemetry.stop()
        resources.stop()
        if loader and loader[0].is_alive():
            loader[0].join(LOADER_GRACE_S)
        if loader and loader[0].is_alive():
            # A model is still being built in native code (onnxruntime, torch): finalising the interpreter
            # under it aborts the process. Leave at once instead; the OS frees everything.
            log.warning("exiting while the models are still loading")
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        engine.close()
    return 0
