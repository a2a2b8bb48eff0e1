"""Events the engine emits: small frozen records with monotonic timestamps.

Observers (telemetry, the UI, the CLI printer, tests) subscribe to an :class:`EventBus`; they are called
on the emitting worker thread and must return quickly (the UI re-posts to its own thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.emotion import Emotion

log = logging.getLogger(__name__)

# Stage names: a fixed set, so they are safe metric labels.
STAGES = (
    "vad_endpoint",
    "asr",
    "retrieval",
    "llm_first_sentence",
    "llm",
    "tts_first_audio",
    "tts",
    "animator_frame",
)
# How a turn ended: a fixed set.
# "unanswered": on topic, but the notes do not say (the guide says so and names what it can talk about).
TURN_STATUSES = ("ok", "unanswered", "not_understood", "out_of_scope", "filtered", "cancelled", "error")
# End-of-turn verdicts (kiosk/engine/turn/policy.py): the model heard a complete or an incomplete question,
# recognition heard a whole question after "incomplete" (a shorter wait), the wait after "incomplete" ran
# out, the silence rule decided (no model, or it failed), or the visitor's continuation was merged with the
# turn just committed.
END_OF_TURN_OUTCOMES = ("complete", "incomplete", "question", "timeout", "silence", "merged")
# Who worded an answer the LLM was asked for: the model, or the notes as written because it was still
# loading, gave no checked words within its budget, failed the checks, or failed (out of memory, an error).
LLM_WORDINGS = ("model", "loading", "budget", "checks", "error")


def now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Event:
    t: float = field(default_factory=now, kw_only=True)


# --- models -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelLoading(Event):
    stage: str  # asr, retrieval, llm, tts, vad, face
    name: str
    message: str = ""


@dataclass(frozen=True)
class ModelLoaded(Event):
    stage: str
    name: str
    device: str
    load_seconds: float
    memory_bytes: int = 0  # torch allocated bytes on CUDA, RSS growth on CPU


@dataclass(frozen=True)
class ModelFailed(Event):
    stage: str
    name: str
    message: str  # one line


@dataclass(frozen=True)
class BackendFallback(Event):
    stage: str
    backend: str  # the fallback now in use
    reason: str


@dataclass(frozen=True)
class EngineReady(Event):
    """Every stage that could load has loaded; ``missing`` names those that could not."""

    missing: tuple[str, ...] = ()


# --- listening ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputLevel(Event):
    """Microphone level, about 10 times a second, for the UI's meter."""

    rms: float
    speaking: bool


@dataclass(frozen=True)
class InputProblem(Event):
    message: str  # e.g. "microphone 'USB Audio' disconnected; retrying every 2 s"


# --- turns ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnStarted(Event):
    turn_id: int
    source: str  # "voice" or "text"


@dataclass(frozen=True)
class SpeechEnded(Event):
    """The visitor stopped speaking; ``t`` is the end of the last voiced frame (the latency origin)."""

    turn_id: int
    audio_seconds: float
    cut: bool = False  # the utterance hit max_utterance_s


@dataclass(frozen=True)
class TurnDecided(Event):
    """An end-of-turn verdict at a pause; ``seconds`` from the end of speech to the verdict."""

    outcome: str  # one of END_OF_TURN_OUTCOMES
    seconds: float
    cpu_seconds: float = 0.0  # the model's CPU time for this verdict


@dataclass(frozen=True)
class StageStarted(Event):
    turn_id: int
    stage: str


@dataclass(frozen=True)
class StageFinished(Event):
    turn_id: int
    stage: str
    seconds: float
    # numbers a stage reports: audio_seconds (asr), tokens (llm), cache_hit (tts) ...
    info: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StageFailed(Event):
    turn_id: int
    stage: str
    kind: str  # a short fixed word: oom, timeout, exception, load
    message: str


@dataclass(frozen=True)
class Transcribed(Event):
    turn_id: int
    text: str
    understood: bool


@dataclass(frozen=True)
class AnswerChosen(Event):
    turn_id: int
    status: str
    topic: str | None
    emotion: Emotion


@dataclass(frozen=True)
class SentenceStarted(Event):
    """A sentence of the answer starts playing (captions follow these)."""

    turn_id: int
    index: int
    text: str


@dataclass(frozen=True)
class VoiceUnheard(Event):
    """The answer cannot be heard (the voice failed or went silent, the loudspeaker failed or plays
    nothing): what was not heard is captioned at once instead, and the screen says why in plain words.

    Published once per turn, before the captions it brings; the failure itself is a StageFailed."""

    turn_id: int
    reason: str  # one line, for the technician: "audio output failed (Error querying device -1)"


@dataclass(frozen=True)
class FirstAudio(Event):
    turn_id: int
    latency_seconds: float  # from SpeechEnded.t (or the tap) to the first answer audio


@dataclass(frozen=True)
class TurnFinished(Event):
    turn_id: int
    status: str
    topic: str | None
    emotion: Emotion
    first_audio_seconds: float | None
    duration_seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    question: str = ""
    answer: str = ""
    # the follow-up the guide offered at the end of its reply ("Shall I tell you more about the launch?"),
    # which the visitor accepts by saying yes or tapping; "" when none
    offer: str = ""
    # one of LLM_WORDINGS when the LLM answerer was asked to word the answer; "" otherwise (the retrieval
    # answerer, small talk, a declined or cancelled turn)
    llm_wording: str = ""


# --- sessions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionStarted(Event):
    pass


@dataclass(frozen=True)
class SessionEnded(Event):
    duration_seconds: float
    turns: int


# --- storage -----------------------------------------------------------------------------------------

# What a StoreFailed names: a fixed set, so it is a safe metric label.
STORES = ("visitor_audio", "model_cache")


@dataclass(frozen=True)
class StoreFailed(Event):
    """Writing to disk failed (disk full, read-only, missing folder); the kiosk went on without it."""

    store: str  # one of STORES
    message: str  # one line, never a visitor's words


@dataclass(frozen=True)
class CacheRebuilt(Event):
    """A cached model was missing its checksum or did not match it, and was converted again."""

    stage: str  # asr, llm
    reason: str


# --- face ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameRendered(Event):
    turn_id: int | None
    render_seconds: float
    av_offset_seconds: float | None = None


@dataclass(frozen=True)
class FrameDropped(Event):
    turn_id: int | None


Observer = Callable[[Event], None]


class EventBus:
    """Fan-out of engine events to observers; an observer that raises is logged and kept."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self._lock = threading.Lock()

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        with self._lock:
            self._observers = [*self._observers, observer]

        def unsubscribe() -> None:
            with self._lock:
                self._observers = [o for o in self._observers if o is not observer]

        return unsubscribe

    def publish(self, event: Event) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                log.exception("event observer %r failed on %s", observer, type(event).__name__)
