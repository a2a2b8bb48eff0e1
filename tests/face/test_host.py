"""The drawn host: a pack without a portrait is presented by the kiosk's own illustration, never by
somebody else's photograph, and the host's mouth, lids and brows follow the same face states."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.config import load_config
from kiosk.emotion import Emotion
from kiosk.engine.face import check_exhibit_portrait, create_backend
from kiosk.engine.face.animator import EXPRESSIONS
from kiosk.engine.face.backend import FaceState
from kiosk.engine.face.host import EYE_BOX, MOUTH, HostFace
from kiosk.engine.face.visemes import VISEMES
from kiosk.exhibit import load_exhibit
from tests.face.conftest import save
from tests.packs import SAMPLE_PORTRAIT, notes_only_pack

SIZE = 512


def title_only_pack(tmp_path: Path) -> Path:
    return notes_only_pack(
        tmp_path / "lighthouse",
        "The Harbour Lighthouse",
        "# Lighthouse\n\n## The light\nThe lamp was first lit in 1872. It can be seen 20 miles out at sea.\n\n"
        "## The keepers\nThree keepers lived in the tower. They wound the clockwork every four hours.\n",
    )


def photo_likeness(frame: np.ndarray) -> float:
    """How much ``frame`` looks like the sample photograph as the portrait backend frames it: the
    correlation of the two grey images (1 = the same picture)."""
    photo = create_backend(load_config(env={}), _photo_portrait(), size=frame.shape[0]).render(FaceState())
    a = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
    b = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def _photo_portrait():
    from kiosk.engine.face import check_portrait

    return check_portrait(SAMPLE_PORTRAIT)


def box(rows: tuple[float, float], cols: tuple[float, float]) -> tuple[slice, slice]:
    return slice(int(rows[0] * SIZE), int(rows[1] * SIZE)), slice(int(cols[0] * SIZE), int(cols[1] * SIZE))


MOUTH_AREA = box((0.55, 0.665), (MOUTH[0] - 0.08, MOUTH[0] + 0.08))  # on the face, around the lips
EYE_AREA = box(EYE_BOX, (0.35, 0.65))


@pytest.fixture(scope="module")
def host() -> HostFace:
    face = HostFace(None, SIZE)
    face.load()
    return face


def test_a_pack_without_a_portrait_is_presented_by_the_drawn_host_not_a_photo(
    tmp_path: Path, face_shots
) -> None:
    """A title-only pack once borrowed NASA's photograph of Eileen Collins as its face."""
    exhibit = load_exhibit(title_only_pack(tmp_path))
    assert exhibit.portrait is None
    config = load_config(env={})
    backend = create_backend(config, check_exhibit_portrait(exhibit, config.cache_dir), size=SIZE)
    assert isinstance(backend, HostFace) and backend.name == "host"
    frame = backend.render(FaceState()).copy()
    save(face_shots, "host-title-only-pack", frame)
    assert frame.shape == (SIZE, SIZE, 3)
    # it is not the photograph: the frame hardly correlates with it
    assert photo_likeness(frame) < 0.5
    # and it is a face: skin in the middle, eyes with whites and dark irises, a backdrop around it
    middle = frame[int(0.5 * SIZE), int(0.42 * SIZE) : int(0.58 * SIZE)].astype(int)
    assert (middle[:, 0] > 180).all() and (middle[:, 0] > middle[:, 2] + 40).all()  # warm skin
    eyes = frame[EYE_AREA].reshape(-1, 3).astype(int)
    assert (eyes.min(axis=1) > 235).mean() > 0.01 and (eyes.max(axis=1) < 80).mean() > 0.005


def test_a_curators_portrait_is_still_animated_for_its_own_pack(tmp_path: Path) -> None:
    from tests.packs import pack_with_portrait

    exhibit = load_exhibit(pack_with_portrait(tmp_path / "pack"))
    config = load_config(env={})
    portrait = check_exhibit_portrait(exhibit, config.cache_dir)
    assert portrait is not None
    backend = create_backend(config, portrait, size=256)
    assert backend.name == "procedural"


def test_the_hosts_mouth_opens_and_closes_with_the_visemes(host: HostFace, face_shots) -> None:
    frames = {
        name: host.render(FaceState(mouth=VISEMES[name])).copy() for name in ("open", "closed", "round")
    }
    rest = host.render(FaceState()).copy()

    def dark(image: np.ndarray) -> float:  # the open mouth's cavity: dark, reddish
        patch = image[MOUTH_AREA].astype(int)
        return float(np.mean(patch.max(axis=2) < 90))

    def teeth(image: np.ndarray) -> float:
        patch = image[MOUTH_AREA].astype(int)
        return float(np.mean(patch.min(axis=2) > 215))

    opened, closed = frames["open"], frames["closed"]
    difference = np.abs(opened[MOUTH_AREA].astype(int) - closed[MOUTH_AREA]).mean(axis=2)
    assert (difference > 40).mean() > 0.05  # 'aa' and 'mm' differ plainly in the mouth
    assert dark(opened) > 0.03 and dark(closed) < 0.005 and dark(rest) < 0.005
    # an open mouth shows teeth (upper and lower) and a shaded inside, not one flat dark crescent
    assert teeth(opened) > 0.01 and teeth(closed) == 0.0
    inside = opened[MOUTH_AREA][opened[MOUTH_AREA].max(axis=2) < 150]
    assert inside.std(axis=0).max() > 12

    # 'oo' is narrower than 'aa'
    m = host.margin
    blank = host.base[m : m + SIZE, m : m + SIZE][MOUTH_AREA].astype(int)  # the face with no mouth drawn

    def width(image: np.ndarray) -> int:
        drawn = np.abs(image[MOUTH_AREA].astype(int) - blank).sum(axis=2) > 30
        columns = np.nonzero(drawn.any(axis=0))[0]
        return int(columns[-1] - columns[0])

    assert width(frames["round"]) < 0.8 * width(opened)
    # nothing but the mouth moved
    assert np.array_equal(opened[: MOUTH_AREA[0].start], rest[: MOUTH_AREA[0].start])
    for name, image in frames.items():
        save(face_shots, f"host-mouth-{name}", image)


def test_the_host_blinks_and_its_brows_and_mouth_corners_follow_the_emotion(
    host: HostFace, face_shots
) -> None:
    rest = host.render(FaceState()).copy()
    shut = host.render(FaceState(blink=1.0)).copy()

    def eye_white(image: np.ndarray) -> float:
        return float(np.mean(image[EYE_AREA].min(axis=2) > 235))

    assert eye_white(rest) > 0.02 and eye_white(shut) < 0.1 * eye_white(rest)
    save(face_shots, "host-blink", shut)
    for emotion in (Emotion.HAPPY, Emotion.SAD, Emotion.ANGRY, Emotion.SURPRISED):
        moved = host.render(FaceState(expression=EXPRESSIONS[emotion])).copy()
        save(face_shots, f"host-{emotion.value}", moved)
        assert np.abs(moved.astype(int) - rest).mean() > 0.1, emotion


@pytest.mark.parametrize("size", [512, 1080])
def test_the_host_renders_at_both_sizes(size: int) -> None:
    face = HostFace(None, size)
    face.load()
    image = face.render(FaceState(mouth=VISEMES["open"], blink=0.5, offset=(1.0, -1.0)))
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
