"""The inside of the portrait's mouth where its lips part further than the photograph's do.

Issue #22: an open mouth showed a flat dark crescent under the portrait's upper teeth, with no lower lip
edge, no lower teeth and no tongue to speak of, so 'aa' looked like a hole cut in the face.  A real open
mouth is darkest in the shadow of the upper teeth and toward the corners; the tongue's lit front rises
from the floor of the mouth; the lower teeth show above the lower lip as the jaw drops, with the lip's
wet inner edge below them.  The drawn host paints the same things with polygons (host.py); the portrait
paints them per pixel here, because its opening is a set of per-column lip lines warped from the photo.

Every layer has an anti-aliased edge one pixel wide, so the mouth holds up at 512 and 1080 pixels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from kiosk.engine.face.procedural import ProceduralFace

# RGB, as floats for blending
CAVITY_TOP = np.array([30, 10, 14], np.float32)
CAVITY_BOTTOM = np.array([92, 34, 40], np.float32)
TEETH = np.array([232, 226, 214], np.float32)
TONGUE = np.array([196, 96, 102], np.float32)
LIP_INNER = np.array([150, 76, 80], np.float32)  # the lower lip's wet inner edge
LIP_SEAM = np.array([88, 40, 42], np.float32)


def _band(y: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """1 between rows ``start`` and ``end`` (per column), with a one-pixel anti-aliased edge."""
    return np.clip(y - start + 0.5, 0.0, 1.0) * np.clip(end - y + 0.5, 0.0, 1.0)


def draw_inner_mouth(face: ProceduralFace, target: np.ndarray, k: dict, smile: float, frown: float) -> None:
    """Paint what the parted lips show beyond the portrait's own mouth over ``target`` (the mouth box):
    a shaded cavity, the tongue, the lower teeth above the lower lip's inner edge, the upper teeth when
    the portrait shows none, and a seam where the lips close over the portrait's own opening."""
    upper, lower, gap = k["upper"], k["lower"], k["gap"]
    cavity_top = upper + k["teeth_gap"]
    opening = lower - cavity_top
    # a seam only where lips were closed over the portrait's opening, fading toward the corners
    seam = k["speak"] * np.clip(1.0 - gap / 1.5, 0.0, 1.0) * np.clip((k["gap_rest"] - gap) / 3.0, 0.0, 1.0)
    seam *= np.sqrt(k["round"])
    columns = np.nonzero((opening > 0.25) | (seam > 0))[0]
    if not len(columns):
        return
    c0, c1 = int(columns[0]), int(columns[-1]) + 1
    r0 = max(0, int(np.floor(upper[c0:c1].min())) - 2)
    r1 = min(face._mouth_h, int(np.ceil(lower[c0:c1].max())) + 2)
    if r1 - r0 < 1:
        return
    # the corners' lift (smile) or drop (frown) moves the opening with them, to first order
    if smile or frown:
        fields = face.mouth.fields
        moved = smile * fields["smile"][r0:r1, c0:c1, 1] + frown * fields["frown"][r0:r1, c0:c1, 1]
        shift = moved.mean(axis=0)
    else:
        shift = 0.0
    y = face._rows[r0:r1, None] - shift  # rows, in the frame of the unlifted lips
    up, low, top = upper[None, c0:c1], lower[None, c0:c1], cavity_top[None, c0:c1]
    g = np.maximum(gap[None, c0:c1], 1.0)
    inside_h = np.maximum(low - top, 1.0)  # the opening below the upper teeth
    mouth_w = face.mouth_width
    corner = k["round"][None, c0:c1, None]  # 1 in the middle of the mouth, 0 at its corners
    middle_gap = float(gap[face._middle_col])
    opened = float(np.clip((middle_gap / mouth_w - 0.08) / 0.15, 0.0, 1.0))  # how far past a slit

    # the cavity: darkest in the upper teeth's shadow and toward the corners, warmer toward the floor
    depth = np.clip((y - top) / inside_h, 0.0, 1.0)[..., None]
    color = CAVITY_TOP + (CAVITY_BOTTOM - CAVITY_TOP) * depth**0.8
    color *= 0.35 + 0.65 * corner**0.7
    color *= (0.55 + 0.45 * np.clip((y - top) / np.maximum(0.2 * inside_h, 1.0), 0.0, 1.0))[..., None]

    # the lower lip's inner edge, then the lower teeth above it, as the jaw drops
    edge_h = max(1.0, 0.022 * mouth_w) * opened * np.clip(corner[..., 0] / 0.3, 0.0, 1.0)
    lip_edge = low - edge_h
    teeth_h = min(0.13 * middle_gap, 0.04 * mouth_w) * float(np.clip((k["jaw_amount"] - 0.3) / 0.3, 0.0, 1.0))
    teeth_h = teeth_h * np.clip((corner[..., 0] - 0.6) / 0.25, 0.0, 1.0) ** 0.6  # the front teeth only
    teeth_top = lip_edge - teeth_h

    # the tongue: a mound on the floor of the mouth behind the lower teeth, its front lit, its back dark
    tongue_top = low - 0.6 * inside_h * corner[..., 0] ** 1.3
    tongue = _band(y, tongue_top, low)[..., None] * opened
    lit = np.clip((y - tongue_top) / np.maximum(0.45 * (low - tongue_top), 1.0), 0.0, 1.0)[..., None]
    tongue_color = TONGUE * (0.5 + 0.5 * lit) * (0.4 + 0.6 * corner)
    color += (tongue_color - color) * tongue

    if float(teeth_h.max(initial=0.0)) > 0.5:
        teeth = _band(y, teeth_top, lip_edge)[..., None] * (teeth_h > 0.5)[..., None]
        # lit along their biting edge, in the lower lip's shadow at their roots
        frac = np.clip((y - teeth_top) / np.maximum(teeth_h, 1.0), 0.0, 1.0)[..., None]
        teeth_color = TEETH * (1.0 - 0.2 * frac) * (0.75 + 0.25 * corner)
        color += (teeth_color - color) * teeth
    lip = _band(y, lip_edge, low + 0.5)[..., None] * 0.85 * (edge_h > 0.5)[..., None]
    color += (LIP_INNER - color) * lip

    # upper teeth along the top of the opening, for a portrait whose mouth is closed
    if face.closed_at_rest:
        upper_h = np.minimum(0.45 * g, 0.1 * mouth_w) * corner[..., 0] ** 0.5
        band = np.clip(up + upper_h - y + 0.5, 0.0, 1.0)[..., None] * (corner > 0.15)
        shade = (0.95 - 0.25 * np.clip((y - up) / np.maximum(upper_h, 1.0), 0, 1))[..., None]
        color += (TEETH * shade - color) * band
    alpha = np.clip(y - top + 0.5, 0.0, 1.0) * np.clip(low - y + 0.5, 0.0, 1.0)
    # where the lips (nearly) meet, a thin dark seam between them
    seam_alpha = 0.7 * seam[None, c0:c1] * np.clip(1.0 - np.abs(y - up - 0.5 * gap[None, c0:c1]), 0, 1)
    color = color + (LIP_SEAM - color) * (seam_alpha / np.maximum(alpha + seam_alpha, 1e-6))[..., None]
    alpha = np.maximum(alpha, seam_alpha)[..., None]
    patch = target[r0:r1, c0:c1]
    patch[:] = (patch * (1.0 - alpha) + color * alpha).astype(np.uint8)
