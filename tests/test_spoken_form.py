"""What the voice reads: currency, units, codes and spans written out as said; the captions keep the text."""

from __future__ import annotations

import pytest

from kiosk.config import TtsConfig
from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken
from kiosk.engine.device import Device
from kiosk.engine.tts import PiperSynthesizer, create_synthesizer
from kiosk.engine.tts.spoken import spoken_form


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("It cost £250.", "It cost 250 pounds."),
        ("It cost $3.5 million.", "It cost 3.5 million dollars."),
        ("A £3m refit and a $2bn budget.", "A 3 million pounds refit and a 2 billion dollars budget."),
        ("Tickets were £2.50, or €1.", "Tickets were 2 pounds 50, or 1 euro."),
        ("It weighs 12 kg, or 1 kg empty.", "It weighs 12 kilograms, or 1 kilogram empty."),
        (
            "It is 40 cm wide, 3 m tall and 5 km away.",
            "It is 40 centimetres wide, 3 metres tall and 5 kilometres away.",
        ),
        (
            "Inside it was 20°C, outside -5 °F.",
            "Inside it was 20 degrees Celsius, outside -5 degrees Fahrenheit.",
        ),
        ("She flew STS-114 and STS-63.", "She flew S T S 114 and S T S 63."),
        ("It served from 1969–1972, and in 1939-45.", "It served from 1969 to 1972, and in 1939 to 45."),
        ("It holds 5–10 kg.", "It holds 5 to 10 kilograms."),
        ("It was built in the 1960s.", "It was built in the nineteen sixties."),
    ],
)
def test_symbols_units_and_codes_are_written_out_for_the_voice(written: str, said: str) -> None:
    assert spoken_form(written) == said


@pytest.mark.parametrize(
    "plain",
    [
        "Apollo 11 landed on 20 July 1969 at 20:17.",
        "Engine No. 4 pulled 1,000 tonnes in the morning.",
        "It is 3 metres long; the crew was 3 men.",
        "Hello! I'm your guide to this exhibit.",
    ],
)
def test_text_the_voice_already_reads_well_is_left_alone(plain: str) -> None:
    assert spoken_form(plain) == plain


@pytest.fixture(scope="module")
def piper() -> PiperSynthesizer:
    synth, reason = create_synthesizer(TtsConfig(fallback="none", cache_bytes=0), Device("cpu"))
    assert isinstance(synth, PiperSynthesizer) and reason is None
    return synth


def _phonemes(synth: PiperSynthesizer, text: str) -> str:
    chunks = list(synth.stream(text, Emotion.NEUTRAL, CancelToken()))
    return "".join(p.phoneme for c in chunks for p in c.phonemes)


def test_the_kiosks_voice_says_pounds_after_the_amount_and_keeps_the_written_text(piper) -> None:
    """Piper read "£250" as "pound two hundred fifty" and "12 kg" as "twelve K G"."""
    for written, said in [
        ("It cost £250.", "It cost 250 pounds."),
        ("It weighs 12 kg.", "It weighs 12 kilograms."),
    ]:
        assert _phonemes(piper, written) == _phonemes(piper, said)
    chunks = list(piper.stream("It cost £250.", Emotion.NEUTRAL, CancelToken()))
    assert chunks[0].text == "It cost £250."  # what the captions and events carry stays as written
