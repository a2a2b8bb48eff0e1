"""Which weights make the embedded LLM's token quickest on this processor: dense or 4-bit, float32 or bfloat16?

One token of SmolLM2-135M multiplies a vector by every projection of its 30 layers (q, k, v, o: 576 wide;
gate, up, down: 576 x 1536).  This times those 210 products per kind of weight, on the kernels torch
picks here, and the bytes a token reads.  Run it twice to see a kiosk's processor from a server:

    .venv/bin/python bench/llm_kernels.py
    ATEN_CPU_CAPABILITY=avx2 .venv/bin/python bench/llm_kernels.py

The answerer's choice for the embedded (4-bit) model: 4-bit with bfloat16 activations on any processor.
Held to AVX2 the 4-bit kernel with bfloat16 activations was still the quickest row (7.4 ms a token against
14.5 dense float32), and float32 activations have no fast 4-bit kernel in torch (96 ms).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.machine import describe  # noqa: E402
from kiosk.engine.device import cpu_computes_bfloat16  # noqa: E402
from kiosk.engine.llm import int4  # noqa: E402

# SmolLM2-135M: hidden 576, 9 heads of 64 (3 key/value heads), MLP 1536
SHAPES = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]
LAYERS = 30
REPEATS = 30


def on_grid(out_features: int, in_features: int, seed: int) -> torch.Tensor:
    """A float32 weight exactly on a Q4_1 grid (what the GGUF's conversion holds)."""
    generator = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (out_features, in_features // 32, 32), generator=generator).float()
    q[..., 0], q[..., 1] = 0, 15
    low = torch.randn(out_features, in_features // 32, 1, generator=generator) * 0.02
    step = torch.rand(out_features, in_features // 32, 1, generator=generator) * 0.004 + 0.001
    return (low + step * q).reshape(out_features, in_features)


def token_ms(weights: list, dtype: torch.dtype) -> float:
    """Median milliseconds of every layer's products for one token (each weight read from memory once,
    as a token does: the model is larger than the caches)."""
    vectors = [torch.randn(1, w.shape[1]).to(dtype) for w in weights]
    for v, w in zip(vectors, weights, strict=True):
        int4.linear(v, w)
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        for v, w in zip(vectors, weights, strict=True):
            int4.linear(v, w)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    torch.set_num_threads(2)
    dense = [on_grid(o, i, n) for n, (o, i) in enumerate(SHAPES * LAYERS)]
    rows = []
    for label, dtype, packed in (
        ("dense float32", torch.float32, False),
        ("dense bfloat16", torch.bfloat16, False),
        ("4-bit, bfloat16 activations", torch.bfloat16, True),
        ("4-bit, float32 activations", torch.float32, True),
    ):
        weights = [int4.pack(w, dtype) for w in dense] if packed else [w.to(dtype) for w in dense]
        if any(w is None for w in weights):
            rows.append((label, None, 0))
            continue
        size = sum(w.nbytes if packed else w.numel() * w.element_size() for w in weights)
        rows.append((label, token_ms(weights, dtype), size))
    print(describe())
    print(f"torch {torch.__version__}, kernels {torch.backends.cpu.get_cpu_capability()}, 2 threads")
    print(f"{'weights':32}{'ms a token (30 layers)':>24}{'MB read a token':>18}")
    for label, ms, size in rows:
        shown = f"{ms:.2f}" if ms is not None else "no kernel"
        print(f"{label:32}{shown:>24}{size / 1e6:>18.0f}")
    hardware = "computes bfloat16" if cpu_computes_bfloat16() else "emulates bfloat16"
    print(
        f"the answerer runs the embedded model as 4-bit, bfloat16 activations (torch {hardware} here); "
        "target: that row the quickest"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
