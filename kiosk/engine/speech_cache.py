"""The speech-cache prewarm: the exhibit's notes and the fixed replies spoken into the voice's cache.

A retrieval answer is made of the notes' own sentences, so its first audio then costs nothing to
synthesise.  The engine runs this after loading, on its own thread; it pauses whenever a turn is under way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken
from kiosk.engine.content_filter import CALM_REPLY
from kiosk.engine.device import trim_heap
from kiosk.engine.replies import fixed_replies
from kiosk.engine.smalltalk import canned_replies
from kiosk.engine.stage import SpeechSynthesizer
from kiosk.engine.tts import first_clause
from kiosk.engine.watchdog import TIMEOUT_REPLY
from kiosk.exhibit import Exhibit


def speech_cache_texts(exhibit: Exhibit) -> list[tuple[str, Emotion]]:
    """What the kiosk will say word for word: the fixed replies, then every sentence of the notes (and
    its first clause, which a streamed answer speaks first), each once, in that order."""
    from kiosk.engine.pipeline import ERROR_REPLY  # (the pipeline imports the stages that import this)

    texts: list[tuple[str, Emotion]] = [
        (CALM_REPLY, Emotion.NEUTRAL),
        *((part, Emotion.NEUTRAL) for reply in (ERROR_REPLY, TIMEOUT_REPLY) for part in first_clause(reply)),
        (ERROR_REPLY, Emotion.NEUTRAL),
        (TIMEOUT_REPLY, Emotion.NEUTRAL),
        *canned_replies(exhibit),
    ]
    texts.extend(fixed_replies(exhibit))  # declines, honest unknowns, offers
    for section in exhibit.sections:
        for sentence in section.sentences:
            texts.extend((part, section.tone) for part in first_clause(sentence) if part)
            texts.append((sentence, section.tone))
    return list(dict.fromkeys(texts))


def warm_speech_cache(
    tts: SpeechSynthesizer,
    texts: list[tuple[str, Emotion]],
    busy: Callable[[], bool],
    closing: threading.Event,
) -> int:
    """Speak ``texts`` into ``tts``'s cache, waiting while ``busy()``; stops at ``closing``.  The count spoken."""
    warmed = 0
    for text, emotion in texts:
        while busy() and not closing.is_set():
            closing.wait(0.2)
        if closing.is_set():
            break
        for _ in tts.stream(text, emotion, CancelToken()):
            pass
        warmed += 1
        # what the vocoder freed goes back to the system sentence by sentence: kept until the end,
        # it stood 100-290 MB over the kiosk's settled size for the half minute this takes (2 cores)
        trim_heap()
    return warmed
