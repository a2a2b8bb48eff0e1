"""Where a visitor's voice comes from: the microphone, a WAV file, or memory (tests).

Every source delivers float32 mono frames at 16 kHz through ``read()``.  The microphone source survives
its device disappearing: ``read()`` raises :class:`SourceUnavailable` once, then keeps trying to reopen.
"""

from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kiosk.errors import KioskError

if TYPE_CHECKING:
    from kiosk.config import Config

SAMPLE_RATE = 16000
FRAME_SAMPLES = 480  # 30 ms: the webrtcvad frame


class EndOfStream(Exception):
    pass


class SourceUnavailable(KioskError):
    """The input device is gone for now; the message says which and what happens next."""


class AudioSource(ABC):
    sample_rate = SAMPLE_RATE
    name = "audio"

    def open(self) -> None:  # noqa: B027
        pass

    @abstractmethod
    def read(self, timeout: float = 1.0) -> np.ndarray | None:
        """One frame of FRAME_SAMPLES float32 samples; None if none came within ``timeout``.

        Raises EndOfStream when a finite source is exhausted.
        """

    def close(self) -> None:  # noqa: B027
        pass


class MemorySource(AudioSource):
    """Frames from an array; ``realtime`` paces them like a microphone would."""

    name = "memory"

    def __init__(self, audio: np.ndarray, realtime: bool = False, tail_silence_s: float = 1.0) -> None:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        tail = np.zeros(int(tail_silence_s * SAMPLE_RATE), dtype=np.float32)
        self._audio = np.concatenate([audio, tail])
        self._position = 0
        self._realtime = realtime
        self._started: float | None = None

    def read(self, timeout: float = 1.0) -> np.ndarray | None:
        if self._position >= len(self._audio):
            raise EndOfStream
        if self._realtime:
            if self._started is None:
                self._started = time.monotonic()
            due = self._started + (self._position + FRAME_SAMPLES) / SAMPLE_RATE
            delay = due - time.monotonic()
            if delay > timeout:
                time.sleep(timeout)
                return None
            if delay > 0:
                time.sleep(delay)
        frame = self._audio[self._position : self._position + FRAME_SAMPLES]
        self._position += FRAME_SAMPLES
        if len(frame) < FRAME_SAMPLES:
            frame = np.pad(frame, (0, FRAME_SAMPLES - len(frame)))
        return frame


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any WAV (rate, channels, sample format) as float32 mono at ``sample_rate``."""
    from faster_whisper.audio import decode_audio

    path = Path(path)
    if not path.is_file():
        raise KioskError(f"{path}: audio file not found")
    try:
        return decode_audio(str(path), sampling_rate=sample_rate).astype(np.float32)
    except Exception as exc:
        raise KioskError(f"{path}: cannot decode audio ({exc})") from None


class FileSource(MemorySource):
    name = "file"

    def __init__(self, path: str | Path, realtime: bool = False, tail_silence_s: float = 1.0) -> None:
        super().__init__(load_audio(path), realtime=realtime, tail_silence_s=tail_silence_s)


class MicrophoneSource(AudioSource):
    """sounddevice input at 16 kHz mono; the device is found by index or by part of its name."""

    name = "microphone"

    def __init__(self, device: str = "", reconnect_interval_s: float = 2.0, backend=None) -> None:
        # ``backend`` is the sounddevice module; tests pass a stand-in for the hardware
        self._backend = backend
        self._device_spec = device
        self._interval = reconnect_interval_s
        self._frames: queue.Queue[np.ndarray] = queue.Queue(maxsize=200)
        self._stream = None
        self._failed = threading.Event()
        self._next_attempt = 0.0
        self._reported = False
        self._last_frame = time.monotonic()

    def _sd(self):
        if self._backend is None:
            import sounddevice

            self._backend = sounddevice
        return self._backend

    def _device(self) -> int | None:
        sd = self._sd()
        spec = self._device_spec.strip()
        if not spec:
            return None
        if spec.isdigit():
            return int(spec)
        for index, info in enumerate(sd.query_devices()):
            if spec.lower() in str(info["name"]).lower() and info["max_input_channels"] > 0:
                return index
        raise SourceUnavailable(f"microphone {spec!r} not found")

    def open(self) -> None:
        sd = self._sd()
        self._failed.clear()
        try:
            stream = sd.InputStream(
                samplerate=SAMPLE_RATE,
                channels=1,
                dtype="float32",
                blocksize=FRAME_SAMPLES,
                device=self._device(),
                callback=self._callback,
                finished_callback=self._failed.set,
            )
            stream.start()
        except SourceUnavailable:
            raise
        except Exception as exc:
            raise SourceUnavailable(f"microphone {self._device_spec or 'default'}: {exc}") from None
        self._stream = stream
        self._last_frame = time.monotonic()

    def _callback(self, data: np.ndarray, frames: int, time_info: object, status: object) -> None:
        try:
            self._frames.put_nowait(data[:, 0].copy())
        except queue.Full:
            pass  # the listener fell behind; dropping is better than growing

    def read(self, timeout: float = 1.0) -> np.ndarray | None:
        if self._stream is None or self._failed.is_set():
            self._reopen(timeout)
            if self._stream is None:
                return None
        try:
            frame = self._frames.get(timeout=timeout)
        except queue.Empty:
            # some drivers stop calling back without closing the stream when a device goes away
            if time.monotonic() - self._last_frame > max(2.0, 2 * self._interval):
                self._failed.set()
            return None
        self._last_frame = time.monotonic()
        return frame

    def _reopen(self, timeout: float) -> None:
        self.close()
        wait = self._next_attempt - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, timeout))
            return
        self._next_attempt = time.monotonic() + self._interval
        try:
            self.open()
            self._reported = False
        except SourceUnavailable as exc:
            if not self._reported:
                self._reported = True
                raise SourceUnavailable(f"{exc}; retrying every {self._interval:g} s") from None

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:
                pass


def make_source(config: Config) -> AudioSource | None:
    """The configured microphone, or None when the kiosk has none."""
    if config.audio.input == "none":
        return None
    return MicrophoneSource(config.audio.input_device, config.audio.reconnect_interval_s)
