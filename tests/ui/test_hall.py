"""What visitors noticed in the hall (issue #22): a spoken offer always has its button, chips stay put
under a finger, the keyboard types "Zürich" and "STS-114", the visitor's display choices leave with them,
and the screen does not jump when loading ends or when the typing hint appears."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QLabel

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.ui.keyboard import ACCENTS
from kiosk.ui.screen_model import OFFER_ACCEPTED
from tests.ui.conftest import ORIENTATIONS


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


def _chip_places(window) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Each shown chip's question and where it is on the window."""
    places = []
    for button in window.chips.shown:
        top_left = button.mapTo(window, button.rect().topLeft())
        places.append((button.question, (top_left.x(), top_left.y(), button.width(), button.height())))
    return places


def test_the_chips_stay_put_after_an_answer_until_the_screen_is_quiet(
    make_window, qtbot, events, loaded_engine
):
    """After every answer the answered chip left at once and the rest moved up under a reaching finger."""
    window = make_window(loaded_engine.config.replace(ui={"chips_settle_s": 2.0}))
    asked = window.chips.shown[0].question
    qtbot.mouseClick(window.chips.shown[0], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state == "speaking", timeout=20_000)
    during = _chip_places(window)
    qtbot.waitUntil(lambda: bool(events.finished()), timeout=40_000)
    qtbot.waitUntil(lambda: window.state == "idle", timeout=5_000)
    qtbot.wait(300)  # the screen renders the turn's end
    assert _chip_places(window) == during  # the answer ended: a finger on its way finds its chip
    qtbot.mousePress(window.chips.shown[1], Qt.MouseButton.LeftButton)  # a finger comes down...
    qtbot.wait(1_500)
    assert _chip_places(window) == during  # ...and the chip under it stays what it was
    qtbot.mouseRelease(window.chips.shown[1], Qt.MouseButton.LeftButton)
    window.stop()
    qtbot.waitUntil(lambda: asked not in [q for q, _ in _chip_places(window)], timeout=5_000)


def test_the_attract_rotation_waits_for_the_screen_to_be_quiet(make_window, qtbot, loaded_engine):
    window = make_window(loaded_engine.config.replace(ui={"attract_interval_s": 1.0, "chips_settle_s": 2.5}))
    qtbot.wait(300)  # the first layout settles
    first = _chip_places(window)
    for _ in range(4):  # a visitor taps the background now and then, within the settle time
        qtbot.wait(700)
        qtbot.mouseClick(window, Qt.MouseButton.LeftButton, pos=window.rect().center())
        assert _chip_places(window) == first
    qtbot.waitUntil(lambda: _chip_places(window) != first, timeout=6_000)


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_the_keyboard_types_accented_names_and_codes(orientation, large, make_window, qtbot, events):
    """A visitor could not type "Zürich" or "STS-114": no accented letters, no hyphen."""
    window = make_window(size=ORIENTATIONS[orientation])
    window.set_large_text(large)
    try:
        qtbot.mouseClick(window.type_button, Qt.MouseButton.LeftButton)
        keyboard = window.keyboard
        for char in "Z":
            qtbot.mouseClick(keyboard.key_for(char.lower()), Qt.MouseButton.LeftButton)
        qtbot.mouseClick(keyboard.keys[ACCENTS], Qt.MouseButton.LeftButton)
        umlaut = keyboard.key_for("ü")
        assert umlaut.text() == "ü"  # the letter keys show the accented letters...
        qtbot.mouseClick(umlaut, Qt.MouseButton.LeftButton)
        assert keyboard.key_for("r").text() == "r"  # ...for one letter
        for char in "rich STS-114":
            key = keyboard.keys["space"] if char == " " else keyboard.key_for(char.lower())
            if char.isupper() != keyboard.shift:
                qtbot.mouseClick(keyboard.keys["⇧"], Qt.MouseButton.LeftButton)
            qtbot.mouseClick(key, Qt.MouseButton.LeftButton)
        assert keyboard.text == "Zürich STS-114"
        edge = keyboard.rect()
        for button in keyboard.keys.values():  # every key is whole on the keyboard, its label inside it
            place = button.geometry()
            assert edge.contains(place) and button.width() >= button.fontMetrics().horizontalAdvance(
                button.text()
            )
        qtbot.mouseClick(keyboard.keys["Ask"], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(events.of(ev.TurnStarted)), timeout=5_000)
        assert ("visitor", "Zürich STS-114") in window.model.entries()
        window.stop()
    finally:
        window.set_large_text(False)


def test_larger_text_and_high_contrast_leave_with_the_visitor(make_window, qtbot, events, loaded_engine):
    """The next visitor found the last one's Larger text and High contrast still on."""
    config = loaded_engine.config.replace(ui={"idle_reset_s": 0.5, "still_there_s": 0.5, "large_text": True})
    window = make_window(config)
    title_px = window.title.fontInfo().pixelSize()
    background = window.grab().toImage().pixelColor(5, window.height() // 2).name()
    try:
        qtbot.mouseClick(window.text_button, Qt.MouseButton.LeftButton)  # this visitor wants it smaller...
        qtbot.mouseClick(window.contrast_button, Qt.MouseButton.LeftButton)  # ...and in high contrast
        assert not window.large_text and window.high_contrast
        assert window.title.fontInfo().pixelSize() < title_px
        window.ask("Who flew on Apollo 11?")
        qtbot.waitUntil(lambda: bool(events.of(ev.SentenceStarted)), timeout=20_000)
        window.stop()
        qtbot.waitUntil(lambda: window.state == "still_there", timeout=5_000)
        assert window.high_contrast  # still their screen while they may come back
        qtbot.waitUntil(lambda: window.state == "attract", timeout=5_000)
        qtbot.wait(100)
        assert window.large_text and not window.high_contrast  # as the kiosk is configured
        assert window.text_button.isChecked() and not window.contrast_button.isChecked()
        assert window.title.fontInfo().pixelSize() == title_px
        assert window.grab().toImage().pixelColor(5, window.height() // 2).name() == background
    finally:
        window.set_high_contrast(False)


TITLE_40 = "The Harrison Marine Chronometer H4, 1759"  # 40 characters, and the pack gives only its title
NOTES = """# H4

## The clock
John Harrison built the H4 watch in London. It kept time at sea within seconds a day.

## The prize
The Board of Longitude paid him in 1773.
"""


@pytest.fixture
def title_only_pack(tmp_path, loaded_engine):
    folder = tmp_path / "h4"
    folder.mkdir()
    (folder / "exhibit.toml").write_text(f'title = "{TITLE_40}"\n', encoding="utf-8")
    (folder / "notes.md").write_text(NOTES, encoding="utf-8")
    previous = loaded_engine.exhibit.folder
    loaded_engine.reload_exhibit(folder)
    yield loaded_engine.exhibit
    loaded_engine.reload_exhibit(previous)


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_a_long_title_is_shown_once_on_the_attract_screen(title_only_pack, orientation, make_window, qtbot):
    """A 40-character title stood in the header, the status line and the greeting below them."""
    window = make_window(size=ORIENTATIONS[orientation])
    qtbot.wait(100)
    texts = [
        w.text() for w in window.findChildren(QLabel) + window.findChildren(QAbstractButton) if w.isVisible()
    ]
    texts += window.captions.visible_texts()
    assert sum(TITLE_40 in text for text in texts) == 1, texts
    assert window.title.text() == TITLE_40
    # the drawn host presents a pack without a portrait: the title is what to ask about, not the host's name
    assert window.findChild(QLabel, "Subtitle").text() == "ASK ME ABOUT"


def _tops(window) -> dict[str, int]:
    return {
        name: getattr(window, name).mapTo(window, getattr(window, name).rect().topLeft()).y()
        for name in ("face", "captions", "chips")
    }


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_the_words_do_not_jump_when_the_answer_ends(orientation, large, make_window, qtbot, loaded_engine):
    """The captions jumped 57 px down when "Tap or type another question." came back after an answer."""
    window = make_window(size=ORIENTATIONS[orientation])
    window.set_large_text(large)
    try:
        crew = loaded_engine.exhibit.section("crew")
        window.handle_event(ev.TurnStarted(turn_id=9301, source="text"))
        window.handle_event(ev.Transcribed(turn_id=9301, text=crew.question, understood=True))
        window.handle_event(ev.SentenceStarted(turn_id=9301, index=0, text=crew.sentences[0]))
        qtbot.wait(100)
        speaking = _tops(window)
        window.handle_event(
            ev.TurnFinished(
                turn_id=9301,
                status="ok",
                topic="crew",
                emotion=Emotion.NEUTRAL,
                first_audio_seconds=0.5,
                duration_seconds=2.0,
                question=crew.question,
            )
        )
        qtbot.wait(100)
        assert window.status.text() == "Tap or type another question."
        assert _tops(window) == speaking
    finally:
        window.set_large_text(False)
