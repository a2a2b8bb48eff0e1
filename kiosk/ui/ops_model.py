"""What the ops panel shows from engine events, kept by the window even while the panel is closed.

Plain Python (no Qt, no pyqtgraph): the panel itself is built only when a technician first opens it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.engine import events as ev
from kiosk.engine.stage import MODEL_STAGES

STAGE_NAMES = MODEL_STAGES  # the one list of stage names, with the words the screen uses
# how each face backend ([face] backend) moves the portrait, in a technician's words (not a class name)
FACE_WORDS = {
    "procedural": "the portrait, its mouth and eyes moved by rule",
    "neural": "the portrait, lip-synced by the neural model",
}


def face_line(animator: object | None, reason: str) -> str:
    """The face as the ops panel says it: what moves it, or why only the still portrait shows."""
    if animator is None:
        return f"still portrait: {reason}"
    backend = str(getattr(getattr(animator, "backend", None), "name", "") or "")
    return f"animated: {FACE_WORDS.get(backend, f'the {backend} face' if backend else 'the portrait')}"


@dataclass(frozen=True)
class TurnRow:
    turn_id: int
    status: str
    timings: dict[str, float]


class OpsModel:
    """Frame counts per second, the last turns' stage latencies and the last problems, from events."""

    def __init__(self, history_s: int = 300, turns: int = 6, problems: int = 8) -> None:
        self._seconds: deque[list[int]] = deque(maxlen=history_s + 2)  # [second, rendered, dropped]
        self.turns: deque[TurnRow] = deque(maxlen=turns)
        self.problems: deque[str] = deque(maxlen=problems)
        self._origin: dict[int, float] = {}
        self._first_audio: dict[int, float] = {}
        self._first_frame: dict[int, float] = {}
        self.frames_total = 0
        self.dropped_total = 0
        self.loading_line = ""  # "Getting ready: loading voice (3 of 5)..." while the models load
        self.face_line = ""  # how the face is shown: animated, or the still portrait and why
        self.screen_fps: Callable[[], float] | None = None  # what the screen painted in the last second

    def _bucket(self, t: float) -> list[int]:
        second = int(t)
        if self._seconds and self._seconds[-1][0] == second:
            return self._seconds[-1]
        if self._seconds and self._seconds[-1][0] > second:  # a late event: count it in its second
            for bucket in reversed(self._seconds):
                if bucket[0] == second:
                    return bucket
            return self._seconds[-1]
        bucket = [second, 0, 0]
        self._seconds.append(bucket)
        return bucket

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.FrameRendered):
            self._bucket(event.t)[1] += 1
            self.frames_total += 1
            tid = event.turn_id
            if tid is not None and tid in self._first_audio and tid not in self._first_frame:
                origin = self._origin.get(tid)
                if origin is not None:
                    self._first_frame[tid] = event.t - origin
        elif isinstance(event, ev.FrameDropped):
            self._bucket(event.t)[2] += 1
            self.dropped_total += 1
        elif isinstance(event, ev.TurnStarted):
            self._origin[event.turn_id] = event.t
        elif isinstance(event, ev.SpeechEnded):
            self._origin[event.turn_id] = event.t
        elif isinstance(event, ev.FirstAudio):
            self._first_audio[event.turn_id] = event.latency_seconds
        elif isinstance(event, ev.TurnFinished):
            timings = dict(event.timings)
            if event.first_audio_seconds is not None:
                timings["first_audio"] = event.first_audio_seconds
            first_frame = self._first_frame.pop(event.turn_id, None)
            if first_frame is not None:
                timings["first_frame"] = first_frame
            self._origin.pop(event.turn_id, None)
            self._first_audio.pop(event.turn_id, None)
            self.turns.append(TurnRow(event.turn_id, event.status, timings))
        elif isinstance(event, ev.ModelFailed):
            self._problem(event.t, f"{event.stage}: {event.message}")
        elif isinstance(event, ev.StageFailed):
            self._problem(event.t, f"turn {event.turn_id} {event.stage} ({event.kind}): {event.message}")
        elif isinstance(event, ev.InputProblem):
            self._problem(event.t, f"input: {event.message}")
        elif isinstance(event, ev.BackendFallback):
            self._problem(event.t, f"{event.stage}: now on {event.backend} ({event.reason})")

    def _problem(self, t: float, text: str) -> None:
        wall = time.time() - (time.monotonic() - t)
        line = " ".join(text.split())
        self.problems.append(f"{time.strftime('%H:%M:%S', time.localtime(wall))}  {line[:160]}")

    def frame_series(self, now: float | None = None) -> tuple[list[float], list[float], list[float]]:
        """(seconds ago, frames, dropped) for each complete second in the history."""
        now = time.monotonic() if now is None else now
        current = int(now)
        xs, fps, dropped = [], [], []
        for second, rendered, lost in self._seconds:
            if second < current:
                xs.append(second - now)
                fps.append(float(rendered))
                dropped.append(float(lost))
        return xs, fps, dropped

    def fps_now(self, now: float | None = None) -> tuple[float, float]:
        """Frames and drops in the last complete second."""
        now = time.monotonic() if now is None else now
        for second, rendered, lost in reversed(self._seconds):
            if second == int(now) - 1:
                return float(rendered), float(lost)
            if second < int(now) - 1:
                break
        return 0.0, 0.0
