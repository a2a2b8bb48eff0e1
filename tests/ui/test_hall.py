"""What visitors noticed in the hall (issue #22): a spoken offer always has its button, chips stay put
under a finger, the keyboard types "Zürich" and "STS-114", the visitor's display choices leave with them,
and the screen does not jump when loading ends or when the typing hint appears."""

from __future__ import annotations

from PySide6.QtCore import Qt

from kiosk.engine import events as ev
from kiosk.ui.screen_model import OFFER_ACCEPTED


def test_an_honest_unknown_offers_the_nearest_topic_with_a_button(make_window, qtbot, events):
    """The guide said "I can tell you about size and design, if you like." with no button to accept it."""
    window = make_window()
    turn = window.ask("How much did it cost?")
    assert turn is not None
    qtbot.waitUntil(lambda: bool(events.finished()), timeout=40_000)
    qtbot.waitUntil(lambda: window.state == "idle", timeout=5_000)
    finished = events.finished()[0]
    assert finished.status == "unanswered" and finished.answer.endswith("if you like.")
    assert finished.offer and finished.answer.endswith(finished.offer)
    assert window.offer_button.isVisible()
    qtbot.mouseClick(window.offer_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(events.of(ev.TurnStarted)) == 2, timeout=5_000)
    assert ("visitor", OFFER_ACCEPTED) in window.model.entries()
    window.stop()
