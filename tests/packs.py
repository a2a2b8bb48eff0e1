"""A curator's pack with its own portrait, for the tests of the portrait path.

No shipped pack names a portrait any more (a pack without one is presented by the drawn host), so the
tests that check portraits give a copy of the Apollo pack a photograph of its own: the scikit-image
"astronaut" sample (NASA's photograph of Eileen Collins), kept here with its cached landmarks so the
portrait backend is tested where mediapipe has no build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kiosk.exhibit import EXHIBITS_DIR

SAMPLE_PORTRAIT = Path(__file__).resolve().parent / "face" / "astronaut.png"
APOLLO = EXHIBITS_DIR / "apollo11-columbia"


def notes_only_pack(folder: Path, title: str, notes: str) -> Path:
    """A pack as a curator writes one at first: ``exhibit.toml`` holding only a title, and ``notes.md``."""
    folder.mkdir()
    (folder / "exhibit.toml").write_text(f'title = "{title}"\n')
    (folder / "notes.md").write_text(notes)
    return folder


def pack_with_portrait(target: Path, source: Path = APOLLO) -> Path:
    """A copy of ``source`` at ``target`` that names ``portrait.png``, the sample photograph."""
    shutil.copytree(source, target)
    shutil.copyfile(SAMPLE_PORTRAIT, target / "portrait.png")
    landmarks = SAMPLE_PORTRAIT.with_name(f"{SAMPLE_PORTRAIT.stem}.landmarks.npz")
    shutil.copyfile(landmarks, target / "portrait.landmarks.npz")
    manifest = target / "exhibit.toml"
    manifest.write_text('portrait = "portrait.png"\n' + manifest.read_text())
    return target
