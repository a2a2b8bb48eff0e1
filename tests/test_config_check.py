"""`kiosk config check` finds what start-up would trip over: missing files and models, a pack's files
outside the pack, a portrait that is no image, oversized notes, an unreadable config, a bad variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.config_check import run_checks
from kiosk.errors import ConfigError, ExhibitError
from kiosk.exhibit import EXHIBITS_DIR, MAX_NOTES_BYTES, load_exhibit
from tests.packs import pack_with_portrait

DEFAULT = EXHIBITS_DIR / "apollo11-columbia"


def copy_pack(tmp_path: Path) -> Path:
    return pack_with_portrait(tmp_path / "pack")


def with_portrait(pack: Path, portrait: str) -> Path:
    manifest = pack / "exhibit.toml"
    manifest.write_text(manifest.read_text().replace('portrait = "portrait.png"', f"portrait = {portrait!r}"))
    return pack


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    return path


def problems_for(tmp_path: Path, text: str) -> list[str]:
    problems, _ = run_checks(str(config_file(tmp_path, text)), env={})
    assert all("\n" not in p for p in problems)
    return problems


def run_kiosk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_the_shipped_config_is_ok_and_states_the_notes_limit(tmp_path: Path) -> None:
    problems, facts = run_checks(str(config_file(tmp_path, "")), env={})
    assert problems == []
    assert f"of {MAX_NOTES_BYTES // 1024} kB" in "; ".join(facts)


# --- hostile and broken packs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("portrait", "make"),
    [
        ("/etc/shadow", None),
        ("../../../etc/passwd", None),
        ("face.png", lambda pack: (pack / "face.png").symlink_to("/etc/passwd")),
        ("inner/portrait.png", lambda pack: (pack / "inner").symlink_to("/etc", target_is_directory=True)),
    ],
    ids=["absolute", "dot-dot", "symlink-file", "symlink-folder"],
)
def test_a_portrait_outside_the_pack_is_refused_before_it_is_read(
    tmp_path: Path, portrait: str, make
) -> None:
    pack = with_portrait(copy_pack(tmp_path), portrait)
    if make is not None:
        make(pack)
    with pytest.raises(ExhibitError, match="leads outside the exhibit folder"):
        load_exhibit(pack)  # what the kiosk does at start
    (problem,) = problems_for(tmp_path, f"[exhibit]\npath = '{pack}'\n")
    assert "leads outside the exhibit folder" in problem


@pytest.mark.parametrize("name", ["notes.md", "exhibit.toml"])
def test_a_pack_file_linked_outside_the_pack_is_refused(tmp_path: Path, name: str) -> None:
    pack = copy_pack(tmp_path)
    (pack / name).unlink()
    (pack / name).symlink_to("/etc/passwd")
    with pytest.raises(ExhibitError, match="leads outside the exhibit folder"):
        load_exhibit(pack)


def test_a_symlink_that_stays_inside_the_pack_is_fine(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    (pack / "face.png").symlink_to(pack / "portrait.png")
    assert load_exhibit(with_portrait(pack, "face.png")).portrait == (pack / "portrait.png").resolve()


def test_a_portrait_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    (pack / "portrait.png").write_text("just text, named like a picture\n")
    (problem,) = problems_for(tmp_path, f"[exhibit]\npath = '{pack}'\n")
    assert "is not a PNG or JPEG image" in problem


def test_a_portrait_with_a_png_header_but_broken_pixels_is_found_by_the_check(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    (pack / "portrait.png").write_bytes((pack / "portrait.png").read_bytes()[:200])
    load_exhibit(pack)  # start-up only looks at the header; the face stage decodes it later
    (problem,) = problems_for(tmp_path, f"[exhibit]\npath = '{pack}'\n")
    assert "portrait.png" in problem and "unreadable" in problem


def test_notes_over_the_limit_are_refused_with_the_limit_stated(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    notes = pack / "notes.md"
    notes.write_text(notes.read_text() + "\n" + "Filler sentence about the capsule. " * 150_000)  # 5 MB
    (problem,) = problems_for(tmp_path, f"[exhibit]\npath = '{pack}'\n")
    assert f"over the {MAX_NOTES_BYTES // 1024} kB limit" in problem and "notes.md" in problem


def test_an_exhibit_voice_outside_the_pack_is_refused(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    manifest = pack / "exhibit.toml"
    manifest.write_text(manifest.read_text().replace('voice = "en_US-joe-medium"', 'voice = "../../x.onnx"'))
    (problem,) = problems_for(tmp_path, f"[exhibit]\npath = '{pack}'\n")
    assert "voice" in problem and "leads outside the exhibit folder" in problem


# --- files and models the config names -----------------------------------------------------------------


def test_missing_files_and_models_are_each_one_line(tmp_path: Path) -> None:
    problems = problems_for(
        tmp_path,
        f"[metrics]\nweb_config = '{tmp_path / 'web.yml'}'\n"
        f"[answer]\nbackend = 'llm'\n"
        f"[llm]\nmodel = '{tmp_path / 'no-llm'}'\n"
        f"[asr]\nmodel = '{tmp_path / 'no-asr'}'\n"
        f"[tts]\nvoice_path = '{tmp_path / 'voice.onnx'}'\n",
    )
    assert len(problems) == 4, problems
    joined = "\n".join(problems)
    assert "web.yml: web config file not found" in joined
    assert "no-llm not found" in joined and "no-asr not found" in joined and "voice.onnx not found" in joined


def test_a_model_folder_without_weights_is_found(tmp_path: Path) -> None:
    folder = tmp_path / "llm"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (problem,) = problems_for(tmp_path, f"[answer]\nbackend = 'llm'\n[llm]\nmodel = '{folder}'\n")
    assert "holds no weights" in problem


def test_a_store_that_cannot_be_created_is_found(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    (problem,) = problems_for(
        tmp_path, f"[audio]\nstore_visitor_audio = true\nstore_dir = '{tmp_path / 'file' / 'store'}'\n"
    )
    assert "[audio] store_dir" in problem and "cannot be created" in problem


# --- the config file itself -------------------------------------------------------------------------------


def test_a_config_that_is_not_utf8_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_bytes(b"[ui]\nadmin_pin = '\xff\xfe'\n")
    result = run_kiosk("config", "check", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"kiosk: {path}: not UTF-8 text (byte 0xff at offset 18)"


def test_a_bad_variable_is_blamed_on_the_variable_not_the_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[vad]\ntrailing_silence_ms = 300\n")
    for name, value, expected in [
        ("KIOSK_VAD__TRAILING_SILENCE_MS", "soon", "[vad] trailing_silence_ms: expected a whole number"),
        ("KIOSK_VAD__WEBRTC_MODE", "9", "[vad] webrtc_mode: expected a value from 0 to 3"),
        ("KIOSK_VAD__TRAILING", "1", "[vad] trailing: unknown key"),
        ("KIOSK_SPEECH__X", "1", "[speech]: unknown section"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_config(path, env={name: value})
        assert str(caught.value).startswith(f"{name}: {expected}"), str(caught.value)
    with pytest.raises(ConfigError) as caught:  # a file's own mistake is still the file's
        load_config(config_file(tmp_path, "[vad]\nwebrtc_mode = 9\n"), env={"KIOSK_VAD__PRE_ROLL_MS": "100"})
    assert str(caught.value).startswith(str(path))
    result = run_kiosk("config", "check", str(path), env={"KIOSK_VAD__TRAILING_SILENCE_MS": "soon"})
    assert result.returncode == 2 and result.stderr.startswith("kiosk: KIOSK_VAD__TRAILING_SILENCE_MS: ")
