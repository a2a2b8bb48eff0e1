"""Checking a museum's portrait: exactly one frontal face of usable size, and its 478 landmarks.

Landmarks come from mediapipe's face mesh (Apache-2.0; not dlib's non-commercial 68-point model). They
are computed once and cached beside the portrait (or in the cache folder when that one is read-only),
keyed by the image's SHA-256, with a preview PNG that shows what was found.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kiosk.errors import PortraitError

MAX_FILE_BYTES = 40 * 1024 * 1024
MAX_SIDE = 8000
MIN_FACE_WIDTH = 80
MAX_YAW = 0.35  # nose offset from the eyes' midpoint, in inter-ocular distances
MAX_ROLL_DEGREES = 25.0
CACHE_VERSION = 1

# mediapipe face-mesh indices
NOSE_TIP = 1
EYE_OUTER = (33, 263)


@dataclass(frozen=True)
class PortraitInfo:
    path: Path
    image: np.ndarray  # RGB uint8
    landmarks: np.ndarray  # (478, 2) float32, pixels
    sha256: str
    preview: Path | None
    yaw: float
    roll_degrees: float

    @property
    def face_box(self) -> tuple[int, int, int, int]:
        x0, y0 = self.landmarks.min(axis=0)
        x1, y1 = self.landmarks.max(axis=0)
        return int(x0), int(y0), int(x1), int(y1)


def _fail(path: Path, why: str) -> PortraitError:
    return PortraitError(f"portrait {path}: {why}")


def read_image(path: Path) -> tuple[np.ndarray, bytes]:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    if size > MAX_FILE_BYTES:
        raise _fail(path, f"file too large ({size / 1e6:.0f} MB; at most {MAX_FILE_BYTES // 2**20} MB)")
    data = path.read_bytes()
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
    import mediapipe as mp

    height, width = image.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=4, refine_landmarks=True, min_detection_confidence=0.5
    ) as mesh:
        result = mesh.process(image)
    faces = result.multi_face_landmarks or []
    if not faces:
        raise _fail(path, "no face found (use a well-lit, frontal photo of one face)")
    if len(faces) > 1:
        raise _fail(path, f"{len(faces)} faces found (the portrait must show exactly one)")
    points = np.array([(p.x * width, p.y * height) for p in faces[0].landmark], dtype=np.float32)
    return points


def pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw as nose offset in eye distances, roll in degrees) from the landmarks."""
    left, right = landmarks[EYE_OUTER[0]], landmarks[EYE_OUTER[1]]
    eye_vector = right - left
    eye_distance = float(np.hypot(*eye_vector))
    roll = float(np.degrees(np.arctan2(eye_vector[1], eye_vector[0])))
    mid = (left + right) / 2
    direction = eye_vector / max(eye_distance, 1e-6)
    yaw = float(np.dot(landmarks[NOSE_TIP] - mid, direction) / max(eye_distance, 1e-6))
    return yaw, roll


def check_face(landmarks: np.ndarray, path: Path) -> tuple[float, float]:
    x0, _ = landmarks.min(axis=0)
    x1, _ = landmarks.max(axis=0)
    if x1 - x0 < MIN_FACE_WIDTH:
        raise _fail(path, f"face too small ({x1 - x0:.0f} px wide; at least {MIN_FACE_WIDTH} px)")
    yaw, roll = pose(landmarks)
    if abs(yaw) > MAX_YAW:
        raise _fail(path, f"face turned too far to the side (use a frontal photo; yaw {yaw:+.2f})")
    if abs(roll) > MAX_ROLL_DEGREES:
        raise _fail(path, f"face tilted too far ({roll:+.0f} degrees; at most {MAX_ROLL_DEGREES:.0f})")
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
        f"yaw {info.yaw:+.2f}, roll {info.roll_degrees:+.0f} deg; preview {info.preview}"
    )
    return 0
