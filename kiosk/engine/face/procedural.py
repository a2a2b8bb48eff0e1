"""The procedural face: OpenCV warps of the jaw, lips, eyelids and brows, and a drawn inner mouth.

Everything that depends only on the portrait and the output size is computed once: the crop scaled to
the output, the landmarks in output pixels, and, for each moving region (mouth, each eye, each brow), a
small set of displacement fields.  A frame is then the static base plus a few small ``remap`` calls on
those regions, each driven by a weighted sum of its fields: about a millisecond of work at 512x512.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.engine.face.backend import FACE_BACKENDS, FaceBackend, FaceState
from kiosk.engine.face.portrait import PortraitInfo

# mediapipe face-mesh indices
UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
CHIN = 152
NOSE_BOTTOM = 2
MOUTH_CORNERS = (61, 291)
EYES = (  # (outer corner, inner corner, upper lid, lower lid)
    (33, 133, 159, 145),
    (263, 362, 386, 374),
)
UPPER_LIDS = ([33, 246, 161, 160, 159, 158, 157, 173, 133], [263, 466, 388, 387, 386, 385, 384, 398, 362])
LOWER_LIDS = ([33, 7, 163, 144, 145, 153, 154, 155, 133], [263, 249, 390, 373, 374, 380, 381, 382, 362])
BROWS = ((70, 63, 105, 66, 107), (300, 293, 334, 296, 336))

CAVITY_TOP = np.array([62, 24, 30], np.float32)
CAVITY_BOTTOM = np.array([28, 8, 12], np.float32)
TEETH = np.array([236, 232, 222], np.float32)
TONGUE = np.array([176, 84, 92], np.float32)


@dataclass
class Region:
    """A rectangle of the output that moves, with its displacement fields (output pixels)."""

    x0: int
    y0: int
    x1: int
    y1: int
    fields: dict[str, np.ndarray]  # name -> (h, w, 2) float32 displacement for a weight of 1
    grid_x: np.ndarray
    grid_y: np.ndarray

    def map(self, weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        dx = np.zeros_like(self.grid_x)
        dy = np.zeros_like(self.grid_y)
        for name, weight in weights.items():
            if weight and name in self.fields:
                field = self.fields[name]
                dx += weight * field[..., 0]
                dy += weight * field[..., 1]
        # backward mapping: an output pixel shows what was at (p - d) in the base image
        return self.grid_x - dx, self.grid_y - dy

    def displace(self, points: np.ndarray, weights: dict[str, float]) -> np.ndarray:
        """Where base-image points land under the same fields (forward, first order)."""
        moved = points.astype(np.float32).copy()
        h, w = self.grid_x.shape
        for name, weight in weights.items():
            if not weight or name not in self.fields:
                continue
            field = self.fields[name]
            for i, (x, y) in enumerate(points):
                xi = int(np.clip(round(x) - self.x0, 0, w - 1))
                yi = int(np.clip(round(y) - self.y0, 0, h - 1))
                moved[i] += weight * field[yi, xi]
        return moved


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _gaussian(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2).astype(np.float32)


class ProceduralFace(FaceBackend):
    name = "procedural"

    def __init__(self, portrait: PortraitInfo, size: int = 512, model_path: str = "", device=None) -> None:
        self.portrait = portrait
        self.size = size
        self.margin = max(4, size // 60)  # room for the head's sway

    def load(self) -> None:
        self._prepare_base()
        self._prepare_regions()
        self._out = np.empty((self.size, self.size, 3), np.uint8)

    # --- once per portrait ---------------------------------------------------------------------------

    def _prepare_base(self) -> None:
        image, points = self.portrait.image, self.portrait.landmarks
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.08 * (y1 - y0)
        side = 2.0 * max(x1 - x0, y1 - y0)  # the face fills about half the frame
        total = self.size + 2 * self.margin
        scale = total / side
        matrix = np.array(
            [[scale, 0, total / 2 - scale * cx], [0, scale, total / 2 - scale * cy]], np.float32
        )
        self.base = cv2.warpAffine(
            image,
            matrix,
            (total, total),
            flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REPLICATE,
        )
        self.points = (points * scale + matrix[:, 2]).astype(np.float32)  # in base pixels
        self.scale = scale

    def _region(self, x0: float, y0: float, x1: float, y1: float) -> Region:
        total = self.base.shape[0]
        x0, y0 = int(max(0, x0)), int(max(0, y0))
        x1, y1 = int(min(total, x1)), int(min(total, y1))
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        return Region(x0, y0, x1, y1, {}, gx, gy)

    @staticmethod
    def _contour_y(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A lip contour as (x, y) arrays sorted by x, for np.interp."""
        order = np.argsort(points[:, 0])
        return points[order, 0], points[order, 1]

    @staticmethod
    def _taper(region: Region) -> np.ndarray:
        """1 inside, falling to 0 at the region's edges, so no field leaves a seam."""
        h, w = region.grid_x.shape
        ys = _smoothstep(np.minimum(np.arange(h), np.arange(h)[::-1]) / max(1.0, 0.15 * h))
        xs = _smoothstep(np.minimum(np.arange(w), np.arange(w)[::-1]) / max(1.0, 0.15 * w))
        return (ys[:, None] * xs[None, :]).astype(np.float32)

    def _prepare_regions(self) -> None:
        p = self.points
        left, right = p[MOUTH_CORNERS[0]], p[MOUTH_CORNERS[1]]
        mouth_w = float(right[0] - left[0])
        mouth_c = (p[UPPER_INNER].mean(axis=0) + p[LOWER_INNER].mean(axis=0)) / 2
        chin = p[CHIN]
        nose = p[NOSE_BOTTOM]
        self.mouth_width = mouth_w
        self.jaw_travel = 0.36 * mouth_w  # how far the chin drops for jaw = 1

        # the mouth and jaw region: from under the nose to below the chin, a little wider than the jaw
        region = self._region(
            mouth_c[0] - 1.35 * mouth_w,
            nose[1],
            mouth_c[0] + 1.35 * mouth_w,
            chin[1] + 0.8 * (chin[1] - mouth_c[1]),
        )
        gx, gy = region.grid_x, region.grid_y
        lower_lip_y = float(
            np.interp(np.clip(gx[0], left[0], right[0]), *self._contour_y(p[LOWER_INNER])).mean()
        )
        lip_line = np.interp(gx, *self._contour_y(p[LOWER_INNER]))  # the lower inner lip, per column
        depth = np.clip((gy - lower_lip_y) / max(1.0, chin[1] - lower_lip_y), 0.0, 1.0)
        # the opening is widest at the middle of the lips, and the chin moves as a whole
        half_width = (0.5 + 0.7 * depth) * mouth_w
        across = _smoothstep(1.0 - np.abs(gx - mouth_c[0]) / half_width)
        ramp = max(1.5, 0.04 * mouth_w)
        below = _smoothstep(
            (gy - lip_line + ramp) / ramp
        )  # the lower lip (from its inner edge) and jaw move...
        neck = _smoothstep((region.y1 - gy) / max(2.0, 0.6 * (chin[1] - mouth_c[1])))  # ...the neck stays
        taper = self._taper(region)
        jaw = np.zeros(gx.shape + (2,), np.float32)
        jaw[..., 1] = self.jaw_travel * across * below * neck
        upper_line = np.interp(gx, *self._contour_y(p[UPPER_INNER]))
        above = _smoothstep((upper_line - gy) / max(1.5, 0.04 * mouth_w))
        under_nose = _smoothstep((gy - nose[1]) / max(2.0, mouth_c[1] - nose[1]))
        lip_across = _smoothstep(1.0 - np.abs(gx - mouth_c[0]) / (0.55 * mouth_w))
        upper = np.zeros_like(jaw)
        upper[..., 1] = -0.08 * mouth_w * lip_across * above * under_nose
        lips = _gaussian(gx, gy, mouth_c[0], mouth_c[1], 0.55 * mouth_w, 0.35 * mouth_w) * taper
        width = np.zeros_like(jaw)
        width[..., 0] = 0.12 * (gx - mouth_c[0]) * lips
        rounding = np.zeros_like(jaw)
        rounding[..., 0] = -0.25 * (gx - mouth_c[0]) * lips
        teeth = np.zeros_like(jaw)  # the lower lip rises under the upper teeth
        teeth[..., 1] = (
            -0.06
            * mouth_w
            * lip_across
            * below
            * _gaussian(gx, gy, mouth_c[0], lower_lip_y, mouth_w, 0.2 * mouth_w)
        )
        smile = np.zeros_like(jaw)
        frown = np.zeros_like(jaw)
        for corner, side in ((left, -1.0), (right, 1.0)):
            blob = _gaussian(gx, gy, corner[0], corner[1], 0.3 * mouth_w, 0.25 * mouth_w) * taper
            smile[..., 0] += side * 0.04 * mouth_w * blob
            smile[..., 1] += -0.08 * mouth_w * blob
            frown[..., 1] += 0.08 * mouth_w * blob
        region.fields = {
            "jaw": jaw,
            "upper": upper,
            "width": width,
            "round": rounding,
            "teeth": teeth,
            "smile": smile,
            "frown": frown,
        }
        self.mouth = region
        self.inner_upper = p[UPPER_INNER]
        self.inner_lower = p[LOWER_INNER]
        # a portrait with a closed mouth shows no teeth at rest: draw them when it opens
        self.closed_at_rest = float(np.max(p[LOWER_INNER][:, 1] - p[UPPER_INNER][:, 1])) < 0.05 * mouth_w

        # each side of the upper face (eye and brow together) is one region, so no warp undoes another
        self.upper_face = []
        eye_distance = float(np.hypot(*(p[EYES[1][0]] - p[EYES[0][0]])))
        face_center_x = float((p[EYES[0][1]][0] + p[EYES[1][1]][0]) / 2)
        for (outer, inner, top, bottom), brow_indices in zip(EYES, BROWS, strict=True):
            eye_w = abs(float(p[outer][0] - p[inner][0]))
            cx = float(p[outer][0] + p[inner][0]) / 2
            lid_top, lid_bottom = float(p[top][1]), float(p[bottom][1])
            opening = max(2.0, lid_bottom - lid_top)
            brow = p[list(brow_indices)]
            bx0, by0 = brow.min(axis=0)
            bx1, by1 = brow.max(axis=0)
            pad = 0.25 * eye_distance
            left_x, right_x = min(bx0 - pad, cx - 0.9 * eye_w), max(bx1 + pad, cx + 0.9 * eye_w)
            if cx < face_center_x:  # the two sides meet at the middle of the face, never overlap
                right_x = min(right_x, face_center_x)
            else:
                left_x = max(left_x, face_center_x)
            region = self._region(left_x, by0 - 1.4 * pad, right_x, lid_bottom + 0.35 * eye_w)
            gx, gy = region.grid_x, region.grid_y
            taper = self._taper(region)
            # blink: per column, the lid line and where the eyelid's skin starts (computed per frame)
            columns = gx[0]
            side = EYES.index((outer, inner, top, bottom))
            top_line = np.interp(columns, *self._contour_y(p[UPPER_LIDS[side]]))
            bottom_line = np.interp(columns, *self._contour_y(p[LOWER_LIDS[side]]))
            inside_eye = (columns > min(p[outer][0], p[inner][0])) & (columns < max(p[outer][0], p[inner][0]))
            across = np.where(
                inside_eye, _smoothstep(1.0 - np.abs(columns - cx) / (0.55 * eye_w)) ** 0.5, 0.0
            )
            region.blink = (
                top_line.astype(np.float32),
                np.maximum(bottom_line, top_line).astype(np.float32),
                across.astype(np.float32),
                float(1.3 * opening + 0.1 * eye_w),
            )
            # brows: they move, the eye itself does not (the fields fade out above the upper lid)
            bcx, bcy = float(bx0 + bx1) / 2, float(by0 + by1) / 2
            above_lid = _smoothstep((lid_top - gy) / max(1.0, lid_top - bcy)) * taper
            blob = _gaussian(gx, gy, bcx, bcy, 0.6 * (bx1 - bx0), 0.8 * pad) * above_lid
            inner_x = float(brow[np.argmin(np.abs(brow[:, 0] - face_center_x))][0])
            inner_blob = _gaussian(gx, gy, inner_x, bcy, 0.3 * (bx1 - bx0), 0.7 * pad) * above_lid
            toward_center = np.sign(face_center_x - bcx)
            raise_ = np.zeros(gx.shape + (2,), np.float32)
            raise_[..., 1] = -0.06 * eye_distance * blob
            lower = np.zeros_like(raise_)
            lower[..., 1] = 0.045 * eye_distance * blob
            lower[..., 0] = toward_center * 0.04 * eye_distance * inner_blob
            inner_raise = np.zeros_like(raise_)
            inner_raise[..., 1] = -0.06 * eye_distance * inner_blob
            region.fields = {"brow_raise": raise_, "brow_lower": lower, "brow_inner": inner_raise}
            self.upper_face.append(region)

    # --- per frame -----------------------------------------------------------------------------------

    def render(self, state: FaceState) -> np.ndarray:
        work = self._work
        np.copyto(work, self.base)
        mouth = state.mouth
        expression = state.expression
        mouth_weights = {
            "jaw": mouth.jaw,
            "upper": mouth.upper,
            "width": mouth.width,
            "round": mouth.round,
            "teeth": mouth.teeth,
            "smile": expression.get("smile", 0.0),
            "frown": expression.get("frown", 0.0),
        }
        self._warp(work, self.mouth, mouth_weights)
        self._draw_inner_mouth(work, mouth_weights)
        upper_weights = {k: expression.get(k, 0.0) for k in ("brow_raise", "brow_lower", "brow_inner")}
        blink = float(np.clip(state.blink, 0.0, 1.0))
        if blink > 0.01 or any(w > 0.005 for w in upper_weights.values()):
            for region in self.upper_face:
                map_x, map_y = region.map(upper_weights)
                if blink > 0.01:
                    map_y = map_y - self._blink_shift(region, blink)
                patch = cv2.remap(self.base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                work[region.y0 : region.y1, region.x0 : region.x1] = patch
        dx = int(round(np.clip(state.offset[0], -1, 1) * self.margin))
        dy = int(round(np.clip(state.offset[1], -1, 1) * self.margin))
        m = self.margin
        np.copyto(self._out, work[m - dy : m - dy + self.size, m - dx : m - dx + self.size])
        return self._out

    @property
    def _work(self) -> np.ndarray:
        work = getattr(self, "_work_buffer", None)
        if work is None:
            work = self._work_buffer = np.empty_like(self.base)
        return work

    @staticmethod
    def _blink_shift(region: Region, amount: float) -> np.ndarray:
        """The upper lid lowered by ``amount``: the eyelid's skin above it is stretched down over the eye."""
        top, bottom, across, skin = region.blink
        crease = top - skin
        edge = top + amount * (bottom - top) * across  # where the lid's edge is now, per column
        gy = region.grid_y
        scale = (top - crease) / np.maximum(edge - crease, 1e-3)  # < 1: stretched
        shift = (gy - crease) * (1.0 - scale)
        return np.where((gy >= crease) & (gy <= edge), shift, 0.0).astype(np.float32)

    def _warp(self, work: np.ndarray, region: Region, weights: dict[str, float]) -> None:
        map_x, map_y = region.map(weights)
        patch = cv2.remap(self.base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        work[region.y0 : region.y1, region.x0 : region.x1] = patch

    def _draw_inner_mouth(self, work: np.ndarray, weights: dict[str, float]) -> None:
        """Paint the opening between where the lower lip was and where it is now: cavity, teeth, tongue."""
        region = self.mouth
        still = {k: v for k, v in weights.items() if k not in ("jaw", "teeth")}
        top = region.displace(self.inner_lower, still)
        if self.closed_at_rest:
            top = region.displace(self.inner_upper, still)
        bottom = region.displace(self.inner_lower, weights)
        opening = float(np.max(bottom[:, 1] - top[:, 1]))
        if opening < 1.0:
            return
        polygon = np.concatenate([top, bottom[::-1]])
        x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 3
        h, w = y1 - y0, x1 - x0
        if h <= 2 or w <= 2:
            return
        shift = 4  # sub-pixel polygon edges
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [((polygon - [x0, y0]) * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
        rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        inside = np.broadcast_to(CAVITY_TOP * (1 - rows) + CAVITY_BOTTOM * rows, (h, w, 3)).copy()
        if self.closed_at_rest:  # upper teeth along the top of the opening
            depth = min(0.45 * opening, 0.1 * self.mouth_width)
            edge = top - [x0, y0]
            band = np.concatenate([edge, (edge + [0, depth])[::-1]])
            teeth = np.zeros((h, w), np.uint8)
            cv2.fillPoly(teeth, [(band * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
            inside = np.where(teeth[..., None] > 0, TEETH * np.linspace(1.0, 0.8, h)[:, None, None], inside)
        if opening > 0.1 * self.mouth_width:  # the tongue rests low in the mouth
            cx = float(bottom[:, 0].mean() - x0)
            cy = float(bottom[:, 1].max() - y0)
            axes = (max(1, int(0.28 * self.mouth_width)), max(1, int(0.3 * opening)))
            tongue = np.zeros((h, w), np.uint8)
            cv2.ellipse(tongue, (int(cx), int(cy)), axes, 0, 180, 360, 255, -1, cv2.LINE_AA)
            inside = np.where(tongue[..., None] > 0, TONGUE * (0.75 + 0.25 * rows), inside)
        alpha = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[..., None] / 255.0
        target = work[y0:y1, x0:x1]
        target[:] = (target * (1 - alpha) + inside * alpha).astype(np.uint8)


@FACE_BACKENDS.register("procedural")
def _procedural(portrait: PortraitInfo, size: int, model_path: str = "", device=None) -> FaceBackend:
    return ProceduralFace(portrait, size)
