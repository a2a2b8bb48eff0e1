"""From the voice to mouth shapes: Piper's phoneme timings to visemes, or the loudness when there are none.

A :class:`MouthTrack` is a function of audio time: it says which mouth shape belongs to the sound being
heard at that moment, with coarticulation (each shape blends into its neighbours) so the mouth moves like
a speaker's, not like a flip-book.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from kiosk.engine.stage import SpeechChunk


@dataclass(frozen=True)
class MouthShape:
    jaw: float = 0.0  # how far the jaw drops, 0..1
    width: float = 0.0  # lips spread (+) or drawn together (-), -1..1
    round: float = 0.0  # lips rounded and pushed out, 0..1
    upper: float = 0.0  # upper lip raised (showing the upper teeth), 0..1
    teeth: float = 0.0  # lower lip tucked under the upper teeth (f, v), 0..1

    def vector(self) -> np.ndarray:
        return np.array([self.jaw, self.width, self.round, self.upper, self.teeth], dtype=np.float32)

    @staticmethod
    def from_vector(v: np.ndarray) -> MouthShape:
        return MouthShape(*(float(x) for x in v))


VISEMES: dict[str, MouthShape] = {
    "rest": MouthShape(),
    "closed": MouthShape(jaw=0.0, width=-0.05),  # p b m
    "open": MouthShape(jaw=0.85, width=0.1, upper=0.3),  # a ɑ æ ʌ
    "mid": MouthShape(jaw=0.5, width=0.15, upper=0.2),  # ɛ e ə ɜ
    "wide": MouthShape(jaw=0.3, width=0.6, upper=0.35),  # i ɪ j
    "round": MouthShape(jaw=0.35, width=-0.5, round=0.9),  # o u w ʊ ɔ
    "teeth_lip": MouthShape(jaw=0.12, width=0.1, upper=0.4, teeth=1.0),  # f v
    "tongue": MouthShape(jaw=0.25, width=0.2, upper=0.3),  # θ ð
    "teeth": MouthShape(jaw=0.18, width=0.35, upper=0.45),  # s z ʃ ʒ t d n l ɹ ...
    "back": MouthShape(jaw=0.35, width=0.1, upper=0.2),  # k g ŋ h
}

_PHONEME_VISEME: dict[str, str] = {}
for _name, _symbols in {
    "closed": "pbm",
    "open": "aɑæʌɐ",
    "mid": "ɛeəɜɚɝ",
    "wide": "iɪjy",
    "round": "oɔuʊwɒɵʉ",
    "teeth_lip": "fv",
    "tongue": "θð",
    "teeth": "szʃʒtdnlɹrɾʔ",
    "back": "kgŋhxɡ",
}.items():
    for _symbol in _symbols:
        _PHONEME_VISEME[_symbol] = _name
# stress, length and tie marks belong to the sound before or after: no shape of their own
_MODIFIERS = set("ˈˌːˑ̩̃͡‿")
_SILENCE = set(" _^$.,;:!?-—–\"'()")


def viseme_for(phoneme: str) -> str | None:
    """The viseme of one of Piper's phoneme symbols; None for marks that carry no shape."""
    if not phoneme or phoneme in _MODIFIERS:
        return None
    if phoneme in _SILENCE:
        return "rest"
    for symbol in phoneme:  # affricates and diphthongs: the first symbol leads the shape
        if symbol in _PHONEME_VISEME:
            return _PHONEME_VISEME[symbol]
    return "mid"


LOOKAHEAD_S = 0.02  # lips move a little before the sound they make
SMOOTHING_S = 0.035  # coarticulation: each shape reaches into its neighbours by about this much
ENVELOPE_STEP_S = 0.01


class MouthTrack:
    """Mouth shapes over the audio time of one answer, appended chunk by chunk as TTS produces them."""

    def __init__(self) -> None:
        self._starts: list[float] = []
        self._shapes: list[np.ndarray] = []
        self.duration = 0.0
        self.from_phonemes = True

    def add_chunk(self, chunk: SpeechChunk) -> None:
        if chunk.phonemes:
            self._add_phonemes(chunk)
        else:
            self.from_phonemes = False
            self._add_envelope(chunk)
        self.duration += chunk.seconds

    def _add_phonemes(self, chunk: SpeechChunk) -> None:
        t = self.duration
        pending = 0.0
        for timing in chunk.phonemes:
            seconds = timing.samples / chunk.sample_rate
            name = viseme_for(timing.phoneme)
            if name is None:
                pending += seconds  # a mark's time goes to the next sound
                continue
            self._append(t, VISEMES[name].vector())
            t += seconds + pending
            pending = 0.0

    def _add_envelope(self, chunk: SpeechChunk) -> None:
        step = max(1, int(chunk.sample_rate * ENVELOPE_STEP_S))
        audio = chunk.audio
        for i, start in enumerate(range(0, len(audio), step)):
            rms = float(np.sqrt(np.mean(np.square(audio[start : start + step])))) if len(audio) else 0.0
            level = float(np.clip((rms - 0.01) / 0.12, 0.0, 1.0))
            shape = MouthShape(jaw=0.8 * level, width=0.1 * level, upper=0.25 * level).vector()
            self._append(self.duration + i * ENVELOPE_STEP_S, shape)

    def _append(self, start: float, shape: np.ndarray) -> None:
        self._starts.append(start)
        self._shapes.append(shape)

    def _target(self, t: float) -> np.ndarray:
        if t < 0 or t >= self.duration or not self._starts:
            return VISEMES["rest"].vector()
        index = bisect.bisect_right(self._starts, t) - 1
        return self._shapes[max(index, 0)]

    def at(self, t: float) -> MouthShape:
        """The mouth for audio time ``t`` (seconds from the start of the answer)."""
        t += LOOKAHEAD_S
        blended = (
            0.25 * self._target(t - SMOOTHING_S)
            + 0.5 * self._target(t)
            + 0.25 * self._target(t + SMOOTHING_S)
        )
        return MouthShape.from_vector(blended)
