"""What a rendered face shows, read from its pixels: for the face benchmark and the animation tests."""

from __future__ import annotations

import numpy as np


def mouth_opening(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """How far the lips are apart: the share of the middle of the mouth's box (x0, y0, x1, y1) that is
    neither skin nor lip (the dark cavity, or teeth: bright with little red)."""
    x0, y0, x1, y1 = box
    quarter = (x1 - x0) // 4
    patch = image[y0:y1, x0 + quarter : x1 - quarter].astype(np.float32)
    mean = patch.mean(axis=2)
    return float(np.mean((mean < 90) | ((patch[..., 0] - patch[..., 2] < 40) & (mean > 150))))
