"""The drawn host's layers that never move: backdrop, shoulders, head, hair, nose and open eyes.

They are drawn once, anti-aliased, when the host loads; a frame (kiosk/engine/face/host.py) restores
small boxes from them and draws only what moves.  The layout and the palette live here because both the
static layers and the moving parts are drawn from them, in the same frame fractions.
"""

from __future__ import annotations

import cv2
import numpy as np

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


def pts(xy: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(xy, np.float64) * ONE).astype(np.int32).reshape(-1, 1, 2)


def at(xy) -> tuple[int, int]:
    """A point or a size in OpenCV's fixed point (SHIFT bits)."""
    return int(round(xy[0] * ONE)), int(round(xy[1] * ONE))


def blend(image: np.ndarray, colour, mask: np.ndarray, box: tuple[slice, slice] | None = None) -> None:
    """Paint ``colour`` over ``image`` through a float mask 0..1 (in place); a ``box`` says which part of
    the image the mask covers, so a small shape costs its own pixels, not the whole canvas's."""
    target = image if box is None else image[box]
    alpha = mask[..., None]
    target[:] = (target * (1.0 - alpha) + np.asarray(colour, np.float32) * alpha).astype(np.uint8)


def blurred(mask: np.ndarray, sigma: float) -> tuple[tuple[slice, slice], np.ndarray]:
    """A Gaussian blur of a 0..255 mask, as floats 0..1, over the box it can reach.

    Start-up drew the static layers with full-size blurs of sigma up to 38 px at 1080 (about 2 s). A blur
    that wide is smooth, so it is computed on the shape's box only, shrunk until the blur is ~3 px
    wide, then scaled back up: the same soft edge to within a level or two of 255, in a few ms.
    """
    x, y, w, h = cv2.boundingRect(mask)
    rows, cols = mask.shape
    pad = int(np.ceil(4 * sigma)) + 1
    y0, y1, x0, x1 = max(0, y - pad), min(rows, y + h + pad), max(0, x - pad), min(cols, x + w + pad)
    box = (slice(y0, y1), slice(x0, x1))
    crop = mask[box].astype(np.float32) / 255.0
    step = int(sigma // 3)
    if step < 2 or min(y1 - y0, x1 - x0) < 4 * step:
        return box, cv2.GaussianBlur(crop, (0, 0), sigma)
    small = cv2.resize(crop, ((x1 - x0) // step, (y1 - y0) // step), interpolation=cv2.INTER_AREA)
    # the shrink itself averages over a step-wide box (variance step**2 / 12): blur by the rest
    small = cv2.GaussianBlur(small, (0, 0), np.sqrt(sigma**2 - step**2 / 12) / step)
    return box, cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)


class HostLayers:
    """The host's geometry in canvas pixels (a frame of ``size`` plus a ``margin`` for the sway), and
    the static picture drawn from it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.margin = max(4, size // 60)  # room for the head's sway, as the portrait backend has

    def draw(self) -> np.ndarray:
        """The static layers on a canvas of ``size + 2 * margin`` pixels a side (RGB)."""
        total = self.size + 2 * self.margin
        image = self._backdrop(total)
        self._draw_body(image)
        self._draw_head(image)
        self._draw_eyes_open(image)
        return image

    # --- geometry --------------------------------------------------------------------------------------

    def xy(self, x, y) -> np.ndarray:
        """Frame fractions to canvas pixels (float)."""
        s, m = self.size, self.margin
        return np.stack([m + np.asarray(x, np.float64) * s, m + np.asarray(y, np.float64) * s], axis=-1)

    def rows(self, box: tuple[float, float]) -> tuple[int, int]:
        s, m = self.size, self.margin
        return int(np.floor(m + box[0] * s)), int(np.ceil(m + box[1] * s))

    def fill(self, image: np.ndarray, xy: np.ndarray, colour, origin=(0, 0)) -> None:
        points = pts(np.asarray(xy) - np.asarray(origin, np.float64))
        cv2.fillPoly(image, [points], colour, cv2.LINE_AA, SHIFT)

    def stroke(self, image: np.ndarray, xy: np.ndarray, colour, width: float, origin=(0, 0)) -> None:
        points = pts(np.asarray(xy) - np.asarray(origin, np.float64))
        cv2.polylines(image, [points], False, colour, max(1, round(width)), cv2.LINE_AA, SHIFT)

    def head_outline(self, grow: float = 1.0) -> np.ndarray:
        """The face: round above, a soft narrower jaw below."""
        cx, cy, a, b = HEAD
        t = np.linspace(0, 2 * np.pi, 4 * N, endpoint=False)
        down = np.clip(np.cos(t), 0, 1)  # 1 at the chin
        x = cx + grow * a * np.sin(t) * (1 - 0.2 * down**1.6)
        y = cy + grow * b * np.cos(t) * np.where(np.cos(t) > 0, 1.0, 0.95)
        return self.xy(x, y)

    def eye_curves(self, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, upper lid y and lower lid y of one eye's almond (frame fractions)."""
        cx = HEAD[0] + side * EYES_DX
        u = np.linspace(-1, 1, N)
        x = cx + EYE_W * u
        tilt = 0.003 * side * u  # the outer corners sit a touch higher
        upper = EYES_Y - EYE_H * (1 - u**2) ** 0.75 - tilt
        lower = EYES_Y + 0.75 * EYE_H * (1 - u**2) ** 0.9 - tilt
        return x, upper, lower

    # --- the static layers ---------------------------------------------------------------------------

    def _backdrop(self, total: int) -> np.ndarray:
        yy, xx = np.mgrid[0:total, 0:total].astype(np.float32) / total
        r = np.sqrt((xx - 0.5) ** 2 + (yy - 0.42) ** 2) / 0.75
        t = np.clip(r, 0, 1)[..., None] ** 1.3
        centre, edge = np.float32(BACKDROP_CENTRE), np.float32(BACKDROP_EDGE)
        return (centre + (edge - centre) * t).astype(np.uint8)

    def soft(self, image: np.ndarray, draw, colour, blur: float, strength: float, within=None) -> None:
        """A blurred shape (shadow, blush, light) blended over the image (only ``within`` a mask, if given)."""
        mask = np.zeros(image.shape[:2], np.uint8)
        draw(mask)
        box, soft = blurred(mask, max(0.5, blur * self.size))
        if within is not None:
            soft *= within[box]
        blend(image, colour, soft * strength, box)

    def _draw_body(self, image: np.ndarray) -> None:
        s = self.size
        # neck, with the jaw's shadow across it
        neck = self.xy([0.435, 0.565, 0.575, 0.425], [0.6, 0.6, 0.8, 0.8])
        self.fill(image, neck, SKIN)
        on_neck = np.zeros(image.shape[:2], np.uint8)
        self.fill(on_neck, neck, 255)
        # shoulders: a rounded sweater from the neck to the frame's edge
        t = np.linspace(0, np.pi, N)
        x = 0.5 - 0.45 * np.cos(t)
        y = 0.95 - 0.18 * np.sin(t) ** 0.45
        body = np.concatenate([self.xy(x, y), self.xy([1.0, 1.0, 0.0, 0.0], [0.98, 1.1, 1.1, 0.98])])
        self.fill(image, body, SWEATER)
        self.soft(
            image,
            lambda m: self.fill(m, self.xy(0.5 + 0.45 * np.cos(t), 1.02 - 0.13 * np.sin(t) ** 0.45), 255),
            SWEATER_SHADE,
            0.03,
            0.7,
        )
        # a crew collar with a shirt's edge above it
        u = np.linspace(-1, 1, N)
        collar_top = self.xy(0.5 + 0.1 * u, 0.775 + 0.055 * (1 - u**2))
        collar_out = self.xy(0.5 + 0.135 * u[::-1], 0.77 + 0.085 * (1 - u[::-1] ** 2))
        self.fill(image, np.concatenate([collar_top, collar_out]), COLLAR)
        inner = self.xy(0.5 + 0.088 * u[::-1], 0.78 + 0.04 * (1 - u[::-1] ** 2))
        self.fill(image, np.concatenate([self.xy(0.5 + 0.1 * u, 0.775 + 0.055 * (1 - u**2)), inner]), SKIN)
        self.soft(
            image,
            lambda m: self.fill(m, self.head_outline() + self.xy(0, 0.035) - self.xy(0, 0), 255),
            SKIN_SHADE,
            0.012,
            0.9,
            on_neck.astype(np.float32) / 255.0,
        )
        # the guide's badge: a brass rounded card with a star
        bx, by, bw, bh = 0.64, 0.885, 0.075, 0.05
        corner = 0.01 * s
        card = self.xy([bx, bx + bw, bx + bw, bx], [by, by, by + bh, by + bh]).astype(np.float64)
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
        self.fill(image, np.array(rounded), BADGE)
        star_c = self.xy(bx + 0.22 * bw, by + bh / 2)
        angles = np.radians(-90 + 36 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, 0.014 * s, 0.006 * s)
        star = star_c + np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
        self.fill(image, star, (250, 246, 236))
        for k, length in enumerate((0.36, 0.26)):
            line = self.xy([bx + 0.44 * bw, bx + (0.44 + length) * bw], [by + (0.38 + 0.26 * k) * bh] * 2)
            self.stroke(image, line, (250, 246, 236), 0.005 * s)

    def _draw_head(self, image: np.ndarray) -> None:
        s = self.size
        cx, cy, a, b = HEAD
        # the hair behind the head, then the ears
        self.fill(image, self.head_outline(1.045) + self.xy(0, -0.012) - self.xy(0, 0), HAIR)
        for side in (-1, 1):
            ear = (
                cv2.ellipse2Poly(
                    tuple(int(v * ONE) for v in self.xy(cx + side * 0.95 * a, 0.475)),
                    (int(0.032 * s * ONE), int(0.05 * s * ONE)),
                    int(-side * 8),
                    0,
                    360,
                    10,
                ).astype(np.float64)
                / ONE
            )
            self.fill(image, ear, SKIN)
            inner = (
                cv2.ellipse2Poly(
                    tuple(int(v * ONE) for v in self.xy(cx + side * 0.955 * a, 0.477)),
                    (int(0.015 * s * ONE), int(0.03 * s * ONE)),
                    int(-side * 8),
                    0,
                    360,
                    10,
                ).astype(np.float64)
                / ONE
            )
            self.fill(image, inner, SKIN_SHADE)
        self.fill(image, self.head_outline(), SKIN)
        # shade on the face's right (the light comes from the left), and rosy cheeks
        face = np.zeros(image.shape[:2], np.uint8)
        self.fill(face, self.head_outline(), 255)
        x, y, w, h = cv2.boundingRect(face)
        on_face = (slice(y, y + h), slice(x, x + w))
        lit = np.zeros(image.shape[:2], np.uint8)
        self.fill(lit, self.head_outline(1.0) + self.xy(-0.05, 0) - self.xy(0, 0), 255)
        box, light = blurred(lit, 0.03 * s)
        unlit = np.ones(image.shape[:2], np.float32)
        unlit[box] -= light
        blend(image, SKIN_SHADE, face[on_face].astype(np.float32) / 255.0 * unlit[on_face] * 0.55, on_face)
        for side in (-1, 1):
            self.soft(
                image,
                lambda m, side=side: cv2.ellipse(
                    m,
                    tuple(int(v * ONE) for v in self.xy(cx + side * 0.115, 0.545)),
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
        self.soft(
            image,
            lambda m: self.stroke(m, self.xy([0.512, 0.518, 0.522], [0.47, 0.51, 0.535]), 255, 0.012 * s),
            SKIN_SHADE,
            0.008,
            0.8,
        )
        u = np.linspace(-1, 1, N // 2)
        nose = self.xy(0.5 + 0.022 * u, 0.542 + 0.006 * (1 - u**2) - 0.004 * (u**4))
        self.stroke(image, nose, (170, 112, 88), 0.0055 * s)
        # the hair: short, with a side-swept fringe over the forehead and a soft sheen on top
        t = np.linspace(np.pi * 0.6, np.pi * 1.4, 2 * N)
        top = self.xy(cx - 1.07 * a * np.sin(t), cy - 0.018 + 1.07 * b * np.cos(t))
        u = np.linspace(1, -1, 2 * N)
        sweep = 0.5 + 0.5 * np.tanh((u + 0.3) / 0.35)  # the fringe falls lower toward the image's right
        temples = 0.1 * (np.clip(np.abs(u) - 0.6, 0, None) / 0.4) ** 2
        hairline = self.xy(cx + 1.02 * a * u, 0.29 + 0.035 * sweep + temples)
        self.fill(image, np.concatenate([top, hairline]), HAIR)
        self.soft(
            image,
            lambda m: self.stroke(
                m,
                self.xy(cx - 0.8 * a * np.sin(t[20:-30]), cy - 0.03 + 0.92 * b * np.cos(t[20:-30])),
                255,
                0.02 * s,
            ),
            HAIR_LIGHT,
            0.012,
            0.8,
        )

    def _draw_eyes_open(self, image: np.ndarray) -> None:
        s = self.size
        for side in (-1, 1):
            x, upper, lower = self.eye_curves(side)
            almond = np.concatenate([self.xy(x, upper), self.xy(x[::-1], lower[::-1])])
            mask = np.zeros(image.shape[:2], np.uint8)
            self.fill(mask, almond, 255)
            eye = image.copy()
            self.fill(eye, almond, EYE_WHITE)
            centre = self.xy(HEAD[0] + side * EYES_DX + 0.002, EYES_Y + 0.001)
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
            shadow = np.concatenate([self.xy(x, upper - 0.01), self.xy(x[::-1], upper[::-1] + 0.006)])
            shade = np.zeros(image.shape[:2], np.uint8)
            self.fill(shade, shadow, 255)
            box, soft = blurred(shade, 0.004 * s)
            blend(eye, (120, 100, 96), soft * 0.35, box)
            x0, y0, w, h = cv2.boundingRect(mask)
            within = (slice(y0, y0 + h), slice(x0, x0 + w))
            alpha = mask[within].astype(np.float32)[..., None] / 255.0
            image[within] = (image[within] * (1 - alpha) + eye[within] * alpha).astype(np.uint8)
            # the lash line along the upper lid, heavier at the outer corner
            self.stroke(image, self.xy(x, upper), LASH, 0.0065 * s)
            outer = x[-6:] if side > 0 else x[:6][::-1]
            outer_y = upper[-6:] if side > 0 else upper[:6][::-1]
            self.stroke(image, self.xy(outer + side * 0.004, outer_y - 0.003), LASH, 0.005 * s)
            self.stroke(image, self.xy(x[8:-8], lower[8:-8] + 0.002), SKIN_SHADE, 0.003 * s)
            # the lid's crease above
            crease = self.xy(x[6:-6], upper[6:-6] - 0.013 - 0.003 * (1 - np.linspace(-1, 1, N - 12) ** 2))
            self.stroke(image, crease, SKIN_SHADE, 0.003 * s)
