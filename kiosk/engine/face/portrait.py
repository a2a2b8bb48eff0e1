"""Checking a museum's portrait: exactly one frontal face of usable size, and its 478 landmarks.

Landmarks come from mediapipe's face mesh (Apache-2.0; not dlib's non-commercial 68-point model); OpenCV's
frontal-face Haar cascade is a second opinion on how many faces there are (the mesh's detector can miss
a second, smaller face).  They are computed once and cached beside the portrait (or in the cache folder
when that one is read-only), keyed by the image's SHA-256, with a preview PNG that shows what was found.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kiosk.errors import PortraitError

MAX_FILE_BYTES = 40 * 1024 * 1024
MAX_SIDE = 8000
MIN_FACE_WIDTH = 80  # the mesh's width of the face (cheek to cheek), pixels
MAX_YAW_DEGREES = 22.0
MAX_ROLL_DEGREES = 25.0
# a Haar detection this large (against the mesh face's width) and apart from it is another face
OTHER_FACE_SHARE = 0.6
CACHE_VERSION = 2

# mediapipe face-mesh indices
NOSE_TIP = 1
EYE_OUTER = (33, 263)
CHEEKS = (234, 454)


@dataclass(frozen=True)
class PortraitInfo:
    path: Path
    image: np.ndarray  # RGB uint8
    landmarks: np.ndarray  # (478, 2) float32, pixels
    sha256: str
    preview: Path | None
    yaw_degrees: float  # + the face turns toward the image's right
    roll_degrees: float

    @property
    def face_box(self) -> tuple[int, int, int, int]:
        x0, y0 = self.landmarks.min(axis=0)
        x1, y1 = self.landmarks.max(axis=0)
        return int(x0), int(y0), int(x1), int(y1)


def face_square(landmarks: np.ndarray) -> tuple[float, float, float]:
    """The square the talking face is framed in: (centre x, centre y, side) in portrait pixels.

    The face fills about half of it, a little above the centre.  The animator's frames and the screen's
    still portrait both use it, so the picture does not jump when the animator takes over.
    """
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    return float((x0 + x1) / 2), float((y0 + y1) / 2 + 0.08 * (y1 - y0)), float(2.0 * max(x1 - x0, y1 - y0))


def _fail(path: Path, why: str) -> PortraitError:
    return PortraitError(f"portrait {path}: {why}")


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, without decoding the pixels; None for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


def read_image(path: Path) -> tuple[np.ndarray, bytes]:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    if size > MAX_FILE_BYTES:
        raise _fail(path, f"file too large ({size / 1e6:.0f} MB; at most {MAX_FILE_BYTES // 2**20} MB)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"unreadable ({exc.strerror})") from None
    declared = image_size(data)
    if declared is not None and max(declared) > MAX_SIDE:  # refused before decoding it
        raise _fail(path, f"image too large ({declared[0]}x{declared[1]}; at most {MAX_SIDE} px a side)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise _fail(path, "unreadable (not a PNG or JPEG image)")
    height, width = image.shape[:2]
    if max(height, width) > MAX_SIDE:
        raise _fail(path, f"image too large ({width}x{height}; at most {MAX_SIDE} px a side)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), data


def detect_landmarks(image: np.ndarray, path: Path) -> np.ndarray:
    """The single face's landmarks in pixels, or a PortraitError saying why there is none."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's TensorFlow Lite chatter
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import mediapipe as mp
    except ImportError:  # no build for this Python (3.13): the shipped portraits ship their landmarks
        raise _fail(
            path,
            "no landmarks cached, and mediapipe's face mesh is not installed (it has no build for Python "
            f"{sys.version_info[0]}.{sys.version_info[1]}): run 'kiosk portrait check' once under Python 3.11 or 3.12",
        ) from None

    height, width = image.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=4, refine_landmarks=True, min_detection_confidence=0.5
    ) as mesh:
        faces = mesh.process(image).multi_face_landmarks or []
        if not faces:
            raise _fail(path, "no face found (use a well-lit, frontal photo of one face)")
        if len(faces) > 1:
            raise _fail(path, f"{len(faces)} faces found (the portrait must show exactly one)")
        points = np.array([(p.x * width, p.y * height) for p in faces[0].landmark], dtype=np.float32)
        others = other_faces(image, points, mesh)
    if others:
        raise _fail(path, f"{1 + others} faces found (the portrait must show exactly one)")
    return points


def other_faces(image: np.ndarray, landmarks: np.ndarray, mesh) -> int:
    """How many more faces of about the same size there are apart from this one.

    The Haar cascade proposes frontal faces anywhere in the image (the mesh's own detector can miss a
    second face); each proposal away from the found face is confirmed by running the mesh on its crop.
    """
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    face_w = float(x1 - x0)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, 640.0 / max(gray.shape))
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    smallest = max(24, int(OTHER_FACE_SHARE * face_w * scale))
    boxes = cascade.detectMultiScale(gray, 1.1, 6, minSize=(smallest, smallest))
    height, width = image.shape[:2]
    count = 0
    for bx, by, bw, bh in np.asarray(boxes).reshape(-1, 4) / scale:
        cx, cy = bx + bw / 2, by + bh / 2
        if x0 - 0.25 * face_w <= cx <= x1 + 0.25 * face_w and y0 - 0.25 * face_w <= cy <= y1:
            continue  # the face already found
        cx0, cy0 = int(max(0, cx - bw)), int(max(0, cy - bh))
        crop = image[cy0 : int(min(height, cy + bh)), cx0 : int(min(width, cx + bw))]
        if min(crop.shape[:2]) < 8:
            continue
        grow = max(1.0, 256.0 / max(crop.shape[:2]))
        crop = np.ascontiguousarray(cv2.resize(crop, None, fx=grow, fy=grow, interpolation=cv2.INTER_CUBIC))
        if mesh.process(crop).multi_face_landmarks:
            count += 1
    return count


def pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, roll) in degrees from the landmarks.

    Yaw is the larger of two estimates: the nose's offset from the eyes' midpoint, and the imbalance of
    the cheeks on either side of the nose (a face turned by a angle shows sin(a) more of one cheek).
    """
    left, right = landmarks[EYE_OUTER[0]], landmarks[EYE_OUTER[1]]
    eye_vector = right - left
    eye_distance = max(float(np.hypot(*eye_vector)), 1e-6)
    roll = float(np.degrees(np.arctan2(eye_vector[1], eye_vector[0])))
    direction = eye_vector / eye_distance
    nose = landmarks[NOSE_TIP]
    left_cheek = float(np.dot(nose - landmarks[CHEEKS[0]], direction))
    right_cheek = float(np.dot(landmarks[CHEEKS[1]] - nose, direction))
    half_face = max((left_cheek + right_cheek) / 2, 1e-6)
    nose_offset = float(np.dot(nose - (left + right) / 2, direction)) / half_face
    if left_cheek <= 0 or right_cheek <= 0:  # the nose is outside the face: seen from the side
        cheeks = 1.0 if left_cheek > right_cheek else -1.0
    else:
        cheeks = (left_cheek - right_cheek) / (left_cheek + right_cheek)
    sine = max((nose_offset, cheeks), key=abs)
    return float(np.degrees(np.arcsin(np.clip(sine, -1.0, 1.0)))), roll


def check_face(landmarks: np.ndarray, path: Path) -> tuple[float, float]:
    yaw, roll = pose(landmarks)
    if abs(yaw) > MAX_YAW_DEGREES:
        raise _fail(
            path, f"face turned too far to the side ({yaw:+.0f} degrees; at most {MAX_YAW_DEGREES:.0f})"
        )
    if abs(roll) > MAX_ROLL_DEGREES:
        raise _fail(path, f"face tilted too far ({roll:+.0f} degrees; at most {MAX_ROLL_DEGREES:.0f})")
    x0, _ = landmarks.min(axis=0)
    x1, _ = landmarks.max(axis=0)
    if x1 - x0 < MIN_FACE_WIDTH:
        raise _fail(path, f"face too small ({x1 - x0:.0f} px wide; at least {MIN_FACE_WIDTH} px)")
    return yaw, roll


def _cache_files(path: Path, sha: str, cache_dir: Path | None) -> tuple[Path, Path]:
    beside = path.parent
    if os.access(beside, os.W_OK) or cache_dir is None:
        folder = beside
    else:
        folder = cache_dir / "portraits"
        folder.mkdir(parents=True, exist_ok=True)
    stem = path.stem if folder == beside else sha[:16]
    return folder / f"{stem}.landmarks.npz", folder / f"{stem}.preview.png"


def check_portrait(path: str | Path, cache_dir: Path | None = None) -> PortraitInfo:
    """The portrait with its landmarks; computed once per image content, then read from the cache."""
    path = Path(path)
    image, data = read_image(path)
    sha = hashlib.sha256(data).hexdigest()
    cache_path, preview = _cache_files(path, sha, cache_dir)
    landmarks = _read_cache(cache_path, sha)
    if landmarks is None:
        landmarks = detect_landmarks(image, path)
        yaw, roll = check_face(landmarks, path)
        try:
            np.savez(cache_path, landmarks=landmarks, sha256=sha, version=CACHE_VERSION)
            cv2.imwrite(str(preview), cv2.cvtColor(draw_landmarks(image, landmarks), cv2.COLOR_RGB2BGR))
        except OSError:
            preview = None  # a read-only pack still works; it just checks again next start
    else:
        yaw, roll = check_face(landmarks, path)
    return PortraitInfo(
        path, image, landmarks, sha, preview if preview and preview.exists() else None, yaw, roll
    )


def _read_cache(cache_path: Path, sha: str) -> np.ndarray | None:
    try:
        with np.load(cache_path) as cached:
            if str(cached["sha256"]) == sha and int(cached["version"]) == CACHE_VERSION:
                return cached["landmarks"].astype(np.float32)
    except (OSError, KeyError, ValueError):
        pass
    return None


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    preview = image.copy()
    radius = max(1, round(min(image.shape[:2]) / 400))
    for x, y in landmarks:
        cv2.circle(preview, (round(float(x)), round(float(y))), radius, (0, 255, 120), -1, cv2.LINE_AA)
    x0, y0 = landmarks.min(axis=0).astype(int)
    x1, y1 = landmarks.max(axis=0).astype(int)
    cv2.rectangle(preview, (x0, y0), (x1, y1), (255, 200, 0), max(1, radius), cv2.LINE_AA)
    return preview


def portrait_check_command(path: str) -> int:
    """``kiosk portrait check PATH``: one line, OK with the preview's path, or what is wrong."""
    try:
        info = check_portrait(path)
    except PortraitError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    x0, y0, x1, y1 = info.face_box
    print(
        f"{path}: OK, one face {x1 - x0}x{y1 - y0} px, {len(info.landmarks)} landmarks, "
        f"yaw {info.yaw_degrees:+.0f} deg, roll {info.roll_degrees:+.0f} deg; preview {info.preview}"
    )
    return 0
