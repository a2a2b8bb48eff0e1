"""The screen's command surface and the composition root: what the UI may ask of the engine, and one way
to build a kiosk."""

from __future__ import annotations

import re
from pathlib import Path

from kiosk.compose import compose
from kiosk.engine.commands import EngineCommands
from kiosk.engine.engine import Engine
from kiosk.telemetry.sampler import ResourceSampler

UI = Path(__file__).resolve().parents[2] / "kiosk" / "ui"


class Listener:
    def begin_answer(self, turn_id, emotion) -> None: ...

    def add_chunk(self, turn_id, chunk) -> None: ...

    def end_answer(self, turn_id) -> None: ...


def test_the_engine_implements_the_screens_commands(base_config):
    engine = Engine(base_config)  # not loaded: the commands work (or wait) before the models are in
    assert isinstance(engine, EngineCommands)
    listener = Listener()
    remove = engine.add_speech_listener(listener)
    assert listener in engine.listeners
    remove()
    assert listener not in engine.listeners
    engine.set_hands_free(False)
    assert engine.hands_free() is False
    engine.set_hands_free(True)
    assert engine.hands_free() is True
    assert set(engine.health()) == {"vad", "asr", "tts", "retrieval", "answer", "face"}


def test_the_ui_neither_probes_the_engine_nor_reaches_into_its_pipeline():
    for path in UI.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"(getattr|hasattr)\(\s*(self\.)?engine", text), path.name
        assert "engine.pipeline" not in text and "engine.listeners" not in text, path.name


def test_one_composition_root_builds_engine_telemetry_and_one_sampler(base_config):
    kiosk = compose(base_config)
    try:
        assert kiosk.telemetry is not None and kiosk.resources is kiosk.telemetry.sampler
    finally:
        kiosk.close()
    headless = compose(base_config, metrics=False)
    try:
        assert headless.telemetry is None and isinstance(headless.resources, ResourceSampler)
        headless.start()
        assert headless.resources.running
    finally:
        headless.close()
    assert not headless.resources.running
