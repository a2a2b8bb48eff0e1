"""Issue 22's visitor test: the real window over the real, loaded engine, driven as a visitor drives it.

Taps on the suggested questions and on the on-screen keyboard's keys, on the default pack and on a pack of
a title and notes alone, in both orientations with Larger text.  What is asserted is what a visitor sees:
the answer (and the question it answers) on screen, whole and not covered, until the next question; no
device or exception text anywhere a visitor looks; a loudspeaker that fails, and a microphone that is
not there, are said in plain words and the answer still comes, in writing.  Screenshots go to
artifacts/ui/visitor-walk/.

The only fakes are at the hardware edge: the sound library under the loudspeaker and the microphone (no
output device, an output that never plays, no input device), and a sink that plays at once instead of in
real time (the sentences are the same; the walk takes seconds instead of the answers' length).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

from kiosk.engine import events as ev
from kiosk.engine.audio_in import MicrophoneSource
from kiosk.engine.audio_out import NullSink, SoundDeviceSink
from kiosk.ui import theme
from kiosk.ui.screen_model import TAP_GUARD_S, State
from kiosk.ui.screen_text import BREAK, NO_MICROPHONE, NO_SOUND
from tests.ui.conftest import ORIENTATIONS

pytestmark = pytest.mark.timeout(120)

# what no visitor should read: a device's or a library's own words
TECHNICAL = re.compile(
    r"error|exception|traceback|errno|portaudio|device|querying|retrying|-1\b|\bNone\b|\w+\.py\b", re.I
)
TITLE_ONLY_NOTES = """# The harbour crane

## The crane
The crane was built in 1912 to lift locomotives onto ships. It could lift eighty tonnes.

## Its engine
A steam engine drove the winch until 1958, when an electric motor replaced it.

## The people
Four men worked the crane: a driver, a stoker and two riggers on the quay.
"""
PACKS = {"default": "eileen-collins", "title-only": None}
TYPED = {"default": "where was she born?", "title-only": "who worked the crane?"}


# --- the hardware edge ------------------------------------------------------------------------------------


class PortAudioError(Exception):
    """What sounddevice raises (not an OSError)."""


class NoSoundDevice:
    """sounddevice on a machine without a working device: opening any stream fails as PortAudio does."""

    PortAudioError = PortAudioError

    def OutputStream(self, **kwargs):  # noqa: N802 - sounddevice's name
        raise PortAudioError("Error querying device -1")

    def InputStream(self, **kwargs):  # noqa: N802
        raise PortAudioError("Error querying device -1")


class SilentStream:
    """An output stream that opens and starts, and never asks for a sample (a suspended output)."""

    active = True

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class SilentSoundDevice:
    """sounddevice whose output plays nothing: the card never calls back for audio."""

    def OutputStream(self, **kwargs):  # noqa: N802
        return SilentStream()


# --- the fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def shots(ui_artifacts: Path) -> Path:
    folder = ui_artifacts / "visitor-walk"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def speaker(loaded_engine):
    """``speaker(sink)``: the engine's loudspeaker replaced for the test (put back after)."""
    pipeline = loaded_engine.pipeline
    assert pipeline is not None
    original = pipeline.sink
    used = []

    def use(sink):
        used.append(sink)
        pipeline.sink = sink
        return sink

    yield use
    pipeline.cancel("test over")
    pipeline.wait_idle(timeout=10)
    pipeline.sink = original
    for sink in used:
        sink.close()


@pytest.fixture(scope="module")
def pack(request, tmp_path_factory, loaded_engine):
    """The engine on the named pack: the default exhibit, or a title and notes written in a temporary
    folder (once per module and pack: re-indexing a pack takes seconds)."""
    previous = loaded_engine.exhibit.folder
    name = request.param
    if PACKS[name] is None:
        folder = tmp_path_factory.mktemp("crane")
        (folder / "exhibit.toml").write_text('title = "The Harbour Crane"\n', encoding="utf-8")
        (folder / "notes.md").write_text(TITLE_ONLY_NOTES, encoding="utf-8")
        loaded_engine.reload_exhibit(folder)
    else:
        loaded_engine.reload_exhibit(PACKS[name])
    yield name
    loaded_engine.reload_exhibit(previous)


# --- what the visitor sees -------------------------------------------------------------------------------


def plain(text: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).replace(BREAK, "").split())


def in_window(widget: QWidget, window) -> QRect:
    return widget.rect().translated(widget.mapTo(window, widget.rect().topLeft()))


def readable(window, text: str) -> QLabel:
    """The caption label showing ``text``, asserted visible, whole, inside the window and not covered."""
    for label in window.captions._labels:
        if label.isVisible() and plain(text) in plain(label.text()):
            break
    else:
        shown = [plain(label.text()) for label in window.captions._labels if label.isVisible()]
        raise AssertionError(f"not on screen: {text!r}; shown: {shown}")
    assert not label.visibleRegion().isEmpty(), text
    place = in_window(label, window)
    assert window.rect().contains(place), (text, place, window.rect())
    assert label.height() >= label.heightForWidth(label.width()), f"cut: {text!r}"
    assert label.geometry().bottom() <= window.captions.height(), f"below the captions' edge: {text!r}"
    keyboard = window.layout_.keyboard
    if keyboard is not None and keyboard.isVisible():
        assert place.bottom() < keyboard.geometry().top(), f"under the keyboard: {text!r}"
    return label


def visitor_texts(window) -> list[str]:
    """Every text a visitor can see: labels, buttons, the notice (the technician's panel is not theirs)."""
    panel = window.admin.panel if window.admin.built else None
    texts = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or (panel is not None and (widget is panel or panel.isAncestorOf(widget))):
            continue
        if isinstance(widget, QLabel | QAbstractButton):
            texts.append(plain(widget.text()))
    return [t for t in texts if t]


def assert_no_technical_text(window) -> None:
    for text in visitor_texts(window):
        assert not TECHNICAL.search(text), f"a visitor reads: {text!r}"


def answered(events, count: int, qtbot, timeout_ms: int = 30_000) -> ev.TurnFinished:
    qtbot.waitUntil(lambda: len(events.finished()) >= count, timeout=timeout_ms)
    qtbot.wait(150)  # the queued events reach the window
    return events.finished()[count - 1]


def said(events, turn_id: int) -> list[str]:
    return [e.text for e in events.of(ev.SentenceStarted) if e.turn_id == turn_id]


def tap(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def type_on_screen(window, qtbot, text: str) -> None:
    keyboard = window.keyboard
    for char in text:
        tap(qtbot, keyboard.keys["space" if char == " " else char])
    assert keyboard.text.lower() == text.lower()


def shoot(window, folder: Path, name: str) -> None:
    window.layout().activate()
    assert window.grab().save(str(folder / f"{name}.png")), name


# --- the walk ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
@pytest.mark.parametrize("pack", list(PACKS), indirect=True)
def test_a_visitor_taps_and_types_and_each_answer_stays_readable_until_the_next_question(
    pack, orientation, make_window, qtbot, loaded_engine, events, speaker, shots
):
    speaker(NullSink(realtime=False))
    high = pack == "title-only" and orientation == "landscape"  # high contrast once, on the plainest pack
    config = loaded_engine.config.replace(ui={"large_text": True, "high_contrast": high})
    window = make_window(config, ORIENTATIONS[orientation])
    name = f"{pack}-{orientation}-large" + ("-contrast" if high else "")
    try:
        qtbot.wait(100)
        assert window.chips.shown, "a suggestion to tap"
        chip = window.chips.shown[0]
        question = chip.question
        tap(qtbot, chip)
        first = answered(events, 1, qtbot)
        assert first.status in ("ok", "unanswered"), first
        sentences = said(events, first.turn_id)
        assert sentences and " ".join(sentences) == first.answer
        for text in (f"\u201c{question}\u201d", *sentences):
            readable(window, text)
        assert window.state == State.IDLE
        shoot(window, shots, f"{name}-1-answered")
        qtbot.wait(1200)  # the guide has long stopped speaking: the answer is still there
        for text in sentences:
            readable(window, text)
        assert_no_technical_text(window)

        tap(qtbot, window.type_button)  # the keyboard opens over the lower screen: the answer stays above it
        qtbot.wait(100)
        for text in sentences:
            readable(window, text)
        typed = TYPED[pack]
        type_on_screen(window, qtbot, typed)
        shoot(window, shots, f"{name}-2-typing")
        tap(qtbot, window.keyboard.keys["Ask"])
        second = answered(events, 2, qtbot)
        assert second.turn_id != first.turn_id
        for text in said(events, second.turn_id):
            readable(window, text)
        readable(window, f"\u201c{typed[0].upper() + typed[1:]}\u201d")
        shoot(window, shots, f"{name}-3-typed-answer")
        assert_no_technical_text(window)
    finally:
        if high:
            window.set_high_contrast(False)
            assert not theme.high_contrast


# --- the loudspeaker fails ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "orientation"),
    [(NoSoundDevice, "portrait"), (SilentSoundDevice, "landscape")],
    ids=["no-output-device", "output-plays-nothing"],
)
@pytest.mark.parametrize("pack", ["default"], indirect=True)
def test_when_the_loudspeaker_fails_the_answer_is_written_with_a_plain_notice(
    pack, device, orientation, make_window, qtbot, loaded_engine, events, speaker, shots
):
    """Two questions in a row: each answer on screen, the notice in plain words, the device's words only in
    the technician's "Recent problems"."""
    speaker(SoundDeviceSink("", backend=device()))
    config = loaded_engine.config.replace(ui={"large_text": True})
    window = make_window(config, ORIENTATIONS[orientation])
    qtbot.wait(100)
    for count in (1, 2):
        qtbot.wait(
            int(TAP_GUARD_S * 1000) + 100
        )  # a written answer comes at once: a second tap sooner is a bounce
        chip = window.chips.shown[0]
        tap(qtbot, chip)
        finished = answered(events, count, qtbot)
        sentences = said(events, finished.turn_id)
        assert sentences, "the answer was shown"
        assert " ".join(sentences) == finished.answer
        for text in sentences:
            readable(window, text)
        assert window.notice.isVisible() and plain(window.notice.text()) == NO_SOUND
        assert not window.notice.visibleRegion().isEmpty()
        assert window.model.state == State.IDLE and window.pill.text == "Ready"
        assert_no_technical_text(window)
        shoot(window, shots, f"speaker-{device.__name__}-{orientation}-{count}")
    assert [e.turn_id for e in events.of(ev.VoiceUnheard)] == [f.turn_id for f in events.finished()]
    problems = " ".join(window.ops_model.problems)
    assert "tts" in problems and ("querying device" in problems or "played nothing" in problems), problems


# --- no microphone -------------------------------------------------------------------------------------------


def test_without_a_microphone_the_visitor_is_asked_to_tap_or_type_and_not_invited_to_speak(
    make_window, qtbot, loaded_engine, shots
):
    window = make_window(
        loaded_engine.config,
        ORIENTATIONS["portrait"],
        source_factory=lambda: MicrophoneSource("", reconnect_interval_s=2.0, backend=NoSoundDevice()),
    )
    qtbot.waitUntil(lambda: "input" in window.model.notices, timeout=10_000)
    qtbot.wait(150)
    assert window.notice.isVisible() and plain(window.notice.text()) == NO_MICROPHONE
    assert not window.talk.isVisible() and not window.talk_label.isVisible()
    texts = " ".join(visitor_texts(window)).lower()
    assert "speak" not in texts and "out loud" not in texts and "hold to talk" not in texts, texts
    assert_no_technical_text(window)
    assert any("Error querying device -1" in line for line in window.ops_model.problems), (
        "the technician knows"
    )
    shoot(window, shots, "no-microphone-portrait")
