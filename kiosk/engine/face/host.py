"""The drawn host: an illustrated guide who is nobody in particular, for a pack with no portrait.

A pack that names no portrait used to borrow a photograph of a real person (NASA's portrait of Eileen
Collins), who then lip-synced answers about a machine or an animal.  A real face must only ever stand for
itself, so without a curator's portrait the kiosk draws its own host: short hair, no make-up, a guide's
badge; friendly with any voice.  It is animated from the same :class:`FaceState` as the portrait backend
(visemes from the voice, blinks, brows and mouth corners per expression), so the rest of the kiosk does
not know which face it shows.

Everything that does not move is drawn once, anti-aliased, into a static layer (backdrop, shoulders,
head, hair, nose, open eyes: host_layers.py).  A frame restores three small boxes from it (the brows,
the eyes, the mouth), draws what moves there, and crops the canvas for the head's sway.
"""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.engine.face.backend import FACE_BACKENDS, FaceBackend, FaceState
from kiosk.engine.face.host_layers import (
    BROW_BOX,
    BROWS_Y,
    CAVITY_BOTTOM,
    CAVITY_TOP,
    EYE_BOX,
    HAIR,
    HEAD,
    LASH,
    LID,
    LIP_LOWER,
    LIP_UPPER,
    MOUTH,
    MOUTH_BOX,
    SEAM,
    SHIFT,
    SKIN,
    SKIN_SHADE,
    TEETH,
    TONGUE,
    HostLayers,
    N,
    at,
)
from kiosk.engine.face.visemes import MouthShape

__all__ = ["EYE_BOX", "MOUTH", "HostFace"]


class HostFace(FaceBackend):
    """The illustrated guide; ``render`` costs a few small boxes and a crop."""

    name = "host"

    def __init__(self, portrait=None, size: int = 512, model_path: str = "", device=None) -> None:
        self.layers = HostLayers(size)
        self.size = size
        self.margin = self.layers.margin

    # --- once ------------------------------------------------------------------------------------------

    def load(self) -> None:
        self.base = self.layers.draw()
        self._work = self.base.copy()
        self._out = np.empty((self.size, self.size, 3), np.uint8)
        self._brow_rows = self.layers.rows(BROW_BOX)
        self._eye_rows = self.layers.rows(EYE_BOX)
        self._mouth_rows = self.layers.rows(MOUTH_BOX)
        x0 = int(np.floor(self.layers.xy(MOUTH[0] - 2.6 * MOUTH[2], 0)[0]))
        x1 = int(np.ceil(self.layers.xy(MOUTH[0] + 2.6 * MOUTH[2], 0)[0]))
        self._mouth_cols = (x0, x1)
        r0, r1 = self._mouth_rows
        # the inside of the mouth: dark under the upper lip, warmer below, darker toward the corners
        rows = np.linspace(0.0, 1.0, r1 - r0, dtype=np.float32)[:, None, None]
        mouth_y = float(self.layers.xy(0, MOUTH[1])[1]) - r0
        depth = np.clip((np.arange(r1 - r0, dtype=np.float32) - mouth_y) / (0.9 * MOUTH[2] * self.size), 0, 1)
        rows = depth[:, None, None]
        cols = np.arange(x0, x1, dtype=np.float32) - float(self.layers.xy(MOUTH[0], 0)[0])
        side = np.clip(1 - (cols / (1.3 * MOUTH[2] * self.size)) ** 2, 0, 1)[None, :, None]
        top, bottom = np.float32(CAVITY_TOP), np.float32(CAVITY_BOTTOM)
        self._cavity = ((top + (bottom - top) * rows) * (0.55 + 0.45 * side)).astype(np.uint8)
        self._shade = (0.72 + 0.28 * side).astype(np.float32)  # teeth and tongue darken toward the corners

    # --- per frame -------------------------------------------------------------------------------------

    def render(self, state: FaceState) -> np.ndarray:
        work, base = self._work, self.base
        expression = state.expression
        smile = float(np.clip(expression.get("smile", 0.0), 0, 1))
        frown = float(np.clip(expression.get("frown", 0.0), 0, 1))
        for r0, r1 in (self._brow_rows, self._eye_rows):
            np.copyto(work[r0:r1], base[r0:r1])
        self._draw_brows(work, expression)
        self._draw_lids(work, float(np.clip(state.blink, 0, 1)), smile)
        self._draw_mouth(work, state.mouth, smile, frown)
        m = self.margin
        dx = int(round(np.clip(state.offset[0], -1, 1) * m))
        dy = int(round(np.clip(state.offset[1], -1, 1) * m))
        np.copyto(self._out, work[m - dy : m - dy + self.size, m - dx : m - dx + self.size])
        return self._out

    def _draw_brows(self, work: np.ndarray, expression: dict[str, float]) -> None:
        r0, r1 = self._brow_rows
        roi = work[r0:r1]
        raise_ = float(expression.get("brow_raise", 0.0))
        lower = float(expression.get("brow_lower", 0.0))
        inner = float(expression.get("brow_inner", 0.0))
        s = self.size
        u = np.linspace(0, 1, N)  # 0 at the inner end, 1 at the outer
        for side in (-1, 1):
            x = HEAD[0] + side * (0.037 - 0.006 * lower + 0.085 * u)
            lift = -0.026 * raise_ + 0.018 * lower
            inner_lift = (-0.024 * inner + 0.014 * lower) * (1 - u) ** 1.5
            arch = (0.013 + 0.006 * raise_) * np.sin(np.pi * (0.15 + 0.8 * u))
            y = BROWS_Y + lift + inner_lift - arch + 0.006 * u
            thick = (0.019 - 0.01 * u**1.4) / 2
            centre = self.layers.xy(x, y)
            tangent = np.gradient(centre, axis=0)
            normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
            normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
            offset = normal * (thick * s)[:, None]
            brow = np.concatenate([centre + offset, (centre - offset)[::-1]])
            self.layers.fill(roi, brow, HAIR, origin=(0, r0))

    def _draw_lids(self, work: np.ndarray, blink: float, smile: float) -> None:
        r0, _ = self._eye_rows
        roi = work[r0:]
        s = self.size
        for side in (-1, 1):
            x, upper, lower = self.layers.eye_curves(side)
            if smile > 0.02:  # smiling eyes: the lower lid rises a little
                raised = lower - 0.3 * smile * (lower - upper) * (1 - np.linspace(-1, 1, N) ** 2) ** 0.5
                cheek = np.concatenate(
                    [self.layers.xy(x, raised), self.layers.xy(x[::-1], lower[::-1] + 0.004)]
                )
                self.layers.fill(roi, cheek, SKIN, origin=(0, r0))
                self.layers.stroke(
                    roi, self.layers.xy(x[6:-6], raised[6:-6]), SKIN_SHADE, 0.003 * s, origin=(0, r0)
                )
            if blink <= 0.02:
                continue
            edge = upper + blink * (lower - upper)
            lid = np.concatenate([self.layers.xy(x, upper - 0.006), self.layers.xy(x[::-1], edge[::-1])])
            self.layers.fill(roi, lid, LID, origin=(0, r0))
            self.layers.stroke(
                roi, self.layers.xy(x, edge), LASH, (0.0045 + 0.002 * blink) * s, origin=(0, r0)
            )

    def _mouth_curves(self, mouth: MouthShape, smile: float, frown: float) -> dict[str, np.ndarray]:
        """The lips' four lines (canvas pixels): what a mouth shape and the mouth corners make of them."""
        s = self.size
        speak = 1.0 - float(np.clip(mouth.rest, 0, 1))
        jaw = speak * float(np.clip(mouth.jaw, 0, 1.2))
        width = speak * float(mouth.width)
        rnd = speak * float(np.clip(mouth.round, 0, 1))
        upper_raise = speak * float(np.clip(mouth.upper, 0, 1))
        tuck = speak * float(np.clip(mouth.teeth, 0, 1))
        cx, cy, hw = MOUTH
        w = hw * (1 + 0.2 * width - 0.42 * rnd + 0.12 * smile - 0.05 * frown)
        gap = jaw * 1.05 * hw * (1 + 0.35 * rnd)
        corner = (0.13 * (1 - speak) + 0.06 * speak + 0.3 * smile - 0.45 * frown) * hw
        u = np.linspace(-1, 1, N)
        flat = 1 - u**2
        opening = flat ** (0.85 - 0.4 * rnd)
        line = cy - corner * u**2  # the mouth's line: its corners lift for a smile
        upper_in = line - (0.2 * gap + 0.06 * upper_raise * hw) * opening
        lower_in = line + (0.8 * gap) * opening
        bow = 0.03 * hw * np.exp(-((u / 0.16) ** 2))  # the dip of the upper lip's bow
        thick_up = hw * (0.06 + 0.17 * flat**0.6) * (1 + 0.3 * rnd) - bow
        thick_low = hw * (0.07 + 0.24 * flat**0.6) * (1 + 0.3 * rnd) * (1 - 0.4 * tuck)
        x = cx + w * u
        return {
            "x": x * s,
            "upper_out": (upper_in - thick_up) * s,
            "upper_in": upper_in * s,
            "lower_in": lower_in * s,
            "lower_out": (lower_in + thick_low) * s,
            "gap": np.float64(gap * s),
            "jaw": np.float64(jaw),
            "teeth": np.float64(max(tuck, 0.5 * upper_raise)),
            "round": np.float64(rnd),
            "u": u,
        }

    def _draw_mouth(self, work: np.ndarray, mouth: MouthShape, smile: float, frown: float) -> None:
        r0, r1 = self._mouth_rows
        c0, c1 = self._mouth_cols
        roi = work[r0:r1, c0:c1]
        np.copyto(roi, self.base[r0:r1, c0:c1])
        k = self._mouth_curves(mouth, smile, frown)
        m = self.margin
        origin = (c0 - m, r0 - m)  # curves are in frame pixels; the canvas adds the margin

        def xy(x, y):
            return np.stack([x, y], axis=1)

        x, s = k["x"], self.size
        lips = np.concatenate([xy(x, k["upper_out"]), xy(x[::-1], k["lower_out"][::-1])])
        self.layers.fill(roi, lips, LIP_UPPER, origin)
        self.layers.fill(
            roi, np.concatenate([xy(x, k["lower_in"]), xy(x[::-1], k["lower_out"][::-1])]), LIP_LOWER, origin
        )
        # a highlight on the lower lip
        shine = np.concatenate([xy(x[16:-16], k["lower_in"][16:-16] * 0.35 + k["lower_out"][16:-16] * 0.65)])
        self.layers.stroke(roi, shine, (214, 136, 128), 0.004 * s, origin)
        gap = float(k["gap"])
        if gap > 0.6:
            self._draw_inside(roi, k, origin)
        seam = max(1.0, 0.0045 * s * float(np.clip(1 - gap / (0.01 * s), 0.25, 1)))
        self.layers.stroke(roi, xy(x, k["upper_in"]), SEAM, seam, origin)
        if smile > 0.05:  # dimples at the corners
            for end in (0, -1):
                px, py = x[end], k["upper_in"][end]
                side = -1 if end == 0 else 1
                dimple = xy(
                    px + side * np.array([0.0, 0.008, 0.01]) * s, py + np.array([-0.004, 0.0, 0.008]) * s
                )
                self.layers.stroke(roi, dimple, SKIN_SHADE, 0.003 * s * min(1.0, 3 * smile), origin)

    def _draw_inside(self, roi: np.ndarray, k: dict[str, np.ndarray], origin) -> None:
        """What parted lips show: the shaded cavity, upper and lower teeth, and the tongue."""
        s = self.size
        x, u = k["x"], k["u"]
        gap = float(k["gap"])
        mask = np.zeros(roi.shape[:2], np.uint8)
        opening = np.concatenate(
            [np.stack([x, k["upper_in"]], 1), np.stack([x[::-1], k["lower_in"][::-1]], 1)]
        )
        self.layers.fill(mask, opening, 255, origin)
        ys, xs = np.nonzero(mask)
        if not len(ys):
            return
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        inside = self._cavity[y0:y1, x0:x1].copy()
        box = (origin[0] + x0, origin[1] + y0)
        jaw = float(k["jaw"])
        # the tongue, low in the mouth: its back in shadow, its tip lit
        if gap > 0.02 * s:
            half = 0.5 * (x[-1] - x[0])
            tip = (float(x.mean()) - box[0], float(k["lower_in"].max()) - box[1] + 0.15 * gap)
            for grow, lift, colour in ((1.0, 0.0, (168, 70, 80)), (0.8, -0.12, TONGUE)):
                centre = (tip[0], tip[1] - lift * gap)
                axes = (grow * 0.55 * half, grow * 0.55 * gap)
                cv2.ellipse(inside, at(centre), at(axes), 0, 0, 360, colour, -1, cv2.LINE_AA, SHIFT)
        # the upper teeth under the upper lip, whole when the lower lip tucks under them (f, v)
        front = np.clip((0.86 - np.abs(u)) / 0.25, 0, 1) ** 0.5  # none in the corners
        teeth_h = (min(0.28 * gap, 0.017 * s) + float(k["teeth"]) * 0.6 * gap) * front
        top = k["upper_in"] - 2
        upper_teeth = np.concatenate(
            [np.stack([x, top], 1), np.stack([x[::-1], (k["upper_in"] + teeth_h)[::-1]], 1)]
        )
        self.layers.fill(inside, upper_teeth, TEETH, box)
        # the lower teeth show above the lower lip as the jaw drops
        lower_h = min(0.14 * gap, 0.011 * s) * float(np.clip((jaw - 0.35) / 0.3, 0, 1))
        if lower_h > 0.5:
            bottom = k["lower_in"] + 2
            low = lower_h * np.clip((0.7 - np.abs(u)) / 0.25, 0, 1) ** 0.5
            lower_teeth = np.concatenate(
                [np.stack([x, bottom], 1), np.stack([x[::-1], (k["lower_in"] - low)[::-1]], 1)]
            )
            self.layers.fill(inside, lower_teeth, (226, 220, 210), box)
        shade = self._shade[:, x0:x1]
        alpha = mask[y0:y1, x0:x1].astype(np.float32)[..., None] / 255.0
        target = roi[y0:y1, x0:x1]
        target[:] = (target * (1 - alpha) + inside * shade * alpha).astype(np.uint8)


@FACE_BACKENDS.register("host")
def _host(portrait=None, size: int = 512, model_path: str = "", device=None) -> FaceBackend:
    return HostFace(portrait, size)
