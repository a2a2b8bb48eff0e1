"""The end-of-turn model's stage interface: the probability that an utterance is a complete turn."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from kiosk.engine.registry import Registry
from kiosk.engine.stage import Stage

TURN_MODELS: Registry[TurnModel] = Registry("end-of-turn")


class TurnModel(Stage):
    stage = "turn"

    @abstractmethod
    def probability(self, audio: np.ndarray) -> float:
        """``audio``: the utterance so far, float32 mono at 16 kHz. Returns P(the turn is complete)."""
