"""From the voice to mouth shapes: Piper's phoneme timings to visemes, or the loudness when there are none.

A :class:`MouthTrack` is a function of audio time: it says which mouth shape belongs to the sound being
heard at that moment.  Coarticulation follows the dominance model of Cohen and Massaro: every sound is a
segment of time with a target shape and a dominance; the mouth at ``t`` is the dominance-weighted mean of
the targets under a short smooth window around ``t``.  Long sounds reach their shape and hold it, short
ones are pulled toward their neighbours, and lip closures (p, b, m) dominate so they always close.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from kiosk.engine.stage import SpeechChunk


@dataclass(frozen=True)
class MouthShape:
    """The mouth's parameters; the renderer turns them into pixels.

    ``jaw`` is absolute: 0 is closed lips, 1 a wide-open mouth, whatever the portrait shows.  ``rest``
    blends all of it toward the portrait's own mouth: the face at rest is the photograph.
    """

    jaw: float = 0.0  # how far the lips part, 0 closed .. 1 wide open
    width: float = 0.0  # lips spread (+) or drawn together (-), -1..1
    round: float = 0.0  # lips rounded and pushed out, 0..1
    upper: float = 0.0  # upper lip raised (showing the upper teeth), 0..1
    teeth: float = 0.0  # lower lip tucked under the upper teeth (f, v), 0..1
    rest: float = 0.0  # 1: the portrait's own mouth, whatever the other values say

    def vector(self) -> np.ndarray:
        return np.array(
            [self.jaw, self.width, self.round, self.upper, self.teeth, self.rest], dtype=np.float32
        )

    @staticmethod
    def from_vector(v: np.ndarray) -> MouthShape:
        return MouthShape(*(float(x) for x in v))


REST = MouthShape(rest=1.0)

VISEMES: dict[str, MouthShape] = {
    "rest": REST,  # not speaking: the portrait's own mouth
    "pause": MouthShape(jaw=0.04, width=0.05),  # a silence within speech: lips lightly together
    "closed": MouthShape(jaw=0.0, width=-0.05),  # p b m: lips pressed together
    "open": MouthShape(jaw=0.85, width=0.05, upper=0.3),  # a ɑ æ ʌ
    "mid": MouthShape(jaw=0.5, width=0.15, upper=0.2),  # ɛ e ə ɜ
    "wide": MouthShape(jaw=0.28, width=0.55, upper=0.35),  # i ɪ j
    "round": MouthShape(jaw=0.3, width=-0.5, round=0.9),  # o u w ʊ ɔ
    "teeth_lip": MouthShape(jaw=0.16, width=0.1, upper=0.4, teeth=1.0),  # f v
    "tongue": MouthShape(jaw=0.25, width=0.2, upper=0.3),  # θ ð
    "teeth": MouthShape(jaw=0.14, width=0.35, upper=0.45),  # s z ʃ ʒ t d n l ɹ ...
    "back": MouthShape(jaw=0.35, width=0.1, upper=0.2),  # k g ŋ h
}

# how strongly a sound holds its shape against its neighbours
DOMINANCE: dict[str, float] = {"closed": 4.0, "teeth_lip": 2.5, "round": 1.5, "pause": 0.6}

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
        return "pause"
    for symbol in phoneme:  # affricates and diphthongs: the first symbol leads the shape
        if symbol in _PHONEME_VISEME:
            return _PHONEME_VISEME[symbol]
    return "mid"


LOOKAHEAD_S = 0.02  # lips move a little before the sound they make
WINDOW_S = 0.06  # half-width of the coarticulation window (a raised cosine)
SETTLE_S = 0.3  # after the last sound the mouth settles back to the portrait's over this long
ENVELOPE_STEP_S = 0.01
SHORT_PAUSE_S = 0.06  # a silence shorter than this hardly moves the mouth toward rest
# loudness (RMS of -1..1 audio) mapped to the mouth when a voice gives no phoneme timings
ENVELOPE_FLOOR = 0.01
ENVELOPE_SPAN = 0.12


def _window_cdf(x: float) -> float:
    """The share of the raised-cosine window (centred on 0, half-width WINDOW_S) that lies below ``x``."""
    if x <= -WINDOW_S:
        return 0.0
    if x >= WINDOW_S:
        return 1.0
    return (x + WINDOW_S) / (2 * WINDOW_S) + math.sin(math.pi * x / WINDOW_S) / (2 * math.pi)


class MouthTrack:
    """Mouth shapes over the audio time of one answer, appended chunk by chunk as TTS produces them."""

    def __init__(self) -> None:
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._shapes: list[np.ndarray] = []
        self._weights: list[float] = []
        self.duration = 0.0
        self.from_phonemes = True
        self._rest = REST.vector()

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
        named: list[tuple[str, float]] = []
        for timing in chunk.phonemes:
            seconds = timing.samples / chunk.sample_rate
            name = viseme_for(timing.phoneme)
            if name is None:
                pending += seconds  # a mark's time goes to the next sound...
                continue
            named.append((name, seconds + pending))
            pending = 0.0
        if pending and named:  # ...or to the last one, when the chunk ends with a mark
            named[-1] = (named[-1][0], named[-1][1] + pending)
        for name, seconds in named:
            weight = DOMINANCE.get(name, 1.0)
            if name == "pause":  # the gap between two words is no pause: the mouth barely rests there
                weight *= float(np.clip((seconds - SHORT_PAUSE_S) / 0.1, 0.05, 1.0))
            self._append(t, t + seconds, VISEMES[name].vector(), weight)
            t += seconds

    def _add_envelope(self, chunk: SpeechChunk) -> None:
        step = max(1, int(chunk.sample_rate * ENVELOPE_STEP_S))
        audio = chunk.audio
        seconds = step / chunk.sample_rate
        for i, start in enumerate(range(0, len(audio), step)):
            block = audio[start : start + step]
            rms = float(np.sqrt(np.mean(np.square(block)))) if len(block) else 0.0
            level = float(np.clip((rms - ENVELOPE_FLOOR) / ENVELOPE_SPAN, 0.0, 1.0))
            shape = MouthShape(
                jaw=0.8 * level, width=0.1 * level, upper=0.25 * level, rest=max(0.0, 1.0 - 4.0 * level)
            )
            begin = self.duration + i * seconds
            self._append(begin, begin + seconds, shape.vector(), 1.0)

    def _append(self, start: float, end: float, shape: np.ndarray, weight: float) -> None:
        self._starts.append(start)
        self._ends.append(end)
        self._shapes.append(shape)
        self._weights.append(weight)

    def at(self, t: float) -> MouthShape:
        """The mouth for audio time ``t`` (seconds from the start of the answer)."""
        t += LOOKAHEAD_S
        if not self._starts or t <= -WINDOW_S or t >= self.duration + SETTLE_S:
            return REST
        total = np.zeros(6, np.float32)
        weights = 0.0
        index = max(0, bisect.bisect_right(self._ends, t - WINDOW_S))
        while index < len(self._starts) and self._starts[index] < t + WINDOW_S:
            covered = _window_cdf(self._ends[index] - t) - _window_cdf(self._starts[index] - t)
            if covered > 0:
                w = self._weights[index] * covered
                total += w * self._shapes[index]
                weights += w
            index += 1
        if weights <= 0:  # past the last sound's window
            speech = self._shapes[-1]
        else:
            speech = total / weights
        # before the first sound and after the last one the mouth eases to the portrait's own
        start = float(np.clip(-t / WINDOW_S, 0.0, 1.0))
        end = float(np.clip((t - self.duration) / SETTLE_S, 0.0, 1.0))
        settle = max(start, end * end * (3 - 2 * end))
        return MouthShape.from_vector(speech + settle * (self._rest - speech))
