"""Screenshots of every state in both orientations (artifacts/ui/), and the real app under Xvfb.

The offscreen screenshots replay a turn's events into the window over the real engine (the real
engine's turns are tested in test_turns.py); the Xvfb test starts ``python -m kiosk`` full screen on a
virtual display and photographs the root window.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.engine.audio_in import MemorySource
from kiosk.engine.pipeline import NOT_UNDERSTOOD_REPLY
from tests.conftest import silence
from tests.ui.conftest import ORIENTATIONS

STATES = (
    "attract",
    "listening",
    "thinking",
    "speaking",
    "offer",
    "not_understood",
    "still_there",
    "keyboard",
    "ops_panel",
    "pin_pad",
)
LAYOUTS = {
    **ORIENTATIONS,
    "portrait-large": ORIENTATIONS["portrait"],
    "landscape-large": ORIENTATIONS["landscape"],
}


def _save(window, folder: Path, number: int, state: str, orientation: str) -> Path:
    window.layout().activate()
    path = folder / f"{number:02d}-{state}-{orientation}.png"
    assert window.grab().save(str(path)), path
    return path


@pytest.mark.parametrize("orientation", list(LAYOUTS))
def test_screenshots_of_every_state(orientation, make_window, qtbot, loaded_engine, ui_artifacts):
    config = loaded_engine.config.replace(
        ui={"idle_reset_s": 1.0, "still_there_s": 10.0, "admin_pin": "2468"}, sampler={"interval_s": 0.1}
    )
    if orientation.endswith("-large"):
        config = config.replace(ui={"large_text": True})
    window = make_window(config, LAYOUTS[orientation], source_factory=lambda: MemorySource(silence(0.3)))
    qtbot.wait(400)  # the short silent source has been read: the microphone is live, and quiet
    assert window.mic_available
    exhibit = loaded_engine.exhibit
    crew = exhibit.section("crew")
    shots: dict[str, Path] = {}

    def shot(state: str) -> None:
        qtbot.wait(60)
        assert window.state == state or state in ("ops_panel", "pin_pad", "offer", "keyboard"), (
            state,
            window.state,
        )
        shots[state] = _save(window, ui_artifacts, len(shots) + 1, state, orientation)

    shot("attract")

    for rms in (0.02, 0.05, 0.09):
        window.handle_event(ev.InputLevel(rms=rms, speaking=True))
    shot("listening")

    window.handle_event(ev.TurnStarted(turn_id=9001, source="voice"))
    window.handle_event(ev.SpeechEnded(turn_id=9001, audio_seconds=1.6))
    window.handle_event(ev.Transcribed(turn_id=9001, text=crew.question, understood=True))
    shot("thinking")

    window.handle_event(ev.AnswerChosen(turn_id=9001, status="ok", topic="crew", emotion=Emotion.HAPPY))
    window.handle_event(ev.FirstAudio(turn_id=9001, latency_seconds=0.82))
    for index, sentence in enumerate(crew.sentences[:3]):
        window.handle_event(ev.SentenceStarted(turn_id=9001, index=index, text=sentence))
    shot("speaking")
    assert [text for who, text in window.model.entries()] == [crew.question, *crew.sentences[:3]]

    timings = {"vad_endpoint": 0.41, "asr": 0.47, "retrieval": 0.015, "tts_first_audio": 0.21}
    window.handle_event(
        ev.TurnFinished(
            turn_id=9001,
            status="ok",
            topic="crew",
            emotion=Emotion.HAPPY,
            first_audio_seconds=0.82,
            duration_seconds=9.5,
            timings=timings,
            question=crew.question,
            offer="Shall I tell you more about the crew's training?",
        )
    )
    assert window.offer_button.isVisible()
    shot("offer")
    window.handle_event(ev.TurnStarted(turn_id=9002, source="voice"))
    window.handle_event(ev.Transcribed(turn_id=9002, text="", understood=False))
    window.handle_event(
        ev.AnswerChosen(turn_id=9002, status="not_understood", topic=None, emotion=Emotion.NEUTRAL)
    )
    window.handle_event(ev.SentenceStarted(turn_id=9002, index=0, text=NOT_UNDERSTOOD_REPLY))
    shot("not_understood")

    window.handle_event(
        ev.TurnFinished(
            turn_id=9002,
            status="not_understood",
            topic=None,
            emotion=Emotion.NEUTRAL,
            first_audio_seconds=0.55,
            duration_seconds=3.1,
            timings={"vad_endpoint": 0.38, "asr": 0.31, "tts_first_audio": 0.12},
        )
    )
    qtbot.waitUntil(lambda: window.state == "still_there", timeout=6_000)
    qtbot.wait(1_200)  # the countdown has moved
    shot("still_there")

    qtbot.mouseClick(window.still_there, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.type_button, Qt.MouseButton.LeftButton)
    for key in "who":
        qtbot.mouseClick(window.keyboard.keys[key], Qt.MouseButton.LeftButton)
    shot("keyboard")
    qtbot.mouseClick(window.keyboard.keys["Close"], Qt.MouseButton.LeftButton)
    qtbot.keyClick(window, Qt.Key.Key_F12)
    qtbot.wait(1_000)  # a few samples for the sparklines
    window.ops_panel.refresh()
    shot("ops_panel")

    qtbot.mouseClick(window.ops_panel.exit_button, Qt.MouseButton.LeftButton)
    for key in "24":
        qtbot.mouseClick(window.ops_panel.pin_pad.keys[key], Qt.MouseButton.LeftButton)
    shot("pin_pad")

    assert list(shots) == list(STATES)
    for path in shots.values():
        with Image.open(path) as image:
            assert image.size == LAYOUTS[orientation]


# --- the real app on a virtual display ---------------------------------------------------------------------


def _free_display() -> int:
    for number in range(91, 200):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free X display number")


def _screenshot(display: int, path: Path, crop: str | None = None) -> Image.Image | None:
    command = ["import", "-display", f":{display}", "-window", "root"]
    if crop:
        command += ["-crop", crop]
    done = subprocess.run([*command, str(path)], capture_output=True, timeout=10)
    if done.returncode != 0 or not path.is_file():
        return None
    with Image.open(path) as image:
        return image.convert("RGB")


REAL_LAYOUTS = {
    "landscape": (1920, 1080, False),
    "portrait": (1080, 1920, False),
    "portrait-large": (1080, 1920, True),
}


@pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("import")), reason="needs Xvfb and imagemagick"
)
@pytest.mark.parametrize("layout", list(REAL_LAYOUTS))
def test_real_app_comes_up_full_screen_under_xvfb(layout, ui_artifacts, cache_dir, tmp_path):
    width, height, large = REAL_LAYOUTS[layout]
    display = _free_display()
    xvfb = subprocess.Popen(
        ["Xvfb", f":{display}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    app = None
    log_path = tmp_path / "kiosk.log"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # stands in for systemd's NOTIFY_SOCKET
    notify.bind(str(tmp_path / "notify.sock"))
    notify.setblocking(False)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{display}").exists():
            assert xvfb.poll() is None, "Xvfb exited"
            assert time.monotonic() < deadline, "Xvfb did not come up"
            time.sleep(0.05)
        env = {
            **os.environ,
            "DISPLAY": f":{display}",
            "QT_QPA_PLATFORM": "xcb",
            "KIOSK_AUDIO__INPUT": "none",
            "KIOSK_AUDIO__OUTPUT": "none",
            "KIOSK_METRICS__PORT": "0",
            "KIOSK_PATHS__CACHE_DIR": str(cache_dir),
            "DOCENT_CURSOR": "hide",
            "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
            "WATCHDOG_USEC": "1000000",  # WATCHDOG=1 every half second, from the GUI thread
            "KIOSK_UI__LARGE_TEXT": "true" if large else "false",
        }
        with log_path.open("wb") as log:
            started = time.monotonic()
            app = subprocess.Popen(
                [sys.executable, "-m", "kiosk", "-v"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            up_after = None
            probe = tmp_path / "probe.png"
            while time.monotonic() - started < 20:
                assert app.poll() is None, log_path.read_text(errors="replace")
                # a small corner of the root window: black until the kiosk's background is painted there
                image = _screenshot(display, probe, crop="160x160+0+0")
                if image is not None and image.convert("L").getextrema()[1] > 10:
                    up_after = time.monotonic() - started
                    break
                time.sleep(0.3)
            assert up_after is not None, "the window never appeared"
            first_frame = re.search(r"first frame ([\d.]+) s after", log_path.read_text(errors="replace"))
            assert first_frame, log_path.read_text(errors="replace")
            print(
                f"\nkiosk: first frame {float(first_frame.group(1)):.2f} s after the process started "
                f"(seen on the display after {up_after:.2f} s)"
            )
            assert float(first_frame.group(1)) < 3.0
            time.sleep(1.0)
            final = ui_artifacts / f"xvfb-fullscreen-{layout}-{width}x{height}.png"
            image = _screenshot(display, final)
            assert image is not None and image.size == (width, height)
            # full screen: the theme's background reaches every corner (an uncovered root window is black)
            for corner in ((2, 2), (width - 3, 2), (2, height - 3), (width - 3, height - 3)):
                assert sum(image.getpixel(corner)) > 0, corner
            assert app.poll() is None
            messages = _received(notify)
            assert any(m.startswith("READY=1") for m in messages), messages
            assert messages.count("WATCHDOG=1") >= 2, messages
    finally:
        if app is not None and app.poll() is None:
            _stop(app, timeout=25)
        _stop(xvfb, timeout=5)
        messages = _received(notify)
        notify.close()
    assert app.returncode == 0, log_path.read_text(errors="replace")
    assert "STOPPING=1" in messages


def _stop(process: subprocess.Popen, timeout: float) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages
