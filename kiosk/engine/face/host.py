"""The drawn host: an illustrated guide who is nobody in particular, for a pack with no portrait.

A pack that names no portrait used to borrow a photograph of a real person (NASA's portrait of Eileen
Collins), who then lip-synced answers about a machine or an animal.  A real face must only ever stand for
itself, so without a curator's portrait the kiosk draws its own host: short hair, no make-up, a guide's
badge; friendly with any voice.  It is animated from the same :class:`FaceState` as the portrait backend
(visemes from the voice, blinks, brows and mouth corners per expression), so the rest of the kiosk does
not know which face it shows.

Everything that does not move is drawn once, anti-aliased, into a static layer (backdrop, shoulders,
head, hair, nose, open eyes).  A frame restores three small boxes from it (the brows, the eyes, the
mouth), draws what moves there, and crops the canvas for the head's sway.
"""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.engine.face.backend import FACE_BACKENDS, FaceBackend, FaceState
from kiosk.engine.face.visemes import MouthShape

SHIFT = 4  # sub-pixel bits for OpenCV's drawing: curves stay smooth at any size
ONE = 1 << SHIFT

# colours (RGB)
BACKDROP_CENTRE = (58, 66, 80)
BACKDROP_EDGE = (18, 20, 26)
SKIN = (232, 184, 150)
SKIN_SHADE = (206, 154, 122)
LID = (222, 170, 136)
HAIR = (62, 44, 36)
HAIR_LIGHT = (92, 66, 52)
SWEATER = (44, 112, 118)
SWEATER_SHADE = (32, 86, 92)
COLLAR = (236, 230, 218)
BADGE = (216, 178, 110)  # the kiosk's brass accent
EYE_WHITE = (250, 248, 244)
IRIS = (96, 66, 46)
PUPIL = (28, 20, 18)
LASH = (52, 36, 32)
LIP_UPPER = (184, 104, 100)
LIP_LOWER = (204, 122, 114)
CAVITY_TOP = (44, 14, 20)
CAVITY_BOTTOM = (104, 36, 44)
TEETH = (246, 242, 234)
TONGUE = (214, 100, 108)
SEAM = (120, 56, 56)

# the layout, in fractions of the frame's side (x to the right, y down)
HEAD = (0.5, 0.445, 0.205, 0.255)  # centre x, centre y, half width, half height
EYES_Y, EYES_DX = 0.455, 0.078
EYE_W, EYE_H = 0.039, 0.024
IRIS_R = 0.0195
BROWS_Y = 0.392
MOUTH = (0.5, 0.6, 0.062)  # centre x, centre y, half width at rest
BROW_BOX = (0.30, 0.428)  # rows the brows may occupy
EYE_BOX = (0.428, 0.5)
MOUTH_BOX = (0.53, 0.69)

N = 48  # points along a drawn curve


def _pts(xy: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(xy, np.float64) * ONE).astype(np.int32).reshape(-1, 1, 2)


def _at(xy) -> tuple[int, int]:
    """A point or a size in OpenCV's fixed point (SHIFT bits)."""
    return int(round(xy[0] * ONE)), int(round(xy[1] * ONE))


def _blend(image: np.ndarray, colour, mask: np.ndarray) -> None:
    """Paint ``colour`` over ``image`` through a float mask 0..1 (in place)."""
    alpha = mask[..., None]
    image[:] = (image * (1.0 - alpha) + np.asarray(colour, np.float32) * alpha).astype(np.uint8)


class HostFace(FaceBackend):
    """The illustrated guide; ``render`` costs a few small boxes and a crop."""

    name = "host"

    def __init__(self, portrait=None, size: int = 512, model_path: str = "", device=None) -> None:
        self.size = size
        self.margin = max(4, size // 60)  # room for the head's sway, as the portrait backend has

    # --- geometry --------------------------------------------------------------------------------------

    def _xy(self, x, y) -> np.ndarray:
        """Frame fractions to canvas pixels (float)."""
        s, m = self.size, self.margin
        return np.stack([m + np.asarray(x, np.float64) * s, m + np.asarray(y, np.float64) * s], axis=-1)

    def _rows(self, box: tuple[float, float]) -> tuple[int, int]:
        s, m = self.size, self.margin
        return int(np.floor(m + box[0] * s)), int(np.ceil(m + box[1] * s))

    def _fill(self, image: np.ndarray, xy: np.ndarray, colour, origin=(0, 0)) -> None:
        points = _pts(np.asarray(xy) - np.asarray(origin, np.float64))
        cv2.fillPoly(image, [points], colour, cv2.LINE_AA, SHIFT)

    def _stroke(self, image: np.ndarray, xy: np.ndarray, colour, width: float, origin=(0, 0)) -> None:
        points = _pts(np.asarray(xy) - np.asarray(origin, np.float64))
        cv2.polylines(image, [points], False, colour, max(1, round(width)), cv2.LINE_AA, SHIFT)

    def _head_outline(self, grow: float = 1.0) -> np.ndarray:
        """The face: round above, a soft narrower jaw below."""
        cx, cy, a, b = HEAD
        t = np.linspace(0, 2 * np.pi, 4 * N, endpoint=False)
        down = np.clip(np.cos(t), 0, 1)  # 1 at the chin
        x = cx + grow * a * np.sin(t) * (1 - 0.2 * down**1.6)
        y = cy + grow * b * np.cos(t) * np.where(np.cos(t) > 0, 1.0, 0.95)
        return self._xy(x, y)

    # --- once ------------------------------------------------------------------------------------------

    def load(self) -> None:
        total = self.size + 2 * self.margin
        self.base = self._backdrop(total)
        self._draw_body(self.base)
        self._draw_head(self.base)
        self._draw_eyes_open(self.base)
        self._work = self.base.copy()
        self._out = np.empty((self.size, self.size, 3), np.uint8)
        self._brow_rows = self._rows(BROW_BOX)
        self._eye_rows = self._rows(EYE_BOX)
        self._mouth_rows = self._rows(MOUTH_BOX)
        x0 = int(np.floor(self._xy(MOUTH[0] - 2.6 * MOUTH[2], 0)[0]))
        x1 = int(np.ceil(self._xy(MOUTH[0] + 2.6 * MOUTH[2], 0)[0]))
        self._mouth_cols = (x0, x1)
        r0, r1 = self._mouth_rows
        # the inside of the mouth: dark under the upper lip, warmer below, darker toward the corners
        rows = np.linspace(0.0, 1.0, r1 - r0, dtype=np.float32)[:, None, None]
        mouth_y = float(self._xy(0, MOUTH[1])[1]) - r0
        depth = np.clip((np.arange(r1 - r0, dtype=np.float32) - mouth_y) / (0.9 * MOUTH[2] * self.size), 0, 1)
        rows = depth[:, None, None]
        cols = np.arange(x0, x1, dtype=np.float32) - float(self._xy(MOUTH[0], 0)[0])
        side = np.clip(1 - (cols / (1.3 * MOUTH[2] * self.size)) ** 2, 0, 1)[None, :, None]
        top, bottom = np.float32(CAVITY_TOP), np.float32(CAVITY_BOTTOM)
        self._cavity = ((top + (bottom - top) * rows) * (0.55 + 0.45 * side)).astype(np.uint8)
        self._shade = (0.72 + 0.28 * side).astype(np.float32)  # teeth and tongue darken toward the corners

    def _backdrop(self, total: int) -> np.ndarray:
        yy, xx = np.mgrid[0:total, 0:total].astype(np.float32) / total
        r = np.sqrt((xx - 0.5) ** 2 + (yy - 0.42) ** 2) / 0.75
        t = np.clip(r, 0, 1)[..., None] ** 1.3
        centre, edge = np.float32(BACKDROP_CENTRE), np.float32(BACKDROP_EDGE)
        return (centre + (edge - centre) * t).astype(np.uint8)

    def _soft(self, image: np.ndarray, draw, colour, blur: float, strength: float, within=None) -> None:
        """A blurred shape (shadow, blush, light) blended over the image (only ``within`` a mask, if given)."""
        mask = np.zeros(image.shape[:2], np.uint8)
        draw(mask)
        sigma = max(0.5, blur * self.size)
        soft = cv2.GaussianBlur(mask, (0, 0), sigma).astype(np.float32) / 255.0
        if within is not None:
            soft *= within
        _blend(image, colour, soft * strength)

    def _draw_body(self, image: np.ndarray) -> None:
        s = self.size
        # neck, with the jaw's shadow across it
        neck = self._xy([0.435, 0.565, 0.575, 0.425], [0.6, 0.6, 0.8, 0.8])
        self._fill(image, neck, SKIN)
        on_neck = np.zeros(image.shape[:2], np.uint8)
        self._fill(on_neck, neck, 255)
        # shoulders: a rounded sweater from the neck to the frame's edge
        t = np.linspace(0, np.pi, N)
        x = 0.5 - 0.45 * np.cos(t)
        y = 0.95 - 0.18 * np.sin(t) ** 0.45
        body = np.concatenate([self._xy(x, y), self._xy([1.0, 1.0, 0.0, 0.0], [0.98, 1.1, 1.1, 0.98])])
        self._fill(image, body, SWEATER)
        self._soft(
            image,
            lambda m: self._fill(m, self._xy(0.5 + 0.45 * np.cos(t), 1.02 - 0.13 * np.sin(t) ** 0.45), 255),
            SWEATER_SHADE,
            0.03,
            0.7,
        )
        # a crew collar with a shirt's edge above it
        u = np.linspace(-1, 1, N)
        collar_top = self._xy(0.5 + 0.1 * u, 0.775 + 0.055 * (1 - u**2))
        collar_out = self._xy(0.5 + 0.135 * u[::-1], 0.77 + 0.085 * (1 - u[::-1] ** 2))
        self._fill(image, np.concatenate([collar_top, collar_out]), COLLAR)
        inner = self._xy(0.5 + 0.088 * u[::-1], 0.78 + 0.04 * (1 - u[::-1] ** 2))
        self._fill(image, np.concatenate([self._xy(0.5 + 0.1 * u, 0.775 + 0.055 * (1 - u**2)), inner]), SKIN)
        self._soft(
            image,
            lambda m: self._fill(m, self._head_outline() + self._xy(0, 0.035) - self._xy(0, 0), 255),
            SKIN_SHADE,
            0.012,
            0.9,
            on_neck.astype(np.float32) / 255.0,
        )
        # the guide's badge: a brass rounded card with a star
        bx, by, bw, bh = 0.64, 0.885, 0.075, 0.05
        corner = 0.01 * s
        card = self._xy([bx, bx + bw, bx + bw, bx], [by, by, by + bh, by + bh]).astype(np.float64)
        x0, y0 = card[0]
        x1, y1 = card[2]
        rounded = []
        for cx, cy, start in ((x1 - corner, y0 + corner, -90), (x1 - corner, y1 - corner, 0)):
            rounded += [
                (cx + corner * np.cos(np.radians(a)), cy + corner * np.sin(np.radians(a)))
                for a in range(start, start + 91, 15)
            ]
        for cx, cy, start in ((x0 + corner, y1 - corner, 90), (x0 + corner, y0 + corner, 180)):
            rounded += [
                (cx + corner * np.cos(np.radians(a)), cy + corner * np.sin(np.radians(a)))
                for a in range(start, start + 91, 15)
            ]
        self._fill(image, np.array(rounded), BADGE)
        star_c = self._xy(bx + 0.22 * bw, by + bh / 2)
        angles = np.radians(-90 + 36 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, 0.014 * s, 0.006 * s)
        star = star_c + np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
        self._fill(image, star, (250, 246, 236))
        for k, length in enumerate((0.36, 0.26)):
            line = self._xy([bx + 0.44 * bw, bx + (0.44 + length) * bw], [by + (0.38 + 0.26 * k) * bh] * 2)
            self._stroke(image, line, (250, 246, 236), 0.005 * s)

    def _draw_head(self, image: np.ndarray) -> None:
        s = self.size
        cx, cy, a, b = HEAD
        # the hair behind the head, then the ears
        self._fill(image, self._head_outline(1.045) + self._xy(0, -0.012) - self._xy(0, 0), HAIR)
        for side in (-1, 1):
            ear = (
                cv2.ellipse2Poly(
                    tuple(int(v * ONE) for v in self._xy(cx + side * 0.95 * a, 0.475)),
                    (int(0.032 * s * ONE), int(0.05 * s * ONE)),
                    int(-side * 8),
                    0,
                    360,
                    10,
                ).astype(np.float64)
                / ONE
            )
            self._fill(image, ear, SKIN)
            inner = (
                cv2.ellipse2Poly(
                    tuple(int(v * ONE) for v in self._xy(cx + side * 0.955 * a, 0.477)),
                    (int(0.015 * s * ONE), int(0.03 * s * ONE)),
                    int(-side * 8),
                    0,
                    360,
                    10,
                ).astype(np.float64)
                / ONE
            )
            self._fill(image, inner, SKIN_SHADE)
        self._fill(image, self._head_outline(), SKIN)
        # soft light and shade on the face, and rosy cheeks
        self._soft(
            image,
            lambda m: self._fill(m, self._head_outline(0.94) + self._xy(0.03, 0.03) - self._xy(0, 0), 255),
            SKIN_SHADE,
            0.035,
            0.0,
        )
        face = np.zeros(image.shape[:2], np.uint8)
        self._fill(face, self._head_outline(), 255)
        inside = face.astype(np.float32) / 255.0
        shade = np.zeros(image.shape[:2], np.uint8)
        self._fill(shade, self._head_outline(1.0) + self._xy(-0.05, 0) - self._xy(0, 0), 255)
        shade = 1.0 - cv2.GaussianBlur(shade, (0, 0), 0.03 * s).astype(np.float32) / 255.0
        _blend(image, SKIN_SHADE, inside * shade * 0.55)
        for side in (-1, 1):
            self._soft(
                image,
                lambda m, side=side: cv2.ellipse(
                    m,
                    tuple(int(v * ONE) for v in self._xy(cx + side * 0.115, 0.545)),
                    (int(0.04 * s * ONE), int(0.026 * s * ONE)),
                    0,
                    0,
                    360,
                    255,
                    -1,
                    cv2.LINE_AA,
                    SHIFT,
                ),
                (236, 140, 130),
                0.018,
                0.35,
            )
        # the nose: a soft shadow on one side and a small curve beneath
        self._soft(
            image,
            lambda m: self._stroke(m, self._xy([0.512, 0.518, 0.522], [0.47, 0.51, 0.535]), 255, 0.012 * s),
            SKIN_SHADE,
            0.008,
            0.8,
        )
        u = np.linspace(-1, 1, N // 2)
        nose = self._xy(0.5 + 0.022 * u, 0.542 + 0.006 * (1 - u**2) - 0.004 * (u**4))
        self._stroke(image, nose, (170, 112, 88), 0.0055 * s)
        # the hair: short, with a side-swept fringe over the forehead and a soft sheen on top
        t = np.linspace(np.pi * 0.6, np.pi * 1.4, 2 * N)
        top = self._xy(cx - 1.07 * a * np.sin(t), cy - 0.018 + 1.07 * b * np.cos(t))
        u = np.linspace(1, -1, 2 * N)
        sweep = 0.5 + 0.5 * np.tanh((u + 0.3) / 0.35)  # the fringe falls lower toward the image's right
        temples = 0.1 * (np.clip(np.abs(u) - 0.6, 0, None) / 0.4) ** 2
        hairline = self._xy(cx + 1.02 * a * u, 0.29 + 0.035 * sweep + temples)
        self._fill(image, np.concatenate([top, hairline]), HAIR)
        self._soft(
            image,
            lambda m: self._stroke(
                m,
                self._xy(cx - 0.8 * a * np.sin(t[20:-30]), cy - 0.03 + 0.92 * b * np.cos(t[20:-30])),
                255,
                0.02 * s,
            ),
            HAIR_LIGHT,
            0.012,
            0.8,
        )

    def _eye_curves(self, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, upper lid y and lower lid y of one eye's almond (frame fractions)."""
        cx = HEAD[0] + side * EYES_DX
        u = np.linspace(-1, 1, N)
        x = cx + EYE_W * u
        tilt = 0.003 * side * u  # the outer corners sit a touch higher
        upper = EYES_Y - EYE_H * (1 - u**2) ** 0.75 - tilt
        lower = EYES_Y + 0.75 * EYE_H * (1 - u**2) ** 0.9 - tilt
        return x, upper, lower

    def _draw_eyes_open(self, image: np.ndarray) -> None:
        s = self.size
        for side in (-1, 1):
            x, upper, lower = self._eye_curves(side)
            almond = np.concatenate([self._xy(x, upper), self._xy(x[::-1], lower[::-1])])
            mask = np.zeros(image.shape[:2], np.uint8)
            self._fill(mask, almond, 255)
            eye = image.copy()
            self._fill(eye, almond, EYE_WHITE)
            centre = self._xy(HEAD[0] + side * EYES_DX + 0.002, EYES_Y + 0.001)
            for radius, colour in ((IRIS_R, IRIS), (0.8 * IRIS_R, (120, 86, 60)), (0.5 * IRIS_R, PUPIL)):
                cv2.circle(
                    eye,
                    tuple(int(v * ONE) for v in centre),
                    int(radius * s * ONE),
                    colour,
                    -1,
                    cv2.LINE_AA,
                    SHIFT,
                )
            glint = centre + np.array([-0.006, -0.007]) * s
            cv2.circle(
                eye,
                tuple(int(v * ONE) for v in glint),
                int(0.0045 * s * ONE),
                (255, 255, 255),
                -1,
                cv2.LINE_AA,
                SHIFT,
            )
            # the upper lid's shadow on the eye
            shadow = np.concatenate([self._xy(x, upper - 0.01), self._xy(x[::-1], upper[::-1] + 0.006)])
            shade = np.zeros(image.shape[:2], np.uint8)
            self._fill(shade, shadow, 255)
            shade = cv2.GaussianBlur(shade, (0, 0), 0.004 * s).astype(np.float32) / 255.0
            _blend(eye, (120, 100, 96), shade * 0.35)
            alpha = mask.astype(np.float32) / 255.0
            image[:] = (image * (1 - alpha[..., None]) + eye * alpha[..., None]).astype(np.uint8)
            # the lash line along the upper lid, heavier at the outer corner
            self._stroke(image, self._xy(x, upper), LASH, 0.0065 * s)
            outer = x[-6:] if side > 0 else x[:6][::-1]
            outer_y = upper[-6:] if side > 0 else upper[:6][::-1]
            self._stroke(image, self._xy(outer + side * 0.004, outer_y - 0.003), LASH, 0.005 * s)
            self._stroke(image, self._xy(x[8:-8], lower[8:-8] + 0.002), SKIN_SHADE, 0.003 * s)
            # the lid's crease above
            crease = self._xy(x[6:-6], upper[6:-6] - 0.013 - 0.003 * (1 - np.linspace(-1, 1, N - 12) ** 2))
            self._stroke(image, crease, SKIN_SHADE, 0.003 * s)

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
            centre = self._xy(x, y)
            tangent = np.gradient(centre, axis=0)
            normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
            normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
            offset = normal * (thick * s)[:, None]
            brow = np.concatenate([centre + offset, (centre - offset)[::-1]])
            self._fill(roi, brow, HAIR, origin=(0, r0))

    def _draw_lids(self, work: np.ndarray, blink: float, smile: float) -> None:
        r0, _ = self._eye_rows
        roi = work[r0:]
        s = self.size
        for side in (-1, 1):
            x, upper, lower = self._eye_curves(side)
            if smile > 0.02:  # smiling eyes: the lower lid rises a little
                raised = lower - 0.3 * smile * (lower - upper) * (1 - np.linspace(-1, 1, N) ** 2) ** 0.5
                cheek = np.concatenate([self._xy(x, raised), self._xy(x[::-1], lower[::-1] + 0.004)])
                self._fill(roi, cheek, SKIN, origin=(0, r0))
                self._stroke(roi, self._xy(x[6:-6], raised[6:-6]), SKIN_SHADE, 0.003 * s, origin=(0, r0))
            if blink <= 0.02:
                continue
            edge = upper + blink * (lower - upper)
            lid = np.concatenate([self._xy(x, upper - 0.006), self._xy(x[::-1], edge[::-1])])
            self._fill(roi, lid, LID, origin=(0, r0))
            self._stroke(roi, self._xy(x, edge), LASH, (0.0045 + 0.002 * blink) * s, origin=(0, r0))

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
        self._fill(roi, lips, LIP_UPPER, origin)
        self._fill(
            roi, np.concatenate([xy(x, k["lower_in"]), xy(x[::-1], k["lower_out"][::-1])]), LIP_LOWER, origin
        )
        # a highlight on the lower lip
        shine = np.concatenate([xy(x[16:-16], k["lower_in"][16:-16] * 0.35 + k["lower_out"][16:-16] * 0.65)])
        self._stroke(roi, shine, (214, 136, 128), 0.004 * s, origin)
        gap = float(k["gap"])
        if gap > 0.6:
            self._draw_inside(roi, k, origin)
        seam = max(1.0, 0.0045 * s * float(np.clip(1 - gap / (0.01 * s), 0.25, 1)))
        self._stroke(roi, xy(x, k["upper_in"]), SEAM, seam, origin)
        if smile > 0.05:  # dimples at the corners
            for end in (0, -1):
                px, py = x[end], k["upper_in"][end]
                side = -1 if end == 0 else 1
                dimple = xy(
                    px + side * np.array([0.0, 0.008, 0.01]) * s, py + np.array([-0.004, 0.0, 0.008]) * s
                )
                self._stroke(roi, dimple, SKIN_SHADE, 0.003 * s * min(1.0, 3 * smile), origin)

    def _draw_inside(self, roi: np.ndarray, k: dict[str, np.ndarray], origin) -> None:
        """What parted lips show: the shaded cavity, upper and lower teeth, and the tongue."""
        s = self.size
        x, u = k["x"], k["u"]
        gap = float(k["gap"])
        mask = np.zeros(roi.shape[:2], np.uint8)
        opening = np.concatenate(
            [np.stack([x, k["upper_in"]], 1), np.stack([x[::-1], k["lower_in"][::-1]], 1)]
        )
        self._fill(mask, opening, 255, origin)
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
                cv2.ellipse(inside, _at(centre), _at(axes), 0, 0, 360, colour, -1, cv2.LINE_AA, SHIFT)
        # the upper teeth under the upper lip, whole when the lower lip tucks under them (f, v)
        front = np.clip((0.86 - np.abs(u)) / 0.25, 0, 1) ** 0.5  # none in the corners
        teeth_h = (min(0.28 * gap, 0.017 * s) + float(k["teeth"]) * 0.6 * gap) * front
        top = k["upper_in"] - 2
        upper_teeth = np.concatenate(
            [np.stack([x, top], 1), np.stack([x[::-1], (k["upper_in"] + teeth_h)[::-1]], 1)]
        )
        self._fill(inside, upper_teeth, TEETH, box)
        # the lower teeth show above the lower lip as the jaw drops
        lower_h = min(0.14 * gap, 0.011 * s) * float(np.clip((jaw - 0.35) / 0.3, 0, 1))
        if lower_h > 0.5:
            bottom = k["lower_in"] + 2
            low = lower_h * np.clip((0.7 - np.abs(u)) / 0.25, 0, 1) ** 0.5
            lower_teeth = np.concatenate(
                [np.stack([x, bottom], 1), np.stack([x[::-1], (k["lower_in"] - low)[::-1]], 1)]
            )
            self._fill(inside, lower_teeth, (226, 220, 210), box)
        shade = self._shade[:, x0:x1]
        alpha = mask[y0:y1, x0:x1].astype(np.float32)[..., None] / 255.0
        target = roi[y0:y1, x0:x1]
        target[:] = (target * (1 - alpha) + inside * shade * alpha).astype(np.uint8)


@FACE_BACKENDS.register("host")
def _host(portrait=None, size: int = 512, model_path: str = "", device=None) -> FaceBackend:
    return HostFace(portrait, size)
