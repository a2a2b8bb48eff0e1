"""The living face: what it shows at any moment, in step with the voice by construction.

The frame for time ``t`` is computed from the audio sink's playback clock at ``t`` (how much of the answer
has actually been heard), never from a frame counter, so picture and sound cannot drift apart however
long the kiosk runs.  A frame that cannot be rendered in its slot is dropped and counted, never queued.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.engine.audio_out import PlaybackClock
from kiosk.engine.face.backend import FaceBackend, FaceState
from kiosk.engine.face.visemes import REST, SETTLE_S, MouthTrack
from kiosk.engine.stage import SpeechChunk

STATES = ("idle", "listening", "thinking", "speaking")
EXPRESSIONS: dict[Emotion, dict[str, float]] = {
    Emotion.NEUTRAL: {},
    Emotion.HAPPY: {"smile": 1.0, "brow_raise": 0.15},
    Emotion.SAD: {"frown": 0.9, "brow_inner": 1.0},
    Emotion.ANGRY: {"brow_lower": 1.0, "frown": 0.35},
    Emotion.SURPRISED: {"brow_raise": 1.0, "smile": 0.1},
}
EXPRESSION_KEYS = ("smile", "frown", "brow_raise", "brow_lower", "brow_inner")
EXPRESSION_EASE_S = 0.35  # time constant of an expression easing in and out
BLINK_SECONDS = 0.16
BLINK_INTERVAL_S = (2.0, 6.0)
AUDIO_WINDOW_S = 0.2


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # RGB uint8; owned by the caller (a copy)
    t: float  # the monotonic time it was computed for
    audio_time: float | None  # seconds into the answer the mouth shows; None when not speaking
    turn_id: int | None
    state: str


class Blinker:
    """Natural blinks: intervals drawn from 2 to 6 s (a little more often while listening)."""

    def __init__(self, rng: random.Random, start: float) -> None:
        self._rng = rng
        self.next_blink = start + rng.uniform(*BLINK_INTERVAL_S)
        self.blinks: list[float] = []

    def amount(self, t: float) -> float:
        if t >= self.next_blink + BLINK_SECONDS:
            self.blinks.append(self.next_blink)
            self.next_blink += BLINK_SECONDS + self._rng.uniform(*BLINK_INTERVAL_S)
            if t > self.next_blink + BLINK_SECONDS:  # the clock jumped: start afresh from now
                self.next_blink = t + self._rng.uniform(*BLINK_INTERVAL_S)
        phase = (t - self.next_blink) / BLINK_SECONDS
        if 0.0 <= phase <= 1.0:
            return math.sin(math.pi * phase)
        return 0.0


class FaceAnimator:
    """Turns engine state and the playback clock into frames; also a SpeechListener of the pipeline."""

    def __init__(
        self,
        backend: FaceBackend,
        clock: PlaybackClock,
        bus: ev.EventBus | None = None,
        fps: int = 30,
        seed: int | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.bus = bus
        self.fps = fps
        self._now = now
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._track: MouthTrack | None = None
        self._track_generation = -1
        self._track_turn: int | None = None
        self._audio = np.zeros(0, np.float32)  # the answer's speech at 16 kHz, for listening backends
        self._ended = False
        self.state = "idle"
        self._emotion = Emotion.NEUTRAL
        self._expression = dict.fromkeys(EXPRESSION_KEYS, 0.0)
        self._last_t: float | None = None
        self.blinker = Blinker(self._rng, now())
        self._latest: Frame | None = None
        self.rendered = 0
        self.dropped = 0

    # --- what the pipeline and the UI tell it ---------------------------------------------------------

    def set_state(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"face state {state!r}: expected one of {', '.join(STATES)}")
        self.state = state

    def set_emotion(self, emotion: Emotion | str) -> None:
        self._emotion = Emotion.normalise(emotion)

    def begin_answer(self, turn_id: int, emotion: Emotion) -> None:
        with self._lock:
            self._track = MouthTrack()
            self._track_generation = self.clock.generation
            self._track_turn = turn_id
            self._audio = np.zeros(0, np.float32)
            self._ended = False
        self.set_emotion(emotion)
        self.state = "speaking"

    def add_chunk(self, turn_id: int, chunk: SpeechChunk) -> None:
        with self._lock:
            if self._track is None or turn_id != self._track_turn:
                return
            self._track.add_chunk(chunk)
            step = chunk.sample_rate / 16000
            picked = chunk.audio[(np.arange(int(len(chunk.audio) / step)) * step).astype(int)]
            self._audio = np.concatenate([self._audio, picked.astype(np.float32)])

    def end_answer(self, turn_id: int) -> None:
        with self._lock:
            if turn_id == self._track_turn:
                self._ended = True

    # --- frames --------------------------------------------------------------------------------------

    def state_at(self, t: float) -> tuple[FaceState, float | None]:
        """The face for monotonic time ``t``, and the answer's audio time the mouth shows (if speaking)."""
        with self._lock:
            track, generation, ended = self._track, self._track_generation, self._ended
            audio = self._audio
        mouth = REST
        audio_time: float | None = None
        if track is not None and generation == self.clock.generation:
            audio_time = self.clock.position(t)
            if ended and audio_time >= track.duration + SETTLE_S:
                with self._lock:
                    if self._track is track:
                        self._track = None
                        if self.state == "speaking":
                            self.state = "idle"
            else:
                mouth = track.at(audio_time)
        window = None
        if audio_time is not None and len(audio):
            end = int(audio_time * 16000)
            window = audio[max(0, end - int(AUDIO_WINDOW_S * 16000)) : end]
        expression = self._ease_expression(t)
        return FaceState(mouth, self.blinker.amount(t), expression, self._sway(t), window), audio_time

    def _ease_expression(self, t: float) -> dict[str, float]:
        target = EXPRESSIONS[self._emotion] if self.state in ("speaking", "idle") else {}
        if self.state == "listening":
            target = {"brow_raise": 0.25}
        elif self.state == "thinking":
            target = {"brow_inner": 0.4, "brow_lower": 0.2}
        dt = 0.0 if self._last_t is None else min(max(t - self._last_t, 0.0), 1.0)
        self._last_t = t
        keep = math.exp(-dt / EXPRESSION_EASE_S)
        for key in EXPRESSION_KEYS:
            self._expression[key] = keep * self._expression[key] + (1 - keep) * target.get(key, 0.0)
        return dict(self._expression)

    def _sway(self, t: float) -> tuple[float, float]:
        calm = 0.6 if self.state == "speaking" else 1.0
        dx = calm * (0.55 * math.sin(2 * math.pi * t / 7.3) + 0.2 * math.sin(2 * math.pi * t / 3.1 + 1.0))
        breathing = 0.45 * math.sin(2 * math.pi * t / 4.2)
        lean = 0.25 if self.state == "listening" else 0.0
        return dx, breathing + lean

    def frame_at(self, t: float | None = None) -> Frame:
        t = self._now() if t is None else t
        with self._render_lock:  # the backend reuses its buffers: one frame at a time
            state, audio_time = self.state_at(t)
            image = self.backend.render(state).copy()
        return Frame(image, t, audio_time, self._track_turn if audio_time is not None else None, self.state)

    def latest(self) -> Frame | None:
        return self._latest

    def run(self, deliver: Callable[[Frame], None], stop: threading.Event) -> None:
        """Render at ``fps`` until ``stop``; late frames are dropped and counted, never queued."""
        period = 1.0 / self.fps
        slot_start = self._now()
        render_estimate = 0.0
        while not stop.is_set():
            started = self._now()
            # drawn for the moment it will be shown: now plus what a frame usually takes to render
            frame = self.frame_at(started + render_estimate)
            finished = self._now()
            render_seconds = finished - started
            render_estimate = 0.8 * render_estimate + 0.2 * render_seconds
            offset = None
            if frame.audio_time is not None:
                offset = frame.audio_time - self.clock.position(finished)
            self._latest = frame
            deliver(frame)
            self.rendered += 1
            if self.bus is not None:
                self.bus.publish(
                    ev.FrameRendered(
                        turn_id=frame.turn_id,
                        render_seconds=render_seconds,
                        av_offset_seconds=offset,
                        t=finished,
                    )
                )
            slot_start += period
            missed = int((self._now() - slot_start) // period)
            if missed > 0:  # slots that passed while rendering: skipped, not caught up
                self.dropped += missed
                slot_start += missed * period
                if self.bus is not None:
                    for _ in range(missed):
                        self.bus.publish(ev.FrameDropped(turn_id=frame.turn_id))
            delay = slot_start - self._now()
            if delay > 0:
                stop.wait(delay)
