"""Text to speech: Piper (the default voice, with phoneme timings for lip sync) and espeak-ng (the fallback).

One job a module: ``base`` (the speech cache and the synthesizer both voices build on), ``piper_voice``,
``espeak``, ``clauses`` (a short first clause, heard sooner); this module chooses and loads a backend.

Both backends share :class:`SpeechCache`: a sentence already spoken in the same voice and emotion comes
back at once, which matters for greetings, "could you say that again" and the attract loop.  The emotion
of an answer changes prosody only (pace, variability, loudness); the words are never changed.

``stream()`` stops quietly when the cancel token fires: it checks between chunks, never mid-chunk, and a
sentence cut short is not cached.  The caller decides what a cancel means.
"""

from __future__ import annotations

from kiosk.config import Config, TtsConfig
from kiosk.engine.device import Device
from kiosk.engine.registry import Registry
from kiosk.engine.stage import SpeechSynthesizer
from kiosk.engine.tts.base import (
    DEFAULT_CACHE_BYTES,
    WARM_UP_TEXT,
    CachedSynthesizer,
    CacheKey,
    SpeechCache,
    chunks_bytes,
    normalise_text,
)
from kiosk.engine.tts.clauses import (
    MAX_CLAUSE_WORDS,
    MIN_CLAUSE_WORDS,
    MIN_REST_WORDS,
    SHORT_SENTENCE_WORDS,
    first_clause,
)
from kiosk.engine.tts.espeak import ESPEAK_PROSODY, EspeakProsody, EspeakSynthesizer
from kiosk.engine.tts.piper_voice import (
    EMBEDDED_VOICE,
    EMBEDDED_VOICE_PACKAGE,
    MAX_VOLUME,
    PIPER_PROSODY,
    PiperProsody,
    PiperSynthesizer,
    embedded_voice_path,
    resolve_voice,
)
from kiosk.errors import ModelLoadError
from kiosk.exhibit import Exhibit, pack_file

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "EMBEDDED_VOICE",
    "EMBEDDED_VOICE_PACKAGE",
    "ESPEAK_PROSODY",
    "MAX_CLAUSE_WORDS",
    "MAX_VOLUME",
    "MIN_CLAUSE_WORDS",
    "MIN_REST_WORDS",
    "PIPER_PROSODY",
    "SHORT_SENTENCE_WORDS",
    "TTS_BACKENDS",
    "WARM_UP_TEXT",
    "CacheKey",
    "CachedSynthesizer",
    "EspeakProsody",
    "EspeakSynthesizer",
    "PiperProsody",
    "PiperSynthesizer",
    "SpeechCache",
    "chunks_bytes",
    "create_synthesizer",
    "embedded_voice_path",
    "exhibit_voice_path",
    "first_clause",
    "normalise_text",
    "resolve_voice",
]

TTS_BACKENDS = Registry[SpeechSynthesizer]("tts")


@TTS_BACKENDS.register("piper")
def _piper(config: TtsConfig, device: Device, voice_path: str = "") -> SpeechSynthesizer:
    return PiperSynthesizer(config.voice_path or voice_path, device, config.cache_bytes)


@TTS_BACKENDS.register("espeak")
def _espeak(config: TtsConfig, device: Device, voice_path: str = "") -> SpeechSynthesizer:
    return EspeakSynthesizer(cache_bytes=config.cache_bytes)


def create_synthesizer(
    config: TtsConfig, device: Device, voice_path: str = ""
) -> tuple[SpeechSynthesizer, str | None]:
    """The configured backend, loaded; or espeak-ng when that fails and ``fallback = "espeak"``.

    ``voice_path`` is the exhibit's voice (a path or the embedded voice's name); ``config.voice_path``
    wins over it.  Returns the synthesizer and, when the fallback is used, one line saying why.
    """
    synthesizer = TTS_BACKENDS.create(config.backend, config, device, voice_path)
    try:
        synthesizer.load()
        return synthesizer, None
    except ModelLoadError as exc:
        if config.fallback != "espeak" or config.backend == "espeak":
            raise
        reason = f"tts {config.backend} unavailable: {exc}"
    fallback = TTS_BACKENDS.create("espeak", config, device, voice_path)
    try:
        fallback.load()
    except ModelLoadError as exc:
        raise ModelLoadError(f"{reason}; the espeak fallback failed too: {exc}") from None
    return fallback, f"{reason}; speaking with espeak-ng instead"


def exhibit_voice_path(config: Config, exhibit: Exhibit) -> str:
    """The configured voice file, else the exhibit's own .onnx voice, else '' (the embedded voice)."""
    if config.tts.voice_path:
        return config.tts.voice_path
    if not exhibit.voice.endswith(".onnx"):
        return ""
    candidate = pack_file(exhibit.folder, exhibit.voice, f"{exhibit.folder / 'exhibit.toml'}: voice")
    if candidate.is_file():
        return str(candidate)
    return ""
