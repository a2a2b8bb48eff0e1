"""Issue #22: a curator's portrait opening wide showed a flat dark crescent under its upper teeth.  An
open mouth now shows a shaded inside (dark in the teeth's shadow, the tongue lit below), the lower teeth
and the lower lip's inner edge.  Measured from the pixels of the opening the portrait backend draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk.engine.face.backend import FaceState
from kiosk.engine.face.portrait import check_portrait
from kiosk.engine.face.procedural import ProceduralFace
from kiosk.engine.face.visemes import VISEMES
from tests.face.conftest import save
from tests.packs import SAMPLE_PORTRAIT


@pytest.fixture(scope="module")
def face(tmp_path_factory) -> ProceduralFace:
    """The portrait backend on the curator's sample portrait (its landmarks ship beside it)."""
    cache = tmp_path_factory.mktemp("cache")
    backend = ProceduralFace(check_portrait(SAMPLE_PORTRAIT, Path(cache)), 512)
    backend.load()
    return backend


def opening(face: ProceduralFace, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixels between the portrait's own teeth and the lower lip in the middle of the mouth, and
    each one's depth in the opening (0 at its top, 1 at the lower lip)."""
    k = face._column_knots(VISEMES["open"])
    top, low = k["upper"] + k["teeth_gap"], k["lower"]
    middle = np.nonzero(k["round"] > 0.75)[0]  # the middle of the mouth, away from its corners
    region, m = face.mouth, face.margin
    pixels, depths = [], []
    for c in middle:
        rows = np.arange(int(np.ceil(top[c])) + 1, int(np.floor(low[c])))
        if len(rows) < 3:
            continue
        pixels.append(image[region.y0 - m + rows, region.x0 - m + c])
        depths.append((rows - top[c]) / (low[c] - top[c]))
    return np.concatenate(pixels).astype(int), np.concatenate(depths)


def test_an_open_mouth_shows_a_shaded_inside_and_the_lower_teeth(face: ProceduralFace, face_shots) -> None:
    image = face.render(FaceState(mouth=VISEMES["open"])).copy()
    save(face_shots, "portrait-aa", image)
    pixels, depth = opening(face, image)
    assert len(pixels) > 200  # 'aa' parts the lips well past the portrait's own opening
    brightness = pixels.mean(axis=1)
    # shaded, not one flat colour: the teeth's shadow at the top is much darker than the tongue below
    upper, lower = brightness[depth < 0.3], brightness[(depth > 0.45) & (depth < 0.8)]
    assert np.median(lower) > np.median(upper) + 50  # 92 levels now, 24 for the flat crescent
    # the lower teeth: near-white pixels along the bottom of the opening, none in its upper part
    white = pixels.min(axis=1) > 185
    assert white[depth > 0.6].mean() > 0.1 and white[depth < 0.3].mean() == 0.0
