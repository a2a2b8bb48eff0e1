"""The spoken path for bench/answers.py ``--spoken``: each question said by voices the kiosk never speaks
with, clean and in 10 dB babble, and heard by the kiosk's own recogniser (the configured Whisper model, told
the exhibit's names as the kiosk tells it).

Four voices: two espeak-ng voices (British received pronunciation, female; Scottish, male) and the Piper
voice at a slower and a quicker pace with more and less variation than the kiosk gives it.  The babble is
four other talkers (espeak-ng and Piper) reading the exhibit's own notes, summed, at 10 dB below the
question: a busy gallery, the hardest kind of noise for a recogniser because it is speech.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.answer_runs import ANSWERED_KINDS, CorpusPack, Result, pack_config, pct, run_pack
from kiosk.exhibit import Exhibit

SAMPLE_RATE = 16000
BABBLE_SNR_DB = 10.0


@dataclass(frozen=True)
class Voice:
    name: str
    engine: str  # espeak | piper
    espeak_voice: str = ""
    rate: int = 160  # espeak-ng words per minute
    length_scale: float = 1.0  # Piper: > 1 is slower
    noise_scale: float = 0.667  # Piper: variation


VOICES = (
    Voice("espeak-ng RP female", "espeak", "en-gb-x-rp+f3", rate=155),
    Voice("espeak-ng Scots male", "espeak", "en-gb-scotland+m3", rate=170),
    Voice("Piper slow, varied", "piper", length_scale=1.25, noise_scale=0.9),
    Voice("Piper quick, flat", "piper", length_scale=0.82, noise_scale=0.3),
)
# the babble's talkers: not the question's voice (the question comes first in a mix)
BABBLE_TALKERS = (
    Voice("babble 1", "espeak", "en-us+m1", rate=175),
    Voice("babble 2", "espeak", "en-gb+f2", rate=165),
    Voice("babble 3", "piper", length_scale=1.05, noise_scale=0.8),
    Voice("babble 4", "espeak", "en-029+m4", rate=150),
)


class Speakers:
    """Speech for a text in one of the voices, as 16 kHz float32 (what the kiosk's microphone gives)."""

    def __init__(self) -> None:
        self._piper = None
        self._memo: dict[tuple[str, str], np.ndarray] = {}

    def say(self, voice: Voice, text: str) -> np.ndarray:
        key = (voice.name, text)
        if key not in self._memo:
            audio = self._espeak(voice, text) if voice.engine == "espeak" else self._piper_say(voice, text)
            self._memo[key] = audio
        return self._memo[key]

    def _espeak(self, voice: Voice, text: str) -> np.ndarray:
        from kiosk.engine.audio_in import load_audio

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "said.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice.espeak_voice, "-s", str(voice.rate), "-w", str(path), text],
                check=True,
                capture_output=True,
            )
            return load_audio(path, SAMPLE_RATE)

    def _piper_say(self, voice: Voice, text: str) -> np.ndarray:
        from piper import PiperVoice, SynthesisConfig
        from scipy.signal import resample_poly

        from kiosk.engine.tts import resolve_voice
        from kiosk.engine.tts.spoken import spoken_form

        if self._piper is None:
            model, config = resolve_voice("")
            self._piper = PiperVoice.load(model, config_path=config)
        config = SynthesisConfig(length_scale=voice.length_scale, noise_scale=voice.noise_scale)
        chunks = list(self._piper.synthesize(spoken_form(text), syn_config=config))
        rate = chunks[0].sample_rate
        audio = np.concatenate([c.audio_float_array for c in chunks])
        return resample_poly(audio, 160, rate // 100).astype(np.float32)


def babble_bed(speakers: Speakers, sentences: list[str], seconds: float = 30.0) -> np.ndarray:
    """Four talkers reading the notes at once, each at the same level, looped to ``seconds``."""
    n = int(seconds * SAMPLE_RATE)
    bed = np.zeros(n, dtype=np.float32)
    for i, talker in enumerate(BABBLE_TALKERS):
        said = " ".join(sentences[i::4][:6]) or "the museum is open every day"
        audio = speakers.say(talker, said)
        audio = np.tile(audio, n // max(1, len(audio)) + 1)[:n]
        bed += audio / (float(np.sqrt(np.mean(audio**2))) + 1e-9)
    return bed


def in_babble(speech: np.ndarray, bed: np.ndarray, offset: int, snr_db: float = BABBLE_SNR_DB) -> np.ndarray:
    """The question with the babble under it at ``snr_db`` (speech power over babble power)."""
    start = offset % max(1, len(bed) - len(speech))
    noise = bed[start : start + len(speech)]
    gain = np.sqrt(np.mean(speech**2) / (np.mean(noise**2) * 10 ** (snr_db / 10) + 1e-12))
    mixed = speech + gain * noise
    peak = float(np.abs(mixed).max())
    return (mixed / peak * 0.9 if peak > 1.0 else mixed).astype(np.float32)


def padded(audio: np.ndarray, lead_s: float = 0.3) -> np.ndarray:
    """A question as the endpointer hands it over: a little quiet before and after."""
    pad = np.zeros(int(lead_s * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([pad, audio, pad])


_RECOGNIZER: list = []  # the one Whisper model, loaded for the first pack spoken


def spoken_results(pack: str, exhibit: Exhibit, retriever, cache: str | None, limit: int) -> list[Result]:
    """The pack's questions said by every voice, clean and in babble: one Result per condition, each reply
    tagged with its voice (``Reply.voice``)."""
    from kiosk.engine.asr import RECOGNIZERS, exhibit_vocabulary
    from kiosk.engine.device import Device

    config = pack_config(pack, "retrieval", cache)
    if not _RECOGNIZER:
        recognizer = RECOGNIZERS.create("whisper", config.asr, Device("cpu"), config.cache_dir)
        recognizer.load()
        _RECOGNIZER.append((recognizer, Speakers()))
    recognizer, speakers = _RECOGNIZER[0]
    recognizer.vocabulary = exhibit_vocabulary(exhibit)  # as the engine tells it, pack by pack
    bed = babble_bed(speakers, [s for section in exhibit.sections for s in section.sentences])
    results = []
    for condition in ("clean", "babble"):
        result = Result(Path(pack).name, f"spoken {condition}")
        for number, voice in enumerate(VOICES, 1):

            def hear(question: str, voice=voice, condition=condition) -> tuple[str, bool]:
                audio = speakers.say(voice, question)
                if condition == "babble":
                    audio = in_babble(audio, bed, offset=len(question) * 997)
                transcript = recognizer.transcribe(padded(audio))
                return transcript.text, transcript.understood

            part = run_pack(pack, "retrieval", retriever, None, cache, limit, hear=hear)
            for reply in part.replies:
                reply.voice = number
            result.replies.extend(part.replies)
        results.append(result)
    return results


def voice_table(results: list[Result], packs: dict[str, CorpusPack]) -> str:
    """Facts right per voice and condition, totals by split: which voices the recogniser loses."""
    lines = [f"{'voice':28}{'split':7}{'clean':>18}{'10 dB babble':>18}"]
    splits = ("dev", "test") if packs else ("-",)
    for number, voice in enumerate(VOICES, 1):
        for split in splits:
            cells = []
            for condition in ("spoken clean", "spoken babble"):
                replies = [
                    x
                    for r in results
                    if r.backend == condition and (not packs or packs[r.pack].split == split)
                    for x in r.replies
                    if x.voice == number and x.row.kind in ANSWERED_KINDS
                ]
                cells.append(pct(sum(x.right for x in replies), len(replies)))
            if any(c != "-" for c in cells):
                lines.append(f"{voice.name:28}{split:7}{cells[0]:>18}{cells[1]:>18}")
    lines.append("targets (test split): facts right >= 85% clean, >= 75% in 10 dB babble")
    return "\n".join(lines)
