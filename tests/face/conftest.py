"""Face fixtures: a curator's portrait's animator, real Piper speech, and a place for screenshots."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken
from kiosk.engine.face import check_portrait, create_backend
from kiosk.engine.face.animator import FaceAnimator
from kiosk.engine.face.video import SimulatedClock
from kiosk.engine.stage import SpeechChunk
from tests.packs import SAMPLE_PORTRAIT

ANSWER = (
    "Columbia splashed down in the Pacific Ocean on 24 July 1969. "
    "The crew was recovered by the aircraft carrier USS Hornet."
)


@pytest.fixture(scope="session")
def face_shots(artifacts: Path) -> Path:
    folder = artifacts / "face"
    folder.mkdir(exist_ok=True)
    return folder


def save(folder: Path, name: str, image: np.ndarray) -> Path:
    path = folder / f"{name}.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="session")
def portrait(loaded_engine):
    """A curator's portrait (the shipped packs name none: the drawn host presents them)."""
    return check_portrait(SAMPLE_PORTRAIT, loaded_engine.config.cache_dir)


@pytest.fixture(scope="session")
def backend(loaded_engine, portrait):
    return create_backend(loaded_engine.config, portrait, size=512)


@pytest.fixture
def simulated(backend):
    """An animator on a hand-set clock and a hand-set 'now'."""
    clock = SimulatedClock()
    now = {"t": 0.0}
    animator = FaceAnimator(backend, clock, fps=30, seed=11, now=lambda: now["t"])
    return animator, clock, now


@pytest.fixture(scope="session")
def spoken_answer(loaded_engine) -> list[SpeechChunk]:
    tts = loaded_engine.stages["tts"]
    chunks: list[SpeechChunk] = []
    for sentence in ANSWER.split(". "):
        chunks.extend(tts.stream(sentence, Emotion.NEUTRAL, CancelToken()))
    return chunks
