"""A turn's worker: recognise the question, ask the answerer, and hand its sentences to the speaker;
a stage that fails or hangs ends the turn with an apology in the same voice.
"""

from __future__ import annotations

import logging
import time

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.engine import watchdog
from kiosk.engine.cancel import Cancelled
from kiosk.engine.pipeline.turns import Turn
from kiosk.engine.replies import NOT_UNDERSTOOD_REPLY
from kiosk.engine.stage import Answer, Transcript

log = logging.getLogger(__name__)

ERROR_REPLY = "Sorry, something went wrong on my side. Please ask me again."


class Replying:
    """A turn's worker thread (a mixin of :class:`~kiosk.engine.pipeline.Pipeline`, whose state it shares)."""

    def _run_turn(self, turn: Turn) -> None:
        try:
            self._answer_turn(turn)
        except Cancelled:
            pass
        except watchdog.StageTimeout as exc:  # asr or the answerer hung before anything was said
            self._timed_out(turn, exc)
            if not turn.cancel.cancelled:
                self._speak(turn, iter([watchdog.TIMEOUT_REPLY]), "error")
        except Exception as exc:
            log.exception("turn %d failed", turn.id)
            stage = "asr" if turn.source == "voice" and not turn.question else self._answer_stage
            self._emit(
                turn, ev.StageFailed(turn_id=turn.id, stage=stage, kind="exception", message=str(exc)[:200])
            )
            if not turn.cancel.cancelled:
                self._speak(turn, iter([ERROR_REPLY]), "error")

    def _answer_turn(self, turn: Turn) -> None:
        if turn.source == "voice":
            transcript = self._recognise(turn)
            turn.cancel.raise_if_cancelled()
            if not transcript.understood:
                turn.status = "not_understood"
                self._emit(
                    turn,
                    ev.AnswerChosen(
                        turn_id=turn.id, status="not_understood", topic=None, emotion=Emotion.NEUTRAL
                    ),
                )
                self._speak(turn, iter([NOT_UNDERSTOOD_REPLY]), "not_understood")
                return
        answerer = self.stages.answerer
        if answerer is None:
            self._emit(
                turn, ev.StageFailed(turn_id=turn.id, stage="retrieval", kind="load", message="no answerer")
            )
            self._speak(turn, iter([ERROR_REPLY]), "error")
            return
        started = time.monotonic()
        answer = watchdog.call(
            self._answer_stage,
            self._deadline,
            lambda: answerer.answer(turn.question, turn.cancel),
            turn.cancel,
        )
        turn.cancel.raise_if_cancelled()
        retrieval_s = answer.info.get("retrieval_seconds", time.monotonic() - started)
        if answer.status not in ("filtered",) and retrieval_s:
            self._timed(turn, "retrieval", retrieval_s, score=answer.info.get("score", 0.0))
        turn.topic, turn.emotion, turn.answer = answer.topic, answer.emotion, answer
        self._emit(
            turn,
            ev.AnswerChosen(
                turn_id=turn.id, status=answer.status, topic=answer.topic, emotion=answer.emotion
            ),
        )
        self._speak(turn, self._sentences(turn, answer, started), answer.status, answer)

    def _recognise(self, turn: Turn) -> Transcript:
        asr = self.stages.asr
        assert asr is not None and turn.audio is not None
        self._emit(turn, ev.StageStarted(turn_id=turn.id, stage="asr"))
        started = time.monotonic()
        transcript = watchdog.call(
            "asr", self._deadline, lambda: asr.transcribe(turn.audio, turn.cancel), turn.cancel
        )
        seconds = time.monotonic() - started
        self._timed(turn, "asr", seconds, audio_seconds=transcript.audio_seconds)
        turn.question = transcript.text
        self._emit(
            turn, ev.Transcribed(turn_id=turn.id, text=transcript.text, understood=transcript.understood)
        )
        return transcript

    def _sentences(self, turn: Turn, answer: Answer, started: float):
        """The answer's sentences, timing an LLM's first sentence and whole generation as it goes."""
        generated = (
            self.stages.answerer is not None
            and self.stages.answerer.name != "retrieval"
            and not answer.info.get("canned")
        )
        first = True
        try:
            for sentence in watchdog.iterate(
                self._answer_stage, self._deadline, answer.sentences, turn.cancel
            ):
                turn.cancel.raise_if_cancelled()
                if first and generated:
                    self._timed(turn, "llm_first_sentence", time.monotonic() - started)
                first = False
                yield sentence
        except watchdog.StageTimeout as exc:  # the answer stopped coming: say sorry in the same voice
            self._timed_out(turn, exc)
            yield watchdog.TIMEOUT_REPLY
            return
        if generated and answer.status == "ok" and not answer.info.get("canned"):
            info = {k: float(v) for k, v in answer.info.items() if k in ("tokens", "tokens_per_second")}
            self._timed(turn, "llm", time.monotonic() - started, **info)
            if answer.info.get("oom"):
                self._emit(
                    turn,
                    ev.StageFailed(turn_id=turn.id, stage="llm", kind="oom", message="CUDA out of memory"),
                )
            elif answer.info.get("error"):
                self._emit(
                    turn,
                    ev.StageFailed(
                        turn_id=turn.id,
                        stage="llm",
                        kind="exception",
                        message="generation failed; answered from the notes",
                    ),
                )
        turn.emotion = Emotion.normalise(answer.emotion)

    @property
    def _answer_stage(self) -> str:
        answerer = self.stages.answerer
        return "retrieval" if answerer is None or answerer.name == "retrieval" else "llm"

    def _timed_out(self, turn: Turn, exc: watchdog.StageTimeout) -> None:
        """One line in the log, one counted StageFailed, the stage restarted; the turn ends as an error."""
        log.error("turn %d: %s; the stage is restarted", turn.id, exc)
        turn.status = "error"
        self._emit(turn, ev.StageFailed(turn_id=turn.id, stage=exc.stage, kind="timeout", message=str(exc)))
        instance = {"asr": self.stages.asr, "tts": self.stages.tts}.get(exc.stage, self.stages.answerer)
        watchdog.restart(exc.stage, instance)
