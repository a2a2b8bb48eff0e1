"""Whisper on a window fitted to a short question, instead of the 30 s one it pads every input to.

faster-whisper 1.2.1 pads each segment's features to 3000 frames (30 s) whatever its ``chunk_length``,
so the encoder of tiny.en spends about 0.3 s on a 2 s question, mostly on silence.  CTranslate2's Whisper
encoder takes any length up to 3000 frames: this module encodes the question's own frames plus a margin
of silence, then decodes greedily or by beam exactly as faster-whisper does at temperature 0 without
timestamps (same prompt, suppressed tokens, scores).  bench/asr_window.py measures word error rate and
time per window.

A short window makes Whisper loop more readily on noisy speech ("Press 3 for advanced options. Press 3 for
..."): the decoding is capped at what the clip's length can hold (6 tokens a second, a generous rate for
speech), and a transcript that reaches the cap or repeats itself (four words said twice, or a zlib
compression ratio above 2.4, Whisper's own threshold) is marked ``doubtful``: the caller decodes it again in the full window.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

FRAMES_PER_SECOND = 100  # 10 ms hop
FULL_FRAMES = 3000
TOKENS_PER_SECOND = 6.0
MAX_COMPRESSION_RATIO = 2.4


# the most tokens of previous text (Whisper's own limit is half its 448-token context)
PROMPT_TOKENS = 120


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def repeats(text: str, n: int = 4) -> bool:
    """Whisper looping: any run of ``n`` words said twice, or a text zlib squeezes like a loop."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) < len(grams) or compression_ratio(text) > MAX_COMPRESSION_RATIO


def window_frames(seconds: float, window_s: float, margin_s: float = 1.0) -> int:
    """The encoder's frames for ``seconds`` of audio; 0 when it needs Whisper's full window.

    ``window_s``: 30 (or more) always the full window; 0 fitted (the clip plus ``margin_s``, rounded up to
    a whole second); N a fixed N-second window for clips up to N - ``margin_s`` seconds long.
    """
    if window_s >= 30:
        return 0
    if window_s <= 0:
        fitted = math.ceil(seconds + margin_s)
        return 0 if fitted >= 30 else fitted * FRAMES_PER_SECOND
    if seconds + margin_s > window_s:
        return 0
    return int(round(window_s * FRAMES_PER_SECOND))


def transcribe_window(
    model, audio: np.ndarray, frames: int, beam_size: int, language: str, vocabulary: str = ""
) -> tuple[str, float, float, bool]:
    """(text, avg_logprob, no_speech_prob, doubtful) of ``audio`` encoded in a window of ``frames`` frames.

    ``model`` is a loaded ``faster_whisper.WhisperModel``; ``language`` is ignored by an English-only one.
    ``vocabulary``: words to expect (the exhibit's names), given as Whisper's previous text.
    """
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_ctranslate2_storage, get_suppressed_tokens

    multilingual = bool(model.model.is_multilingual)
    tokenizer = Tokenizer(
        model.hf_tokenizer, multilingual, task="transcribe", language=language if multilingual else None
    )
    features = model.feature_extractor(audio)[:, :-1]  # faster-whisper drops the padding's last frame
    window = np.zeros((1, features.shape[0], frames), dtype=np.float32)
    used = min(frames, features.shape[1])
    window[0, :, :used] = features[:, :used]
    encoded = model.model.encode(get_ctranslate2_storage(window), to_cpu=False)
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    if vocabulary:
        prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + vocabulary.strip())[-PROMPT_TOKENS:], *prompt]
    cap = min(224, math.ceil(8 + TOKENS_PER_SECOND * len(audio) / 16000))
    result = model.model.generate(
        encoded,
        [prompt],
        beam_size=beam_size,
        patience=1.0,
        length_penalty=1.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        max_length=min(model.max_length, len(prompt) + cap),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1]) or ()),
    )[0]
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    text = tokenizer.decode([t for t in tokens if t < tokenizer.eot]).strip()
    doubtful = len(tokens) >= cap - 3 or repeats(text)
    return text, float(avg_logprob), float(result.no_speech_prob), doubtful
