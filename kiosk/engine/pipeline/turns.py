"""A turn's record and its bookkeeping: begun, committed (its held events published), finished, cancelled;
and the visitor's session around the turns (started, touched, ended after quiet).

A speculative turn holds its events until it is committed; one dropped before that publishes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.engine.answer import llm_wording
from kiosk.engine.cancel import CancelToken
from kiosk.engine.stage import Answer, Answerer, SpeechChunk, SpeechRecognizer, SpeechSynthesizer
from kiosk.engine.turn.policy import EndOfTurn


class SpeechListener(Protocol):
    """Something that follows the guide's voice (the face animator)."""

    def begin_answer(self, turn_id: int, emotion: Emotion) -> None: ...

    def add_chunk(self, turn_id: int, chunk: SpeechChunk) -> None: ...

    def end_answer(self, turn_id: int) -> None: ...


@dataclass
class Turn:
    id: int
    source: str  # voice | text
    audio: np.ndarray | None = None
    question: str = ""
    speech_end_t: float = 0.0
    cut: bool = False
    cancel: CancelToken = field(default_factory=CancelToken)
    committed: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)  # claimed by the one who ends it
    done: threading.Event = field(default_factory=threading.Event)  # ended, and TurnFinished published
    held: list[ev.Event] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    topic: str | None = None
    emotion: Emotion = Emotion.NEUTRAL
    spoken: list[str] = field(default_factory=list)
    first_audio_s: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    answer: Answer | None = None  # what the answerer planned, committed once it was played
    unheard: str = ""  # why the voice cannot be heard (then the rest of the answer is shown in writing)


@dataclass
class Stages:
    """The loaded stages a pipeline uses; a missing one (None) degrades the kiosk, it does not stop it."""

    asr: SpeechRecognizer | None
    answerer: Answerer | None
    tts: SpeechSynthesizer | None
    endpointer_factory: Callable[[], EndOfTurn] | None


class TurnBook:
    """Turns and sessions (a mixin of :class:`~kiosk.engine.pipeline.Pipeline`, whose state it shares)."""

    def _begin(self, turn: Turn, committed: bool) -> None:
        if committed:
            self._commit(turn, None)
        worker = threading.Thread(target=self._run_turn, args=(turn,), name=f"turn-{turn.id}", daemon=True)
        worker.start()

    def _commit(self, turn: Turn, endpoint_s: float | None) -> None:
        with self._lock:
            previous = self._active
            self._active = turn
        if previous is not None and previous is not turn and not previous.finished.is_set():
            self._cancel_turn(previous, "new_turn")
        self._touch_session(new_turn=True)
        with turn.lock:
            held, turn.held = turn.held, []
            turn.committed.set()
        self.bus.publish(ev.TurnStarted(turn_id=turn.id, source=turn.source, t=turn.speech_end_t))
        if turn.source == "voice":
            seconds = 0.0 if turn.audio is None else len(turn.audio) / 16000
            self.bus.publish(
                ev.SpeechEnded(turn_id=turn.id, audio_seconds=seconds, cut=turn.cut, t=turn.speech_end_t)
            )
        if endpoint_s is not None:
            self.bus.publish(ev.StageFinished(turn_id=turn.id, stage="vad_endpoint", seconds=endpoint_s))
        for event in held:
            self.bus.publish(event)

    def _emit(self, turn: Turn, event: ev.Event) -> None:
        """Publish now if the turn is committed, else hold it until it is (or drop it with the turn)."""
        with turn.lock:
            if turn.cancel.cancelled and turn.cancel.reason == "resumed":
                return
            if not turn.committed.is_set():
                turn.held.append(event)
                return
        if turn.finished.is_set():
            return
        self.bus.publish(event)

    def _timed(self, turn: Turn, stage: str, seconds: float, **info: float) -> None:
        turn.timings[stage] = seconds
        self._emit(turn, ev.StageFinished(turn_id=turn.id, stage=stage, seconds=seconds, info=dict(info)))

    def _cancel_turn(self, turn: Turn, reason: str) -> None:
        turn.cancel.cancel(reason)
        if not turn.committed.is_set():
            return
        with self._lock:
            playing = self._active is turn
        if playing:
            with self._sink_lock:
                self.sink.stop()
        self._finish(turn, "cancelled")

    def _finish(self, turn: Turn, status: str) -> None:
        with turn.lock:
            if turn.finished.is_set():
                return
            turn.finished.set()
        try:
            self._close_turn(turn, status)
        finally:
            turn.done.set()  # after TurnFinished, so whoever waits for the turn also sees its record

    def _close_turn(self, turn: Turn, status: str) -> None:
        turn.status = status
        for listener in self.listeners:
            listener.end_answer(turn.id)
        if not turn.committed.is_set():
            return
        answer, offer = turn.answer, ""
        if answer is not None and status not in ("cancelled", "error") and self.stages.answerer is not None:
            # the next question may build on it ("yes", "what did he do?")
            self.stages.answerer.commit(answer)
            offer = answer.offer if answer.offer and answer.offer in turn.spoken else ""
        duration = time.monotonic() - turn.speech_end_t
        self.bus.publish(
            ev.TurnFinished(
                turn_id=turn.id,
                status=status,
                topic=turn.topic,
                emotion=turn.emotion,
                first_audio_seconds=turn.first_audio_s,
                duration_seconds=duration,
                timings=dict(turn.timings),
                question=turn.question,
                answer=" ".join(turn.spoken),
                offer=offer,
                llm_wording=llm_wording(answer.info) if answer is not None and status == "ok" else "",
            )
        )
        self._touch_session(new_turn=False)

    # --- sessions and privacy -----------------------------------------------------------------------

    def _touch_session(self, new_turn: bool) -> None:
        self._last_activity = time.monotonic()
        if not new_turn:
            return
        if self._session_started is None:
            self._session_started = self._last_activity
            self._session_turns = 0
            self.bus.publish(ev.SessionStarted())
        self._session_turns += 1

    def _check_session_timeout(self) -> None:
        if self._session_started is None or self.busy:
            return
        if time.monotonic() - self._last_activity > self.config.session.idle_timeout_s:
            self._end_session()
            if self.stages.answerer is not None:
                self.stages.answerer.reset_session()

    def _end_session(self) -> None:
        if self._session_started is None:
            return
        duration = time.monotonic() - self._session_started
        self._session_started = None
        self.bus.publish(ev.SessionEnded(duration_seconds=duration, turns=self._session_turns))

    def _store_visitor_audio(self, turn: Turn) -> None:
        """Only when configured; written when the turn finishes uncancelled (kiosk.engine.visitor_audio)."""
        if self._audio_store is not None:
            self._audio_store.hold(turn.id, turn.audio)
