"""Always on: a window manager's close (Alt+F4) does not quit the kiosk, the program's own quit does, and
the shipped unit restarts the kiosk whatever its exit code, with a start limit and a GUI watchdog."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "systemd" / "docent-kiosk.service"

# Runs under Xvfb with the real xcb platform: sends the WM_DELETE_WINDOW message a window manager sends
# on Alt+F4 (through libX11, as a window manager would), then quits the way SIGTERM and the technician
# panel do. Prints what happened, one fact a line.
CLOSE_SCRIPT = r"""
import ctypes, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget
from kiosk.ui.close_guard import should_close

class Window(QWidget):
    def closeEvent(self, event):
        if should_close(event):
            super().closeEvent(event)

class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

class XEvent(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

def wm_close(window_id):
    x = ctypes.CDLL("libX11.so.6")
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XInternAtom.restype = ctypes.c_ulong
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x.XFlush.argtypes = [ctypes.c_void_p]
    display = x.XOpenDisplay(None)
    event = XEvent()
    event.xclient.type = 33  # ClientMessage
    event.xclient.window = window_id
    event.xclient.message_type = x.XInternAtom(display, b"WM_PROTOCOLS", 0)
    event.xclient.format = 32
    event.xclient.data[0] = x.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
    x.XSendEvent(display, window_id, 0, 0, ctypes.byref(event))
    x.XFlush(display)

app = QApplication(sys.argv)
window = Window()
window.resize(200, 200)
window.show()
QTimer.singleShot(300, lambda: wm_close(int(window.winId())))
QTimer.singleShot(1300, lambda: print("after alt-f4: visible" if window.isVisible() else "after alt-f4: closed", flush=True))
QTimer.singleShot(1400, app.quit)
QTimer.singleShot(4000, lambda: (print("quit was refused", flush=True), app.exit(3)))
code = app.exec()
print(f"exec returned {code}", flush=True)
"""


@pytest.fixture
def x_display() -> str:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (scripts/install.sh --test installs it)")
    display = f":{90 + os.getpid() % 500}"
    server = subprocess.Popen([xvfb, display, "-screen", "0", "640x480x24", "-nolisten", "tcp"])
    try:
        deadline = time.monotonic() + 10
        socket = Path(f"/tmp/.X11-unix/X{display[1:]}")
        while not socket.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.skip("Xvfb did not start")
            time.sleep(0.05)
        yield display
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_window_managers_close_is_ignored_and_the_programs_quit_is_obeyed(x_display: str) -> None:
    env = {**os.environ, "DISPLAY": x_display, "QT_QPA_PLATFORM": "xcb"}
    result = subprocess.run(
        [sys.executable, "-c", CLOSE_SCRIPT], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines == ["after alt-f4: visible", "exec returned 0"], result.stdout + result.stderr[-2000:]
    assert "close request from the window system was ignored" in result.stderr


def test_the_kiosk_window_quits_only_when_the_program_asks(make_window, qtbot) -> None:
    """A close the program did not ask for is ignored; after the quit path allows it (SIGTERM, the
    technician's exit: kiosk/ui/app.py), the window closes and stops its timers and threads."""
    window = make_window()
    assert not window.close() and window.isVisible()
    window.allow_close()
    assert window.close() and not window.isVisible()
    assert window._closed


# --- the unit -------------------------------------------------------------------------------------------


def unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values]}} of a systemd unit (keys may repeat, unlike in an INI file)."""
    found: dict[str, dict[str, list[str]]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(section, {}).setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_restarts_the_kiosk_whatever_its_exit_code() -> None:
    unit = unit_settings(UNIT.read_text())
    service = unit["Service"]
    assert service["Restart"] == ["always"]  # on-failure left a black screen after an exit 0
    assert "RestartPreventExitStatus" not in service and "SuccessExitStatus" not in service
    assert 1 <= int(service["RestartSec"][0]) <= 10
    # a start limit, so a kiosk that cannot start at all stops trying instead of looping for ever
    assert int(unit["Unit"]["StartLimitIntervalSec"][0]) >= 60
    assert 3 <= int(unit["Unit"]["StartLimitBurst"][0]) <= 20
    # the watchdog: the GUI thread pings it (kiosk/ui/app.py), so a frozen GUI is killed and restarted
    assert service["Type"] == ["notify"] and int(service["WatchdogSec"][0]) <= 60
