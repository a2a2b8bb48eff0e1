"""Mouth shapes from phonemes (Piper's alignments) and from loudness (voices without alignments)."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.engine.face.visemes import VISEMES, MouthTrack, viseme_for
from kiosk.engine.stage import PhonemeTiming, SpeechChunk


@pytest.mark.parametrize(
    ("phoneme", "viseme"),
    [
        ("m", "closed"),
        ("b", "closed"),
        ("ɑ", "open"),
        ("æ", "open"),
        ("i", "wide"),
        ("u", "round"),
        ("w", "round"),
        ("f", "teeth_lip"),
        ("v", "teeth_lip"),
        ("θ", "tongue"),
        ("s", "teeth"),
        ("ʃ", "teeth"),
        ("k", "back"),
        (" ", "pause"),
        (".", "pause"),
        ("^", "pause"),
        ("$", "pause"),
        ("ˈ", None),
        ("ː", None),
        ("aɪ", "open"),
        ("tʃ", "teeth"),
    ],
)
def test_phoneme_to_viseme(phoneme: str, viseme: str | None) -> None:
    assert viseme_for(phoneme) == viseme


def chunk(phonemes: list[tuple[str, int]], rate: int = 1000) -> SpeechChunk:
    total = sum(n for _, n in phonemes)
    return SpeechChunk(np.zeros(total, np.float32), rate, "", tuple(PhonemeTiming(p, n) for p, n in phonemes))


def test_track_follows_known_phonemes_with_smooth_transitions() -> None:
    # "ma", "mi", "fu": 200 ms each sound at 1 kHz
    track = MouthTrack()
    track.add_chunk(chunk([("m", 200), ("ɑ", 200), ("m", 200), ("i", 200), ("f", 200), ("u", 200)]))
    assert track.duration == pytest.approx(1.2)
    assert track.at(0.1).jaw == pytest.approx(VISEMES["closed"].jaw, abs=0.01)
    assert track.at(0.3).jaw == pytest.approx(VISEMES["open"].jaw, abs=0.01)
    assert track.at(0.7).width == pytest.approx(VISEMES["wide"].width, abs=0.01)
    assert track.at(0.9).teeth == pytest.approx(1.0, abs=0.01)
    assert track.at(1.1).round == pytest.approx(VISEMES["round"].round, abs=0.01)
    # coarticulation: the mouth is already opening just before the vowel, never a jump between frames
    jaws = [track.at(t).jaw for t in np.arange(0.0, 1.2, 1 / 30)]
    assert max(abs(a - b) for a, b in zip(jaws, jaws[1:], strict=False)) < VISEMES["open"].jaw * 0.8
    assert 0 < track.at(0.19).jaw < VISEMES["open"].jaw
    assert track.at(5.0) == VISEMES["rest"]


def test_stress_marks_take_no_shape_of_their_own() -> None:
    track = MouthTrack()
    track.add_chunk(chunk([("ˈ", 50), ("ɑ", 150), ("m", 200)]))
    assert track.at(0.02).jaw > 0.5  # the vowel starts where the mark was
    assert track.duration == pytest.approx(0.4)


def test_loudness_drives_the_mouth_without_alignments() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    audio = np.where(t < 0.5, 0.4 * np.sin(2 * np.pi * 200 * t), 0.0).astype(np.float32)
    track = MouthTrack()
    track.add_chunk(SpeechChunk(audio, rate))
    assert not track.from_phonemes
    assert track.at(0.25).jaw > 0.5
    assert track.at(0.8).jaw == pytest.approx(0.0, abs=0.01)


def test_chunks_append_in_time() -> None:
    track = MouthTrack()
    track.add_chunk(chunk([("m", 500)]))
    track.add_chunk(chunk([("ɑ", 500)]))
    assert track.at(0.25).jaw < 0.1 and track.at(0.75).jaw > 0.7


def test_a_short_lip_closure_still_closes_between_open_vowels() -> None:
    # "ama" spoken fast: 60 ms of m between two open vowels; p, b and m dominate their neighbours
    track = MouthTrack()
    track.add_chunk(chunk([("ɑ", 200), ("m", 60), ("ɑ", 200)]))
    middle = 0.23 - 0.02  # the lips lead the sound by LOOKAHEAD_S
    assert track.at(middle).jaw < 0.25 * VISEMES["open"].jaw
    assert track.at(0.08).jaw > 0.8 * VISEMES["open"].jaw


def test_a_short_pause_between_words_does_not_shut_the_mouth() -> None:
    track = MouthTrack()
    track.add_chunk(chunk([("ɑ", 150), (" ", 30), ("ɑ", 150)]))
    assert track.at(0.165 - 0.02).rest < 0.3
    assert track.at(0.165 - 0.02).jaw > 0.5


def test_marks_at_the_end_of_a_chunk_keep_their_time() -> None:
    track = MouthTrack()
    track.add_chunk(chunk([("ɑ", 200), ("ː", 100)]))
    track.add_chunk(chunk([("m", 200)]))
    assert track.duration == pytest.approx(0.5)
    assert track.at(0.25 - 0.02).jaw > 0.7  # the length mark lengthened the vowel
    assert track.at(0.4 - 0.02).jaw < 0.05


def test_real_piper_speech_closes_the_lips_on_every_p_b_m(spoken_answer) -> None:
    """Over a real answer, the mouth at the middle of each bilabial is nearly shut, and open on vowels."""
    track = MouthTrack()
    for piece in spoken_answer:
        track.add_chunk(piece)
    assert track.from_phonemes
    bilabials, vowels = [], []
    t = 0.0
    for piece in spoken_answer:
        pending = 0.0
        for timing in piece.phonemes:
            seconds = timing.samples / piece.sample_rate
            name = viseme_for(timing.phoneme)
            if name is None:
                pending += seconds
                continue
            middle = t + (seconds + pending) / 2 - 0.02
            if name == "closed":
                bilabials.append(track.at(middle))
            elif name == "open" and seconds + pending > 0.06:
                vowels.append(track.at(middle))
            t += seconds + pending
            pending = 0.0
        t += pending
    assert len(bilabials) >= 4 and len(vowels) >= 4
    assert max(m.jaw for m in bilabials) < 0.3 and max(m.rest for m in bilabials) < 0.3
    assert np.median([m.jaw for m in vowels]) > 0.5
