"""The talking face: portrait check, mouth shapes from the voice, the renderer and the animator.

A pack with a curator's portrait is animated from it (``[face] backend``); a pack without one is
presented by the drawn host, whatever the backend, because a photograph stands only for its own pack.
"""

from __future__ import annotations

from pathlib import Path

from kiosk.config import Config
from kiosk.engine import events as ev
from kiosk.engine.audio_out import PlaybackClock
from kiosk.engine.device import cuda_device_count, resolve_device
from kiosk.engine.face import host, neural, procedural  # noqa: F401 - register the backends
from kiosk.engine.face.animator import FaceAnimator, Frame
from kiosk.engine.face.backend import FACE_BACKENDS, FaceBackend, FaceState
from kiosk.engine.face.portrait import PortraitInfo, check_portrait
from kiosk.exhibit import Exhibit

__all__ = [
    "FaceAnimator",
    "FaceBackend",
    "FaceState",
    "Frame",
    "PortraitInfo",
    "check_exhibit_portrait",
    "check_portrait",
    "create_animator",
]


HOST = "host"


def backend_name(config: Config, portrait: PortraitInfo | None) -> str:
    """The configured backend for a portrait; the drawn host when there is none."""
    return config.face.backend if portrait is not None else HOST


def check_exhibit_portrait(exhibit: Exhibit, cache_dir: Path | None = None) -> PortraitInfo | None:
    """The pack's own portrait, checked (PortraitError if unusable); None when it names none."""
    return None if exhibit.portrait is None else check_portrait(Path(exhibit.portrait), cache_dir)


def create_backend(config: Config, portrait: PortraitInfo | None, size: int | None = None) -> FaceBackend:
    device = resolve_device("auto", cuda_device_count)
    backend = FACE_BACKENDS.create(
        backend_name(config, portrait), portrait, size or config.face.size, config.face.model_path, device
    )
    backend.load()
    return backend


def create_animator(
    config: Config,
    exhibit: Exhibit,
    clock: PlaybackClock,
    bus: ev.EventBus | None = None,
    size: int | None = None,
    seed: int | None = None,
) -> FaceAnimator:
    """Check the exhibit's portrait (PortraitError if unusable), load the backend, make the animator."""
    portrait = check_exhibit_portrait(exhibit, config.cache_dir)
    return FaceAnimator(create_backend(config, portrait, size), clock, bus, fps=config.face.fps, seed=seed)
