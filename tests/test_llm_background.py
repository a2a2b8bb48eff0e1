"""The LLM loads behind a kiosk that already answers: from the notes as written until the model is ready,
then in its words.  With the real SmolLM2 (converted once into the test cache) and the real engine."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kiosk.config import Config
from kiosk.engine import events as ev
from kiosk.engine.answer import ANSWERERS, llm_wording
from kiosk.engine.audio_out import NullSink
from kiosk.engine.cancel import CancelToken
from kiosk.engine.device import resolve_device
from kiosk.engine.engine import Engine
from kiosk.engine.llm import LlmAnswerer
from kiosk.engine.retrieval import SectionRetriever
from kiosk.exhibit import load_exhibit
from tests.conftest import Recorder

QUESTION = "Who was the commander of Apollo 11?"


def _spoken(answerer: LlmAnswerer) -> tuple[str, dict[str, float]]:
    answerer.reset_session()
    answer = answerer.answer(QUESTION, CancelToken())
    text = " ".join(answer.sentences)
    return text, answer.info


@pytest.mark.slow
def test_the_notes_answer_while_the_model_loads_then_the_model_does(base_config: Config) -> None:
    config = base_config.replace(answer={"backend": "llm"}, llm={"device": "cpu"})
    exhibit = load_exhibit(config.exhibit.path)
    retriever = SectionRetriever(exhibit, resolve_device("cpu"), runtime=config.retrieval.runtime)
    retriever.load()
    answerer = ANSWERERS.create("llm", config, exhibit, retriever)
    assert isinstance(answerer, LlmAnswerer)
    answerer.prepare()
    text, info = _spoken(answerer)
    assert "Armstrong" in text and info["llm_loading"] == 1 and info["fallback"] == 1
    loader = threading.Thread(target=answerer.load)
    loader.start()
    try:
        while not answerer.loaded.is_set() and loader.is_alive():  # asked while it loads: the notes answer
            text, info = _spoken(answerer)
            if answerer.loaded.is_set():
                break
            assert "Armstrong" in text and info.get("llm_loading") == 1 and "tokens" not in info
            loader.join(0.5)
    finally:
        loader.join(300)
    assert answerer.loaded.is_set() and answerer.load_seconds > 0
    # the 4-bit projections' 16-bit copies are gone (keep_dense_weights = false): the fast decoder runs it,
    # with bfloat16 activations on any processor (on an AVX2 one too: lighter and no slower than float32)
    fast = answerer._fast
    assert answerer.dtype == "bfloat16"
    assert fast is not None and fast.dense_dropped and answerer.packed_projections == 210
    assert answerer._model.model.layers[0].mlp.up_proj.weight.numel() == 0
    text, info = _spoken(answerer)
    # the model was asked: its words, or the notes once the first-piece budget ran out
    assert "Armstrong" in text and "llm_loading" not in info and info["prompt_tokens"] > 0, (text, info)
    assert llm_wording(info) in ("model", "budget", "checks"), info
    answerer.close()
    assert not answerer.loaded.is_set()
    _, info = _spoken(answerer)  # a closed answerer still answers, from the notes
    assert info["fallback"] == 1


@pytest.mark.slow
def test_the_engine_is_ready_before_the_model_and_switches_to_it(base_config: Config) -> None:
    config = base_config.replace(answer={"backend": "llm"}, llm={"device": "cpu"}, tts={"prewarm": False})
    recorder = Recorder()
    engine = Engine(config, sink=NullSink(realtime=False))
    engine.bus.subscribe(recorder)
    engine.load_async()
    try:
        assert engine.wait_ready(300) and not engine.failures, engine.failures
        answerer = engine.stages["answer"]
        assert isinstance(answerer, LlmAnswerer)
        if not answerer.loaded.is_set():  # the model loads behind a kiosk that already answers
            assert not [e for e in recorder.of(ev.ModelLoaded) if e.stage == "llm"]
            engine.ask(QUESTION)
            assert engine.pipeline is not None and engine.pipeline.wait_idle(60)
            first = recorder.finished()[-1]
            assert first.status == "ok" and "Armstrong" in first.answer and first.llm_wording == "loading"
        assert engine.wait_llm(300)
        (loaded,) = [e for e in recorder.of(ev.ModelLoaded) if e.stage == "llm"]
        assert loaded.load_seconds > 0 and loaded.name == answerer.name and "llm" in engine.models
        engine.ask(QUESTION)
        assert engine.pipeline is not None and engine.pipeline.wait_idle(60)
        then = recorder.finished()[-1]
        assert then.status == "ok" and "Armstrong" in then.answer
        assert "llm_first_sentence" in then.timings  # the model was asked (its words, or the notes in time)
        assert then.llm_wording in ("model", "budget", "checks")
    finally:
        engine.close()


def test_a_model_that_fails_in_the_background_leaves_the_notes_answering(base_config, tmp_path: Path) -> None:
    config = base_config.replace(
        answer={"backend": "llm"}, llm={"model": str(tmp_path / "no-such-model")}, tts={"prewarm": False}
    )
    recorder = Recorder()
    engine = Engine(config, sink=NullSink(realtime=False))
    engine.bus.subscribe(recorder)
    engine.load(background=True)
    try:
        assert engine.wait_llm(60) and not engine.failures
        (failed,) = [e for e in recorder.of(ev.ModelFailed) if e.stage == "llm"]
        assert "no-such-model" in failed.message and "\n" not in failed.message
        (fallback,) = recorder.of(ev.BackendFallback)
        assert fallback.stage == "answer" and fallback.backend == "retrieval"
        assert "no-such-model" in engine.fallbacks["answer"]
        engine.ask("Who was the commander?")
        assert engine.pipeline is not None and engine.pipeline.wait_idle(60)
        finished = recorder.finished()[-1]
        assert finished.status == "ok" and "Armstrong" in finished.answer
    finally:
        engine.close()
