"""Where the ops panel's resource numbers come from: one small interface, two implementations.

The panel reads a :class:`ResourceSource` (``latest()``, ``history()``, ``gpu_status``) of
:class:`ResourceSample` records.  :class:`TelemetryResources` adapts the telemetry package's
``ResourceSampler`` (the one the ``/metrics`` scrape reads, so the screen and the scrape agree);
:class:`PsutilResources` is a small sampler of the UI's own for when telemetry is not there.  The panel
never knows which one it has.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

NO_GPU = "no GPU"


@dataclass(frozen=True)
class GpuSample:
    name: str
    utilization: float | None  # 0..1
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    process_memory_bytes: int | None


@dataclass(frozen=True)
class ResourceSample:
    t: float  # monotonic seconds
    cpu_percent: float  # this process; 100 = one core
    rss_bytes: int
    system_used_bytes: int
    system_total_bytes: int
    gpus: tuple[GpuSample, ...] = ()


class ResourceSource(Protocol):
    gpu_status: str  # "no GPU" or the GPUs' names

    def latest(self) -> ResourceSample | None: ...

    def history(self) -> list[ResourceSample]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class TelemetryResources:
    """The telemetry ``ResourceSampler``'s snapshots as :class:`ResourceSample` records.

    ``owns`` says whether this adapter starts and stops the sampler (True when the UI made it; False when
    the Telemetry facade runs it).
    """

    def __init__(self, sampler: Any, owns: bool = False) -> None:
        self.sampler = sampler
        self._owns = owns

    @property
    def gpu_status(self) -> str:
        return str(getattr(self.sampler, "gpu_status", NO_GPU) or NO_GPU)

    def latest(self) -> ResourceSample | None:
        snapshot = self.sampler.latest()
        return None if snapshot is None else _from_snapshot(snapshot)

    def history(self) -> list[ResourceSample]:
        return [_from_snapshot(s) for s in self.sampler.history()]

    def start(self) -> None:
        if self._owns:
            self.sampler.start()

    def stop(self) -> None:
        if self._owns:
            self.sampler.stop()


def _from_snapshot(s: Any) -> ResourceSample:
    total = int(getattr(s, "system_total_bytes", 0))
    available = int(getattr(s, "system_available_bytes", 0))
    gpus = tuple(
        GpuSample(
            name=str(getattr(g, "name", "GPU")),
            utilization=getattr(g, "utilization_ratio", None),
            memory_used_bytes=getattr(g, "memory_used_bytes", None),
            memory_total_bytes=getattr(g, "memory_total_bytes", None),
            process_memory_bytes=getattr(g, "process_memory_bytes", None),
        )
        for g in getattr(s, "gpus", ())
    )
    return ResourceSample(
        t=float(s.t),
        cpu_percent=float(s.cpu_percent),
        rss_bytes=int(s.rss_bytes),
        system_used_bytes=max(0, total - available),
        system_total_bytes=total,
        gpus=gpus,
    )


class PsutilResources:
    """The UI's own sampler: process CPU and RSS, system memory, GPUs through NVML where there are any."""

    def __init__(self, interval_s: float = 1.0, history: int = 300) -> None:
        import psutil

        self.interval_s = interval_s
        self._psutil = psutil
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)
        self._buffer: deque[ResourceSample] = deque(maxlen=max(1, history))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: Any = None
        self._nvml_failed = False
        self.gpu_status = "unknown"

    def latest(self) -> ResourceSample | None:
        with self._lock:
            return self._buffer[-1] if self._buffer else None

    def history(self) -> list[ResourceSample]:
        with self._lock:
            return list(self._buffer)

    def sample_once(self) -> ResourceSample:
        with self._process.oneshot():
            cpu = float(self._process.cpu_percent(None))
            rss = int(self._process.memory_info().rss)
        memory = self._psutil.virtual_memory()
        sample = ResourceSample(
            t=time.monotonic(),
            cpu_percent=cpu,
            rss_bytes=rss,
            system_used_bytes=int(memory.total - memory.available),
            system_total_bytes=int(memory.total),
            gpus=self._gpus(),
        )
        with self._lock:
            self._buffer.append(sample)
        return sample

    def _gpus(self) -> tuple[GpuSample, ...]:
        if self._nvml_failed:
            return ()
        try:
            if self._nvml is None:
                import pynvml

                pynvml.nvmlInit()
                self._nvml = pynvml
            nvml = self._nvml
            gpus = []
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = nvml.nvmlDeviceGetName(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                util = nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0
                mine = 0
                for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if p.pid == os.getpid() and p.usedGpuMemory:
                        mine += int(p.usedGpuMemory)
                gpus.append(
                    GpuSample(
                        name.decode() if isinstance(name, bytes) else str(name),
                        util,
                        int(memory.used),
                        int(memory.total),
                        mine,
                    )
                )
        except Exception as exc:  # no library, no driver, no device: a CPU kiosk
            log.info("ops panel: no GPU (%s)", exc)
            self._nvml_failed = True
            self.gpu_status = NO_GPU
            return ()
        self.gpu_status = ", ".join(g.name for g in gpus) if gpus else NO_GPU
        return tuple(gpus)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ui-resources", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.sample_once()
            except Exception:
                log.exception("resource sample failed")
            if self._stop.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=2.0)


def resource_source(telemetry: Any = None, interval_s: float = 1.0, history: int = 300) -> ResourceSource:
    """The telemetry's sampler when it runs; else a telemetry sampler of our own; else the psutil one."""
    sampler = getattr(telemetry, "sampler", None)
    if sampler is not None:
        return TelemetryResources(sampler, owns=False)
    try:
        from kiosk.telemetry.sampler import ResourceSampler
    except ImportError:
        return PsutilResources(interval_s, history)
    return TelemetryResources(ResourceSampler(interval_s=interval_s, history=history), owns=True)
