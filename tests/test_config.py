"""The one validated configuration: defaults, files, environment overrides and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import Config, load_config
from kiosk.errors import ConfigError
from kiosk.exhibit import load_exhibit


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    return path


def test_defaults_load_and_match_the_dataclasses() -> None:
    config = load_config(env={})
    assert config.vad.trailing_silence_ms <= 400
    assert config.metrics.listen_address == "127.0.0.1"
    assert config.metrics.port == 9464
    assert config.audio.store_visitor_audio is False
    # the shipped file and the dataclass defaults agree, so neither can silently drift
    assert config.replace() == Config(source=config.source)


def test_file_overrides_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "[vad]\ntrailing_silence_ms = 300\n[answer]\nblocklist = ['darn']\n")
    config = load_config(path, env={})
    assert config.vad.trailing_silence_ms == 300
    assert config.answer.blocklist == ["darn"]
    assert config.asr.model == "tiny.en"


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[vad]\ntrailing_silence_ms = 300\n")
    env = {
        "KIOSK_VAD__TRAILING_SILENCE_MS": "350",
        "KIOSK_ASR__MODEL": "base",
        "KIOSK_METRICS__ENABLED": "false",
    }
    config = load_config(path, env=env)
    assert config.vad.trailing_silence_ms == 350
    assert config.asr.model == "base"
    assert config.metrics.enabled is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[vad]\ntrailing_silenc_ms = 300\n", "[vad] trailing_silenc_ms: unknown key"),
        ("[vad]\ntrailing_silence_ms = 'long'\n", "[vad] trailing_silence_ms: expected a whole number"),
        ("[vad]\ntrailing_silence_ms = 50\n", "trailing_silence_ms: expected a value from 90 to 3000"),
        ("[asr]\ndevice = 'gpu'\n", "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ("[answer]\nbackend = 'gpt'\n", "[answer] backend: expected one of 'retrieval', 'llm'"),
        ("[speech]\nx = 1\n", "[speech]: unknown section"),
        ("[vad\n", "not valid TOML"),
        ("[metrics]\nenabled = 'yes'\n", "[metrics] enabled: expected true or false"),
    ],
)
def test_bad_values_are_refused_in_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})


def run_kiosk(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as a technician runs it: the shipped defaults and the file, no KIOSK_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_config_check_command(tmp_path: Path) -> None:
    good = write(tmp_path, "[vad]\ntrailing_silence_ms = 300\n")
    result = run_kiosk("config", "check", str(good))
    assert result.returncode == 0, result.stderr
    topics = len(load_exhibit(load_config(env={}).exhibit.path).sections)
    assert "OK" in result.stdout and f"{topics} topics" in result.stdout and "eileen-collins" in result.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text("[tts]\nbackend = 'coqui'\n")
    result = run_kiosk("config", "check", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bad.toml: [tts] backend: expected one of 'piper', 'espeak'" in lines[0]


def test_config_check_names_a_missing_exhibit(tmp_path: Path) -> None:
    path = write(tmp_path, f"[exhibit]\npath = '{tmp_path / 'no-such-pack'}'\n")
    result = run_kiosk("config", "check", str(path))
    assert result.returncode == 2
    assert "no such folder" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_no_display_says_so_in_one_line(tmp_path: Path) -> None:
    env_free = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "kiosk"], capture_output=True, text=True, timeout=60, env=env_free
    )
    assert result.returncode == 1
    assert result.stdout.count("\n") == 1
    assert "no display" in result.stdout and "kiosk listen" in result.stdout


def _numbers() -> list[tuple[str, str]]:
    """Every number in the configuration schema, as (section, key)."""
    import dataclasses

    found = []
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        for key in dataclasses.fields(section.default_factory()):
            if key.type in ("int", "float"):
                found.append((section.name, key.name))
    return found


@pytest.mark.parametrize(("section", "key"), _numbers())
def test_every_number_has_a_range(section: str, key: str) -> None:
    """A negative thread count, timeout or history size is refused at load (it left the recogniser
    unloaded, or the kiosk deaf), and so is an absurdly large one."""
    for value in (-(10**6), 10**12):
        with pytest.raises(ConfigError, match=rf"\[{section}\] {key}: expected a value from"):
            load_config(env={f"KIOSK_{section.upper()}__{key.upper()}": str(value)})


def test_config_check_refuses_a_negative_thread_count(tmp_path: Path) -> None:
    bad = write(tmp_path, "[asr]\ncpu_threads = -3\n")
    result = run_kiosk("config", "check", str(bad))
    assert result.returncode == 2
    assert "[asr] cpu_threads: expected a value from 0 to 256, got -3" in result.stderr


def test_a_bad_allow_list_from_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"KIOSK_METRICS__ALLOW": '["10.0.0.300"]'})
    assert str(info.value).startswith("KIOSK_METRICS__ALLOW: [metrics] allow: '10.0.0.300'")


@pytest.mark.parametrize("pin", ['"12a4"', '"123"', '"1234567890123"', '" 2468"', '"٢٤٦٨"'])
def test_a_technician_pin_must_be_4_to_12_digits_and_is_not_echoed(pin: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"KIOSK_UI__ADMIN_PIN": pin})
    message = str(info.value)
    assert message.startswith('KIOSK_UI__ADMIN_PIN: [ui] admin_pin: expected 4 to 12 digits, e.g. "2468"'), (
        message
    )
    assert pin.strip('"') not in message and "\n" not in message


@pytest.mark.parametrize(
    ("pin", "kept"), [("2468", "2468"), ("0123", "0123"), ('"246813579024"', "246813579024")]
)
def test_a_good_pin_loads_as_written(pin: str, kept: str) -> None:
    assert load_config(env={"KIOSK_UI__ADMIN_PIN": pin}).ui.admin_pin == kept
    assert load_config(env={}).ui.admin_pin == ""  # the shipped default: none (the panel shows figures only)
