"""The machine a bench ran on, for the header of its table: figures from two machines are never mixed.

A kiosk's mini PC has AVX2 and none of AVX-512, AVX512-BF16 or AMX; a developer's or CI's server may
have all of them, and the libraries' kernels (so their speed, and sometimes their results) follow the
processor.  The line names the processor, the instruction sets that choose kernels, the cores, Python,
and any variable that holds a library's kernels to a lower set (``ATEN_CPU_CAPABILITY=avx2`` ...).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# /proc/cpuinfo flag -> the name a reader knows
ISA_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX512-VNNI",
    "avx512_bf16": "AVX512-BF16",
    "amx_tile": "AMX",
}
# variables that hold a library's kernels to a lower instruction set
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "CT2_FORCE_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def _cpuinfo() -> tuple[str, set[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), set()
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = " ".join(value.split())
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model or platform.machine(), flags


def describe() -> str:
    """One line: processor, instruction sets (has / lacks), cores, Python, kernel limits in force."""
    model, flags = _cpuinfo()
    isa = ", ".join(f"{name} {'yes' if flag in flags else 'no'}" for flag, name in ISA_FLAGS.items())
    forced = [f"{name}={os.environ[name]}" for name in KERNEL_VARIABLES if os.environ.get(name)]
    return (
        f"machine: {model} ({isa}); {os.cpu_count()} cores; Python {platform.python_version()}"
        + (f"; kernels held: {' '.join(forced)}" if forced else "")
    )


if __name__ == "__main__":
    print(describe())
