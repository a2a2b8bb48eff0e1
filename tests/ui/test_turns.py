"""The visitor screen through real turns: the real engine answers, the window only renders its events."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt

from kiosk.engine import events as ev
from kiosk.engine.audio_in import MemorySource
from tests.conftest import silence
from tests.ui.conftest import chip

QUESTION = "Who flew on Apollo 11?"


def _track_states(window) -> list[str]:
    states: list[str] = [window.state]
    window.state_changed.connect(states.append)
    return states


def _in_order(states: list[str], *wanted: str) -> bool:
    position = 0
    for state in states:
        if position < len(wanted) and state == wanted[position]:
            position += 1
    return position == len(wanted)


def test_tapped_question_runs_a_full_turn_with_captions_in_order(make_window, qtbot, events, loaded_engine):
    window = make_window(loaded_engine.config.replace(ui={"chips_settle_s": 1.0}))
    assert window.state == "attract"
    assert window.status.text().startswith("Touch a question")
    states = _track_states(window)

    qtbot.mouseClick(chip(window, QUESTION), Qt.MouseButton.LeftButton)
    assert window.state == "thinking"
    qtbot.waitUntil(lambda: window.state == "speaking", timeout=20_000)
    qtbot.waitUntil(lambda: bool(events.finished()), timeout=40_000)
    qtbot.waitUntil(lambda: window.state == "idle", timeout=5_000)

    finished = events.finished()[0]
    assert finished.status == "ok"
    assert _in_order(states, "attract", "thinking", "speaking", "idle"), states
    entries = window.model.entries()
    assert entries[0] == ("visitor", QUESTION)
    sentences = [e for e in events.of(ev.SentenceStarted) if e.turn_id == finished.turn_id]
    assert [text for who, text in entries[1:]] == [s.text for s in sorted(sentences, key=lambda s: s.index)]
    assert " ".join(text for _, text in entries[1:]) == finished.answer
    assert all(who == "guide" for who, _ in entries[1:])
    # the answered topic leaves the suggestions once the screen is quiet; the others stay tappable
    qtbot.waitUntil(lambda: QUESTION not in [b.toolTip() for b in window.chips.buttons], timeout=3_000)
    assert window.chips.buttons


def test_spoken_question_is_heard_answered_and_stopped_at_once(make_window, qtbot, events, speak):
    window = make_window()
    states = _track_states(window)
    audio = np.concatenate([silence(0.4), speak(QUESTION), silence(0.2)])
    assert window.start_listening(MemorySource(audio, realtime=True, tail_silence_s=1.5))
    assert window.meter.isVisible() and window.talk.isVisible()

    qtbot.waitUntil(lambda: window.state == "listening", timeout=10_000)
    qtbot.waitUntil(lambda: window.state == "speaking", timeout=30_000)
    visitor = [text for who, text in window.model.entries() if who == "visitor"]
    assert visitor and "apollo" in visitor[0].lower(), window.model.entries()
    assert _in_order(states, "attract", "listening", "thinking", "speaking"), states

    turn_id = events.of(ev.TurnStarted)[-1].turn_id
    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    assert window.state == "idle"  # at once, before the engine's events come back
    qtbot.waitUntil(lambda: any(f.turn_id == turn_id for f in events.finished()), timeout=3_000)
    finished = next(f for f in events.finished() if f.turn_id == turn_id)
    assert finished.status == "cancelled"
    spoken = len([e for e in events.of(ev.SentenceStarted) if e.turn_id == turn_id])
    qtbot.wait(800)
    assert len([e for e in events.of(ev.SentenceStarted) if e.turn_id == turn_id]) == spoken
    assert window.state == "idle"
    assert len(window.model.entries()) == 1 + spoken


def test_not_understood_shows_sorry_without_captioning_the_reply(make_window, qtbot, events, loaded_engine):
    window = make_window()
    states = _track_states(window)
    rng = np.random.default_rng(7)
    hum = (0.02 * rng.standard_normal(16000)).astype(np.float32)  # a noise, no words: nothing to answer
    loaded_engine.answer_audio(hum, time.monotonic())
    qtbot.waitUntil(lambda: window.state == "not_understood", timeout=20_000)
    assert window.status.text() == "Sorry, I did not catch that."
    qtbot.waitUntil(lambda: bool(events.finished()), timeout=20_000)
    assert events.finished()[0].status == "not_understood"
    assert window.model.entries() == []
    qtbot.waitUntil(lambda: window.state == "idle", timeout=6_000)
    assert _in_order(states, "thinking", "not_understood", "idle"), states


def test_idle_visitor_gets_a_countdown_then_a_fresh_session(make_window, qtbot, events, loaded_engine):
    config = loaded_engine.config.replace(ui={"idle_reset_s": 0.5, "still_there_s": 0.8})
    window = make_window(config)
    qtbot.mouseClick(chip(window, QUESTION), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(events.of(ev.SentenceStarted)), timeout=20_000)
    window.stop()
    assert window.model.entries()

    # a touch during the countdown keeps the conversation
    qtbot.waitUntil(lambda: window.state == "still_there", timeout=3_000)
    assert window.still_there.isVisible()
    qtbot.mouseClick(window.still_there, Qt.MouseButton.LeftButton)
    assert window.state == "idle" and not window.still_there.isVisible()
    assert window.model.entries()

    # no touch: the session is reset and the attract loop returns
    qtbot.waitUntil(lambda: window.state == "still_there", timeout=3_000)
    qtbot.waitUntil(lambda: window.state == "attract", timeout=3_000)
    assert window.model.entries() == []
    assert not window.still_there.isVisible()
    qtbot.waitUntil(lambda: bool(events.of(ev.SessionEnded)), timeout=3_000)
    assert QUESTION in [b.toolTip() for b in window.chips.buttons]


def test_failures_arrive_from_worker_threads_as_readable_messages(make_window, qtbot, loaded_engine):
    import threading

    window = make_window()

    def publish() -> None:
        loaded_engine.bus.publish(
            ev.ModelFailed(stage="tts", name="piper", message="tts: OSError: voice missing")
        )
        loaded_engine.bus.publish(
            ev.InputProblem(message="microphone 'USB Audio' disconnected; retrying every 2 s")
        )

    worker = threading.Thread(target=publish)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=2_000)
    text = window.notice.text()
    # plain words for the visitor (issue 22); the device's own words are the technician's
    assert "voice isn't working" in text and "Please tap or type your question." in text
    assert "USB Audio" not in text and "OSError" not in text
    assert any("voice missing" in line for line in window.ops_model.problems)
    assert any("USB Audio" in line for line in window.ops_model.problems)
    assert window.state == "attract"  # the kiosk carries on


def test_the_talking_face_paints_the_engines_animator(make_window, qtbot, events, loaded_engine):
    if getattr(loaded_engine, "face", None) is None:
        import pytest

        pytest.skip(f"no face animator: {loaded_engine.failures.get('face', 'this engine has none')}")
    window = make_window()
    assert window.face.animator is loaded_engine.face
    assert loaded_engine.face in loaded_engine.pipeline.listeners
    qtbot.waitUntil(lambda: window.face.frames_rendered > 5 and window.face._image is not None, timeout=5_000)
    turn = window.ask(QUESTION)
    qtbot.waitUntil(lambda: window.state == "speaking", timeout=20_000)

    def frame_after_first_audio() -> bool:
        seen_audio = False
        for e in list(events.events):
            seen_audio |= isinstance(e, ev.FirstAudio) and e.turn_id == turn
            if seen_audio and isinstance(e, ev.FrameRendered) and e.turn_id == turn:
                return True
        return False

    qtbot.waitUntil(frame_after_first_audio, timeout=5_000)
    window.stop()
    qtbot.waitUntil(lambda: any(row.turn_id == turn for row in window.ops_model.turns), timeout=3_000)
    row = next(row for row in window.ops_model.turns if row.turn_id == turn)
    assert 0 < row.timings["first_frame"] < 10, row.timings
    assert window.face.presented_fps > 0  # the rate itself is bench/ui.py's business
    window.shutdown()
    assert loaded_engine.face in loaded_engine.pipeline.listeners  # the engine's own face stays
    assert not window.face._render_thread


def test_push_to_talk_answers_what_was_said_while_the_button_was_held(
    make_window, qtbot, events, speak, loaded_engine
):
    config = loaded_engine.config.replace(ui={"mode": "push_to_talk"})
    window = make_window(config)
    question = speak(QUESTION)
    audio = np.concatenate([silence(0.3), question, silence(3.0)])
    assert window.start_listening(MemorySource(audio, realtime=True, tail_silence_s=0.5))
    assert loaded_engine.pipeline.hands_free is False
    assert window.talk_label.text() == "Hold to talk"

    qtbot.mousePress(window.talk, Qt.MouseButton.LeftButton)
    assert window.state == "listening"
    qtbot.wait(int((0.3 + len(question) / 16000 + 0.3) * 1000))
    assert not events.of(ev.TurnStarted)  # nothing is answered while the button is held
    qtbot.mouseRelease(window.talk, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: window.state == "speaking", timeout=30_000)
    started = events.of(ev.TurnStarted)
    assert len(started) == 1 and started[0].source == "voice"
    visitor = [text for who, text in window.model.entries() if who == "visitor"]
    assert visitor and "apollo" in visitor[0].lower(), window.model.entries()
    window.stop()
    window.shutdown()
    assert loaded_engine.pipeline.hands_free is True  # the shared engine is left as it was found


def test_larger_text_makes_every_text_bigger(make_window, qtbot):
    window = make_window()
    window.handle_event(ev.TurnStarted(turn_id=1, source="text"))
    window.handle_event(ev.Transcribed(turn_id=1, text=QUESTION, understood=True))
    window.handle_event(ev.SentenceStarted(turn_id=1, index=0, text="Three astronauts flew on Apollo 11."))
    qtbot.wait(50)
    labels = [lb for lb in window.captions._labels if lb.isVisible()]
    widgets = [*labels, window.title, window.hint, window.progress, window.status, window.chips.buttons[0]]
    window.hint.setText("a hint")
    before = [w.fontInfo().pixelSize() for w in widgets]
    qtbot.mouseClick(window.text_button, Qt.MouseButton.LeftButton)
    qtbot.wait(50)
    after = [w.fontInfo().pixelSize() for w in widgets]
    assert window.large_text
    assert all(a >= b * 1.2 for a, b in zip(after, before, strict=True)), (before, after)


def test_the_attract_loop_greets_and_suggests(make_window, qtbot, loaded_engine):
    window = make_window(loaded_engine.config.replace(ui={"attract_interval_s": 1.0, "chips_settle_s": 0.5}))
    assert window.model.entries() == []
    first = window.model.attract_line()
    assert first == loaded_engine.exhibit.greeting
    qtbot.waitUntil(lambda: window.model.attract_line() != first, timeout=3_000)
    assert window.model.attract_line().startswith("Try asking me:")
    assert window.captions.visible_texts() == [window.model.attract_line()]
    assert loaded_engine.exhibit.title not in window.status.text()  # the title above says it
