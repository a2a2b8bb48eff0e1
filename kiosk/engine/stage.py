"""The one interface per stage, and the records that flow between stages.

Every stage has the same life cycle: construct from config (cheap), ``load()`` once off the GUI thread,
then ``process()`` or ``stream()`` per turn, and ``close()``.  Each stage kind has one abstract class here;
implementations live in their own modules and register under a name the config uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken

if TYPE_CHECKING:
    from kiosk.engine.planner import AnswerPlan

# The stages that load a model, with the words the screen uses for them: the one list (telemetry's
# labels, the engine's health, the screen's progress line and the ops panel all read it).
MODEL_STAGES: dict[str, str] = {
    "vad": "voice detection",
    "asr": "speech recognition",
    "tts": "voice",
    "retrieval": "retrieval",
    "answer": "answers",
    "llm": "language model",
    "face": "face",
}


class Stage(ABC):
    #: the stage kind: asr, retrieval, answer, llm, tts, face
    stage: str = ""
    #: the model or backend name, for build info and the ops panel
    name: str = ""
    #: where it runs: "cpu", "cuda:0"
    device: str = "cpu"
    #: memory the loaded model holds (torch bytes on CUDA, RSS growth on CPU)
    memory_bytes: int = 0

    @abstractmethod
    def load(self) -> None: ...

    def close(self) -> None:  # noqa: B027 - most stages have nothing to release
        pass


# --- ASR -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    text: str
    understood: bool
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    audio_seconds: float = 0.0


class SpeechRecognizer(Stage):
    stage = "asr"

    @abstractmethod
    def transcribe(self, audio: np.ndarray, cancel: CancelToken | None = None) -> Transcript:
        """``audio`` is float32 mono at 16 kHz."""


# --- answering -----------------------------------------------------------------------------------------


@dataclass
class Answer:
    """An answer whose sentences may still be being written (an LLM streams them).

    ``status``, ``topic`` and the first ``emotion`` are known when the answer is returned; the
    answerer may refine ``emotion`` by the time ``sentences`` is exhausted.
    """

    status: str  # one of events.TURN_STATUSES
    topic: str | None
    emotion: Emotion
    sentences: Iterator[str]
    # the extractive reply (the notes' own sentences): what is spoken when generation fails
    fallback: list[str] = field(default_factory=list)
    info: dict[str, float] = field(default_factory=dict)
    # the follow-up offered after the reply ("Would you like to hear more about the crew?"), "" if none
    offer: str = ""
    # what the planner decided; given back to ``Answerer.commit`` once the answer was played
    plan: AnswerPlan | None = None


class Answerer(Stage):
    stage = "answer"

    @abstractmethod
    def answer(self, question: str, cancel: CancelToken) -> Answer: ...

    def reset_session(self) -> None:  # noqa: B027 - a stateless answerer has no history to forget
        """Forget the conversation (a new visitor)."""

    def commit(self, answer: Answer) -> None:  # noqa: B027 - a stateless answerer remembers nothing
        """``answer`` was played to its end: the next question may build on it (a follow-up, a "yes")."""


# --- TTS -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhonemeTiming:
    phoneme: str
    samples: int  # how many samples of the chunk this phoneme lasts


@dataclass(frozen=True)
class SpeechChunk:
    audio: np.ndarray  # float32 mono, -1..1
    sample_rate: int
    text: str = ""
    # Piper's alignments: they add up exactly to len(audio); empty when the backend gives none
    phonemes: tuple[PhonemeTiming, ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


class SpeechSynthesizer(Stage):
    stage = "tts"
    sample_rate: int = 22050

    @abstractmethod
    def stream(self, text: str, emotion: Emotion, cancel: CancelToken) -> Iterator[SpeechChunk]:
        """Speak ``text`` (one sentence or clause) as one or more chunks."""
