"""Odd recordings (clipped, DC offset, 8 kHz, stereo, 48 kHz float) are answered in full, not cut off.

Issue 15 saw 4 of 5 such answers "stop mid-reply".  Reproduced with these files, nothing was cut: every
answer played to its last sentence, and a DC offset that goes on through the silence after the question
(a live microphone's) never started a barge-in.  What differed was the reply itself: the same question asked
five times in one conversation is answered with what has not been said yet, and "Who flew on Apollo 11?"
heard right is answered with one crew sentence and an offer (the mis-heard clipped file got the fuller
crew answer), which sounds unfinished.  These tests keep the audio side honest: each file, in a fresh
conversation, gets exactly the typed question's reply, every sentence of it played.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from kiosk.engine import events as ev
from kiosk.engine.audio_in import MemorySource, load_audio
from kiosk.engine.audio_out import NullSink

pytestmark = pytest.mark.timeout(240)
QUESTION = "Who flew on Apollo 11?"


def resample(audio: np.ndarray, rate: int) -> np.ndarray:
    g = gcd(rate, 16000)
    return resample_poly(audio, rate // g, 16000 // g).astype(np.float32)


def odd_files(speech: np.ndarray, folder: Path) -> dict[str, Path]:
    pad = np.zeros(8000, dtype=np.float32)
    speech = np.concatenate([pad, speech, pad])
    files = {
        "clipped": (np.clip(speech * 4, -1, 1), 16000, "PCM_16"),
        "dc_offset": (np.clip(speech * 0.5 + 0.3, -1, 1), 16000, "PCM_16"),
        "8khz": (resample(speech, 8000), 8000, "PCM_16"),
        "stereo": (np.stack([speech, speech * 0.8], axis=1), 16000, "PCM_16"),
        "48khz_float": (resample(speech, 48000), 48000, "FLOAT"),
    }
    paths = {}
    for name, (audio, rate, subtype) in files.items():
        paths[name] = folder / f"{name}.wav"
        sf.write(paths[name], audio, rate, subtype=subtype)
    return paths


def answered_in_full(recorder, turn, statuses: tuple[str, ...] = ("ok",)) -> None:
    [finished] = [e for e in recorder.finished() if e.turn_id == turn.id]
    started = [e for e in recorder.of(ev.SentenceStarted) if e.turn_id == turn.id]
    assert finished.status in statuses, finished
    assert len(started) == len(turn.spoken) and turn.spoken, (started, turn.spoken)


def test_each_odd_file_gets_the_typed_questions_whole_reply(make_pipeline, tmp_path):
    # the steady voice: Piper's random variation once made it "Whose flew on Apollo 11?" at 8 kHz
    from tests.conftest import steady_voice

    pipeline, recorder = make_pipeline(sink=NullSink(realtime=False))
    pipeline.reset_session()
    typed = pipeline.ask(QUESTION)
    assert typed.done.wait(60) and pipeline.wait_idle(60)
    heard = []
    for name, path in odd_files(steady_voice()(QUESTION)[0], tmp_path).items():
        pipeline.reset_session()
        turn = pipeline.answer_audio(load_audio(path))
        assert turn.done.wait(60) and pipeline.wait_idle(60), name
        # clipping hard (x4) can cost the name ("the power of eleven"): then an honest "my notes don't
        # say" in full is right too
        answered_in_full(recorder, turn, ("ok", "unanswered") if name == "clipped" else ("ok",))
        heard.append((name, turn.question))
        if "apollo 11" in turn.question.lower():  # the same question: the same topic, answered in full
            assert turn.topic == typed.topic and turn.status == typed.status, name
    # clipping hard (x4) may cost a word ("the power 11"); the others are heard as typed
    assert all("apollo 11" in q.lower() for name, q in heard if name != "clipped"), heard
    pipeline.reset_session()


def test_a_dc_offset_through_the_silence_after_the_question_does_not_barge_in(make_pipeline, speak, tmp_path):
    """A live microphone with a DC offset: the offset goes on after the question, while the answer plays."""
    pipeline, recorder = make_pipeline(sink=NullSink(realtime=True))
    pipeline.reset_session()
    audio = load_audio(odd_files(speak(QUESTION), tmp_path)["dc_offset"])
    level = float(np.median(audio[:4000]))
    assert level > 0.25
    audio = np.concatenate([audio, np.full(16000 * 10, level, dtype=np.float32)])
    pipeline.start_listening(MemorySource(audio, realtime=True, tail_silence_s=0.2))
    try:
        assert pipeline._listener is not None
        pipeline._listener.join(60)
        assert pipeline.wait_idle(60)
    finally:
        pipeline.stop_listening()
    finished = recorder.finished()
    assert [e.status for e in finished] == ["ok"], finished
    turn_id = finished[0].turn_id
    started = [e for e in recorder.of(ev.SentenceStarted) if e.turn_id == turn_id]
    assert len(started) >= 1 and finished[0].answer.endswith(started[-1].text)
    pipeline.reset_session()
