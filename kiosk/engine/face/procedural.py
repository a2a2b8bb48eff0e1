"""The procedural face: OpenCV warps of the jaw, lips, eyelids and brows, and a drawn inner mouth.

Everything that depends only on the portrait and the output size is computed once: the face crop scaled
to the output (plus a margin for the head's sway), the landmarks in those pixels, the lip and jaw lines
of every column of the mouth region, an eyelid image with the eyes inpainted shut, and the displacement
fields of the brows and mouth corners.  A frame then touches only the regions that move:

* the mouth: every column of the mouth region is a piecewise-linear map from output rows to portrait rows
  through its lip and jaw lines, so the lips can part *and* close (the lower lip covers the portrait's
  teeth for p, b, m), the chin follows the jaw, and the neck stays.  Where the lips part further than
  the portrait's do, a mouth is drawn (inner_mouth.py): a cavity shaded toward the corners and under the
  upper teeth, the tongue, the lower teeth above the lower lip's inner edge when the jaw drops, and the
  upper teeth when the portrait shows none.
* the eyes: the upper lid comes down over the inpainted eye with a lash line of the portrait's own colour.
* the brows and mouth corners: small smooth displacement fields per expression.

About 2 ms a frame at 512x512 and 9 ms at 1080x1080 on one core (bench/face.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.engine.face.backend import FACE_BACKENDS, FaceBackend, FaceState
from kiosk.engine.face.inner_mouth import draw_inner_mouth
from kiosk.engine.face.portrait import PortraitInfo, face_square
from kiosk.engine.face.visemes import MouthShape

# mediapipe face-mesh indices
UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
JAW_LINE = [132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361]
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

# how far things move, in mouth widths (mouth) or eye distances (brows)
MAX_OPENING = 0.42  # the lips' gap at the middle for jaw = 1
UPPER_RAISE = 0.045
LOWER_LIP_TUCK = 0.35  # f, v: the lower lip rolls in (thinner) by this share
WIDEN = 0.12
ROUND = 0.35
SMILE_UP, SMILE_OUT, FROWN_DOWN = 0.09, 0.04, 0.09
BROW_RAISE, BROW_LOWER, BROW_INNER, BROW_SQUEEZE = 0.1, 0.08, 0.09, 0.06


@dataclass
class Region:
    """A rectangle of the base image that moves, with its displacement fields (base pixels)."""

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
                displacement = self.fields[name]
                dx += weight * displacement[..., 0]
                dy += weight * displacement[..., 1]
        # backward mapping: an output pixel shows what was at (p - d) in the base image
        return self.grid_x - dx, self.grid_y - dy


@dataclass
class EyeLid:
    """One eye: its box in the base image, and per column its lid lines and the lid's skin above them."""

    x0: int
    y0: int
    x1: int
    y1: int
    top: np.ndarray  # (w,) the upper lid's edge, box rows
    bottom: np.ndarray  # (w,) the lower lid's edge, box rows
    skin: np.ndarray  # (w,) how much lid skin lies above the edge (rows), 0 beyond the eye's corners
    lash: np.ndarray  # (w, 3) float32: the colour of the upper lash line per column
    lash_width: float
    grid_x: np.ndarray  # (h, w) float32 base columns
    rows: np.ndarray  # (h, 1) float32 box rows


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _gaussian(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2).astype(np.float32)


def _line(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """A contour's y at each of ``xs`` (held flat beyond its ends)."""
    order = np.argsort(points[:, 0], kind="stable")
    return np.interp(xs, points[order, 0], points[order, 1]).astype(np.float32)


class ProceduralFace(FaceBackend):
    name = "procedural"

    def __init__(self, portrait: PortraitInfo, size: int = 512, model_path: str = "", device=None) -> None:
        self.portrait = portrait
        self.size = size
        self.margin = max(4, size // 60)  # room for the head's sway

    def load(self) -> None:
        self._prepare_base()
        self._prepare_mouth()
        self._prepare_upper_face()
        self._work = self.base.copy()
        self._out = np.empty((self.size, self.size, 3), np.uint8)

    @property
    def portrait_box(self) -> tuple[float, float, float, float]:
        """The face (landmarks plus a little room) in base pixels: x0, y0, x1, y1."""
        x0, y0 = self.points.min(axis=0)
        x1, y1 = self.points.max(axis=0)
        pad = 0.12 * (x1 - x0)
        total = self.base.shape[0]
        return max(0, x0 - pad), max(0, y0 - pad), min(total, x1 + pad), min(total, y1 + pad)

    # --- once per portrait ---------------------------------------------------------------------------

    def _prepare_base(self) -> None:
        image, points = self.portrait.image, self.portrait.landmarks
        cx, cy, side = face_square(points)  # the face fills about half the frame (the still uses it too)
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
    def _taper(region: Region) -> np.ndarray:
        """1 inside, falling to 0 at the region's edges, so no field leaves a seam."""
        h, w = region.grid_x.shape
        ys = _smoothstep(np.minimum(np.arange(h), np.arange(h)[::-1]) / max(1.0, 0.15 * h))
        xs = _smoothstep(np.minimum(np.arange(w), np.arange(w)[::-1]) / max(1.0, 0.15 * w))
        return (ys[:, None] * xs[None, :]).astype(np.float32)

    def _prepare_mouth(self) -> None:
        p = self.points
        left, right = p[MOUTH_CORNERS[0]], p[MOUTH_CORNERS[1]]
        mouth_w = float(right[0] - left[0])
        self.inner_upper = p[UPPER_INNER]
        self.inner_lower = p[LOWER_INNER]
        center = (self.inner_upper.mean(axis=0) + self.inner_lower.mean(axis=0)) / 2
        chin, nose = p[CHIN], p[NOSE_BOTTOM]
        self.mouth_width = mouth_w
        self.jaw_travel = MAX_OPENING * mouth_w  # the lips' gap at the middle for jaw = 1
        region = self._region(
            center[0] - 1.35 * mouth_w,
            nose[1],
            center[0] + 1.35 * mouth_w,
            chin[1] + 0.8 * (chin[1] - center[1]),
        )
        self.mouth = region
        h, w = region.grid_x.shape
        xs = np.arange(region.x0, region.x1, dtype=np.float32)
        self._mouth_cx = float(center[0])
        self._mouth_h = h

        # per column (box rows): the inner lips, the lower lip's outer edge and the jaw line
        upper = _line(self.inner_upper, xs) - region.y0
        lower = np.maximum(_line(self.inner_lower, xs) - region.y0, upper)
        lower_outer = np.maximum(_line(p[LOWER_OUTER], xs) - region.y0, lower)
        jaw = _line(p[JAW_LINE], xs) - region.y0
        jaw = np.clip(np.maximum(jaw, lower_outer + 0.15 * mouth_w), 0, h - 2)
        self._cols = {"upper": upper, "lower": lower, "lower_outer": lower_outer, "jaw": jaw}
        gap = lower - upper
        self._gap_rest = float(gap.max())
        # the portrait's mouth is closed when its lips (nearly) touch: then teeth are drawn when it opens
        self.closed_at_rest = self._gap_rest < 0.05 * mouth_w

        inner_left, inner_right = self.inner_upper[:, 0].min(), self.inner_upper[:, 0].max()
        half = max(1.0, (inner_right - inner_left) / 2)
        middle = (inner_left + inner_right) / 2
        across = np.clip(1 - ((xs - middle) / half) ** 2, 0, 1)
        ellipse = np.sqrt(across)
        if self.closed_at_rest:
            opening = ellipse
        else:  # the portrait's own mouth line shapes the opening (a smile opens as a smile)
            opening = 0.5 * ellipse + 0.5 * gap / max(self._gap_rest, 1e-3)
        self._profiles = {
            "opening": opening.astype(np.float32),
            "round": ellipse.astype(np.float32),
            "upper": _smoothstep(1 - np.abs(xs - middle) / (0.6 * mouth_w)),
            "chin": _smoothstep(1 - np.abs(xs - center[0]) / (1.25 * mouth_w)),
            # lips spread and purse around the middle, fading out beyond the corners
            "lips": _smoothstep(1 - np.abs(xs - center[0]) / (0.9 * mouth_w)) * (xs - center[0]),
        }
        self._middle_col = int(np.argmax(opening))
        rows = np.arange(h, dtype=np.float32)
        # horizontal lip motion is strongest at the lips' height and fades toward nose and chin
        lips_row = float(center[1] - region.y0)
        self._lips_rows = np.exp(-0.5 * ((rows - lips_row) / (0.35 * mouth_w)) ** 2).astype(np.float32)
        self._rows = rows
        # the per-column maps are one np.interp over all columns laid end to end: column j's rows are
        # offset by j * stride (queried column by column, so each lookup starts where the last ended)
        self._stride = float(h + 8)
        self._col_offsets = (np.arange(w, dtype=np.float64) * self._stride)[:, None]
        self._query = (rows.astype(np.float64)[None, :] + self._col_offsets).ravel()
        self._xs = xs

        # the mouth corners lift for a smile and drop for a frown
        gx, gy = region.grid_x, region.grid_y
        taper = self._taper(region)
        smile = np.zeros(gx.shape + (2,), np.float32)
        frown = np.zeros_like(smile)
        for corner, side in ((left, -1.0), (right, 1.0)):
            blob = _gaussian(gx, gy, corner[0], corner[1], 0.3 * mouth_w, 0.25 * mouth_w) * taper
            smile[..., 0] += side * SMILE_OUT * mouth_w * blob
            smile[..., 1] += -SMILE_UP * mouth_w * blob
            frown[..., 1] += FROWN_DOWN * mouth_w * blob
        region.fields = {"smile": smile, "frown": frown}

    def _prepare_upper_face(self) -> None:
        """Each side of the upper face (eye and brow together) is one region; each eye gets its lid."""
        p = self.points
        self.upper_face: list[Region] = []
        self.lids: list[EyeLid] = []
        eye_distance = float(np.hypot(*(p[EYES[1][0]] - p[EYES[0][0]])))
        face_center_x = float((p[EYES[0][1]][0] + p[EYES[1][1]][0]) / 2)
        for side, ((outer, inner, top, bottom), brow_indices) in enumerate(zip(EYES, BROWS, strict=True)):
            eye_w = abs(float(p[outer][0] - p[inner][0]))
            cx = float(p[outer][0] + p[inner][0]) / 2
            lid_top, lid_bottom = float(p[top][1]), float(p[bottom][1])
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
            # brows: they move, the eye itself does not (the fields fade out above the upper lid)
            bcx, bcy = float(bx0 + bx1) / 2, float(by0 + by1) / 2
            # (a long ramp: a fold-over would show the brow twice)
            above_lid = _smoothstep((lid_top - 0.1 * eye_w - gy) / max(1.0, 1.8 * (lid_top - bcy))) * taper
            blob = _gaussian(gx, gy, bcx, bcy, 0.6 * (bx1 - bx0), 0.8 * pad) * above_lid
            inner_x = float(brow[np.argmin(np.abs(brow[:, 0] - face_center_x))][0])
            inner_blob = _gaussian(gx, gy, inner_x, bcy, 0.3 * (bx1 - bx0), 0.7 * pad) * above_lid
            toward_center = np.sign(face_center_x - bcx)
            raise_ = np.zeros(gx.shape + (2,), np.float32)
            raise_[..., 1] = -BROW_RAISE * eye_distance * blob
            lower = np.zeros_like(raise_)
            lower[..., 1] = BROW_LOWER * eye_distance * (0.6 * blob + 0.6 * inner_blob)
            lower[..., 0] = toward_center * BROW_SQUEEZE * eye_distance * inner_blob
            inner_raise = np.zeros_like(raise_)
            inner_raise[..., 1] = -BROW_INNER * eye_distance * inner_blob
            inner_raise[..., 0] = toward_center * 0.02 * eye_distance * inner_blob
            region.fields = {"brow_raise": raise_, "brow_lower": lower, "brow_inner": inner_raise}
            self.upper_face.append(region)
            self.lids.append(self._prepare_lid(UPPER_LIDS[side], LOWER_LIDS[side], eye_w))

    def _prepare_lid(self, upper_ids: list[int], lower_ids: list[int], eye_w: float) -> EyeLid:
        p = self.points
        upper, lower = p[upper_ids], p[lower_ids]
        outline = np.concatenate([upper, lower[::-1]])
        skin = 0.4 * eye_w  # the lid's skin between the lashes and the crease
        x0 = int(np.floor(outline[:, 0].min() - 0.15 * eye_w))
        x1 = int(np.ceil(outline[:, 0].max() + 0.15 * eye_w))
        y0 = int(np.floor(outline[:, 1].min() - skin - 2))
        y1 = int(np.ceil(outline[:, 1].max() + 0.1 * eye_w + 2))
        total = self.base.shape[0]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(total, x1), min(total, y1)
        patch = self.base[y0:y1, x0:x1]
        columns = np.arange(x0, x1, dtype=np.float32)
        top = _line(upper, columns) - y0
        bottom = np.maximum(_line(lower, columns) - y0, top)
        left, right = outline[:, 0].min(), outline[:, 0].max()
        middle = _smoothstep(np.minimum(columns - left, right - columns) / (0.3 * eye_w))
        within = _smoothstep(1.0 + np.minimum(columns - left, right - columns) / (0.12 * eye_w))
        inside = within * (0.5 + 0.5 * middle)  # the crease is highest over the middle of the eye
        # the lash line's colour: the darkest pixel just around the upper lid's edge, per column
        gray = patch.astype(np.float32).mean(axis=2)
        lash = np.zeros((len(columns), 3), np.float32)
        for j in range(len(columns)):
            rows = np.clip(np.arange(int(top[j]) - 2, int(top[j]) + 2), 0, patch.shape[0] - 1)
            lash[j] = patch[rows[np.argmin(gray[rows, j])], j]
        lash = cv2.GaussianBlur(lash[None], (0, 0), 2.0)[0] * 0.8
        grid_x, _ = np.meshgrid(columns, np.arange(y0, y1, dtype=np.float32))
        return EyeLid(
            x0,
            y0,
            x1,
            y1,
            top,
            bottom,
            (skin * inside).astype(np.float32),
            lash,
            max(1.0, 0.05 * eye_w),
            grid_x,
            np.arange(y1 - y0, dtype=np.float32)[:, None],
        )

    # --- per frame -----------------------------------------------------------------------------------

    def render(self, state: FaceState) -> np.ndarray:
        work = self._work
        expression = state.expression
        self._render_mouth(work, state.mouth, expression.get("smile", 0.0), expression.get("frown", 0.0))
        upper_weights = {k: expression.get(k, 0.0) for k in ("brow_raise", "brow_lower", "brow_inner")}
        blink = float(np.clip(state.blink, 0.0, 1.0))
        moving = any(abs(w) > 0.005 for w in upper_weights.values())
        for region, lid in zip(self.upper_face, self.lids, strict=True):
            target = work[region.y0 : region.y1, region.x0 : region.x1]
            if moving:
                map_x, map_y = region.map(upper_weights)
                cv2.remap(
                    self.base, map_x, map_y, cv2.INTER_LINEAR, dst=target, borderMode=cv2.BORDER_REPLICATE
                )
            else:
                np.copyto(target, self.base[region.y0 : region.y1, region.x0 : region.x1])
            if blink > 0.02:
                self._close_lid(work, lid, blink)
        dx = int(round(np.clip(state.offset[0], -1, 1) * self.margin))
        dy = int(round(np.clip(state.offset[1], -1, 1) * self.margin))
        m = self.margin
        np.copyto(self._out, work[m - dy : m - dy + self.size, m - dx : m - dx + self.size])
        return self._out

    def _column_knots(self, mouth: MouthShape) -> dict[str, np.ndarray | float]:
        """Where each column's lip and jaw lines go for ``mouth`` (box rows), and where they come from."""
        mouth_w = self.mouth_width
        speak = 1.0 - float(np.clip(mouth.rest, 0.0, 1.0))
        # horizontal motion of the lips: spread (+width), pursed (round), per column
        spread = speak * (WIDEN * float(mouth.width) - ROUND * float(mouth.round))
        dx = spread * self._profiles["lips"]
        cols, prof = self._cols, self._profiles
        if spread:  # an output column shows the lips of the column it was moved from
            index = np.arange(len(dx), dtype=np.float32)
            source = index - dx
            cols = {name: np.interp(source, index, line).astype(np.float32) for name, line in cols.items()}
            prof = {name: np.interp(source, index, line).astype(np.float32) for name, line in prof.items()}
        jaw = float(np.clip(mouth.jaw, 0.0, 1.2))
        rounded = float(np.clip(mouth.round, 0.0, 1.0)) * speak
        shape = prof["opening"] + rounded * (prof["round"] - prof["opening"])
        gap_rest = cols["lower"] - cols["upper"]
        gap = (1 - speak) * gap_rest + speak * jaw * self.jaw_travel * shape
        upper = cols["upper"] - speak * float(mouth.upper) * UPPER_RAISE * mouth_w * prof["upper"]
        upper = np.maximum(upper, 1.0)
        lower = upper + gap
        thickness = (cols["lower_outer"] - cols["lower"]) * (1 - LOWER_LIP_TUCK * speak * float(mouth.teeth))
        lower_outer = lower + thickness
        drop = float(lower[self._middle_col] - cols["lower"][self._middle_col])
        jaw_line = cols["jaw"] + drop * prof["chin"]
        jaw_line = np.clip(np.maximum(jaw_line, lower_outer + 1.0), 0, self._mouth_h - 2)
        return {
            "upper": upper,
            "lower": lower,
            "lower_outer": lower_outer,
            "jaw": jaw_line,
            "gap": gap,
            "teeth_gap": np.minimum(gap, gap_rest),  # how much of the portrait's own gap still shows
            "gap_rest": gap_rest,
            "cols": cols,
            "round": prof["round"],
            "dx": dx,
            "jaw_amount": speak * jaw,
            "speak": speak,
        }

    def _render_mouth(self, work: np.ndarray, mouth: MouthShape, smile: float, frown: float) -> None:
        region = self.mouth
        k = self._column_knots(mouth)
        cols = k["cols"]
        h = self._mouth_h
        last = float(h - 1)
        w = len(self._xs)
        # output knots (rows in the box) and the portrait rows they show, per column
        src_lower_teeth = cols["upper"] + k["teeth_gap"]
        out_knots = np.stack(
            [
                np.zeros(w, np.float32),
                k["upper"],
                k["upper"] + k["teeth_gap"],
                k["lower"] - 1e-3,
                k["lower"],
                k["lower_outer"],
                k["jaw"],
                np.full(w, last, np.float32),
            ],
            axis=1,
        ).astype(np.float64)
        src_knots = np.stack(
            [
                np.zeros(w, np.float32),
                cols["upper"],
                src_lower_teeth,
                src_lower_teeth,
                cols["lower"],
                cols["lower_outer"],
                cols["jaw"],
                np.full(w, last, np.float32),
            ],
            axis=1,
        ).astype(np.float64)
        # strictly increasing knots per column, then one np.interp over all columns laid end to end
        out_knots += np.arange(8) * 1e-4
        np.maximum.accumulate(out_knots, axis=1, out=out_knots)
        rows = np.interp(self._query, (out_knots + self._col_offsets).ravel(), src_knots.ravel() + region.y0)
        map_y = cv2.transpose(rows.astype(np.float32).reshape(w, h))
        map_x = region.grid_x - self._lips_rows[:, None] * k["dx"][None, :]
        if smile or frown:
            fields = region.fields
            map_x -= smile * fields["smile"][..., 0]
            map_y -= smile * fields["smile"][..., 1] + frown * fields["frown"][..., 1]
        target = work[region.y0 : region.y1, region.x0 : region.x1]
        cv2.remap(self.base, map_x, map_y, cv2.INTER_LINEAR, dst=target, borderMode=cv2.BORDER_REPLICATE)
        draw_inner_mouth(self, target, k, smile, frown)

    def _close_lid(self, work: np.ndarray, lid: EyeLid, amount: float) -> None:
        """The upper lid lowered by ``amount`` (1 = shut): its skin stretched down, the lashes at its edge.

        Rows from the crease to the lid's new edge show the skin from the crease to just above the
        lashes (the portrait's lash line is left out, not smeared); rows below the edge are the eye as it
        was, so the lid slides over the iris.  A lash line of the portrait's colour is drawn at the edge.
        """
        box = work[lid.y0 : lid.y1, lid.x0 : lid.x1]
        source = box.copy()  # the eye as it is now (the brows may have moved)
        inside = lid.skin / max(float(lid.skin.max()), 1e-6)  # 1 over the eye, 0 beyond its corners
        edge = lid.top + amount * (lid.bottom - lid.top)  # per column
        crease = lid.top - lid.skin
        skip = 1.5 * lid.lash_width * min(1.0, 4 * amount) * inside
        y = lid.rows
        ratio = (lid.top - skip - crease) / np.maximum(edge - crease, 1e-3)
        stretched = crease + (y - crease) * ratio
        on_lid = (y >= crease) & (y <= edge)
        map_y = np.where(on_lid, stretched, y).astype(np.float32)
        map_x = lid.grid_x - lid.x0
        cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, dst=box, borderMode=cv2.BORDER_REPLICATE)
        strength = 0.9 * min(1.0, 3 * amount) * np.minimum(1.0, 2 * inside)
        lash = np.clip(1.0 - np.abs(y - edge + 0.3 * lid.lash_width) / lid.lash_width, 0.0, 1.0) * strength
        mixed = box + (lid.lash[None, :, :] - box) * lash[..., None]
        box[:] = mixed.astype(np.uint8)


@FACE_BACKENDS.register("procedural")
def _procedural(portrait: PortraitInfo, size: int, model_path: str = "", device=None) -> FaceBackend:
    return ProceduralFace(portrait, size)
