"""The rendered screen: captions that fit whole, chips that wrap, large text, contrast, typing, the offer,
and the ops panel (opaque, the face once, the kiosk's uptime, no hands-free without a microphone)."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.engine.audio_in import MemorySource
from kiosk.ui import theme
from kiosk.ui.screen_model import OFFER_ACCEPTED, State
from tests.conftest import silence
from tests.ui.conftest import LANDSCAPE, ORIENTATIONS


def _finished(turn_id: int, offer: str = "", status: str = "ok", question: str = "") -> ev.TurnFinished:
    return ev.TurnFinished(
        turn_id=turn_id,
        status=status,
        topic="crew",
        emotion=Emotion.NEUTRAL,
        first_audio_seconds=0.5,
        duration_seconds=4.0,
        question=question,
        offer=offer,
    )


def _replay_turn(window, turn_id: int, question: str, sentences: list[str], **finished) -> None:
    window.handle_event(ev.TurnStarted(turn_id=turn_id, source="voice"))
    window.handle_event(ev.Transcribed(turn_id=turn_id, text=question, understood=True))
    window.handle_event(ev.AnswerChosen(turn_id=turn_id, status="ok", topic="crew", emotion=Emotion.HAPPY))
    for index, sentence in enumerate(sentences):
        window.handle_event(ev.SentenceStarted(turn_id=turn_id, index=index, text=sentence))
    window.handle_event(_finished(turn_id, question=question, **finished))


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_captions_are_never_cut_at_the_top(orientation, large, make_window, qtbot, loaded_engine):
    window = make_window(size=ORIENTATIONS[orientation])
    if large:
        window.set_large_text(True)
    crew = loaded_engine.exhibit.section("crew")
    long_answer = (crew.sentences * 4)[:12]
    _replay_turn(window, 9101, "Who flew on Apollo 11?", crew.sentences[:2])
    _replay_turn(window, 9102, crew.question, long_answer)
    qtbot.wait(50)
    view = window.captions
    shown = [label for label in view._labels if label.isVisible()]
    assert shown
    for label in shown:
        top, bottom = label.geometry().top(), label.geometry().bottom()
        assert top >= 0 and bottom <= view.height(), (label.objectName(), top, bottom, view.height())
        assert label.height() >= label.heightForWidth(label.width())  # every line of it drawn
    # a short answer: the visitor's question stays in full above it
    _replay_turn(window, 9103, "How long did the flight take?", ["Eight days."])
    qtbot.wait(50)
    names = [label.objectName() for label in view._labels if label.isVisible()]
    assert names[-2:] == ["VisitorCaption", "GuideCaption"], names


def _after_an_offer(make_window, qtbot, engine, orientation: str, large: bool, turn_id: int):
    """A window with a microphone (the level meter beside the hint makes the hint wrap) after a three-sentence
    answer that ends with an offer."""
    config = engine.config.replace(ui={"large_text": large})
    window = make_window(config, ORIENTATIONS[orientation], source_factory=lambda: MemorySource(silence(0.3)))
    qtbot.wait(400)
    assert window.mic_available
    crew = engine.exhibit.section("crew")
    _replay_turn(
        window, turn_id, crew.question, crew.sentences[:3], offer="Shall I tell you more about the crew?"
    )
    qtbot.wait(50)
    return window, crew


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_the_last_sentence_stays_whole_when_the_offer_and_chips_need_room(
    orientation, large, make_window, qtbot, loaded_engine
):
    """The answer outranks the suggestions: a chip that does not fit is left out, the sentence is not cut."""
    window, crew = _after_an_offer(make_window, qtbot, loaded_engine, orientation, large, 9151)
    assert window.offer_button.isVisible()
    view = window.captions
    newest = [label for label in view._labels if label.isVisible()][-1]
    assert crew.sentences[2] in newest.text()
    assert newest.height() >= newest.heightForWidth(newest.width()), (newest.height(), view.height())
    assert newest.geometry().bottom() <= view.height()
    captions_bottom = view.mapTo(window, newest.geometry().bottomLeft()).y()
    offer_top = window.offer_button.mapTo(window, window.offer_button.rect().topLeft()).y()
    assert captions_bottom < offer_top
    shown = window.chips.shown
    assert shown, "at least one suggestion still fits"
    for chip in window.chips.buttons[len(shown) :]:
        assert chip.geometry().isEmpty(), chip.question  # left out: no room
    for chip in shown:
        top = chip.mapTo(window, chip.rect().topLeft()).y()
        bottom = chip.mapTo(window, chip.rect().bottomLeft()).y()
        assert top > window.offer_button.mapTo(window, window.offer_button.rect().bottomLeft()).y()
        assert bottom <= window.chips.mapTo(window, window.chips.rect().bottomLeft()).y(), chip.question
        assert chip.text_fits(), chip.question


WELSH = "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch"
ODD_TOML = f"""
title = "The Great Transcontinental Railroad Survey Expedition and Its Photographers, 1867 to 1869"
greeting = "Welcome! Ask me about the survey, its cameras and {WELSH}."

[[topics]]
id = "rivers"
heading = "Rivers"
tone = "neutral"
question = "How did the survey expedition manage to cross the mountains, deserts and great rivers of the West?"

[[topics]]
id = "wales"
heading = "Wales"
tone = "neutral"
question = "Where is {WELSH}?"
"""
ODD_NOTES = f"""# Odd pack

## Rivers
Rivers were crossed on rafts built from the wagon beds, and the photographers insisted that their glass plates
travel on the last raft, wrapped in blankets and tied to empty barrels so that they would float if the raft
overturned. Engine No. 4 pulled the supply train.

## Wales
One of the photographers was born in {WELSH}, a village in Wales with the longest place name in Europe.
"""


@pytest.fixture
def odd_pack(tmp_path, loaded_engine):
    """A pack written to be awkward: a 90-letter title, a 58-letter word, a long sentence and question."""
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "exhibit.toml").write_text(ODD_TOML, encoding="utf-8")
    (folder / "notes.md").write_text(ODD_NOTES, encoding="utf-8")
    previous = loaded_engine.exhibit.folder
    loaded_engine.reload_exhibit(folder)
    yield loaded_engine.exhibit
    loaded_engine.reload_exhibit(previous)


def _overlap(a, b, window) -> bool:
    ra = a.rect().translated(a.mapTo(window, a.rect().topLeft()))
    rb = b.rect().translated(b.mapTo(window, b.rect().topLeft()))
    return ra.intersects(rb)


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_an_awkward_pack_shows_nothing_cut_or_overlapping(odd_pack, orientation, large, make_window, qtbot):
    window = make_window(size=ORIENTATIONS[orientation])
    if large:
        window.set_large_text(True)
    qtbot.wait(100)
    title = window.title
    assert title.height() >= title.heightForWidth(title.width())  # whole
    assert title.height() <= 3 * title.fontMetrics().lineSpacing() + 6, "a long title is set smaller"
    pill = window.pill.width()
    for chip in window.chips.shown:
        assert chip.text_fits() and chip.width() <= window.chips.width(), chip.question
    rivers = odd_pack.section("rivers")
    window.handle_event(ev.TurnStarted(turn_id=9181, source="voice"))
    window.handle_event(ev.Transcribed(turn_id=9181, text=rivers.question, understood=True))
    window.handle_event(ev.AnswerChosen(turn_id=9181, status="ok", topic="rivers", emotion=Emotion.HAPPY))
    window.handle_event(ev.SentenceStarted(turn_id=9181, index=0, text=rivers.sentences[0]))
    qtbot.wait(50)
    assert window.pill.width() == pill, "the pill keeps its width, so the title does not reflow"
    window.handle_event(_finished(9181, question=rivers.question, offer="Shall I tell you more?"))
    qtbot.wait(50)
    newest = [label for label in window.captions._labels if label.isVisible()][-1]
    assert newest.height() >= newest.heightForWidth(newest.width()), "the last sentence is whole"
    assert not _overlap(newest, window.offer_button, window)
    for chip in window.chips.shown:
        assert not _overlap(chip, window.offer_button, window) and not _overlap(chip, newest, window)
    qtbot.mouseClick(window.type_button, Qt.MouseButton.LeftButton)
    keyboard = window.keyboard
    line_height = keyboard.line.height()
    for char in ("How did they keep the glass plates dry on the rafts across all of those rivers " * 2)[:150]:
        keyboard.press("space" if char == " " else char)
    qtbot.wait(50)
    assert keyboard.line.height() == line_height, "the typed line stays one line"
    assert keyboard.line.text().startswith("…") and keyboard.line.text().endswith(keyboard.text[-20:] + "▏")
    keys = [key for key in keyboard.keys.values() if key.isVisible()]
    for i, key in enumerate(keys):
        for other in keys[i + 1 :]:
            assert not _overlap(key, other, window), (key.text(), other.text())


def test_a_japanese_name_in_the_notes_has_glyphs(qtbot):
    """DejaVu has no CJK glyphs: the install brings a fallback font, so "葛飾北斎" is not four boxes."""
    from PySide6.QtGui import QFontDatabase

    assert QFontDatabase.families(QFontDatabase.WritingSystem.Japanese)


def test_large_text_wraps_chips_instead_of_truncating(make_window, qtbot, loaded_engine):
    window = make_window(size=LANDSCAPE)
    window.set_large_text(True)
    qtbot.wait(50)
    assert window.chips.buttons
    for button in window.chips.buttons:
        assert button.width() <= window.chips.width()
        assert button.text_fits(), button.question
        assert button.question in [s.question for s in loaded_engine.exhibit.sections]


@pytest.mark.parametrize("high", [False, True])
def test_every_text_colour_reaches_wcag_aa_on_every_surface(high):
    palette = theme.HIGH_CONTRAST if high else theme.STANDARD
    for text in theme.TEXT_COLOURS:
        for surface in theme.SURFACES:
            ratio = theme.contrast_ratio(palette[text], palette[surface])
            assert ratio >= 4.5, (text, surface, round(ratio, 2))


def test_high_contrast_switches_the_whole_screen(make_window, qtbot, loaded_engine, ui_artifacts):
    window = make_window()
    try:
        qtbot.mouseClick(window.contrast_button, Qt.MouseButton.LeftButton)
        assert window.high_contrast and theme.TEXT == theme.HIGH_CONTRAST["TEXT"]
        crew = loaded_engine.exhibit.section("crew")
        _replay_turn(window, 9401, crew.question, crew.sentences[:3])
        qtbot.wait(50)
        window.grab().save(str(ui_artifacts / "high-contrast-portrait.png"))
        image = window.grab().toImage()
        assert image.pixelColor(5, window.height() // 2).name() == theme.HIGH_CONTRAST["BACKGROUND"]
    finally:
        window.set_high_contrast(False)


def test_a_typed_question_goes_through_the_same_turn(make_window, qtbot, events):
    window = make_window()
    qtbot.mouseClick(window.type_button, Qt.MouseButton.LeftButton)
    keyboard = window.keyboard
    assert keyboard.isVisible() and keyboard.keys["q"].height() >= 60
    for key in ("w", "h", "o", "space", "f", "l", "e", "w", "?"):
        qtbot.mouseClick(keyboard.keys[key], Qt.MouseButton.LeftButton)
    assert keyboard.text == "Who flew?"
    qtbot.mouseClick(keyboard.keys["Ask"], Qt.MouseButton.LeftButton)
    assert not keyboard.isVisible()
    assert window.state == State.THINKING
    qtbot.waitUntil(lambda: bool(events.of(ev.TurnStarted)), timeout=5_000)
    assert events.of(ev.TurnStarted)[0].source == "text"
    assert ("visitor", "Who flew?") in window.model.entries()
    window.stop()


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_the_keyboard_makes_room_and_nothing_shows_cut_at_its_edge(
    orientation, large, make_window, qtbot, loaded_engine
):
    window, _ = _after_an_offer(make_window, qtbot, loaded_engine, orientation, large, 9171)
    qtbot.mouseClick(window.type_button, Qt.MouseButton.LeftButton)
    qtbot.wait(50)
    keyboard = window.keyboard
    assert keyboard.isVisible()
    edge = keyboard.geometry().top()
    screen = [window.face, window.status, window.layout_.hint, window.title, window.pill, window.offer_button]
    screen += window.captions._labels + window.chips.buttons + [window.type_button, window.stop_button]
    for widget in screen:
        if not widget.isVisible() or widget.width() == 0 or widget.height() == 0:
            continue
        bottom = widget.mapTo(window, widget.rect().bottomLeft()).y()
        assert bottom < edge, (widget.objectName() or type(widget).__name__, bottom, edge)
    for label in window.captions._labels:
        if label.isVisible():
            assert label.height() >= label.heightForWidth(label.width())  # whole, not a sliver of lines
    qtbot.mouseClick(keyboard.keys["Close"], Qt.MouseButton.LeftButton)
    qtbot.wait(50)
    assert window.chips.shown and window.offer_button.isVisible() and window.type_button.isVisible()
    layout = window.layout_.box.contentsMargins()
    assert layout.bottom() < keyboard.height()


def test_the_offer_button_asks_yes(make_window, qtbot, events, loaded_engine):
    window = make_window()
    crew = loaded_engine.exhibit.section("crew")
    _replay_turn(
        window, 9201, crew.question, crew.sentences[:1], offer="Shall I tell you more about the crew?"
    )
    assert window.offer_button.isVisible()
    qtbot.mouseClick(window.offer_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(events.of(ev.TurnStarted)), timeout=5_000)
    assert events.of(ev.TurnStarted)[0].source == "text"
    assert ("visitor", OFFER_ACCEPTED) in window.model.entries()
    assert not window.offer_button.isVisible()
    window.stop()


def test_the_ops_panel_is_opaque_lists_the_face_once_and_counts_the_kiosks_uptime(make_window, qtbot):
    window = make_window(started_at=time.monotonic() - 3725)
    window.admin.open()
    panel = window.ops_panel
    panel.refresh()
    qtbot.wait(50)
    header = panel.heading.geometry().united(panel.subheading.geometry())
    before = window.grab(header).toImage()
    _replay_turn(window, 9301, "Who flew on Apollo 11?", ["A long visible answer under the panel."] * 3)
    qtbot.wait(50)
    assert window.grab(header).toImage() == before  # nothing of the visitor screen shows through
    assert "up 1:02:" in panel.subheading.text()
    assert panel.models_body.text().count("<td>face</td>") == 1
    assert not window.mic_available
    assert "no microphone" in panel.hands_free_button.text() and not panel.hands_free_button.isEnabled()


def test_a_close_request_is_ignored_unless_the_technician_quits(make_window, qtbot):
    window = make_window()
    window.close()
    assert window.isVisible()
    window.admin.quit_requested = True
    window.close()
    assert not window.isVisible()


def test_while_the_models_load_the_screen_is_calm_and_the_still_face_is_the_one_that_will_move(
    qtbot, base_config, ui_artifacts
):
    import numpy as np
    from PySide6.QtGui import QImage

    from kiosk.engine.engine import Engine
    from kiosk.engine.face.backend import FaceState
    from kiosk.engine.face.host import HostFace
    from kiosk.ui.window import KioskWindow

    engine = Engine(base_config)  # not loaded: the screen comes up first
    window = KioskWindow(engine, base_config)
    qtbot.addWidget(window)
    window.resize(*ORIENTATIONS["portrait"])
    window.show()
    qtbot.waitExposed(window)
    try:
        assert window.state == State.LOADING
        assert window.chips.buttons and not any(b.isEnabled() for b in window.chips.buttons)
        assert not window.type_button.isEnabled()
        qtbot.mouseClick(window.chips.buttons[0], Qt.MouseButton.LeftButton)
        assert window.state == State.LOADING and not window.notice.isVisible()  # no technical notice
        assert "model" not in window.status.text().lower() + window.hint.text().lower()
        # a pack without a portrait: the still is the drawn host at rest, the animator's first frame, so
        # nothing jumps when it takes over (and no photograph of anybody stands in meanwhile)
        assert engine.exhibit.portrait is None
        qtbot.waitUntil(lambda: window.face.portrait_ready, timeout=20_000)
        still = window.face._still
        size = base_config.face.size
        assert still is not None and still.width() == still.height() == size
        host = HostFace(None, size)
        host.load()
        expected = host.render(FaceState())
        shown = still.convertToFormat(QImage.Format.Format_RGB888)
        pixels = np.frombuffer(shown.constBits(), np.uint8).reshape(size, shown.bytesPerLine())[:, : 3 * size]
        assert np.array_equal(pixels.reshape(size, size, 3), expected)
        qtbot.wait(100)
        window.grab().save(str(ui_artifacts / "loading-portrait.png"))
    finally:
        window.shutdown()
        window.workers.wait(10)
        engine.close()
