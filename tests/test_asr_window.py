"""Whisper on a window fitted to short questions: the same words as the 30 s window, in less time."""

from __future__ import annotations

import gzip
import re
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import Config
from kiosk.engine.asr import RECOGNIZERS
from kiosk.engine.device import Device
from kiosk.engine.whisper_window import transcribe_window, window_frames

ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def test_window_frames() -> None:
    assert window_frames(2.0, 30.0) == 0  # Whisper's own window
    assert window_frames(2.0, 10.0) == 1000
    assert window_frames(9.5, 10.0) == 0  # does not fit with its margin: the full window
    assert window_frames(2.2, 0.0) == 400  # fitted: 2.2 s + 1 s, rounded up
    assert window_frames(29.5, 0.0) == 0


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).replace("'", "").split()


def _recorded(count: int) -> list[tuple[str, np.ndarray]]:
    """A professional speaker's prompts (Debian asterisk-core-sounds-en-g722, CC-BY-SA-3.0)."""
    if not ASTERISK_TEXT.is_file():
        pytest.skip("asterisk-core-sounds-en is not installed")
    import av

    clips = []
    for line in gzip.decompress(ASTERISK_TEXT.read_bytes()).decode("utf-8", "replace").splitlines():
        name, _, text = line.partition(": ")
        path = ASTERISK / f"{name.strip()}.g722"
        if "[" in text or not 5 <= len(_words(text)) <= 12 or not path.is_file():
            continue
        with av.open(str(path), format="g722") as container:
            pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        silence = np.zeros(4800, np.float32)
        clips.append((text.strip(), np.concatenate([silence, pcm.astype(np.float32) / 32768.0, silence])))
        if len(clips) == count:
            break
    return clips


@pytest.fixture(scope="module")
def recognizer(cache_dir: Path):
    asr = RECOGNIZERS.create(
        "whisper", Config().replace(asr={"window_s": 30.0}).asr, Device("cpu"), cache_dir
    )
    asr.load()
    yield asr
    asr.close()


def test_the_full_window_gives_faster_whispers_words(recognizer) -> None:
    for _text, audio in _recorded(4):
        assert (
            transcribe_window(recognizer._model, audio, 3000, 1, "en")[0] == recognizer.transcribe(audio).text
        )


def test_a_ten_second_window_hears_the_same_words_in_less_time(recognizer) -> None:
    full_s, short_s, differing = [], [], 0
    for _text, audio in _recorded(10):
        started = time.process_time()
        full = recognizer.transcribe(audio).text
        full_s.append(time.process_time() - started)
        started = time.process_time()
        short = transcribe_window(recognizer._model, audio, window_frames(len(audio) / 16000, 10.0), 1, "en")
        assert not short[3], short
        short_s.append(time.process_time() - started)
        differing += _words(full) != _words(short[0])
    assert differing <= 2, differing
    assert statistics.median(short_s) < 0.6 * statistics.median(full_s), (full_s, short_s)


def test_a_looping_transcript_is_doubtful() -> None:
    from kiosk.engine.whisper_window import repeats

    assert repeats("Press 3 for advanced options. " * 5)
    assert repeats("Press 3 for advanced options. Press 3 for advanced options. Press 3")
    assert not repeats("Press 1 to enter an extension. Press 2 to use the directory.")


def test_noise_in_a_short_window_is_not_understood(cache_dir: Path) -> None:
    asr = RECOGNIZERS.create(
        "whisper", Config().replace(asr={"window_s": 10.0}).asr, Device("cpu"), cache_dir
    )
    asr.load()
    rng = np.random.default_rng(3)
    heard = asr.transcribe((rng.standard_normal(24000) * 0.05).astype(np.float32))
    assert not heard.understood, heard.text
