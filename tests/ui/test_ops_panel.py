"""The technician's ops panel: opened by key or a long press, real numbers, and the PIN on admin actions."""

from __future__ import annotations

import re
import urllib.request

from PySide6.QtCore import QPoint, Qt

from kiosk.engine.audio_in import MemorySource
from tests.conftest import silence


def _has_gpu() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
        return count > 0
    except Exception:
        return False


def test_panel_opens_by_key_shows_real_numbers_and_the_endpoint(make_window, qtbot, loaded_engine):
    from kiosk.telemetry import Telemetry

    config = loaded_engine.config
    telemetry = Telemetry(config, loaded_engine.bus, loaded_engine.exhibit.topic_ids, loaded_engine.health)
    telemetry.start()
    try:
        # the telemetry's own sampler: the one the /metrics scrape reads
        window = make_window(telemetry=telemetry, resources=telemetry.sampler)
        panel = window.ops_panel
        assert not panel.isVisible()
        qtbot.keyClick(window, Qt.Key.Key_F12)
        assert panel.isVisible()

        with urllib.request.urlopen(f"{telemetry.server.url}/metrics", timeout=5) as response:
            assert response.status == 200
        qtbot.waitUntil(lambda: len(telemetry.sampler.history()) >= 2, timeout=5_000)
        qtbot.waitUntil(lambda: (telemetry.sampler.latest().cpu_percent or 0) > 0, timeout=8_000)
        panel.refresh()

        cpu = re.fullmatch(r"(\d+) %", panel.cpu.value.text())
        assert cpu, panel.cpu.value.text()
        memory = re.fullmatch(r"([\d.]+) (MiB|GiB)", panel.memory.value.text())
        assert memory and float(memory.group(1)) > 0, panel.memory.value.text()
        assert "of" in panel.memory.detail.text()  # system memory, used of total
        if _has_gpu():
            assert panel.gpu.value.text() != "no GPU"
        else:
            assert panel.gpu.value.text() == "no GPU"
        models = panel.models_body.text()
        assert "whisper" in models and "all-MiniLM-L6-v2" in models and "cpu" in models
        assert panel.endpoint.value.text() == f"{telemetry.server.url}/metrics"
        assert re.search(r"\b1 scrape served", panel.endpoint.detail.text()), panel.endpoint.detail.text()
        with urllib.request.urlopen(f"{telemetry.server.url}/metrics", timeout=5) as response:
            assert response.status == 200
        panel.refresh()
        assert re.search(r"\b2 scrapes served \(the last one within 1 s\)", panel.endpoint.detail.text())
        assert panel.frames.value.text().endswith("fps")

        qtbot.keyClick(
            window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        )
        assert not panel.isVisible()
    finally:
        telemetry.stop()


def test_long_press_in_the_top_left_corner_toggles_the_panel(make_window, qtbot):
    window = make_window()
    corner = window.hot_corner
    assert corner.geometry().topLeft().isNull() and corner.width() >= 100
    qtbot.mousePress(corner, Qt.MouseButton.LeftButton)
    qtbot.wait(600)
    qtbot.mouseRelease(corner, Qt.MouseButton.LeftButton)  # too short: nothing
    assert not window.ops_panel.isVisible()
    qtbot.mousePress(corner, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.ops_panel.isVisible, timeout=3_000)
    qtbot.mouseRelease(corner, Qt.MouseButton.LeftButton)
    # the same long press closes it again (the corner stays above the panel)
    qtbot.mousePress(corner, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.ops_panel.isVisible(), timeout=3_000)
    qtbot.mouseRelease(corner, Qt.MouseButton.LeftButton)
    # a long press anywhere else does nothing
    middle = QPoint(window.width() // 2, window.height() // 2)
    qtbot.mousePress(window, Qt.MouseButton.LeftButton, pos=middle)
    qtbot.wait(2_200)
    qtbot.mouseRelease(window, Qt.MouseButton.LeftButton, pos=middle)
    assert not window.ops_panel.isVisible()


def _type_pin(qtbot, pad, pin: str) -> None:
    for key in (*pin, "OK"):
        qtbot.mouseClick(pad.keys[key], Qt.MouseButton.LeftButton)


def test_the_pin_guards_admin_actions(make_window, qtbot, loaded_engine, monkeypatch):
    reloads: list[object] = []
    monkeypatch.setattr(loaded_engine, "reload_exhibit", lambda path=None: reloads.append(path))
    window = make_window(
        loaded_engine.config.replace(ui={"admin_pin": "2468"}),
        source_factory=lambda: MemorySource(silence(0.3)),
    )
    assert window.mic_available  # hands-free is a choice only with a microphone
    exits: list[bool] = []
    window.exit_requested.connect(lambda: exits.append(True))
    panel = window.ops_panel
    pad = panel.pin_pad
    window.admin.open()
    assert not panel.unlocked

    qtbot.mouseClick(panel.exit_button, Qt.MouseButton.LeftButton)
    assert pad.isVisible() and not exits
    _type_pin(qtbot, pad, "1111")
    assert pad.isVisible() and "Wrong PIN" in pad.message.text() and not exits
    qtbot.mouseClick(pad.cancel_button, Qt.MouseButton.LeftButton)
    assert not pad.isVisible() and not exits

    qtbot.mouseClick(panel.reload_button, Qt.MouseButton.LeftButton)
    assert pad.isVisible() and not reloads
    _type_pin(qtbot, pad, "2468")
    assert not pad.isVisible() and panel.unlocked
    qtbot.waitUntil(lambda: "Reloaded" in panel.admin_result.text(), timeout=5_000)
    assert reloads == [None]

    # unlocked until the panel closes: hands-free goes off and on without the PIN
    qtbot.mouseClick(panel.hands_free_button, Qt.MouseButton.LeftButton)
    assert not window.hands_free and loaded_engine.pipeline.hands_free is False
    assert window.talk_label.text() == "Hold to talk" or not window.mic_available
    qtbot.mouseClick(panel.hands_free_button, Qt.MouseButton.LeftButton)
    assert window.hands_free and loaded_engine.pipeline.hands_free is True

    window.admin.close()
    window.admin.open()
    assert not panel.unlocked
    qtbot.mouseClick(panel.exit_button, Qt.MouseButton.LeftButton)
    assert pad.isVisible() and not exits
    _type_pin(qtbot, pad, "2468")
    assert not exits and panel.exit_button.text() == "Really exit?"  # asked once more
    qtbot.mouseClick(panel.exit_button, Qt.MouseButton.LeftButton)
    assert exits == [True]


def test_self_test_speaks_hears_and_shows_the_face(make_window, qtbot, loaded_engine):
    window = make_window(loaded_engine.config.replace(ui={"admin_pin": "2468"}))  # no PIN: no self-test
    window.admin.open()
    qtbot.mouseClick(window.ops_panel.self_test_button, Qt.MouseButton.LeftButton)
    _type_pin(qtbot, window.ops_panel.pin_pad, "2468")
    assert not window.ops_panel.self_test_button.isEnabled()
    qtbot.waitUntil(lambda: window.ops_panel.self_test_button.isEnabled(), timeout=30_000)
    result = window.admin.last_self_test
    assert result.passed, result.lines
    assert any(line.startswith("ears: heard") for line in result.lines)
    assert "PASS" in window.ops_panel.admin_result.text()
