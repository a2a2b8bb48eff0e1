"""One device policy for every model: ``auto | cpu | cuda[:N]``.

On CUDA models run in half precision (bfloat16 where the card supports it, else float16; float16 for
CTranslate2); on CPU CTranslate2 runs int8, and torch runs bfloat16 where the processor computes it
natively (AMX or AVX512-BF16: a prompt about 3.5x faster and half the memory of float32 on SmolLM2), else
float32.  The CUDA and CPU probes are injectable so the same code is exercised on any machine.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psutil

from kiosk.errors import ConfigError


def cuda_device_count() -> int:
    """CUDA devices visible to CTranslate2 (cheap: no torch import)."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:
        return 0


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" or "cuda"
    index: int = 0

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def torch(self) -> str:
        return f"cuda:{self.index}" if self.is_cuda else "cpu"

    @property
    def ct2_compute_type(self) -> str:
        return "float16" if self.is_cuda else "int8"

    @property
    def onnx_providers(self) -> list[str | tuple[str, dict[str, object]]]:
        if self.is_cuda:
            return [("CUDAExecutionProvider", {"device_id": self.index}), "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def torch_dtype(
        self, precision: str = "auto", cpu_bf16: Callable[[], bool] | None = None
    ):  # -> torch.dtype
        """The torch dtype for ``precision`` (auto | float32 | bfloat16 | float16) on this device."""
        import torch

        if precision != "auto":
            return getattr(torch, precision)  # float32, bfloat16 or float16: the config checked it
        if not self.is_cuda:
            return torch.bfloat16 if (cpu_bf16 or cpu_computes_bfloat16)() else torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def __str__(self) -> str:
        return self.torch


def cpu_computes_bfloat16() -> bool:
    """True where torch computes bfloat16 in hardware: the processor has it (AMX tiles or AVX512-BF16) and
    torch's kernels may use it (not held to AVX2 by ``ATEN_CPU_CAPABILITY``, as a kiosk's mini PC is).
    Elsewhere torch emulates bfloat16, slower than float32: a plain AVX2 processor runs float32."""
    try:
        import torch

        hardware = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
        return bool(hardware and torch.backends.cpu.get_cpu_capability().startswith("AVX512"))
    except Exception:  # an older torch without the probes: stay with float32
        return False


def resolve_device(spec: str, device_count: Callable[[], int] = cuda_device_count) -> Device:
    if spec == "cpu":
        return Device("cpu")
    count = device_count()
    if spec == "auto":
        return Device("cuda", 0) if count > 0 else Device("cpu")
    index = int(spec.partition(":")[2] or 0) if spec.startswith("cuda") else -1
    if index < 0:
        raise ConfigError(f"device {spec!r}: expected auto, cpu, cuda or cuda:N")
    if index >= count:
        raise ConfigError(f"device {spec!r}: no such CUDA device ({count} visible)")
    return Device("cuda", index)


def is_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return "out of memory" in str(exc).lower()


def free_accelerator_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


@functools.cache
def _libc(name: str) -> Callable[..., int] | None:
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):  # not glibc
        return None


def _malloc_trim() -> Callable[[int], int] | None:
    return _libc("malloc_trim")


# glibc's mallopt parameters
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Four heaps, and buffers of 4 MB and more (Piper's vocoder layers: about 100 MB for a long sentence) given
# back to the system as soon as they are freed.  glibc's defaults grew an LLM kiosk by about 25 MB a turn
# (1.3 GB warm, 1.9-2.0 GB after 20 turns): on 2 cores it keeps up to 16 heaps ("arenas"), a turn's new
# threads land in fresh ones, and the size above which a buffer gets its own mapping rises to the largest
# buffer ever freed (up to 32 MB), so those buffers come from heaps that fragment and never shrink.  Measured
# (bench/turn_latency.py, 20 turns): peak 1.75-1.97 -> 1.50-1.66 GiB (LLM) and 0.85 -> 0.75 GiB (notes),
# first audio no slower.  Two heaps, or 256 kB, were as small but slower: Whisper's and the LLM's buffers of a few hundred
# kB then fault fresh pages on every call (recognition 0.13 -> 0.17 s).
HEAP_ARENAS = 4
HEAP_MMAP_THRESHOLD = 4 * 1024 * 1024


def settle_heap(environ: Mapping[str, str] | None = None) -> bool:
    """Set the C heap as above, once, before the models' threads start; False where it cannot (not
    glibc) or should not: a technician's own ``MALLOC_*`` variables win."""
    environ = os.environ if environ is None else environ
    mallopt = _libc("mallopt")
    if mallopt is None or any(name.startswith("MALLOC_") for name in environ):
        return False
    return bool(mallopt(_M_ARENA_MAX, HEAP_ARENAS)) and bool(mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD))


def trim_heap() -> None:
    """Hand freed memory back to the system (glibc keeps it, per thread arena, until asked)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class MemoryProbe:
    """Memory a model took while loading: torch allocated bytes on CUDA, RSS growth on CPU."""

    def __init__(self, device: Device) -> None:
        self._device = device
        self._start = self._read()

    def _read(self) -> int:
        if self._device.is_cuda:
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_available():
                return int(torch.cuda.memory_allocated(self._device.index))
            return 0
        return int(psutil.Process(os.getpid()).memory_info().rss)

    def used(self) -> int:
        return max(0, self._read() - self._start)
