"""The visitor screen's state machine, without Qt: taps, turns, deadlines, chips and offers."""

from __future__ import annotations

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.ui.screen_model import (
    NOT_UNDERSTOOD_HOLD_S,
    OFFER_ACCEPTED,
    TAP_GUARD_S,
    YES,
    Chip,
    ScreenModel,
    State,
    Timing,
)

CHIPS = [Chip(f"t{i}", f"Question number {i}?") for i in range(7)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(ready: bool = True, **timing) -> tuple[ScreenModel, Clock]:
    clock = Clock()
    model = ScreenModel("Apollo 11", "Hello!", CHIPS, Timing(**timing), clock=clock)
    if ready:
        model.on_event(ev.EngineReady())
    return model, clock


def finished(turn_id: int, status: str = "ok", topic: str | None = None, offer: str = "", question: str = ""):
    return ev.TurnFinished(
        turn_id=turn_id,
        status=status,
        topic=topic,
        emotion=Emotion.NEUTRAL,
        first_audio_seconds=0.5,
        duration_seconds=3.0,
        question=question,
        offer=offer,
    )


def answer(model: ScreenModel, turn_id: int, topic: str, sentences: list[str], status: str = "ok") -> None:
    model.on_event(ev.AnswerChosen(turn_id=turn_id, status=status, topic=topic, emotion=Emotion.NEUTRAL))
    for i, text in enumerate(sentences):
        model.on_event(ev.SentenceStarted(turn_id=turn_id, index=i, text=text))


def test_states_are_an_enum_and_the_screen_starts_loading():
    model, _ = make(ready=False)
    assert model.state is State.LOADING and model.state == "loading"
    model.on_event(ev.EngineReady())
    assert model.state is State.ATTRACT


def test_while_loading_the_chips_are_disabled_and_a_tap_asks_nothing_without_a_technical_notice():
    model, _ = make(ready=False)
    assert not model.chips_enabled and model.chips
    assert model.tap(CHIPS[0].question) is None
    assert model.notice_text() == ""  # not "The guide is still loading its models."
    status, hint, _tone = model.status()
    assert "loading" not in (status + hint).lower() and "model" not in (status + hint).lower()
    model.on_event(ev.EngineReady())
    assert model.chips_enabled and model.tap(CHIPS[0].question) == CHIPS[0].question


def test_the_chips_stay_where_they_are_while_a_turn_is_answered():
    model, clock = make(attract_interval_s=1.0)
    before = model.chips
    question = before[1].question
    assert model.tap(question) == question
    model.asked(1, question)
    assert model.state is State.THINKING
    answer(model, 1, before[1].topic, ["One.", "Two."])
    clock.now += 5  # the attract loop's interval passes, too
    model.tick()
    assert model.state is State.SPEAKING
    assert model.chips == before  # a second tap hits the chip that is under the finger
    model.on_event(finished(1, topic=before[1].topic))
    assert model.state is State.IDLE
    clock.now += model.timing.chips_settle_s - 0.5  # the visitor reaches for the next chip
    model.tick()
    assert model.chips == before  # a finger may be on its way: nothing moves
    clock.now += 0.5
    model.tick()
    assert before[1] not in model.chips  # the answered topic leaves only when the screen is quiet


def test_ten_quick_taps_ask_once_and_a_tap_on_the_question_being_answered_is_ignored():
    model, clock = make()
    question = model.chips[0].question
    asked = []
    for _ in range(10):
        wanted = model.tap(question)
        if wanted:
            asked.append(wanted)
            model.asked(len(asked), wanted)
        clock.now += 0.05
    assert asked == [question]
    clock.now += TAP_GUARD_S + 0.01
    assert model.tap(question) is None  # the same question, still being answered
    other = model.chips[2].question
    assert model.tap(other) == other  # a different chip: the visitor changed their mind


def test_the_attract_loop_does_not_rotate_the_chips_under_a_finger():
    model, clock = make(attract_interval_s=10.0)
    first = model.chips
    clock.now += 10.0
    model.touched(clock.now - 3.0)  # a touch a moment ago: the next may be on its way
    model.tick()
    assert model.chips == first and model.attract_line() == "Hello!"
    clock.now += model.timing.chips_settle_s - 3.0  # quiet long enough: the rotation it postponed
    model.tick()
    assert model.chips != first and model.attract_line().startswith("Try asking me")


def test_an_offer_shows_a_yes_button_that_asks_yes_through_the_same_turn_path():
    model, clock = make()
    question = model.chips[0].question
    model.asked(1, model.tap(question))
    answer(model, 1, model.chips[0].topic, ["The launch was loud."])
    model.on_event(finished(1, topic="t0", offer="Shall I tell you more about the launch?"))
    assert model.offer_visible and model.offer.startswith("Shall I")
    clock.now += TAP_GUARD_S + 0.01
    assert model.accept_offer() == YES
    model.asked(2, YES)
    assert not model.offer_visible
    assert ("visitor", OFFER_ACCEPTED) in model.entries()


def test_unanswered_is_shown_calmly_like_any_answer():
    model, _ = make()
    question = "Who cooked dinner on the Moon?"
    model.asked(1, model.tap(question))
    answer(model, 1, "t3", ["The notes don't say.", "I can tell you about the crew."], status="unanswered")
    model.on_event(finished(1, status="unanswered", topic="t3"))
    assert model.state is State.IDLE
    assert model.status()[2] != "problem"
    assert [text for who, text in model.entries() if who == "guide"] == [
        "The notes don't say.",
        "I can tell you about the crew.",
    ]


def test_not_understood_holds_then_returns_to_idle_and_stays_uncaptioned():
    model, clock = make()
    model.on_event(ev.TurnStarted(turn_id=4, source="voice"))
    answer(model, 4, "", [], status="not_understood")
    assert model.state is State.NOT_UNDERSTOOD
    model.on_event(ev.SentenceStarted(turn_id=4, index=0, text="Sorry?"))
    model.on_event(finished(4, status="not_understood"))
    assert model.state is State.NOT_UNDERSTOOD and model.entries() == []
    clock.now += NOT_UNDERSTOOD_HOLD_S + 0.1
    model.tick()
    assert model.state is State.IDLE


def test_idle_visitor_gets_still_there_then_a_new_session():
    model, clock = make(idle_reset_s=5.0, still_there_s=3.0)
    model.asked(1, model.tap(model.chips[0].question))
    answer(model, 1, "t0", ["Hello."])
    model.on_event(finished(1, topic="t0"))
    clock.now += 5.1
    assert not model.tick() and model.state is State.STILL_THERE
    model.touched()
    assert model.state is State.IDLE and model.still_there_remaining is None
    clock.now += 5.1
    model.tick()
    clock.now += 3.1
    assert model.tick()  # reset the engine's session now
    assert model.state is State.ATTRACT and model.entries() == []


def test_the_newest_turn_is_in_full_and_the_one_before_fades():
    model, clock = make()
    for turn in (1, 2, 3):
        clock.now += 1
        model.asked(turn, model.tap(f"Question {turn}?"))
        answer(model, turn, f"t{turn}", [f"Answer {turn}a.", f"Answer {turn}b."])
        model.on_event(finished(turn, topic=f"t{turn}"))
    blocks = model.captions()
    assert [b.style for b in blocks] == [
        "VisitorCaption",
        "GuideCaptionOld",
        "VisitorCaption",
        "GuideCaption",
    ]
    assert blocks[-1].parts == ("Answer 3a.", "Answer 3b.")
    assert "Question 1" not in " ".join(b.text for b in blocks)
