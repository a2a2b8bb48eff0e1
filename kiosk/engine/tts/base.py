"""What both voices share: a cache of spoken sentences and the synthesizer that streams through it.

A sentence already spoken in the same voice and emotion comes back at once, which matters for greetings,
"could you say that again" and the attract loop.  ``stream()`` stops quietly when the cancel token fires:
it checks between chunks, never mid-chunk, and a sentence cut short is not cached.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from kiosk.config import TtsConfig
from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken
from kiosk.engine.stage import SpeechChunk, SpeechSynthesizer

DEFAULT_CACHE_BYTES = TtsConfig.cache_bytes
WARM_UP_TEXT = "Hello."


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


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
