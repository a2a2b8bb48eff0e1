"""A resource sampler: one thread reading NVML and psutil into a ring buffer of frozen snapshots.

The scrape (through :class:`kiosk.telemetry.metrics.ResourceCollector`) and the UI's ops panel read the
same snapshots, so they never disagree, and neither ever waits on NVML.  The API is plain Python.

The GPU reader is injectable: :class:`NvmlReader` is the real one, tests pass a fake that presents a GPU
with known numbers.  A machine without the NVML library or a driver is normal (a CPU kiosk): the sampler
logs ``no GPU: <reason>`` once and carries on with ``gpus=()``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import psutil

from kiosk.engine.threads import WorkerThread

log = logging.getLogger(__name__)

NO_GPU = "no GPU"


@dataclass(frozen=True)
class GpuSnapshot:
    index: int
    name: str
    utilization_ratio: float | None  # 0..1; None where the card does not report it (e.g. MIG)
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    temperature_c: float | None
    process_memory_bytes: int | None  # this process's share; None where NVML cannot attribute it


@dataclass(frozen=True)
class ResourceSnapshot:
    t: float  # the sampler's clock (monotonic by default)
    cpu_percent: float  # this process, since the previous sample; 100 = one core
    process_cpu_seconds: float
    rss_bytes: int
    system_available_bytes: int
    system_total_bytes: int
    gpus: tuple[GpuSnapshot, ...] = ()


class GpuUnavailable(Exception):
    """The reader cannot see a GPU; ``str()`` is the one-line reason."""


class GpuReader(Protocol):
    """What the sampler needs from a GPU source; a ``close()`` method, if present, is called on stop."""

    def read(self) -> tuple[GpuSnapshot, ...]:
        """Every GPU's numbers now; raise :class:`GpuUnavailable` when there is none to read."""
        ...


class NvmlReader:
    """Reads GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``).

    Initialises lazily on the first read; if the library, the driver or the devices are missing it
    remembers the reason and raises :class:`GpuUnavailable` at once on every later read.
    """

    def __init__(self, pid: int | None = None) -> None:
        self._pid = os.getpid() if pid is None else pid
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._names: list[str] = []
        self._failure: str | None = None
        self._lock = threading.Lock()

    def read(self) -> tuple[GpuSnapshot, ...]:
        with self._lock:
            if self._failure is not None:
                raise GpuUnavailable(self._failure)
            if self._nvml is None:
                self._init()
            return tuple(self._read_one(i, h) for i, h in enumerate(self._handles))

    def _init(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise self._fail("nvidia-ml-py is not installed") from None
        try:
            pynvml.nvmlInit()
        except (pynvml.NVMLError, OSError) as exc:  # OSError: a broken libnvidia-ml
            raise self._fail(f"NVML: {exc}") from None
        try:
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._names = [_text(pynvml.nvmlDeviceGetName(h)) for h in self._handles]
        except pynvml.NVMLError as exc:
            _quiet(pynvml.nvmlShutdown)
            raise self._fail(f"NVML: {exc}") from None
        if not self._handles:
            _quiet(pynvml.nvmlShutdown)
            raise self._fail("NVML found no devices")
        self._nvml = pynvml

    def _fail(self, reason: str) -> GpuUnavailable:
        self._failure = reason
        return GpuUnavailable(reason)

    def _read_one(self, index: int, handle: Any) -> GpuSnapshot:
        nvml = self._nvml
        util = _try(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0, nvml)
        memory = _try(lambda: nvml.nvmlDeviceGetMemoryInfo(handle), nvml)
        temp = _try(lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)), nvml)
        return GpuSnapshot(
            index=index,
            name=self._names[index],
            utilization_ratio=util,
            memory_used_bytes=int(memory.used) if memory is not None else None,
            memory_total_bytes=int(memory.total) if memory is not None else None,
            temperature_c=temp,
            process_memory_bytes=self._process_memory(handle),
        )

    def _process_memory(self, handle: Any) -> int | None:
        nvml = self._nvml
        # a process with both a CUDA and a graphics context is listed twice, each entry with its whole use
        used = 0
        seen = False
        for lister in (nvml.nvmlDeviceGetComputeRunningProcesses, nvml.nvmlDeviceGetGraphicsRunningProcesses):
            processes = _try(lambda lister=lister: lister(handle), nvml)
            if processes is None:
                continue
            seen = True
            for process in processes:
                if process.pid == self._pid and process.usedGpuMemory is not None:
                    used = max(used, int(process.usedGpuMemory))
        return used if seen else None

    def close(self) -> None:
        with self._lock:
            if self._nvml is not None:
                _quiet(self._nvml.nvmlShutdown)
                self._nvml = None
                self._handles = []


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _try(read: Callable[[], Any], nvml: Any) -> Any:
    """One NVML field; a card that does not support it (or a transient error) gives None."""
    try:
        return read()
    except nvml.NVMLError:
        return None


def _quiet(call: Callable[[], Any]) -> None:
    try:
        call()
    except Exception:
        log.debug("ignored error from %r", call, exc_info=True)


class ResourceSampler:
    """Samples this process, the host's memory and the GPUs every ``interval_s`` on one daemon thread.

    ``latest()`` and ``history()`` are cheap and thread-safe; ``sample_once()`` samples synchronously
    (tests, and the first value before the thread starts).
    """

    def __init__(
        self,
        interval_s: float = 1.0,
        history: int = 300,
        gpu_reader: GpuReader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._reader: GpuReader = gpu_reader if gpu_reader is not None else NvmlReader()
        self._clock = clock
        self._buffer: deque[ResourceSnapshot] = deque(maxlen=max(1, int(history)))
        self._lock = threading.Lock()
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)  # the first call only sets the reference point
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gpu_reason: str | None = None
        self.gpu_status = "unknown"  # "no GPU", or the GPUs' names once read

    # --- reading ---------------------------------------------------------------------------------------

    def latest(self) -> ResourceSnapshot | None:
        with self._lock:
            return self._buffer[-1] if self._buffer else None

    def history(self) -> list[ResourceSnapshot]:
        """Snapshots oldest first (at most ``history`` of them)."""
        with self._lock:
            return list(self._buffer)

    # --- sampling --------------------------------------------------------------------------------------

    def sample_once(self) -> ResourceSnapshot:
        process = self._process
        with process.oneshot():
            cpu_percent = process.cpu_percent(None)
            times = process.cpu_times()
            rss = process.memory_info().rss
        memory = psutil.virtual_memory()
        snapshot = ResourceSnapshot(
            t=self._clock(),
            cpu_percent=float(cpu_percent),
            process_cpu_seconds=float(times.user + times.system),
            rss_bytes=int(rss),
            system_available_bytes=int(memory.available),
            system_total_bytes=int(memory.total),
            gpus=self._read_gpus(),
        )
        with self._lock:
            self._buffer.append(snapshot)
        return snapshot

    def _read_gpus(self) -> tuple[GpuSnapshot, ...]:
        try:
            gpus = tuple(self._reader.read())
        except GpuUnavailable as exc:
            self._no_gpu(str(exc))
            return ()
        except Exception as exc:  # a reader bug must not stop the sampler
            self._no_gpu(f"{type(exc).__name__}: {exc}")
            return ()
        if not gpus:
            self._no_gpu("no devices")
            return ()
        self._gpu_reason = None
        self.gpu_status = ", ".join(g.name for g in gpus)
        return gpus

    def _no_gpu(self, reason: str) -> None:
        if reason != self._gpu_reason:  # once per distinct reason, not every second
            log.info("no GPU: %s", reason)
            self._gpu_reason = reason
        self.gpu_status = NO_GPU

    # --- the thread ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.sample_once()
        self._thread = WorkerThread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample_once()
            except Exception:
                log.exception("resource sample failed")

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=max(2.0, self.interval_s * 2))
        close = getattr(self._reader, "close", None)
        if close is not None:
            close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
