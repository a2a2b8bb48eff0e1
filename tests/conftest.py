"""Shared fixtures: real models loaded once per session, and speech synthesised with the default voice."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the tests' spoken and typed questions are about Apollo 11 (the kiosks they start inherit this); the default
# exhibit, Eileen Collins, has tests of its own
os.environ.setdefault("KIOSK_EXHIBIT__PATH", '"apollo11-columbia"')

from kiosk.config import Config, load_config  # noqa: E402
from kiosk.engine import events as ev  # noqa: E402
from kiosk.engine.audio_out import NullSink  # noqa: E402
from kiosk.engine.engine import Engine  # noqa: E402
from kiosk.engine.pipeline import Pipeline  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted models are kept across runs where the machine allows (like a real kiosk's cache)."""
    shared = os.environ.get("DOCENT_TEST_CACHE")
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def base_config(cache_dir: Path) -> Config:
    env = {
        "KIOSK_AUDIO__INPUT": '"none"',
        "KIOSK_AUDIO__OUTPUT": '"none"',
        "KIOSK_PATHS__CACHE_DIR": f'"{cache_dir}"',
        "KIOSK_METRICS__PORT": "0",
        "KIOSK_ANSWER__BACKEND": '"retrieval"',  # deterministic answers; the LLM has its own tests
        "KIOSK_EXHIBIT__PATH": '"apollo11-columbia"',  # see above
    }
    return load_config(env=env)


@pytest.fixture(scope="session")
def loaded_engine(base_config: Config) -> Iterator[Engine]:
    """Every default model, loaded once for the whole test session."""
    engine = Engine(base_config, sink=NullSink(realtime=True))
    engine.load()
    assert not engine.failures, engine.failures
    yield engine
    engine.close()


class Recorder:
    """Collects engine events for assertions."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def finished(self) -> list[ev.TurnFinished]:
        return self.of(ev.TurnFinished)


@pytest.fixture
def make_pipeline(loaded_engine: Engine) -> Callable[..., tuple[Pipeline, Recorder]]:
    """A fresh pipeline (own bus, sink, config) over the session's loaded stages."""
    made: list[Pipeline] = []

    def make(config: Config | None = None, sink=None, listeners=None) -> tuple[Pipeline, Recorder]:
        bus = ev.EventBus()
        recorder = Recorder()
        bus.subscribe(recorder)
        assert loaded_engine.pipeline is not None
        pipeline = Pipeline(
            config or loaded_engine.config,
            loaded_engine.pipeline.stages,
            sink or NullSink(realtime=True),
            bus,
            listeners or [],
        )
        made.append(pipeline)
        return pipeline, recorder

    yield make
    for pipeline in made:
        pipeline.cancel("test over")
        pipeline.stop_listening()
        pipeline.sink.close()


@pytest.fixture(scope="session")
def speak() -> Callable[[str], np.ndarray]:
    """Speech for a text, made with the default Piper voice, as 16 kHz float32 (what a mic gives).

    Without Piper's random variation: with it, tiny.en heard "Whose flew on Apollo 11?", "a pollo" and a
    monologue the notes could not answer, each in one CI run of many.  The input is the same every run.
    """
    voice = steady_voice()
    memo: dict[str, np.ndarray] = {}

    def synthesise(text: str) -> np.ndarray:
        if text not in memo:
            memo[text] = voice(text)[0]
        return memo[text]

    return synthesise


def steady_voice() -> Callable[[str], tuple[np.ndarray, list[int]]]:
    """The default Piper voice at 16 kHz, without its random variation (noise scales 0, so every run
    hears the same audio), with the sample index of each gap between words (from its alignments)."""
    from piper import PiperVoice, SynthesisConfig
    from scipy.signal import resample_poly

    from kiosk.engine.tts import resolve_voice

    model, config = resolve_voice("")
    voice = PiperVoice.load(model, config_path=config, include_alignments=True)
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    def speak(text: str) -> tuple[np.ndarray, list[int]]:
        chunks = list(voice.synthesize(text, syn_config=steady, include_alignments=True))
        rate = chunks[0].sample_rate
        gaps, position = [], 0
        for chunk in chunks:
            for alignment in chunk.phoneme_alignments:
                if alignment.phoneme == " ":
                    gaps.append((position + alignment.num_samples // 2) * 16000 // rate)
                position += alignment.num_samples
        audio = np.concatenate([c.audio_float_array for c in chunks])
        return resample_poly(audio, 160, rate // 100).astype(np.float32), gaps

    return speak


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), dtype=np.float32)
