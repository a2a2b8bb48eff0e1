"""``kiosk`` (no sub-command): the full-screen app.

The window comes up first (the attract screen, within a second or two); the models load behind it
(``engine.load_async``) with a progress line; :func:`kiosk.compose.compose` builds the engine, telemetry
(``/metrics``) and the resource sampler; systemd hears READY=1 once the window is up and WATCHDOG=1 from a timer on the GUI
thread, so a frozen screen stops the pings and systemd restarts the kiosk.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QCursor, QGuiApplication, QInputDevice  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from kiosk import systemd  # noqa: E402
from kiosk.config import Config  # noqa: E402
from kiosk.ui import theme  # noqa: E402
from kiosk.ui.window import KioskWindow  # noqa: E402

log = logging.getLogger(__name__)

LOADER_GRACE_S = 2.0  # on exit, how long to let a model that is loading finish


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

    from kiosk.compose import compose
    from kiosk.engine.audio_in import make_source

    kiosk = compose(config, ears=config.audio.input != "none")  # no microphone: no recogniser to load
    kiosk.start()
    engine, telemetry = kiosk.engine, kiosk.telemetry
    window = KioskWindow(
        engine,
        config,
        telemetry=telemetry,
        resources=kiosk.resources,
        source_factory=lambda: make_source(config),
        started_at=kiosk.started_at,
    )
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

    def quit_app(*_: object) -> None:
        window.allow_close()  # the window ignores every other close request
        app.quit()

    window.exit_requested.connect(quit_app)
    # SIGHUP quits as SIGTERM does (unhandled it killed the kiosk mid-answer); Restart=always starts it again
    previous = {sig: signal.signal(sig, quit_app) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
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
        kiosk.resources.stop()
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
