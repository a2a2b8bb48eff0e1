"""espeak-ng, the robotic but dependable fallback: the program, one WAV per sentence, no timings."""

from __future__ import annotations

import shutil
import subprocess
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO

import numpy as np

from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken
from kiosk.engine.stage import SpeechChunk
from kiosk.engine.tts.base import DEFAULT_CACHE_BYTES, WARM_UP_TEXT, CachedSynthesizer, one_line
from kiosk.engine.tts.spoken import spoken_form
from kiosk.errors import ModelLoadError


@dataclass(frozen=True)
class EspeakProsody:
    rate: int  # words per minute (espeak-ng's default is 175)
    pitch: int  # 0..99 (default 50)
    amplitude: int  # 0..200 (default 100); espeak-ng saturates near 150, so stay well below


ESPEAK_PROSODY: dict[Emotion, EspeakProsody] = {
    Emotion.NEUTRAL: EspeakProsody(165, 50, 100),
    Emotion.HAPPY: EspeakProsody(180, 62, 105),
    Emotion.SAD: EspeakProsody(140, 38, 80),
    Emotion.ANGRY: EspeakProsody(185, 44, 120),
    Emotion.SURPRISED: EspeakProsody(175, 70, 105),
}


class EspeakSynthesizer(CachedSynthesizer):
    """The robotic but dependable fallback: the ``espeak-ng`` program, one WAV per sentence, no timings."""

    def __init__(
        self, voice: str = "en-us", binary: str = "espeak-ng", cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        super().__init__(cache_bytes)
        self.voice = voice
        self.binary = binary
        self.name = f"espeak-ng-{voice}"
        self.device = "cpu"
        self.load_seconds = 0.0
        self._path: str | None = None

    def load(self) -> None:
        started = time.monotonic()
        path = shutil.which(self.binary)
        if path is None:
            raise ModelLoadError(f"espeak-ng: program {self.binary!r} not found (install Debian's espeak-ng)")
        self._path = path
        try:
            audio, self.sample_rate = self._run(WARM_UP_TEXT, ESPEAK_PROSODY[Emotion.NEUTRAL])
        except (OSError, subprocess.SubprocessError, wave.Error, EOFError) as exc:
            self._path = None
            raise ModelLoadError(f"espeak-ng: {path} does not work ({one_line(exc)})") from None
        if audio.size == 0:
            self._path = None
            raise ModelLoadError(f"espeak-ng: {path} produced no audio (is voice {self.voice!r} installed?)")
        self.load_seconds = time.monotonic() - started

    def _synthesize(self, text: str, emotion: Emotion, cancel: CancelToken) -> Iterator[SpeechChunk]:
        if cancel.cancelled:
            return
        audio, rate = self._run(spoken_form(text), ESPEAK_PROSODY[emotion])  # "£250" as "250 pounds"
        if audio.size:
            yield SpeechChunk(audio=audio, sample_rate=rate, text=text)

    def _run(self, text: str, prosody: EspeakProsody) -> tuple[np.ndarray, int]:
        assert self._path is not None, "load() first"
        command = [self._path, "--stdout", "--stdin", "-b", "1", "-v", self.voice]
        command += ["-s", str(prosody.rate), "-p", str(prosody.pitch), "-a", str(prosody.amplitude)]
        result = subprocess.run(
            command, input=text.encode("utf-8"), capture_output=True, timeout=30, check=True
        )
        return _read_wav(result.stdout)


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit mono WAV bytes as float32 -1..1; espeak-ng streams, so its header's length is a placeholder."""
    with wave.open(BytesIO(data)) as reader:
        if reader.getsampwidth() != 2 or reader.getnchannels() != 1:
            raise wave.Error(
                f"expected 16-bit mono, got {reader.getsampwidth() * 8}-bit x{reader.getnchannels()}"
            )
        rate = reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    samples = np.frombuffer(frames[: len(frames) // 2 * 2], dtype="<i2")
    return (samples.astype(np.float32) / 32768.0), rate
