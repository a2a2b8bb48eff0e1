"""The technician panel is safe to find: a visitor's long press on the corner, without a PIN, shows
figures only; with a PIN, exit asks twice; the panel closes itself when left; the visitor's conversation
is forgotten on idle even while it is open; and its words are a technician's, not class names."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton

from kiosk.engine import events as ev
from kiosk.telemetry.sampler import GpuSnapshot, GpuUnavailable, ResourceSampler
from tests.ui.conftest import chip

QUESTION = "Who flew on Apollo 11?"


def _long_press_corner(window, qtbot) -> None:
    """What a visitor can do: hold the top-left corner until the panel opens."""
    corner = window.hot_corner
    qtbot.mousePress(corner, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.ops_panel.isVisible, timeout=4_000)
    qtbot.mouseRelease(corner, Qt.MouseButton.LeftButton)


def _buttons_shown(panel) -> list[str]:
    return [b.text() for b in panel.findChildren(QPushButton) if b.isVisibleTo(panel) and b.isEnabled()]


def _type_pin(qtbot, pad, pin: str) -> None:
    for key in (*pin, "OK"):
        qtbot.mouseClick(pad.keys[key], Qt.MouseButton.LeftButton)


def _texts(panel) -> str:
    return "\n".join(label.text() for label in panel.findChildren(QLabel))


def _shot(window, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    assert window.grab().save(str(path)), path
    with Image.open(path) as image:
        assert image.size == (window.width(), window.height())
    return path


def test_without_a_pin_a_visitor_finds_figures_only(make_window, qtbot, loaded_engine, ui_artifacts):
    assert loaded_engine.config.ui.admin_pin == ""  # the shipped default
    window = make_window()
    exits: list[bool] = []
    window.exit_requested.connect(lambda: exits.append(True))
    _long_press_corner(window, qtbot)
    panel = window.ops_panel
    panel.refresh()

    # nothing to tap but Close: no exit, no reload, no self-test, no listening switch
    assert _buttons_shown(panel) == ["Close  ✕"], _buttons_shown(panel)
    for button in (panel.exit_button, panel.reload_button, panel.self_test_button, panel.hands_free_button):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # even a tap that reached one does nothing
    assert not exits and not panel.pin_pad.isVisible()
    assert "admin_pin" in panel.admin.detail.text() and "KIOSK_UI__ADMIN_PIN" in panel.admin.detail.text()
    assert panel.cpu.value.text().endswith("%")  # the figures are there
    _shot(window, ui_artifacts, "ops_panel_no_pin_figures_only")


def test_with_a_pin_a_wrong_pin_is_refused_and_exit_asks_again(
    make_window, qtbot, loaded_engine, ui_artifacts
):
    window = make_window(loaded_engine.config.replace(ui={"admin_pin": "2468"}))
    exits: list[bool] = []
    window.exit_requested.connect(lambda: exits.append(True))
    _long_press_corner(window, qtbot)
    panel, pad = window.ops_panel, window.ops_panel.pin_pad
    assert "Exit kiosk" in _buttons_shown(panel) and not panel.unlocked
    panel.refresh()
    _shot(window, ui_artifacts, "ops_panel_locked")

    qtbot.mouseClick(panel.exit_button, Qt.MouseButton.LeftButton)
    assert pad.isVisible()
    _type_pin(qtbot, pad, "1357")
    assert pad.isVisible() and "Wrong PIN" in pad.message.text() and not panel.unlocked and not exits
    _type_pin(qtbot, pad, "2468")
    assert not pad.isVisible() and panel.unlocked
    # the right PIN does not quit: it asks, beside a Cancel, and the screen keeps running meanwhile
    assert not exits and panel.exit_button.text() == "Really exit?" and panel.exit_cancel_button.isVisible()
    frames = window.face.frames_presented
    qtbot.wait(500)
    assert window.face.frames_presented > frames  # not a modal dialog: the GUI thread paints on
    qtbot.mouseClick(panel.exit_cancel_button, Qt.MouseButton.LeftButton)
    assert not exits and panel.exit_button.text() == "Exit kiosk" and not panel.exit_cancel_button.isVisible()

    qtbot.mouseClick(panel.exit_button, Qt.MouseButton.LeftButton)  # unlocked: no PIN, but still asked
    assert not pad.isVisible() and not exits and panel.exit_button.text() == "Really exit?"
    qtbot.mouseClick(panel.exit_button, Qt.MouseButton.LeftButton)
    assert exits == [True]


def test_the_panel_closes_and_locks_itself_when_left_untouched(make_window, qtbot, loaded_engine):
    window = make_window(loaded_engine.config.replace(ui={"admin_pin": "2468", "panel_lock_s": 2.0}))
    exits: list[bool] = []
    window.exit_requested.connect(lambda: exits.append(True))
    _long_press_corner(window, qtbot)
    panel, pad = window.ops_panel, window.ops_panel.pin_pad
    qtbot.mouseClick(panel.exit_button, Qt.MouseButton.LeftButton)
    _type_pin(qtbot, pad, "2468")
    assert panel.unlocked and panel.exit_button.text() == "Really exit?"

    # each touch starts the wait again
    for _ in range(2):
        qtbot.wait(1_200)
        assert panel.isVisible()
        qtbot.mousePress(panel.cpu, Qt.MouseButton.LeftButton)
        qtbot.mouseRelease(panel.cpu, Qt.MouseButton.LeftButton)
    # left alone: it closes, locked, and nothing was done
    qtbot.waitUntil(lambda: not panel.isVisible(), timeout=6_000)
    assert not panel.unlocked and not exits

    window.admin.open()
    assert panel.exit_button.text() == "Exit kiosk"
    qtbot.mouseClick(panel.exit_button, Qt.MouseButton.LeftButton)
    assert pad.isVisible() and not exits  # the PIN again


def test_the_conversation_is_forgotten_on_idle_while_the_panel_is_open(
    make_window, qtbot, events, loaded_engine
):
    config = loaded_engine.config.replace(ui={"idle_reset_s": 0.5, "still_there_s": 0.5, "admin_pin": "2468"})
    window = make_window(config)
    qtbot.mouseClick(chip(window, QUESTION), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(events.of(ev.SentenceStarted)), timeout=20_000)
    window.stop()
    assert window.model.entries()
    window.admin.open()  # the visitor walks off with the technician panel open
    assert window.ops_panel.isVisible()

    qtbot.waitUntil(lambda: window.state == "attract", timeout=6_000)
    assert window.model.entries() == []
    qtbot.waitUntil(lambda: bool(events.of(ev.SessionEnded)), timeout=3_000)  # the engine forgot it too
    assert window.ops_panel.isVisible()  # the panel itself is left to its own time-out


class NoGpu:
    """The GPU reader of a machine without an NVIDIA driver (the hardware edge the sampler reads)."""

    def read(self) -> tuple[GpuSnapshot, ...]:
        raise GpuUnavailable("NVML Shared Library Not Found")


def test_on_a_machine_without_a_gpu_the_panel_says_so_in_one_line(make_window, qtbot, ui_artifacts):
    sampler = ResourceSampler(interval_s=0.2, history=60, gpu_reader=NoGpu())
    try:
        window = make_window(resources=sampler)
        window.admin.open()
        panel = window.ops_panel
        qtbot.waitUntil(lambda: len(sampler.history()) >= 3, timeout=5_000)
        panel.refresh()
        qtbot.wait(100)

        gpu = panel.gpu
        assert gpu.detail.text() == "GPU: none · the models run on the processor"
        assert gpu.isVisible() and not gpu.title.isVisible() and not gpu.spark.isVisible()
        line = gpu.detail.fontMetrics().lineSpacing()
        assert gpu.height() < 4 * line, (gpu.height(), line)  # one short line, not half the screen
        assert panel.frames.width() > 1.5 * panel.cpu.width()  # the face's frames take the room it left

        # a technician's words, not the code's class names
        text = _texts(panel)
        assert "FaceAnimator" not in text and "animated: the " in panel.frames.detail.text()
        _shot(window, ui_artifacts, "ops_panel_no_gpu")
    finally:
        sampler.stop()


def test_without_a_microphone_no_recogniser_loads_and_the_panel_says_why(qtbot, base_config, loaded_engine):
    """``[audio] input = "none"`` (the test config's): the screen app's engine loads no recogniser, is
    not degraded for it, and the panel says the microphone is off instead of listing a broken stage."""
    from kiosk.engine.audio_out import NullSink
    from kiosk.engine.engine import Engine
    from kiosk.engine.selftest import run_self_test
    from kiosk.ui.window import KioskWindow

    assert base_config.audio.input == "none"
    engine = Engine(base_config, sink=NullSink(realtime=True), ears=False)  # what kiosk/ui/app.py builds
    try:
        engine.load()
        assert engine.stages.get("asr") is None and "asr" not in engine.models and not engine.failures
        assert "asr" not in engine.health() and all(engine.health().values())  # /healthz: ok
        result = run_self_test(engine)
        assert result.passed and "ears: not checked (the microphone is off)" in result.lines, result.lines

        window = KioskWindow(engine, base_config)
        qtbot.addWidget(window)
        window.resize(1080, 1920)
        window.show()
        window.admin.open()
        window.ops_panel.refresh()
        models = window.ops_panel.models_body.text()
        assert 'speech recognition</td><td colspan="4"' in models
        assert "not loaded: the microphone is off ([audio] input = &quot;none&quot;)" in models
        assert "failed" not in models
        assert not window.model.notice_text()  # the visitor sees no "cannot hear you" notice either
        window.shutdown()
    finally:
        engine.close()
    asr = loaded_engine.models["asr"]  # what this saved, as the session's engine measured it
    print(
        f"\nrecogniser not loaded: {asr.name}, {asr.memory_bytes / 2**20:.0f} MiB, {asr.load_seconds:.2f} s"
    )
