"""4-bit weights for the fast decoder: a Q4 GGUF's projections, multiplied as 4-bit again.

The embedded SmolLM2 is a Q4_1 GGUF: every projection is stored as groups of 32 weights, each group
``min + step * q`` with q in 0..15.  Converted to safetensors they become float32 (540 MB), and a token
on 2 cores then spends most of its time reading them (about 25 of 35 ms).  The weights still lie exactly
on their 4-bit grid, so they can be packed back, losslessly, for torch's int4 CPU kernel (activations in
bfloat16): 4x fewer bytes a token.  A weight that is not on such a grid (any model that was never
4-bit, the Q8_0 embedding) stays dense: packing never changes a model, it only finds 4-bit ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GROUP = 32
# torch's CPU packing tiles the inner dimension by this many
INNER_K_TILES = 8


@dataclass(frozen=True)
class Int4Weight:
    """A ``[out, in]`` weight, packed: ``weight = (q - 8) * scale + zero`` per group of ``group`` inputs."""

    packed: Any
    scales_zeros: Any  # [in / group, out, 2], in the activations' dtype
    group: int
    shape: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return int(self.packed.numel() * self.packed.element_size()) + int(
            self.scales_zeros.numel() * self.scales_zeros.element_size()
        )


def kernel_available() -> bool:
    import torch

    return hasattr(torch, "_weight_int4pack_mm_for_cpu") and hasattr(
        torch, "_convert_weight_to_int4pack_for_cpu"
    )


def linear(x: Any, weight: Any) -> Any:
    """``F.linear(x, weight)`` for a dense or a packed weight (``x`` is 2-D)."""
    import torch
    import torch.nn.functional as F

    if isinstance(weight, Int4Weight):
        return torch._weight_int4pack_mm_for_cpu(x, weight.packed, weight.group, weight.scales_zeros)
    return F.linear(x, weight)


def pack(weight: Any, dtype: Any, group: int = GROUP) -> Int4Weight | None:
    """``weight`` (float32, ``[out, in]``) packed, or None when it is not exactly on a 4-bit grid."""
    import torch

    if weight.dim() != 2 or weight.dtype != torch.float32 or weight.shape[1] % group:
        return None
    out_features, in_features = weight.shape
    groups = weight.detach().reshape(out_features, in_features // group, group)
    low = groups.amin(-1, keepdim=True)
    step = (groups.amax(-1, keepdim=True) - low) / 15
    safe_step = torch.where(step > 0, step, torch.ones_like(step))
    q = ((groups - low) / safe_step).round().clamp_(0, 15)
    # on the grid: each weight is its group's low + step * q, to float32 rounding
    error = (q * step + low - groups).abs()
    if bool((error > 1e-3 * step + 1e-6 * groups.abs()).any()):
        return None
    zero = low + 8 * step
    scales_zeros = torch.stack((step[..., 0].t(), zero[..., 0].t()), dim=-1).to(dtype).contiguous()
    try:
        packed = torch._convert_weight_to_int4pack_for_cpu(
            q.to(torch.int32).reshape(out_features, in_features), INNER_K_TILES
        )
        packed_weight = Int4Weight(packed, scales_zeros, group, (out_features, in_features))
        # the kernel's layout is torch's private business: check it on a few inputs before trusting it
        probe = torch.randn(4, in_features, generator=torch.Generator().manual_seed(0))
        expected = probe @ weight.detach().t()
        got = linear(probe.to(dtype), packed_weight).float()
    except RuntimeError:
        return None
    if float((got - expected).abs().max()) > 2e-2 * max(1e-6, float(expected.abs().max())):
        return None
    return packed_weight


def projection_names(model: Any) -> list[str]:
    """The bias-free linear projections of ``model``, by module name: those packing may apply to.  Not
    the output head: in SmolLM2 it is the 8-bit embedding, and its logits are worth full precision."""
    import torch

    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.bias is None and not name.endswith("lm_head")
    ]
