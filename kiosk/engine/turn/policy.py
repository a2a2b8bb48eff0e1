"""When a pause ends the turn: ask the end-of-turn model at the speculative pause, wait when it says
"incomplete", and merge a fragment with its continuation.

The policy wraps the endpointer (kiosk/engine/vad.py) and has its interface (``feed`` a frame, get
utterance events), adding ``DECIDED`` events (the verdicts, for telemetry) and ``merge_candidate`` on a
``STARTED`` that follows the last turn closely.  Rules:

* at the speculative pause the utterance goes to the model on its own worker thread, so the listener never
  waits for it and it overlaps the speculative recognition; the verdict is read on the next frame;
* "complete" (P >= ``threshold``) ends the turn at once; "incomplete" waits for more speech until the
  silence since the last word reaches ``max_wait_ms``, then the turn ends anyway ("timeout");
* after "incomplete", a speculative transcript that reads as a whole question (:meth:`EndOfTurn.heard`,
  ``heard.py``) ends the turn once the silence reaches ``question_wait_ms`` ("question");
* without a model (``backend = "none"``), or when it fails (an ``error`` verdict each time, logged once),
  the silence rule of ``[vad] trailing_silence_ms`` ends that utterance ("silence");
* speech starting within ``merge_window_ms`` of the last end is a merge candidate: the pipeline, which
  knows how much of that answer has played, calls :meth:`EndOfTurn.merge`; once accepted, the fragment's
  audio leads the new utterance, so recognition and the model hear one question.

``inline=True`` runs the model on the calling thread and counts its wall time as stream time (the verdict
is read that many frames later): the benchmark and tests replay audio faster than real time with it.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from kiosk.config import TurnConfig, VadConfig
from kiosk.engine.turn.heard import reads_as_whole_question
from kiosk.engine.turn.model import TurnModel
from kiosk.engine.vad import FRAME_SECONDS, Endpointer, FrameClassifier, Vad, VadEvent

log = logging.getLogger(__name__)


def _frames(ms: int) -> int:
    return max(1, round(ms / 1000 / FRAME_SECONDS))


class _Verdict:
    """One model call: its result or error, and when (in stream frames) it may be read."""

    def __init__(self, future: Future[tuple[float, float]] | None = None) -> None:
        self.future = future
        self.ready_at = 0  # inline only
        self.probability: float | None = None
        self.cpu_s = 0.0
        self.error: BaseException | None = None

    def ready(self, position: int) -> bool:
        if self.future is None:
            return position >= self.ready_at
        if not self.future.done():
            return False
        try:
            self.probability, self.cpu_s = self.future.result()
        except BaseException as exc:  # noqa: BLE001 - any model failure falls back to the silence rule
            self.error = exc
        return True


def _run(model: TurnModel, audio: np.ndarray) -> tuple[float, float]:
    started = time.thread_time()
    probability = model.probability(audio)
    return probability, time.thread_time() - started


class EndOfTurn:
    """The endpointer plus the end-of-turn decision. Feed it every frame, in order, from one thread."""

    def __init__(
        self,
        vad: VadConfig,
        turn: TurnConfig,
        classifier: FrameClassifier | None = None,
        model: TurnModel | None = None,
        inline: bool = False,
    ) -> None:
        self.turn = turn
        self.model = model
        self.inline = inline
        trailing = max(turn.max_wait_ms, vad.trailing_silence_ms) if model else vad.trailing_silence_ms
        self.endpointer = Endpointer(vad, classifier, trailing_silence_ms=trailing)
        self._silence_rule = _frames(vad.trailing_silence_ms)
        self._question_wait = _frames(turn.question_wait_ms) if turn.question_wait_ms else 0
        self._incomplete = False  # the model called this pause incomplete
        self._whole_question = False  # what recognition heard at this pause reads as a whole question
        self._merge_window = round(turn.merge_window_ms / 1000 / FRAME_SECONDS)
        self._executor = None if inline or model is None else ThreadPoolExecutor(1, "end-of-turn")
        self._verdict: _Verdict | None = None
        self._fallback = False  # the model failed on this utterance: the silence rule decides
        self._failed_before = False
        self._speech_end = 0.0
        self._last: np.ndarray | None = None  # the utterance last ended (a merge may continue it)
        self._gap: list[np.ndarray] = []  # frames since it ended
        self._candidate: np.ndarray | None = None  # what a merge would put in front
        self._prefix: np.ndarray | None = None  # the accepted merge's fragment (+ gap)

    # the endpointer's interface, for the pipeline
    @property
    def speaking(self) -> bool:
        return self.endpointer.speaking

    @property
    def in_utterance(self) -> bool:
        return self.endpointer.in_utterance

    @property
    def position_seconds(self) -> float:
        return self.endpointer.position_seconds

    def feed(self, frame: np.ndarray) -> list[VadEvent]:
        was_in_utterance = self.endpointer.in_utterance
        raw = self.endpointer.feed(frame)
        if not was_in_utterance and self._last is not None:
            self._gap.append(frame)
            if len(self._gap) > self._merge_window:
                self._last, self._gap = None, []
        events: list[VadEvent] = []
        for event in raw:
            events.extend(self._on(event))
        if self.endpointer.in_utterance and not any(e.kind is Vad.ENDED for e in events):
            events.extend(self._decide())
        return events

    def heard(self, text: str) -> None:
        """What the speculative recognition heard at the current pause (the pipeline's, from its thread)."""
        if self.endpointer.in_utterance and not self.endpointer.speaking:
            self._whole_question = reads_as_whole_question(text)

    def merge(self, accept: bool) -> None:
        """After a ``merge_candidate`` STARTED: put the last utterance in front of this one, or forget it."""
        self._prefix = self._candidate if accept else None
        self._candidate = None
        self._last, self._gap = None, []

    def reset(self) -> None:
        self.endpointer.reset()
        self._drop_verdict()
        self._fallback = self._incomplete = self._whole_question = False
        self._last, self._gap, self._candidate, self._prefix = None, [], None, None

    def flush(self) -> list[VadEvent]:
        """The input has ended (the end of an ``--input`` file): an utterance still open ends now, by the
        silence rule, since nothing more will come to wait for.  Without this a question that ended less
        than ``max_wait_ms`` before the end of the file was dropped: no turn, no message."""
        if not self.endpointer.in_utterance:
            return []
        return self._close(self._whole(self.endpointer.end_now()), "silence")

    def close(self) -> None:
        self._drop_verdict()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- rules --------------------------------------------------------------------------------------

    def _on(self, event: VadEvent) -> list[VadEvent]:
        if event.kind is Vad.STARTED:
            self._prefix = None
            if self._last is None or not self._merge_window:
                return [event]
            # the new utterance already holds its pre-roll: take only the gap before it
            before = max(0, len(self._gap) - self.endpointer.utterance_frames)
            self._candidate = np.concatenate([self._last, *self._gap[:before]])
            self._last, self._gap = None, []
            return [replace(event, merge_candidate=True)]
        if event.kind is Vad.PAUSED:
            event = self._whole(event)
            self._speech_end = event.speech_end
            self._incomplete = self._whole_question = False
            self._ask(event)
            return [event]
        if event.kind is Vad.RESUMED:
            self._drop_verdict()
            self._fallback = self._incomplete = self._whole_question = False
            return [event]
        if event.kind is Vad.ENDED:  # the endpointer's own limit: max_wait_ms, or a monologue cut
            outcome = "timeout" if self.model is not None and not self._fallback else "silence"
            return self._close(self._whole(event), outcome, record=not event.cut)
        return [event]

    def _decide(self) -> list[VadEvent]:
        verdict = self._verdict
        if verdict is not None and verdict.ready(self.endpointer.position):
            self._verdict = None
            if verdict.error is not None:
                self._fallback = True
                message = str(verdict.error).splitlines()[0][:160] if str(verdict.error) else "error"
                if not self._failed_before:  # one line, however often it fails; every failure is counted
                    log.warning("end of turn: the model failed (%s); the silence rule decides", message)
                self._failed_before = True
                return [VadEvent(Vad.DECIDED, outcome="error", message=message)]
            assert verdict.probability is not None
            if verdict.probability >= self.turn.threshold:
                return self._close(self._whole(self.endpointer.end_now()), "complete", cpu_s=verdict.cpu_s)
            self._incomplete = True
            return [self._decision("incomplete", verdict.cpu_s)]
        if (
            self._incomplete
            and self._whole_question
            and self._question_wait
            and self.endpointer.silence_frames >= self._question_wait
        ):
            return self._close(self._whole(self.endpointer.end_now()), "question")
        if (self.model is None or self._fallback) and self.endpointer.silence_frames >= self._silence_rule:
            return self._close(self._whole(self.endpointer.end_now()), "silence")
        return []

    def _ask(self, event: VadEvent) -> None:
        self._drop_verdict()
        if self.model is None or self._fallback or event.audio is None:
            return
        if self._executor is not None:
            self._verdict = _Verdict(self._executor.submit(_run, self.model, event.audio))
            return
        verdict = _Verdict()
        started = time.perf_counter()
        try:
            verdict.probability, verdict.cpu_s = _run(self.model, event.audio)
        except Exception as exc:  # noqa: BLE001 - reported by _decide, like the threaded path
            verdict.error = exc
        verdict.ready_at = self.endpointer.position + math.ceil(
            (time.perf_counter() - started) / FRAME_SECONDS
        )
        self._verdict = verdict

    def _close(
        self, ended: VadEvent, outcome: str, cpu_s: float = 0.0, record: bool = True
    ) -> list[VadEvent]:
        self._drop_verdict()
        self._fallback = self._incomplete = self._whole_question = False
        self._prefix = None
        self._speech_end = ended.speech_end
        self._last, self._gap = (ended.audio, []) if ended.audio is not None and not ended.cut else (None, [])
        if not record:
            return [ended]
        return [self._decision(outcome, cpu_s), ended]

    def _decision(self, outcome: str, cpu_s: float = 0.0) -> VadEvent:
        seconds = max(0.0, self.endpointer.position_seconds - self._speech_end)
        return VadEvent(Vad.DECIDED, outcome=outcome, decision_s=seconds, cpu_s=cpu_s)

    def _whole(self, event: VadEvent) -> VadEvent:
        """The event's audio with an accepted merge's fragment in front."""
        if self._prefix is None or event.audio is None:
            return event
        return replace(event, audio=np.concatenate([self._prefix, event.audio]))

    def _drop_verdict(self) -> None:
        if self._verdict is not None and self._verdict.future is not None:
            self._verdict.future.cancel()
        self._verdict = None
