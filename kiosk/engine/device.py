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
from collections.abc import Callable
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
    """True where the processor has bfloat16 arithmetic (AMX tiles or AVX512-BF16); elsewhere torch
    emulates it, slower than float32."""
    try:
        import torch

        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
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
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


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
