"""The face backend interface: turn one face state into one RGB frame.

The procedural warp is the default and runs anywhere; a neural lip-sync model (Wav2Lip-class ONNX) from
a local path can replace it on a GPU kiosk.  Both are chosen by name from ``[face] backend``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from kiosk.engine.face.visemes import REST, MouthShape
from kiosk.engine.registry import Registry


@dataclass(frozen=True)
class FaceState:
    mouth: MouthShape = REST  # the portrait's own mouth
    blink: float = 0.0  # 0 open .. 1 closed
    # expression weights: smile, frown, brow_raise, brow_lower, brow_inner
    expression: dict[str, float] = field(default_factory=dict)
    # head sway and breathing, as a fraction of the backend's margin, -1..1
    offset: tuple[float, float] = (0.0, 0.0)
    # the speech around this moment, 16 kHz mono, for backends that listen (neural lip sync)
    audio: np.ndarray | None = None


class FaceBackend(ABC):
    name = ""
    device = "cpu"

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def render(self, state: FaceState) -> np.ndarray:
        """An RGB uint8 frame, size x size; the array may be reused by the next call."""

    def close(self) -> None:  # noqa: B027 - the procedural face holds nothing to release
        pass


FACE_BACKENDS: Registry[FaceBackend] = Registry("face")
