"""Model resolution and the device policy: the embedded defaults, local folders, CUDA paths on a CPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kiosk.config import AsrConfig
from kiosk.engine import events as ev
from kiosk.engine.asr import WhisperRecognizer, exhibit_vocabulary, resolve_whisper_model, tiny_en_path
from kiosk.engine.audio_out import NullSink
from kiosk.engine.device import Device, cpu_computes_bfloat16, is_out_of_memory, resolve_device
from kiosk.engine.engine import Engine
from kiosk.errors import ConfigError, ModelLoadError
from kiosk.exhibit import load_exhibit
from tests.conftest import Recorder


def test_device_policy_without_a_gpu() -> None:
    assert resolve_device("auto", lambda: 0) == Device("cpu")
    assert resolve_device("cpu", lambda: 2) == Device("cpu")
    cpu = resolve_device("auto", lambda: 0)
    assert cpu.ct2_compute_type == "int8" and cpu.onnx_providers == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="no such CUDA device"):
        resolve_device("cuda", lambda: 0)


def test_device_policy_with_gpus() -> None:
    gpu = resolve_device("auto", lambda: 2)
    assert gpu == Device("cuda", 0) and gpu.torch == "cuda:0"
    assert gpu.ct2_compute_type == "float16"
    assert gpu.onnx_providers[0] == ("CUDAExecutionProvider", {"device_id": 0})
    assert resolve_device("cuda:1", lambda: 2).torch == "cuda:1"
    with pytest.raises(ConfigError, match="cuda:2.*2 visible"):
        resolve_device("cuda:2", lambda: 2)


def test_precision_policy() -> None:
    torch = pytest.importorskip("torch")
    cpu = Device("cpu")
    assert cpu.torch_dtype(cpu_bf16=lambda: False) is torch.float32
    assert cpu.torch_dtype(cpu_bf16=lambda: True) is torch.bfloat16  # AMX / AVX512-BF16 processors
    assert cpu.torch_dtype("float32", cpu_bf16=lambda: True) is torch.float32
    assert cpu.torch_dtype("float16") is torch.float16
    assert cpu.torch_dtype() is (torch.bfloat16 if cpu_computes_bfloat16() else torch.float32)
    assert Device("cuda", 0).torch_dtype("float32") is torch.float32


def test_half_precision_on_cuda() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA here: bfloat16/float16 choice runs on the GPU machine only")
    assert Device("cuda", 0).torch_dtype() in (torch.bfloat16, torch.float16)


def test_out_of_memory_is_recognised() -> None:
    torch = pytest.importorskip("torch")
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("CUDA failed with error out of memory"))
    assert not is_out_of_memory(ValueError("bad value"))


def test_whisper_base_is_joined_once_from_its_two_packages(tmp_path: Path) -> None:
    folder, name = resolve_whisper_model("base", tmp_path)
    assert name == "whisper-base"
    model = folder / "model.bin"
    first_mtime = model.stat().st_mtime_ns
    assert {p.name for p in folder.iterdir()} >= {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    assert resolve_whisper_model("base", tmp_path)[0] == folder
    assert model.stat().st_mtime_ns == first_mtime  # not joined again
    # a truncated join (a crash half way) is redone
    with model.open("r+b") as handle:
        handle.truncate(1000)
    resolve_whisper_model("base", tmp_path)
    assert model.stat().st_size > 1000


def test_whisper_base_transcribes(tmp_path: Path, speak) -> None:
    recognizer = WhisperRecognizer(AsrConfig(model="base"), Device("cpu"), tmp_path)
    recognizer.load()
    transcript = recognizer.transcribe(speak("Why is it called Columbia?"))
    assert transcript.understood
    assert "columbia" in transcript.text.lower()


def test_a_local_ctranslate2_folder_loads_by_path(tmp_path: Path) -> None:
    from tests.conftest import steady_voice  # Piper's random variation once made it "a pollo"

    local = tmp_path / "my-whisper"
    shutil.copytree(tiny_en_path(), local)
    # told the exhibit's names, as the kiosk does: without them an AVX2 processor's audio was heard as
    # "when did the power 11 launch" (tests/test_any_processor.py)
    vocabulary = exhibit_vocabulary(load_exhibit("apollo11-columbia"))
    recognizer = WhisperRecognizer(AsrConfig(model=str(local)), Device("cpu"), tmp_path, vocabulary)
    recognizer.load()
    assert recognizer.name == "my-whisper"
    speech, _ = steady_voice()("When did Apollo 11 launch?")
    assert "apollo 11" in recognizer.transcribe(speech).text.lower()


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: p / "nowhere", "model folder .*nowhere not found"),
        (
            lambda p: (p / "empty").mkdir() or p / "empty",
            "is not a CTranslate2 Whisper model \\(missing model.bin",
        ),
    ],
)
def test_bad_asr_paths_are_one_line(tmp_path: Path, setup, expected: str) -> None:
    path = setup(tmp_path)
    recognizer = WhisperRecognizer(AsrConfig(model=str(path)), Device("cpu"), tmp_path)
    with pytest.raises(ModelLoadError, match=expected) as info:
        recognizer.load()
    assert "\n" not in str(info.value)


def test_a_failing_model_is_reported_and_the_kiosk_keeps_answering(base_config, tmp_path: Path) -> None:
    """ASR asked to run on a CUDA device that cannot work (a broken driver): the rest still works."""
    config = base_config.replace(
        asr={"device": "cuda"}, retrieval={"device": "cpu"}, tts={"device": "cpu"}, llm={"device": "cpu"}
    )
    recorder = Recorder()
    engine = Engine(config, sink=NullSink(realtime=False), device_count=lambda: 1)
    engine.bus.subscribe(recorder)
    engine.load()
    try:
        (failed,) = recorder.of(ev.ModelFailed)
        assert failed.stage == "asr" and "\n" not in failed.message
        assert engine.health()["asr"] is False and engine.health()["tts"] is True
        (ready,) = recorder.of(ev.EngineReady)
        assert ready.missing == ("asr",)
        engine.ask("Who was the commander?")
        assert engine.pipeline.wait_idle(60)
        (finished,) = recorder.finished()
        assert finished.status == "ok" and "Armstrong" in finished.answer
    finally:
        engine.close()


def test_auto_device_falls_back_to_the_cpu_when_the_gpu_fails(base_config) -> None:
    """A GPU that is visible but unusable (here: claimed by the probe, absent in fact)."""
    recorder = Recorder()
    engine = Engine(base_config, sink=NullSink(realtime=False), device_count=lambda: 1)
    engine.bus.subscribe(recorder)
    engine.load()
    try:
        assert not engine.failures
        fallbacks = {f.stage: f for f in recorder.of(ev.BackendFallback)}
        assert {"asr", "retrieval"} <= set(fallbacks)
        assert all(f.backend == "cpu" and "running on the CPU" in f.reason for f in fallbacks.values())
        assert all(engine.models[stage].device == "cpu" for stage in ("asr", "retrieval"))
        engine.ask("Who was the commander?")
        assert engine.pipeline.wait_idle(60)
        assert recorder.finished()[0].status == "ok"
    finally:
        engine.close()


def test_an_llm_that_cannot_load_leaves_the_notes_answering(base_config, tmp_path: Path) -> None:
    """A missing model folder is reported in one line, and the kiosk still answers, from the notes."""
    config = base_config.replace(answer={"backend": "llm"}, llm={"model": str(tmp_path / "no-such-model")})
    recorder = Recorder()
    engine = Engine(config, sink=NullSink(realtime=False))
    engine.bus.subscribe(recorder)
    engine.load()
    try:
        (failed,) = [e for e in recorder.of(ev.ModelFailed) if e.stage == "answer"]
        assert "no-such-model" in failed.message and "\n" not in failed.message
        (fallback,) = recorder.of(ev.BackendFallback)
        assert fallback.stage == "answer" and fallback.backend == "retrieval"
        assert "answer" not in engine.failures and "no-such-model" in engine.fallbacks["answer"]
        assert engine.models["answer"].fallback and engine.models["answer"].name == "retrieval"
        engine.ask("Who was the commander?")
        assert engine.pipeline.wait_idle(60)
        finished = recorder.finished()[0]
        assert finished.status == "ok" and "Armstrong" in finished.answer
    finally:
        engine.close()
