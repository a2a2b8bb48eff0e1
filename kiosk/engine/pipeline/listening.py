"""Listening: the listener thread reads the audio source, feeds the endpointer and turns its events into
speculative, committed, merged or cancelled turns; with hands-free off it records while the talk button
is held.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from kiosk.engine import events as ev
from kiosk.engine.audio_in import AudioSource, EndOfStream, SourceUnavailable
from kiosk.engine.pipeline.turns import Turn
from kiosk.engine.turn.policy import EndOfTurn
from kiosk.engine.vad import Vad, VadEvent

log = logging.getLogger(__name__)

LEVEL_INTERVAL_S = 0.1


class Listening:
    """The pipeline's listening half (a mixin of :class:`~kiosk.engine.pipeline.Pipeline`, whose state it
    shares)."""

    def start_listening(self, source: AudioSource) -> threading.Thread:
        if self.stages.endpointer_factory is None or self.stages.asr is None:
            raise RuntimeError("listening needs the VAD and ASR stages")
        self._stop_listening.clear()
        self._source = source
        self._listener = threading.Thread(target=self._listen, args=(source,), name="listener", daemon=True)
        self._listener.start()
        return self._listener

    def stop_listening(self) -> None:
        self._stop_listening.set()
        if self._listener is not None:
            self._listener.join(timeout=3.0)
            self._listener = None

    def _listen(self, source: AudioSource) -> None:
        assert self.stages.endpointer_factory is not None
        endpointer = self.stages.endpointer_factory()
        last_level = 0.0
        last_voiced_t = time.monotonic()
        heard: Turn | None = None  # the speculative turn whose transcript the endpointer was given
        try:
            source.open()
        except SourceUnavailable as exc:
            self.bus.publish(ev.InputProblem(message=str(exc)))
        while not self._stop_listening.is_set():
            try:
                frame = source.read(timeout=0.2)
            except EndOfStream:
                for vad_event in endpointer.flush():  # a question still open at the end of a file
                    self._on_vad(vad_event, last_voiced_t)
                break
            except SourceUnavailable as exc:
                self.bus.publish(ev.InputProblem(message=str(exc)))
                endpointer.reset()
                continue
            if frame is None:
                self._check_session_timeout()
                continue
            arrived = time.monotonic()
            if not self.hands_free:
                recording = self._ptt_frames
                if (
                    recording is not None
                    and len(recording) * len(frame) < self.config.vad.max_utterance_s * 16000
                ):
                    recording.append(frame)
                if arrived - last_level >= LEVEL_INTERVAL_S:
                    last_level = arrived
                    rms = float(np.sqrt(np.mean(np.square(frame))))
                    self.bus.publish(ev.InputLevel(rms=rms, speaking=recording is not None))
                continue
            if not self.config.vad.barge_in and self.busy:
                endpointer.reset()
                continue
            for vad_event in endpointer.feed(frame):
                if vad_event.merge_candidate:
                    endpointer.merge(self._merge_into_next())
                self._on_vad(vad_event, last_voiced_t)
            heard = self._heard_at_pause(heard, endpointer)
            if endpointer.speaking:
                last_voiced_t = arrived
            if arrived - last_level >= LEVEL_INTERVAL_S:
                last_level = arrived
                rms = float(np.sqrt(np.mean(np.square(frame))))
                self.bus.publish(ev.InputLevel(rms=rms, speaking=endpointer.in_utterance))
            self._check_session_timeout()
        endpointer.close()
        source.close()

    def _heard_at_pause(self, given: Turn | None, endpointer: EndOfTurn) -> Turn | None:
        """Hand the speculative recognition's transcript, once it is in, to the end-of-turn policy."""
        with self._lock:
            turn = self._speculative
        if turn is None or turn is given or not turn.question or turn.cancel.cancelled:
            return given
        endpointer.heard(turn.question)
        return turn

    def _merge_into_next(self) -> bool:
        """The visitor goes on just after a turn was committed: drop its answer if little has played."""
        with self._lock:
            turn = self._active
        if turn is None or turn.source != "voice" or turn.finished.is_set() or turn.audio is None:
            return False
        if turn.first_audio_s is not None:
            played = time.monotonic() - (turn.speech_end_t + turn.first_audio_s)
            if played * 1000 > self.config.turn.merge_max_played_ms:
                return False
        self._cancel_turn(turn, "merged")
        self.bus.publish(ev.TurnDecided(outcome="merged", seconds=0.0))
        return True

    def _on_vad(self, vad_event: VadEvent, last_voiced_t: float) -> None:
        if vad_event.kind is Vad.DECIDED:
            if vad_event.outcome == "error":
                self.bus.publish(
                    ev.StageFailed(turn_id=0, stage="vad_endpoint", kind="exception", message=vad_event.message)
                )
            else:
                self.bus.publish(
                    ev.TurnDecided(
                        outcome=vad_event.outcome, seconds=vad_event.decision_s, cpu_seconds=vad_event.cpu_s
                    )
                )
        elif vad_event.kind is Vad.STARTED:
            if self.config.vad.barge_in:
                with self._lock:
                    active = self._active
                if active is not None and not active.finished.is_set():
                    self._cancel_turn(active, "barge_in")
        elif vad_event.kind is Vad.PAUSED:
            turn = Turn(next(self._ids), "voice", audio=vad_event.audio, speech_end_t=last_voiced_t)
            with self._lock:
                self._speculative = turn
            self._begin(turn, committed=False)
        elif vad_event.kind is Vad.RESUMED:
            with self._lock:
                turn, self._speculative = self._speculative, None
            if turn is not None:
                turn.cancel.cancel("resumed")  # dropped silently: its events were never published
        elif vad_event.kind is Vad.ENDED:
            with self._lock:
                turn, self._speculative = self._speculative, None
            endpoint_s = time.monotonic() - last_voiced_t
            if turn is None or turn.cancel.cancelled:
                turn = Turn(next(self._ids), "voice", audio=vad_event.audio, speech_end_t=last_voiced_t)
                turn.cut = vad_event.cut
                self._begin(turn, committed=False)
            turn.timings["vad_endpoint"] = endpoint_s
            self._store_visitor_audio(turn)
            self._commit(turn, endpoint_s)
