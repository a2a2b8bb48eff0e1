"""Endpointing: when a visitor starts and stops speaking.

Two detectors in series: webrtcvad is the cheap gate (3 µs a frame, but it calls any noise speech), and
Silero VAD v6 (the ONNX file inside faster-whisper, run with onnxruntime) makes the decision, so hall noise
does not open a turn.  The endpointer turns frame decisions into utterance events: ``started`` (with
pre-roll), ``paused`` (a short pause: recognition may start speculatively), ``resumed``, ``ended``.
Whether a pause *ends* the turn is decided above it (kiosk/engine/turn): the endpointer's own trailing
silence is the upper bound.

The pre-roll is counted back from the first voiced frame of a short burst that came shortly before the
speech (``word_lookback_ms``): "Who... built the command module?" keeps its "Who", though the word alone
was shorter than ``min_speech_ms``.
"""

from __future__ import annotations

import importlib.util
from collections import deque
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from kiosk.config import VadConfig
from kiosk.engine.audio_in import FRAME_SAMPLES, SAMPLE_RATE
from kiosk.errors import ModelLoadError

FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
SILERO_CHUNK = 512
SILERO_CONTEXT = 64


def silero_model_path() -> Path:
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("vad: faster-whisper is not installed (it carries the Silero VAD model)")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise ModelLoadError(f"vad: {path} is missing")
    return path


class SileroStream:
    """Silero VAD v6 fed one 512-sample chunk at a time, keeping its recurrent state between chunks."""

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(path or silero_model_path()), providers=["CPUExecutionProvider"], sess_options=options
        )
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(SILERO_CONTEXT, dtype=np.float32)

    def probability(self, chunk: np.ndarray) -> float:
        window = np.concatenate([self._context, chunk.astype(np.float32)])[None, :]
        out, self._h, self._c = self._session.run(None, {"input": window, "h": self._h, "c": self._c})
        self._context = chunk[-SILERO_CONTEXT:].astype(np.float32)
        return float(np.asarray(out).reshape(-1)[0])


class FrameClassifier:
    """webrtcvad gate, then Silero decision, for 30 ms frames at 16 kHz."""

    def __init__(self, config: VadConfig, silero: SileroStream | None = None) -> None:
        import webrtcvad

        self._webrtc = webrtcvad.Vad(config.webrtc_mode)
        self._silero = silero or SileroStream()
        self._threshold = config.silero_threshold
        self._pending = np.zeros(0, dtype=np.float32)
        self._last_probability = 0.0
        self._quiet_frames = 0

    def is_speech(self, frame: np.ndarray) -> bool:
        # Silero reads 512-sample chunks: keep its stream continuous, whatever the gate says, so its
        # state is right when speech starts; the gate only decides whether its verdict is asked for.
        self._pending = np.concatenate([self._pending, frame])
        while len(self._pending) >= SILERO_CHUNK:
            self._last_probability = self._silero.probability(self._pending[:SILERO_CHUNK])
            self._pending = self._pending[SILERO_CHUNK:]
        pcm = (np.clip(frame, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        gate = self._webrtc.is_speech(pcm, SAMPLE_RATE)
        return gate and self._last_probability >= self._threshold

    def reset(self) -> None:
        self._silero.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._last_probability = 0.0


class Vad(Enum):
    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    ENDED = "ended"
    DECIDED = "decided"  # the end-of-turn stage's verdict at a pause (kiosk/engine/turn/policy.py)


@dataclass(frozen=True)
class VadEvent:
    kind: Vad
    # the utterance so far (float32, 16 kHz, pre-roll included), for PAUSED and ENDED
    audio: np.ndarray | None = None
    # seconds into the stream at which the last voiced frame ended (the latency origin)
    speech_end: float = 0.0
    cut: bool = False
    # STARTED shortly after the last turn ended: the pipeline may merge the two (kiosk/engine/turn)
    merge_candidate: bool = False
    # DECIDED: one of events.END_OF_TURN_OUTCOMES (or "error"), seconds since the end of speech, model CPU
    outcome: str = ""
    decision_s: float = 0.0
    cpu_s: float = 0.0
    message: str = ""


class Endpointer:
    """Turns per-frame speech decisions into utterance events. Feed it every frame, in order."""

    def __init__(
        self,
        config: VadConfig,
        classifier: FrameClassifier | None = None,
        trailing_silence_ms: int | None = None,
    ) -> None:
        self.config = config
        self.classifier = classifier or FrameClassifier(config)
        self._pre_roll_frames = max(1, round(config.pre_roll_ms / 1000 / FRAME_SECONDS))
        self._lookback = round(config.word_lookback_ms / 1000 / FRAME_SECONDS)
        # idle audio, oldest first: enough for a short word, its pause and the pre-roll before it
        self._history: deque[np.ndarray] = deque(maxlen=self._pre_roll_frames + 2 * self._lookback + 1)
        self._bursts: deque[tuple[int, int]] = deque(maxlen=8)  # (first, last) voiced frame of idle bursts
        self._min_speech = max(1, round(config.min_speech_ms / 1000 / FRAME_SECONDS))
        self._pause = round(config.speculative_pause_ms / 1000 / FRAME_SECONDS)
        trailing = trailing_silence_ms if trailing_silence_ms is not None else config.trailing_silence_ms
        self._trailing = max(1, round(trailing / 1000 / FRAME_SECONDS))
        self._max_frames = round(config.max_utterance_s / FRAME_SECONDS)
        self._frames: list[np.ndarray] = []
        self._voiced_run = 0
        self._silence = 0
        self._in_speech = False
        self._paused = False
        self._position = 0  # frames seen
        self._last_voiced = 0
        self._draining = False
        self._drain_silence = 0
        self.speaking = False  # for the level meter

    @property
    def in_utterance(self) -> bool:
        return self._in_speech

    def feed(self, frame: np.ndarray) -> list[VadEvent]:
        self._position += 1
        voiced = self.classifier.is_speech(frame)
        self.speaking = voiced
        if voiced:
            self._last_voiced = self._position
        if self._draining:
            # after a cut monologue, wait for the visitor to pause before a new turn can open
            self._drain_silence = 0 if voiced else self._drain_silence + 1
            self._draining = self._drain_silence < self._trailing
            return []
        if not self._in_speech:
            return self._feed_idle(frame, voiced)
        return self._feed_speech(frame, voiced)

    def _feed_idle(self, frame: np.ndarray, voiced: bool) -> list[VadEvent]:
        self._history.append(frame)
        if not voiced:
            self._voiced_run = 0
            return []
        if self._voiced_run == 0:
            self._bursts.append((self._position, self._position))
        else:
            self._bursts[-1] = (self._bursts[-1][0], self._position)
        self._voiced_run += 1
        if self._voiced_run < self._min_speech:
            return []
        self._in_speech = True
        self._frames = list(self._history)[-(self._position - self._utterance_start() + 1) :]
        self._history.clear()
        self._bursts.clear()
        self._voiced_run = 0
        self._silence = 0
        return [VadEvent(Vad.STARTED)]

    def _utterance_start(self) -> int:
        """The first frame kept: the pre-roll before the earliest burst chained to this one by short gaps."""
        first, _ = self._bursts[-1]
        for start, end in reversed(list(self._bursts)[:-1]):
            if first - end > self._lookback:
                break
            first = start
        return max(first - self._pre_roll_frames, self._position - len(self._history) + 1)

    def _feed_speech(self, frame: np.ndarray, voiced: bool) -> list[VadEvent]:
        self._frames.append(frame)
        events: list[VadEvent] = []
        if voiced:
            if self._paused:
                events.append(VadEvent(Vad.RESUMED))
            self._silence = 0
            self._paused = False
        else:
            self._silence += 1
            if self._pause and self._silence == self._pause and not self._paused:
                self._paused = True
                events.append(VadEvent(Vad.PAUSED, self._utterance(), self._speech_end()))
        if self._silence >= self._trailing:
            events.append(self._end(cut=False))
        elif len(self._frames) >= self._max_frames:
            events.append(self._end(cut=True))
        return events

    def _utterance(self) -> np.ndarray:
        # what recognition needs: up to the end of the last voiced frame, plus a little silence
        keep = len(self._frames) - self._silence + min(self._silence, 3)
        return np.concatenate(self._frames[:keep])

    def _speech_end(self) -> float:
        return self._last_voiced * FRAME_SECONDS

    def _end(self, cut: bool) -> VadEvent:
        event = VadEvent(Vad.ENDED, self._utterance(), self._speech_end(), cut)
        self.reset()
        self._draining = cut
        self._drain_silence = 0
        return event

    def end_now(self) -> VadEvent:
        """End the utterance at once (the end-of-turn stage decided it is complete)."""
        return self._end(cut=False)

    @property
    def utterance_frames(self) -> int:
        return len(self._frames)

    @property
    def silence_frames(self) -> int:
        """Unvoiced frames since the last voiced one, in an utterance."""
        return self._silence

    @property
    def position(self) -> int:
        return self._position

    def reset(self) -> None:
        self._frames = []
        self._voiced_run = 0
        self._silence = 0
        self._in_speech = False
        self._paused = False
        self._history.clear()
        self._bursts.clear()

    @property
    def position_seconds(self) -> float:
        return self._position * FRAME_SECONDS
