"""Fixtures for the screen's tests: the kiosk window over the session's real, loaded engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk.config import Config
from kiosk.engine.engine import Engine
from tests.conftest import Recorder

PORTRAIT = (1080, 1920)
LANDSCAPE = (1920, 1080)
ORIENTATIONS = {"portrait": PORTRAIT, "landscape": LANDSCAPE}


@pytest.fixture(scope="session")
def ui_artifacts(artifacts: Path) -> Path:
    folder = artifacts / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def events(loaded_engine: Engine) -> Iterator[Recorder]:
    """Every event the engine publishes during the test."""
    recorder = Recorder()
    unsubscribe = loaded_engine.bus.subscribe(recorder)
    yield recorder
    unsubscribe()


@pytest.fixture
def make_window(qtbot, loaded_engine: Engine) -> Iterator[Callable[..., object]]:
    """``make_window(config=None, size=PORTRAIT, **kwargs)``: a shown KioskWindow over the real engine.

    At the end the window stops observing, the answer in progress is stopped and the engine's session is
    reset, so the next test starts from a quiet engine.
    """
    from kiosk.ui.window import KioskWindow

    made: list[KioskWindow] = []

    def make(config: Config | None = None, size: tuple[int, int] = PORTRAIT, **kwargs) -> KioskWindow:
        window = KioskWindow(loaded_engine, config or loaded_engine.config, **kwargs)
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        made.append(window)
        return window

    yield make
    for window in made:
        window.shutdown()
        window.workers.wait(timeout=30)
    # the window ignores close requests (a visitor cannot close it), so qtbot's close leaves it alive with
    # its application-wide F12 shortcut: later windows' F12 would be ambiguous. Delete it for good.
    from PySide6.QtCore import QCoreApplication, QEvent

    for window in made:
        window.hide()
        window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    loaded_engine.stop()
    assert loaded_engine.pipeline is not None
    loaded_engine.pipeline.wait_idle(timeout=10)
    loaded_engine.reset_session()


def chip(window, question: str):
    """The suggested-question button for ``question`` (its text may be elided on a narrow screen)."""
    for button in window.chips.buttons:
        if button.toolTip() == question:
            return button
    raise AssertionError(f"no chip for {question!r}: {[b.toolTip() for b in window.chips.buttons]}")
