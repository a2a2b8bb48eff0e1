"""Converted models in the cache carry checksums: one overwritten or truncated since its conversion is
converted again (once, counted), and a full or read-only cache is a one-line error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kiosk.cache_folder import cache_fallback, usable_cache_dir
from kiosk.engine import events as ev
from kiosk.engine import model_cache
from kiosk.engine.asr import resolve_whisper_model
from kiosk.engine.llm import convert_gguf
from kiosk.errors import ModelLoadError
from kiosk.telemetry.metrics import KioskMetrics
from kiosk.telemetry.observer import TelemetryObserver
from tests.test_cli import kiosk
from tests.test_llm import CREW, _save_tiny_llama
from tests.test_privacy import read_only_disk, small_disk  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def no_leftover_rebuilds():
    model_cache.take_rebuilds()
    yield
    model_cache.take_rebuilds()


def overwrite_middle(path: Path, size: int = 4096) -> None:
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        handle.write(os.urandom(size))


# --- the LLM's conversion -----------------------------------------------------------------------------------


@pytest.fixture
def converter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """convert_gguf over a tiny Llama standing in for the GGUF reader (transformers' own loader is the
    seam, as in test_llm); returns (convert, loads)."""
    import transformers

    source = _save_tiny_llama(tmp_path / "source", CREW)
    gguf = tmp_path / "pkg" / "model.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF stand-in")
    loads: list[str] = []
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)

    def model_loader(folder, gguf_file=None, local_files_only=False, **_):
        loads.append("model")
        return transformers.LlamaForCausalLM.from_pretrained(source)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model_loader)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer)
    target = tmp_path / "cache" / "models" / "converted"
    return (lambda: convert_gguf(gguf, target)), loads


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (overwrite_middle, "model.safetensors does not match its checksum"),
        (lambda p: os.truncate(p, p.stat().st_size // 3), "model.safetensors does not match its checksum"),
        (lambda p: (p.parent / model_cache.CHECKSUMS).unlink(), "no checksum recorded"),
    ],
    ids=["random-bytes", "truncated", "no-checksum"],
)
def test_a_damaged_llm_conversion_is_converted_again_once(converter, damage, reason: str) -> None:
    convert, loads = converter
    target = convert()
    weights = target / "model.safetensors"
    recorded = json.loads((target / model_cache.CHECKSUMS).read_text())["sha256"]
    assert recorded == {"model.safetensors": model_cache.sha256(weights)}
    assert convert() == target and loads == ["model"]  # a sound conversion is reused
    assert model_cache.take_rebuilds() == []

    damage(weights)
    assert convert() == target and len(loads) == 2
    (rebuild,) = model_cache.take_rebuilds()
    assert rebuild.stage == "llm" and rebuild.reason == reason
    assert model_cache.mismatch(target) is None
    assert convert() == target and len(loads) == 2  # and then reused again: converted once, not each start


# --- Whisper base, joined from two packages ---------------------------------------------------------------


def test_a_damaged_whisper_base_is_joined_again_and_counted(tmp_path: Path) -> None:
    folder, _ = resolve_whisper_model("base", tmp_path)
    model = folder / "model.bin"
    assert model_cache.mismatch(folder) is None
    overwrite_middle(model)
    assert resolve_whisper_model("base", tmp_path)[0] == folder
    assert model_cache.mismatch(folder) is None
    os.truncate(model, 1000)
    resolve_whisper_model("base", tmp_path)
    reasons = [r.reason for r in model_cache.take_rebuilds()]
    assert reasons == ["model.bin does not match its checksum", "model.bin is truncated"]
    # each rebuild becomes kiosk_model_cache_rebuilds_total{stage="asr"}
    bus, metrics = ev.EventBus(), KioskMetrics()
    bus.subscribe(TelemetryObserver(metrics))
    for reason in reasons:
        bus.publish(ev.CacheRebuilt(stage="asr", reason=reason))
    assert metrics.registry.get_sample_value("kiosk_model_cache_rebuilds_total", {"stage": "asr"}) == 2


def test_a_full_cache_is_one_line(small_disk: Path) -> None:  # noqa: F811
    with pytest.raises(ModelLoadError) as caught:
        resolve_whisper_model("base", small_disk)
    assert "No space left on device" in str(caught.value) and "\n" not in str(caught.value)
    assert not list((small_disk / "models").glob(".whisper-base-*"))


def test_a_read_only_cache_is_one_line(read_only_disk: Path) -> None:  # noqa: F811
    with pytest.raises(ModelLoadError) as caught:
        resolve_whisper_model("base", read_only_disk)
    assert "Read-only file system" in str(caught.value)


def test_a_read_only_cache_falls_back_to_a_temporary_folder_and_visitors_are_answered(
    read_only_disk: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A read-only cache (or home) left retrieval unbuilt and every answer an apology; now the kiosk
    converts its models into a private temporary folder, says so in one WARNING, and answers."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = kiosk(
        "ask",
        "Who was the commander of Apollo 11?",
        cache=read_only_disk / "docent",
        extra_env={"TMPDIR": str(temp)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Neil Armstrong was the commander." in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "cache_dir" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and "not writable" in warnings[0], result.stderr
    (used,) = temp.glob("docent-cache-*")
    assert any(used.rglob("*.onnx")), "retrieval's model was converted into the temporary folder"


def test_a_cache_fallback_is_counted(read_only_disk: Path) -> None:  # noqa: F811
    configured = str(read_only_disk / "docent")
    folder = usable_cache_dir(configured)
    assert folder != read_only_disk / "docent" and os.access(folder, os.W_OK)
    assert usable_cache_dir(configured) == folder  # one folder for every reader, one warning
    bus, metrics = ev.EventBus(), KioskMetrics()
    bus.subscribe(TelemetryObserver(metrics))
    bus.publish(
        ev.StoreFailed(store="model_cache", message=f"[paths] cache_dir: {cache_fallback(configured)}")
    )
    assert metrics.registry.get_sample_value("kiosk_cache_fallbacks_total") == 1
