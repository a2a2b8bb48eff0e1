"""The technician's self-test: a fixed sentence through the voice, the ears and the face.

It runs on a worker thread (never the GUI's): the TTS stage speaks the sentence (played through the speaker and shown on the face when the
guide is idle), the ASR stage listens to that audio, and the words must come back; the face passes when
the screen presented frames while it spoke.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken

SENTENCE = "Columbia carried three astronauts to the Moon and back."
MIN_WORD_MATCH = 0.6
SELF_TEST_TURN = -1  # the id the face sees for the self-test's speech


@dataclass
class SelfTestResult:
    passed: bool
    lines: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return ("PASS" if self.passed else "FAIL") + ": " + "; ".join(self.lines)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == 16000:
        return audio.astype(np.float32)
    n = int(len(audio) * 16000 / rate)
    x = np.linspace(0, len(audio) - 1, n)
    return np.interp(x, np.arange(len(audio)), audio).astype(np.float32)


def run_self_test(engine: Any, frames_presented: Callable[[], int] | None = None) -> SelfTestResult:
    lines: list[str] = []
    ok = True
    tts = engine.stages.get("tts")
    asr = engine.stages.get("asr")
    if tts is None:
        return SelfTestResult(False, [f"voice: not loaded ({engine.failures.get('tts', 'unknown')})"])
    started = time.monotonic()
    chunks = list(tts.stream(SENTENCE, Emotion.NEUTRAL, CancelToken()))
    tts_s = time.monotonic() - started
    if not chunks:
        return SelfTestResult(False, ["voice: produced no audio"])
    rate = chunks[0].sample_rate
    audio = np.concatenate([c.audio for c in chunks]).astype(np.float32)
    lines.append(f"voice: {len(audio) / rate:.1f} s of speech in {tts_s:.2f} s")

    before = frames_presented() if frames_presented else 0
    played = _play(engine, chunks, rate)
    if asr is None and "asr" in getattr(engine, "off", {}):
        lines.append("ears: not checked (the microphone is off)")  # nothing to hear with: not a fault
    elif asr is None:
        ok = False
        lines.append(f"ears: not loaded ({engine.failures.get('asr', 'unknown')})")
    else:
        started = time.monotonic()
        transcript = asr.transcribe(_to_16k(audio, rate), CancelToken())
        heard = _words(transcript.text)
        wanted = _words(SENTENCE)
        match = sum(1 for w in wanted if w in heard) / len(wanted)
        passed = match >= MIN_WORD_MATCH
        ok &= passed
        lines.append(
            f"ears: heard \u201c{transcript.text.strip()}\u201d ({match:.0%} of the words, "
            f"{time.monotonic() - started:.2f} s)"
        )
    if frames_presented is None:
        lines.append("face: not checked")
    else:
        if not played:
            time.sleep(0.5)
        shown = frames_presented() - before
        ok &= shown > 0
        lines.append(f"face: {shown} frames shown" + ("" if played else " (guide busy: not played aloud)"))
    return SelfTestResult(ok, lines)


def _play(engine: Any, chunks: list, rate: int) -> bool:
    """Speak through the speaker and the face, only when no visitor turn is playing."""
    pipeline = getattr(engine, "pipeline", None)
    sink = getattr(engine, "sink", None)
    if pipeline is None or sink is None or pipeline.busy:
        return False
    listeners = list(getattr(pipeline, "listeners", []) or [])
    cancel = CancelToken()
    sink.start(rate)
    for listener in listeners:
        listener.begin_answer(SELF_TEST_TURN, Emotion.NEUTRAL)
    try:
        for chunk in chunks:
            for listener in listeners:
                listener.add_chunk(SELF_TEST_TURN, chunk)
            sink.write(chunk.audio, cancel)
        seconds = sum(len(c.audio) for c in chunks) / rate
        sink.drain(cancel, timeout=seconds + 5.0)
    finally:
        for listener in listeners:
            listener.end_answer(SELF_TEST_TURN)
    return True
