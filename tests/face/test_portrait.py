"""The portrait check: the default portrait passes; bad ones are refused in one line saying why."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.engine.face.portrait import check_portrait
from kiosk.errors import PortraitError
from tests.packs import SAMPLE_PORTRAIT

DEFAULT = SAMPLE_PORTRAIT  # a curator's portrait: NASA's photograph of Eileen Collins
# mediapipe's face mesh has no build for Python 3.13: the tests that find faces run on 3.11 and 3.12
needs_mesh = pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None, reason="mediapipe's face mesh has no build for this Python"
)


def write(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(DEFAULT)), cv2.COLOR_BGR2RGB)


@needs_mesh
def test_default_portrait_has_one_frontal_face_and_is_cached(tmp_path: Path, astronaut) -> None:
    path = write(tmp_path / "portrait.png", astronaut)
    started = time.monotonic()
    info = check_portrait(path)
    first = time.monotonic() - started
    assert info.landmarks.shape == (478, 2)
    x0, y0, x1, y1 = info.face_box
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 250  # the astronaut's face, upper left of the photo
    assert abs(info.yaw_degrees) < 8 and abs(info.roll_degrees) < 15
    assert info.preview is not None and info.preview.is_file()
    cache = tmp_path / "portrait.landmarks.npz"
    stamp = cache.stat().st_mtime_ns
    started = time.monotonic()
    again = check_portrait(path)
    assert time.monotonic() - started < first
    assert cache.stat().st_mtime_ns == stamp  # read, not recomputed
    assert np.array_equal(again.landmarks, info.landmarks)
    # another image under the same name is not mistaken for the cached one
    write(path, np.ascontiguousarray(astronaut[:, ::-1]))
    mirrored = check_portrait(path)
    assert not np.allclose(mirrored.landmarks, info.landmarks)


@needs_mesh
def test_read_only_pack_caches_in_the_cache_folder(tmp_path: Path, astronaut) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    path = write(pack / "portrait.png", astronaut)
    pack.chmod(0o555)
    try:
        info = check_portrait(path, cache_dir=tmp_path / "cache")
    finally:
        pack.chmod(0o755)
    assert info.landmarks.shape == (478, 2)
    if info.preview is not None:  # root may write anyway
        assert info.preview.is_file()


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def beside(image: np.ndarray, share: float) -> np.ndarray:
    """The portrait with a second, smaller copy of the face beside it (the mesh alone misses that one)."""
    face = cv2.resize(image[20:260, 100:350], None, fx=share, fy=share, interpolation=cv2.INTER_AREA)
    canvas = np.full((image.shape[0], image.shape[1] + 288, 3), 200, np.uint8)
    canvas[:, : image.shape[1]] = image
    canvas[40 : 40 + face.shape[0], image.shape[1] + 18 : image.shape[1] + 18 + face.shape[1]] = face
    return canvas


def half_hidden(image: np.ndarray) -> np.ndarray:
    """Everything right of the nose painted over: what is left is seen as a face from the side."""
    hidden = image.copy()
    hidden[:, 223:] = 225  # the nose tip is at x = 223
    return hidden


BAD = {
    "blank": (lambda a: np.full_like(a, 200), "no face found"),
    "two faces": (lambda a: np.hstack([a[:, :330], a[:, :330]]), "2 faces found"),
    "a second face the mesh misses": (lambda a: beside(a, 0.8), "2 faces found"),
    "tiny face": (lambda a: cv2.resize(a, (260, 260), interpolation=cv2.INTER_AREA), "face too small"),
    "tilted": (lambda a: rotated(a, 40), "tilted too far"),
    "rotated 60 degrees": (lambda a: rotated(a, 60), "tilted too far"),
    "half hidden": (half_hidden, "turned too far to the side"),
}


@needs_mesh
def test_a_small_face_in_the_background_is_allowed(tmp_path: Path, astronaut) -> None:
    info = check_portrait(write(tmp_path / "background.png", beside(astronaut, 0.5)))
    assert info.landmarks.shape == (478, 2)


@needs_mesh
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_portraits_are_refused_in_one_line(tmp_path: Path, astronaut, case: str) -> None:
    make, expected = BAD[case]
    path = write(tmp_path / f"{case}.png", make(astronaut))
    with pytest.raises(PortraitError) as info:
        check_portrait(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert expected in message


@needs_mesh
def test_a_face_turned_to_the_side_is_refused(astronaut) -> None:
    """Yaw is read from the nose's offset between the eyes: moved half an eye distance, it is refused."""
    from kiosk.engine.face.portrait import EYE_OUTER, NOSE_TIP, check_face, detect_landmarks, pose

    points = detect_landmarks(astronaut, DEFAULT)
    check_face(points, DEFAULT)
    eye_distance = float(np.hypot(*(points[EYE_OUTER[1]] - points[EYE_OUTER[0]])))
    turned = points.copy()
    turned[NOSE_TIP, 0] += 0.5 * eye_distance
    assert pose(turned)[0] > 22
    with pytest.raises(PortraitError, match="turned too far to the side"):
        check_face(turned, DEFAULT)


def test_unreadable_and_huge_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG not really")
    with pytest.raises(PortraitError, match="unreadable"):
        check_portrait(garbage)
    huge = tmp_path / "huge.png"
    with huge.open("wb") as handle:
        handle.truncate(41 * 1024 * 1024)
    with pytest.raises(PortraitError, match="file too large"):
        check_portrait(huge)
    with pytest.raises(PortraitError, match="file not found"):
        check_portrait(tmp_path / "missing.png")
    tall = tmp_path / "tall.png"  # small on disk, but refused from its header before decoding
    cv2.imwrite(str(tall), np.zeros((8200, 4, 3), np.uint8))
    with pytest.raises(PortraitError, match=r"image too large \(4x8200"):
        check_portrait(tall)
    tall_jpeg = tmp_path / "tall.jpg"
    cv2.imwrite(str(tall_jpeg), np.zeros((8200, 8, 3), np.uint8))
    with pytest.raises(PortraitError, match=r"image too large \(8x8200"):
        check_portrait(tall_jpeg)


@needs_mesh
def test_portrait_check_command(tmp_path: Path, astronaut) -> None:
    good = write(tmp_path / "good.png", astronaut)
    result = subprocess.run(
        [sys.executable, "-m", "kiosk", "portrait", "check", str(good)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and "OK, one face" in result.stdout and "preview" in result.stdout
    bad = write(tmp_path / "blank.png", np.full_like(astronaut, 30))
    result = subprocess.run(
        [sys.executable, "-m", "kiosk", "portrait", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("kiosk:")] == [
        f"kiosk: portrait {bad}: no face found (use a well-lit, frontal photo of one face)"
    ]


def test_without_the_face_mesh_the_shipped_portrait_is_used_and_a_new_one_is_refused_in_one_line(
    tmp_path: Path, astronaut, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.13 has no mediapipe: the shipped portrait's landmarks ship beside it; a new portrait gets
    one line saying what to do."""
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe now fails, as on 3.13
    info = check_portrait(DEFAULT)
    assert info.landmarks.shape == (478, 2)
    new = write(tmp_path / "curator.png", astronaut[:, ::-1].copy())
    with pytest.raises(PortraitError, match="under Python 3.11 or 3.12") as refused:
        check_portrait(new)
    assert "\n" not in str(refused.value)
