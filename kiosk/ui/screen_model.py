"""What the visitor screen shows, as plain data: its state, captions, suggested questions and notices.

No Qt here (tested like :mod:`kiosk.ui.ops_model`).  The window feeds it engine events, taps and the
clock (``tick(now)``) and renders what it says; timers are deadlines compared with ``now``.

* States are a :class:`State` enum: ``loading`` -> ``attract`` (no conversation) <-> ``listening`` ->
  ``thinking`` -> ``speaking`` -> ``idle`` (a conversation is open); ``not_understood`` for a while when
  the question was not caught; ``still_there`` while the idle countdown runs, then a new session.
* The suggested questions stay where they are while a finger may be on its way to one: during a turn,
  and until the screen has been quiet (no touch, no voice, no turn) for ``Timing.chips_settle_s``.  Only
  then does the answered topic leave and the attract loop rotate them: a visitor reaching for a chip
  after an answer, or as the 45 s rotation comes round, finds it where they saw it.
* Taps are debounced (one ask per ``TAP_GUARD_S``) and a tap on the question being answered is ignored.
* While the models load the chips are shown, disabled, with a calm line; a tap then does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.engine import events as ev
from kiosk.ui.caption_log import Caption, CaptionLog
from kiosk.ui.screen_text import NO_MICROPHONE, NO_SOUND, PILL_TEXT, State, failure_text, status_text

BUSY = frozenset({State.THINKING, State.SPEAKING})
LISTEN_RELEASE_S = 1.5  # back to idle when the voice stops without becoming a question
NOT_UNDERSTOOD_HOLD_S = 2.5
TAP_GUARD_S = 0.8  # one ask per tap, however many times the finger bounces; no reflow under a finger
CHIP_COUNT = 4
YES = "yes"  # what an accepted offer asks (the engine treats "yes" after an offer as accepting it)
OFFER_ACCEPTED = "Yes, tell me more."  # the visitor's caption for it


@dataclass(frozen=True)
class Chip:
    topic: str
    question: str


@dataclass(frozen=True)
class Timing:
    idle_reset_s: float = 60.0
    still_there_s: float = 10.0
    attract_interval_s: float = 45.0
    # how long the screen is left alone before the chips may change (a reach and a hesitation)
    chips_settle_s: float = 8.0


class ScreenModel:
    """The visitor screen's state machine.  Every input returns nothing or a small decision; the
    ``revision`` counter changes whenever something shown changed."""

    def __init__(
        self,
        title: str,
        greeting: str,
        chips: list[Chip],
        timing: Timing = Timing(),
        hands_free: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timing = timing
        self.hands_free = hands_free
        self.clock = clock
        self.state = State.LOADING
        self.ready = False
        self.microphone = False
        self.revision = 0
        self.notices: dict[str, str] = {}
        self.offer = ""
        self.log = CaptionLog()
        self._current: int | None = None
        self._current_question = ""
        self._conversation = False
        self._asked: set[str] = set()
        self._attract_index = 0
        self._chip_offset = 0
        self._chips_due = False  # a change is waiting for the screen to be quiet
        now = clock()
        self._last_activity = now
        self._last_ask = -1e9
        self._next_attract = now + timing.attract_interval_s
        self._still_deadline: float | None = None
        self._nu_until: float | None = None
        self._release_at: float | None = None
        self._mic_lost = False  # listening, but the microphone failed (InputProblem) and is being retried
        self._unheard: set[int] = set()  # turns whose voice could not be heard
        self.set_exhibit(title, greeting, chips)

    # --- what is shown --------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._current is not None or self.state in BUSY

    @property
    def chips_enabled(self) -> bool:
        return self.ready

    @property
    def stop_visible(self) -> bool:
        return self.state in (State.THINKING, State.SPEAKING, State.NOT_UNDERSTOOD)

    @property
    def offer_visible(self) -> bool:
        return bool(self.offer) and self.ready and not self.busy and self.state != State.STILL_THERE

    @property
    def pill(self) -> str:
        return PILL_TEXT[self.state]

    @property
    def still_there_remaining(self) -> float | None:
        if self._still_deadline is None:
            return None
        return max(0.0, self._still_deadline - self.clock())

    def notice_text(self) -> str:
        return "\n".join(dict.fromkeys(t for t in self.notices.values() if t))

    def attract_line(self) -> str:
        questions = [c.question for c in self._all_chips]
        if self._attract_index % 2 == 0 or not questions:
            return self.greeting
        question = questions[(self._attract_index // 2) % len(questions)]
        return f"Try asking me: \u201c{question}\u201d"

    def status(self) -> tuple[str, str, str]:
        """(status line, hint, tone): tone is one of plain, soft, listening, thinking, problem."""
        return status_text(self.state, self.microphone, self.hands_free)

    def captions(self) -> list[Caption]:
        """The blocks to show, oldest first: the previous turn faded, the newest in full."""
        return self.log.blocks(self.attract_line() if self.greeting else "")

    def entries(self) -> list[tuple[str, str]]:
        return self.log.entries()

    # --- the exhibit and readiness --------------------------------------------------------------------

    def set_exhibit(self, title: str, greeting: str, chips: list[Chip]) -> None:
        self.title, self.greeting = title, greeting
        self._all_chips = [c for c in chips if c.question]
        self.chips: tuple[Chip, ...] = ()
        self._refresh_chips()
        self._changed()

    def set_ready(self, missing: tuple[str, ...] = ()) -> None:
        for stage in missing:
            self.set_notice(f"model:{stage}", failure_text(stage))
        if not self.ready:
            self.ready = True
            if self.state == State.LOADING:
                self._set(State.ATTRACT)
        self._changed()

    def set_microphone(self, available: bool) -> None:
        self.microphone = available
        self._changed()

    def set_hands_free(self, on: bool) -> None:
        self.hands_free = on
        self._changed()

    def set_notice(self, key: str, text: str) -> None:
        if text:
            self.notices[key] = text
        else:
            self.notices.pop(key, None)
        self._changed()

    # --- the visitor ----------------------------------------------------------------------------------

    def tap(self, question: str, now: float | None = None) -> str | None:
        """A chip, the keyboard's Ask or the offer button: the question to ask now, or None (ignored)."""
        now = self.clock() if now is None else now
        self.touched(now)
        question = " ".join(question.split())
        if not question or not self.ready:
            return None
        if now - self._last_ask < TAP_GUARD_S:
            return None  # the same finger, bouncing
        if self.busy and question == self._current_question:
            return None  # already being answered
        self._last_ask = now
        return question

    def accept_offer(self, now: float | None = None) -> str | None:
        return self.tap(YES, now) if self.offer_visible else None

    def asked(self, turn_id: int, question: str) -> None:
        """The engine took the question (``engine.ask`` returned this turn)."""
        self.set_notice("ask", "")
        self._begin_turn(turn_id, question)
        self.log.turn(turn_id).question = OFFER_ACCEPTED if question == YES else question
        self._set(State.THINKING)

    def ask_failed(self) -> None:
        self.set_notice("ask", "Sorry, I can't answer that right now. Please try again in a moment.")

    def stop(self) -> None:
        """The visitor tapped Stop: silence now, without waiting for the engine's events."""
        self.touched()
        self._current = None
        self._current_question = ""
        self._set(self._rest_state())
        self._chips_due = True

    def talk_pressed(self) -> bool:
        """The talk button held: True when an answer must be stopped first."""
        self.touched()
        if self.hands_free or not self.microphone:
            return False
        stop_first = self.busy or self.state == State.NOT_UNDERSTOOD
        if stop_first:
            self._current = None
            self._current_question = ""
        self._release_at = None
        self._set(State.LISTENING)
        return stop_first

    def talk_released(self) -> None:
        if not self.hands_free and self.microphone:
            self._release_at = self.clock() + LISTEN_RELEASE_S + 1.0

    def touched(self, now: float | None = None) -> None:
        """Any touch: the visitor is here (and "Still there?" goes away)."""
        self._last_activity = self.clock() if now is None else now
        if self._still_deadline is not None:
            self._still_deadline = None
            if self.state == State.STILL_THERE:
                self._set(self._rest_state())
            self._changed()

    # --- the clock ------------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> bool:
        """Deadlines; True when the session must be reset now (the countdown ran out)."""
        now = self.clock() if now is None else now
        if self._still_deadline is not None:
            if now >= self._still_deadline:
                self.reset()
                return True
            self._changed()  # the countdown moves
            return False
        if self._release_at is not None and now >= self._release_at:
            self._release_at = None
            if self.state == State.LISTENING and self._current is None:
                self._set(self._rest_state())
        if self._nu_until is not None and now >= self._nu_until:
            self._nu_until = None
            if self.state == State.NOT_UNDERSTOOD:
                self._set(self._rest_state())
        if self.state == State.ATTRACT and now >= self._next_attract and self._quiet(now):
            self._attract_index += 1  # (a touch postpones the rotation until the screen is quiet again)
            self._chip_offset += 1
            self._chips_due = True
            self._next_attract = now + self.timing.attract_interval_s
        if self._chips_due and self._quiet(now):
            before = self.chips
            self._refresh_chips()
            self._chips_due = False
            if self.chips != before:
                self._changed()
        # the technician panel being open does not hold this off: a visitor who opened it (or a technician
        # who forgot it) must not leave the last visitor's conversation for the next one
        if (
            self._conversation
            and not self.busy
            and self.state not in (State.LISTENING, State.LOADING)
            and now - self._last_activity >= self.timing.idle_reset_s
        ):
            self._still_deadline = now + self.timing.still_there_s
            self._set(State.STILL_THERE)
        return False

    def reset(self) -> None:
        """A new visitor: the conversation is forgotten, the attract loop returns."""
        self._still_deadline = None
        self.log.clear()
        self._conversation = False
        self._current = None
        self._current_question = ""
        self._asked.clear()
        self._chip_offset = self._attract_index = 0
        self._chips_due = False
        self.offer = ""
        self._last_activity = self.clock()
        self._next_attract = self._last_activity + self.timing.attract_interval_s
        self._refresh_chips()
        self._set(State.ATTRACT if self.ready else State.LOADING)
        self._changed()

    # --- engine events --------------------------------------------------------------------------------

    def on_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.EngineReady):
            self.set_ready(e.missing)
        elif isinstance(e, ev.ModelFailed):
            self.set_notice(f"model:{e.stage}", failure_text(e.stage))
        elif isinstance(e, ev.InputLevel):
            self._on_level(e)
        elif isinstance(e, ev.InputProblem):
            self.microphone_lost()
        elif isinstance(e, ev.VoiceUnheard):
            self._unheard.add(e.turn_id)
            self.set_notice("sound", NO_SOUND)
        elif isinstance(e, ev.TurnStarted):
            self._begin_turn(e.turn_id, self._current_question if e.turn_id == self._current else "")
            self._set(State.THINKING)
        elif isinstance(e, ev.SpeechEnded):
            if e.turn_id == self._current and self.state == State.LISTENING:
                self._set(State.THINKING)
        elif isinstance(e, ev.Transcribed):
            if e.understood and e.turn_id not in self.log.skipped and e.text.strip():
                self.log.turn(e.turn_id).question = e.text.strip()
                if e.turn_id == self._current:
                    self._current_question = e.text.strip()
                self._changed()
        elif isinstance(e, ev.AnswerChosen):
            self._on_answer(e)
        elif isinstance(e, ev.SentenceStarted):
            self._on_sentence(e)
        elif isinstance(e, ev.TurnFinished):
            self._on_finished(e)

    def microphone_lost(self) -> None:
        """The microphone failed (it is retried): no invitation to speak, and plain words, until it hears
        again.  What the device said is the technician's (the ops panel lists it), never the visitor's."""
        self._mic_lost = self.microphone or self._mic_lost
        self.microphone = False
        self.set_notice("input", NO_MICROPHONE)

    def _on_level(self, e: ev.InputLevel) -> None:
        if "input" in self.notices:
            self.set_notice("input", "")
        if self._mic_lost:  # frames again: the microphone is back
            self._mic_lost = False
            self.set_microphone(True)
        if e.speaking:
            self._release_at = None
            self.touched()
            if self.state in (State.ATTRACT, State.IDLE, State.NOT_UNDERSTOOD) and self._current is None:
                self._set(State.LISTENING)
        elif self.state == State.LISTENING and self._release_at is None and self.hands_free:
            self._release_at = self.clock() + LISTEN_RELEASE_S

    def _on_answer(self, e: ev.AnswerChosen) -> None:
        if e.topic:
            self._asked.add(e.topic)  # leaves the suggestions when the turn ends, not under a finger
        if e.status == "not_understood":
            self.log.skip(e.turn_id)
            if e.turn_id == self._current:
                self._set(State.NOT_UNDERSTOOD)
            self._changed()

    def _on_sentence(self, e: ev.SentenceStarted) -> None:
        if e.turn_id != self._current:
            return
        self.touched()
        if e.turn_id in self.log.skipped:
            self._set(State.NOT_UNDERSTOOD)
            return
        self.log.turn(e.turn_id).sentences[e.index] = e.text
        self._set(State.SPEAKING)
        self._changed()

    def _on_finished(self, e: ev.TurnFinished) -> None:
        if e.first_audio_seconds is not None and e.status != "cancelled" and e.turn_id not in self._unheard:
            self.set_notice("sound", "")  # heard again
        self._unheard.discard(e.turn_id)
        if e.question and e.turn_id not in self.log.skipped and e.status != "cancelled":
            known = [t for t in self.log.turns if t.turn_id == e.turn_id]
            if not known or not known[0].question:
                self.log.turn(e.turn_id).question = e.question
        if e.turn_id != self._current:
            self._changed()
            return
        self._current = None
        self._current_question = ""
        self.touched()
        self.offer = e.offer if e.status in ("ok", "unanswered") else ""
        if e.turn_id in self.log.skipped and e.status != "cancelled":
            self._set(State.NOT_UNDERSTOOD)
            self._nu_until = self.clock() + NOT_UNDERSTOOD_HOLD_S
        elif self.state != State.LISTENING:
            self._set(self._rest_state())
        self._chips_due = True  # the answered topic leaves once the screen is quiet
        self._changed()

    # --- inside ---------------------------------------------------------------------------------------

    def _begin_turn(self, turn_id: int, question: str) -> None:
        self._current = turn_id
        self._current_question = question
        self._conversation = True
        self._release_at = self._nu_until = None
        self.offer = ""
        self.touched()

    def _quiet(self, now: float) -> bool:
        """No finger can be on its way to a chip: nothing touched, said or answered for a while."""
        return (
            self._current is None
            and self.state not in (State.LISTENING, State.THINKING, State.SPEAKING, State.LOADING)
            and now - self._last_activity >= self.timing.chips_settle_s
        )

    def _refresh_chips(self) -> None:
        if self._current is not None or self.state in BUSY:
            return  # frozen during a turn
        fresh = [c for c in self._all_chips if c.topic not in self._asked] or self._all_chips
        if not fresh:
            self.chips = ()
            return
        start = (self._chip_offset * CHIP_COUNT) % len(fresh)
        rotated = fresh[start:] + fresh[:start]
        self.chips = tuple(rotated[:CHIP_COUNT])

    def _rest_state(self) -> State:
        if not self.ready:
            return State.LOADING
        return State.IDLE if self._conversation else State.ATTRACT

    def _set(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self._changed()

    def _changed(self) -> None:
        self.revision += 1
