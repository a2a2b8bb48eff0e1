"""Turns engine events into metric updates: subscribe a :class:`TelemetryObserver` to the EventBus.

It runs on the emitting worker thread, so each event costs a dictionary lookup and one to four updates
on label children created in advance (a few microseconds).  Labels come only from fixed sets; the
question, answer, transcript and messages of events are never read.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.telemetry.metrics import MODEL_STAGES, TOPIC_NONE, TOPIC_OTHER, KioskMetrics

log = logging.getLogger(__name__)

# Turns whose first face frame is still awaited; a turn's entry leaves on its first frame or at its
# end, and this bound keeps a pipeline that never finishes its turns from growing the table.
MAX_OPEN_TURNS = 32
# Stages that may carry the speech cache's "cache_hit" (the pipeline reports it once per answer, on the
# first chunk's tts_first_audio).
TTS_STAGES = ("tts_first_audio", "tts")
# Statuses whose turn spoke an answer (counted in kiosk_answers_total).
ANSWERED = ("ok", "out_of_scope")


def _positive(value: object) -> float | None:
    """A finite, positive number from a stage's info dict, else None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number > 0 and math.isfinite(number) else None


class _Turn:
    __slots__ = ("origin", "audio_started")

    def __init__(self, origin: float | None = None) -> None:
        self.origin = origin  # SpeechEnded.t, or TurnStarted.t for a tapped question
        self.audio_started = False


class TelemetryObserver:
    """A callable EventBus observer that updates one :class:`KioskMetrics`."""

    def __init__(self, metrics: KioskMetrics) -> None:
        self.metrics = metrics
        m = metrics
        self._turns = m.turns_by_status
        self._answers = m.answer_children
        self._stage_hist = m.stage_hist
        self._topics = frozenset(m.topics) - {TOPIC_OTHER, TOPIC_NONE}
        self._open: OrderedDict[int, _Turn] = OrderedDict()
        self._lock = threading.Lock()  # the first-frame table: events come from several threads
        self._stage_state: dict[str, str] = {}  # model stage -> "loading" | "up" | "failed"
        self._handlers = {
            ev.TurnStarted: self._turn_started,
            ev.SpeechEnded: self._speech_ended,
            ev.FirstAudio: self._first_audio,
            ev.TurnFinished: self._turn_finished,
            ev.StageFinished: self._stage_finished,
            ev.StageFailed: self._stage_failed,
            ev.TurnDecided: self._turn_decided,
            ev.FrameRendered: self._frame_rendered,
            ev.FrameDropped: self._frame_dropped,
            ev.SessionStarted: self._session_started,
            ev.SessionEnded: self._session_ended,
            ev.ModelLoading: self._model_loading,
            ev.ModelLoaded: self._model_loaded,
            ev.ModelFailed: self._model_failed,
            ev.BackendFallback: self._backend_fallback,
            ev.StoreFailed: self._store_failed,
            ev.CacheRebuilt: self._cache_rebuilt,
        }

    def __call__(self, event: ev.Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    # --- state the health endpoint reads -------------------------------------------------------------

    def failed_stages(self) -> set[str]:
        """Model stages whose last news was a ModelFailed."""
        return {stage for stage, state in self._stage_state.items() if state == "failed"}

    # --- turns ---------------------------------------------------------------------------------------

    def _turn_started(self, event: ev.TurnStarted) -> None:
        with self._lock:
            self._open[event.turn_id] = _Turn(event.t if event.source == "text" else None)
            while len(self._open) > MAX_OPEN_TURNS:
                self._open.popitem(last=False)

    def _speech_ended(self, event: ev.SpeechEnded) -> None:
        with self._lock:
            turn = self._open.get(event.turn_id)
            if turn is None:
                turn = self._open[event.turn_id] = _Turn()
                while len(self._open) > MAX_OPEN_TURNS:
                    self._open.popitem(last=False)
            turn.origin = event.t

    def _first_audio(self, event: ev.FirstAudio) -> None:
        turn = self._open.get(event.turn_id)
        if turn is not None:
            turn.audio_started = True

    def _turn_finished(self, event: ev.TurnFinished) -> None:
        m = self.metrics
        status = event.status
        child = self._turns.get(status)
        if child is None:
            status = "error"  # an unknown status is a pipeline bug: count it, but as an error
            child = self._turns[status]
        child.inc()
        if event.first_audio_seconds is not None and event.first_audio_seconds >= 0:
            m.turn_first_audio.observe(event.first_audio_seconds)
        if event.duration_seconds >= 0:
            m.turn_duration.observe(event.duration_seconds)
        if status in ANSWERED:
            if status == "ok":
                topic = event.topic if event.topic in self._topics else TOPIC_OTHER
            else:
                topic = TOPIC_NONE
            self._answers[(Emotion.normalise(event.emotion).value, topic)].inc()
        wording = self.metrics.llm_answer_children.get(event.llm_wording)
        if wording is not None:
            wording.inc()
        if self._open:
            with self._lock:
                self._open.pop(event.turn_id, None)

    # --- stages --------------------------------------------------------------------------------------

    def _stage_finished(self, event: ev.StageFinished) -> None:
        hist = self._stage_hist.get(event.stage)
        if hist is not None and event.seconds >= 0:
            hist.observe(event.seconds)
        info = event.info
        if not info:
            return
        m = self.metrics
        stage = event.stage
        if stage == "asr":
            seconds = _positive(info.get("audio_seconds"))
            if seconds is not None:
                m.asr_audio_seconds.inc(seconds)
        elif stage == "llm":
            tokens = _positive(info.get("tokens"))
            if tokens is not None:
                m.llm_tokens.inc(tokens)
            rate = _positive(info.get("tokens_per_second"))
            if rate is None and tokens is not None and event.seconds > 0:
                rate = tokens / event.seconds
            if rate is not None:
                m.llm_tokens_per_second.set(rate)
        elif stage in TTS_STAGES and "cache_hit" in info:
            (m.tts_cache_hits if info["cache_hit"] else m.tts_cache_misses).inc()

    def _stage_failed(self, event: ev.StageFailed) -> None:
        self.metrics.stage_error(event.stage, event.kind).inc()

    def _turn_decided(self, event: ev.TurnDecided) -> None:
        counter = self.metrics.end_of_turn_children.get(event.outcome)
        if counter is None:
            return
        counter.inc()
        hist = self.metrics.end_of_turn_hist.get(event.outcome)
        if hist is not None:
            hist.observe(max(0.0, event.seconds))

    # --- face ----------------------------------------------------------------------------------------

    def _frame_rendered(self, event: ev.FrameRendered) -> None:
        m = self.metrics
        m.face_frames_rendered.inc()
        self._stage_hist["animator_frame"].observe(event.render_seconds)
        offset = event.av_offset_seconds
        if offset is not None and math.isfinite(offset):
            m.face_av_offset.set(abs(offset))
        if event.turn_id is None or not self._open:
            return
        turn = self._open.get(event.turn_id)
        if turn is None or not turn.audio_started:
            return
        with self._lock:
            if self._open.pop(event.turn_id, None) is None:
                return  # another thread took this turn's first frame
        if turn.origin is not None and event.t >= turn.origin:
            m.turn_first_frame.observe(event.t - turn.origin)

    def _frame_dropped(self, event: ev.FrameDropped) -> None:
        self.metrics.face_frames_dropped.inc()

    # --- sessions ------------------------------------------------------------------------------------

    def _session_started(self, event: ev.SessionStarted) -> None:
        self.metrics.visitors_active.set(1)
        self.metrics.sessions.inc()

    def _session_ended(self, event: ev.SessionEnded) -> None:
        self.metrics.visitors_active.set(0)
        if event.duration_seconds >= 0:
            self.metrics.session_duration.observe(event.duration_seconds)

    # --- models --------------------------------------------------------------------------------------

    def _model_loading(self, event: ev.ModelLoading) -> None:
        self._stage_state[_model_stage(event.stage)] = "loading"
        self.metrics.set_stage_up(event.stage, False)

    def _model_loaded(self, event: ev.ModelLoaded) -> None:
        self._stage_state[_model_stage(event.stage)] = "up"
        self.metrics.set_stage_up(event.stage, True)
        self.metrics.set_model(event.stage, event.name, event.device, event.memory_bytes)

    def _model_failed(self, event: ev.ModelFailed) -> None:
        self._stage_state[_model_stage(event.stage)] = "failed"
        self.metrics.set_stage_up(event.stage, False)
        self.metrics.clear_model(event.stage)

    def _backend_fallback(self, event: ev.BackendFallback) -> None:
        self.metrics.set_backend_fallback(event.stage, True)

    # --- storage -------------------------------------------------------------------------------------

    def _store_failed(self, event: ev.StoreFailed) -> None:
        if event.store == "visitor_audio":
            self.metrics.audio_store_errors.inc()
        elif event.store == "model_cache":
            self.metrics.cache_fallbacks.inc()

    def _cache_rebuilt(self, event: ev.CacheRebuilt) -> None:
        child = self.metrics.cache_rebuild_children.get(event.stage)
        if child is not None:
            child.inc()


def _model_stage(stage: str) -> str:
    return stage if stage in MODEL_STAGES else "other"
