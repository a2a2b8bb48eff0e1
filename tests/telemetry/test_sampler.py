"""The resource sampler: NVML absent, a fake GPU in the exposition, the ring buffer and its thread."""

from __future__ import annotations

import logging
import time

import pynvml
import pytest

from kiosk.telemetry.metrics import KioskMetrics
from kiosk.telemetry.sampler import NO_GPU, GpuUnavailable, NvmlReader, ResourceSampler

from .conftest import GIB, FakeGpuReader, samples, value


def nvml_works() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


def no_gpu_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("no GPU")]


@pytest.mark.skipif(
    nvml_works(), reason="this machine has an NVIDIA driver; the no-GPU path needs one without"
)
def test_real_nvml_reader_without_a_driver_says_no_gpu_once(caplog):
    caplog.set_level(logging.INFO, logger="kiosk.telemetry.sampler")
    sampler = ResourceSampler(gpu_reader=NvmlReader())
    for _ in range(3):
        snapshot = sampler.sample_once()
        assert snapshot.gpus == ()
    assert sampler.gpu_status == NO_GPU
    assert len(no_gpu_records(caplog)) == 1
    metrics = KioskMetrics()
    metrics.attach_sampler(sampler)
    found = samples(metrics.render())
    assert value(found, "kiosk_gpu_available") == 0
    assert not any(name.startswith("kiosk_gpu_memory") for name, _ in found)


def test_driver_not_loaded_is_no_gpu(monkeypatch, caplog):
    def not_loaded() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    monkeypatch.setattr(pynvml, "nvmlInit", not_loaded)
    caplog.set_level(logging.INFO, logger="kiosk.telemetry.sampler")
    reader = NvmlReader()
    with pytest.raises(GpuUnavailable, match="Driver Not Loaded"):
        reader.read()
    sampler = ResourceSampler(gpu_reader=reader)
    sampler.sample_once()
    sampler.sample_once()
    assert sampler.gpu_status == NO_GPU
    assert no_gpu_records(caplog) == ["no GPU: NVML: Driver Not Loaded"]


def test_a_process_with_cuda_and_graphics_is_counted_once(monkeypatch):
    """NVML lists such a process in both lists, each entry with its whole use (the driver is faked here)."""
    pid = 4242
    mine = type("Entry", (), {"pid": pid, "usedGpuMemory": 3 * GIB})()
    other = type("Entry", (), {"pid": pid + 1, "usedGpuMemory": 5 * GIB})()
    memory = type("Memory", (), {"used": 9 * GIB, "total": 80 * GIB})()
    for name, result in {
        "nvmlInit": None,
        "nvmlDeviceGetCount": 1,
        "nvmlDeviceGetHandleByIndex": "handle",
        "nvmlDeviceGetName": "Test GPU",
        "nvmlDeviceGetMemoryInfo": memory,
        "nvmlDeviceGetComputeRunningProcesses": [mine, other],
        "nvmlDeviceGetGraphicsRunningProcesses": [mine],
    }.items():
        monkeypatch.setattr(pynvml, name, lambda *_, result=result: result)
    (gpu,) = NvmlReader(pid=pid).read()
    assert gpu.process_memory_bytes == 3 * GIB
    assert gpu.memory_used_bytes == 9 * GIB


@pytest.mark.skipif(not nvml_works(), reason="no NVIDIA driver on this machine")
def test_real_gpu_numbers():
    snapshot = ResourceSampler(gpu_reader=NvmlReader()).sample_once()
    assert snapshot.gpus and snapshot.gpus[0].memory_total_bytes > 0


def test_fake_gpu_numbers_reach_the_exposition(metrics, fake_gpu):
    found = samples(metrics.render())
    assert value(found, "kiosk_gpu_available") == 1
    assert value(found, "kiosk_gpu_utilization_ratio", gpu="0") == 0.42
    assert value(found, "kiosk_gpu_memory_used_bytes", gpu="0") == 3 * GIB
    assert value(found, "kiosk_gpu_memory_total_bytes", gpu="0") == 16 * GIB
    assert value(found, "kiosk_gpu_temperature_celsius", gpu="0") == 61
    assert value(found, "kiosk_gpu_process_memory_bytes", gpu="0") == 1 * GIB
    latest = metrics.resources.sampler.latest()
    assert value(found, "kiosk_process_resident_memory_bytes") == latest.rss_bytes > 0
    assert value(found, "kiosk_process_cpu_seconds_total") == latest.process_cpu_seconds > 0
    assert value(found, "kiosk_system_memory_available_bytes") == latest.system_available_bytes > 0


def test_history_is_a_ring_buffer_and_the_thread_samples():
    ticks = iter(range(1000))
    reader = FakeGpuReader()
    sampler = ResourceSampler(interval_s=0.02, history=5, gpu_reader=reader, clock=lambda: float(next(ticks)))
    assert sampler.latest() is None and sampler.history() == []
    for _ in range(7):
        sampler.sample_once()
    assert [s.t for s in sampler.history()] == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert sampler.latest().t == 6.0
    assert sampler.gpu_status == "Fake RTX 4000"
    sampler.start()
    deadline = time.monotonic() + 5
    while reader.reads < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert reader.reads >= 12 and reader.closed and not sampler.running
    assert len(sampler.history()) == 5


def test_a_failing_reader_does_not_stop_sampling(caplog):
    class Broken:
        def read(self):
            raise RuntimeError("bus fell off")

    caplog.set_level(logging.INFO, logger="kiosk.telemetry.sampler")
    sampler = ResourceSampler(gpu_reader=Broken())
    assert sampler.sample_once().gpus == () and sampler.sample_once().rss_bytes > 0
    assert no_gpu_records(caplog) == ["no GPU: RuntimeError: bus fell off"]


def test_metrics_without_a_sample_yet():
    metrics = KioskMetrics()
    metrics.attach_sampler(ResourceSampler(gpu_reader=FakeGpuReader()))
    found = samples(metrics.render())
    assert value(found, "kiosk_gpu_available") == 0
    assert ("kiosk_process_resident_memory_bytes", ()) not in found
