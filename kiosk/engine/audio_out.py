"""Where the guide's voice goes, and the playback clock that the face follows.

A sink keeps a buffer of written samples; a driver (the sound card's callback, or a pacing thread for
the null and file sinks) pulls blocks from it as they are played and advances the :class:`PlaybackClock`.
The face computes every frame from that clock, so picture and sound cannot drift apart.
"""

from __future__ import annotations

import threading
import time
import wave
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kiosk.engine.cancel import CancelToken

if TYPE_CHECKING:
    from kiosk.config import Config

BLOCK_SECONDS = 0.02


class PlaybackClock:
    """Seconds of the current answer's audio that have actually been played.

    Between the driver's block updates the position is interpolated with the monotonic clock, capped at
    the audio already handed to the driver, so it is smooth and never runs ahead of the sound.
    """

    def __init__(self, sample_rate: int = 22050) -> None:
        self._lock = threading.Lock()
        self.sample_rate = sample_rate
        self._played = 0
        self._pulled = 0
        self._stamp = time.monotonic()
        self.generation = 0  # bumped at each reset, so observers notice a new answer

    def reset(self, sample_rate: int) -> None:
        with self._lock:
            self.sample_rate = sample_rate
            self._played = self._pulled = 0
            self._stamp = time.monotonic()
            self.generation += 1

    def advance(self, played_until: int, pulled_until: int) -> None:
        with self._lock:
            self._played = played_until
            self._pulled = max(pulled_until, played_until)
            self._stamp = time.monotonic()

    @property
    def played_samples(self) -> int:
        with self._lock:
            return self._played

    def position(self, at: float | None = None) -> float:
        with self._lock:
            at = time.monotonic() if at is None else at
            interpolated = self._played + max(0.0, at - self._stamp) * self.sample_rate
            return min(interpolated, self._pulled) / self.sample_rate


class AudioSink(ABC):
    name = "sink"

    def __init__(self) -> None:
        self.clock = PlaybackClock()
        self._lock = threading.Condition()
        self._blocks: deque[np.ndarray] = deque()
        self._queued = 0
        self._pulled = 0
        self.sample_rate = 22050

    # --- the pipeline's side -----------------------------------------------------------------------

    def start(self, sample_rate: int) -> None:
        """Begin a new answer: drop anything left and restart the clock."""
        with self._lock:
            self._blocks.clear()
            self._queued = self._pulled = 0
            self.sample_rate = sample_rate
            self.clock.reset(sample_rate)
            self._lock.notify_all()
        self._open(sample_rate)

    def write(self, audio: np.ndarray, cancel: CancelToken | None = None) -> None:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        with self._lock:
            self._blocks.append(audio)
            self._queued += len(audio)
            self._lock.notify_all()
        self._after_write()

    def drain(self, cancel: CancelToken | None = None, timeout: float = 600.0) -> bool:
        """Wait until everything written has been played; False if cancelled or timed out."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pulled < self._queued:
                if cancel is not None and cancel.cancelled:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(0.02, remaining))
        return True

    def stop(self) -> None:
        """Silence now: drop what is buffered."""
        with self._lock:
            self._blocks.clear()
            self._queued = self._pulled
            self._lock.notify_all()

    @property
    def buffered_seconds(self) -> float:
        with self._lock:
            return (self._queued - self._pulled) / self.sample_rate

    def close(self) -> None:  # noqa: B027
        pass

    # --- the driver's side --------------------------------------------------------------------------

    def _pull(self, count: int) -> np.ndarray:
        """Up to ``count`` samples of buffered audio, zero-padded; advances the clock."""
        out = np.zeros(count, dtype=np.float32)
        filled = 0
        with self._lock:
            while filled < count and self._blocks:
                block = self._blocks[0]
                take = min(count - filled, len(block))
                out[filled : filled + take] = block[:take]
                filled += take
                if take == len(block):
                    self._blocks.popleft()
                else:
                    self._blocks[0] = block[take:]
            before = self._pulled
            self._pulled += filled
            self.clock.advance(before, self._pulled)
            self._lock.notify_all()
        return out[:filled] if filled < count and not self._pads else out

    _pads = False

    @abstractmethod
    def _open(self, sample_rate: int) -> None: ...

    def _after_write(self) -> None:  # noqa: B027
        pass


class PacedSink(AudioSink):
    """Plays into nothing (or a file) at the speed of a loudspeaker, or instantly when not realtime."""

    def __init__(self, realtime: bool = True) -> None:
        super().__init__()
        self.realtime = realtime
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def _open(self, sample_rate: int) -> None:
        if self.realtime and self._thread is None:
            self._thread = threading.Thread(target=self._pace, name=f"{self.name}-playback", daemon=True)
            self._thread.start()

    def _after_write(self) -> None:
        if not self.realtime:
            with self._lock:
                pending = self._queued - self._pulled
            self._emit(self._pull(pending))

    def _pace(self) -> None:
        next_tick = time.monotonic()
        while not self._closing.is_set():
            block = int(self.sample_rate * BLOCK_SECONDS)
            with self._lock:
                idle = self._pulled >= self._queued
                if idle:
                    self._lock.wait(0.05)
            if idle:
                next_tick = time.monotonic()
                continue
            samples = self._pull(block)
            self._emit(samples)
            next_tick += len(samples) / self.sample_rate
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _emit(self, samples: np.ndarray) -> None:  # noqa: B027 - the null sink discards
        pass

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None


class NullSink(PacedSink):
    name = "null"


class WavFileSink(PacedSink):
    """Writes every answer, one after another, into one WAV file (16-bit mono)."""

    name = "wav"

    def __init__(self, path: str | Path, realtime: bool = False) -> None:
        super().__init__(realtime=realtime)
        self.path = Path(path)
        self._wav: wave.Wave_write | None = None
        self._rate = 0

    def _open(self, sample_rate: int) -> None:
        if self._wav is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(self.path), "wb")
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(sample_rate)
            self._rate = sample_rate
        elif sample_rate != self._rate:
            raise ValueError(
                f"{self.path}: cannot mix sample rates {self._rate} and {sample_rate} in one file"
            )
        super()._open(sample_rate)

    def _emit(self, samples: np.ndarray) -> None:
        if self._wav is not None and len(samples):
            pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
            self._wav.writeframes(pcm.tobytes())

    def close(self) -> None:
        super().close()
        if self._wav is not None:
            self._wav.close()
            self._wav = None


class SoundDeviceSink(AudioSink):
    """The loudspeaker, through PortAudio; the clock advances in the card's callback."""

    name = "speaker"
    _pads = True

    def __init__(self, device: str = "", backend=None) -> None:
        super().__init__()
        self._device_spec = device
        self._backend = backend  # the sounddevice module; tests pass a stand-in for the hardware
        self._stream = None
        self._rate = 0

    def _open(self, sample_rate: int) -> None:
        if self._backend is None:
            import sounddevice

            self._backend = sounddevice
        sd = self._backend
        if self._stream is not None and self._rate == sample_rate and self._stream.active:
            return
        self.close()
        device = int(self._device_spec) if self._device_spec.isdigit() else (self._device_spec or None)
        self._stream = sd.OutputStream(
            samplerate=sample_rate,
            channels=1,
            dtype="float32",
            blocksize=int(sample_rate * BLOCK_SECONDS),
            device=device,
            callback=self._callback,
        )
        self._stream.start()
        self._rate = sample_rate

    def _callback(self, out: np.ndarray, frames: int, time_info: object, status: object) -> None:
        out[:, 0] = self._pull(frames)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:
                pass


def make_sink(config: Config) -> AudioSink:
    """The configured speaker, or a silent sink that keeps real time."""
    if config.audio.output == "none":
        return NullSink(realtime=True)
    return SoundDeviceSink(config.audio.output_device)
