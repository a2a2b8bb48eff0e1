"""A lean decoder for Llama-architecture chat models on the CPU: transformers' arithmetic, fewer operations.

On SmolLM2-135M transformers spends about 11 ms of each token's 40-45 ms (2 cores) outside the matrix
products: attention masks, position ids and cache objects rebuilt every step, and a key/value cache grown
by concatenation (a copy of the whole cache per token).  This decoder uses the model's own weight tensors
(no memory is added), writes keys and values into buffers allocated once per answer, and computes logits
for the last position only (or for each position, to check guessed tokens).  About 15-20% more tokens a
second; the numbers agree with transformers to float rounding.  (Fusing q/k/v and gate/up into one
product each measured no faster and would copy 280 MB of weights.)  Projections packed as 4-bit
(``int4``) are multiplied by torch's int4 kernel: in bfloat16 a token then reads a quarter of the bytes.

``unsupported`` says why a model is left to transformers; ``FastLlama.verify`` compares the two on a
prompt at load, and the answerer uses this decoder only when they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiosk.engine.llm.int4 import Int4Weight, linear

# the largest difference in logits tolerated by ``verify``, relative to the largest logit: float32 sums in
# another order differ by about 1e-6; two bfloat16 computations (8 bits of mantissa) by up to 3e-2 on
# SmolLM2, each as far from float32 as the other.  A wrong decoder is off by the logits' own size.
TOLERANCE = 1e-3
HALF_TOLERANCE = 1e-1
# torch's int4 kernel is quick for a few rows and slow for many (200 prompt tokens: 370 ms, 93 ms in
# dense bfloat16): prompts use the dense weights, tokens and guesses the packed ones
PACKED_MAX_TOKENS = 8


def unsupported(model: Any) -> str:
    """Why ``model`` cannot use this decoder; '' when it can."""
    import torch
    import torch.nn.functional as F

    config = model.config
    if getattr(config, "model_type", "") != "llama" or type(model).__name__ != "LlamaForCausalLM":
        return f"model type {getattr(config, 'model_type', '?')}"
    if not hasattr(F, "rms_norm") or "enable_gqa" not in (F.scaled_dot_product_attention.__doc__ or ""):
        return f"torch {torch.__version__} is too old"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "projection biases"
    if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "pretraining_tp", 1) != 1:
        return "activation"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if (rope.get("rope_type") or rope.get("type") or "default") != "default":
        return f"rope type {rope.get('rope_type')}"
    weight = model.lm_head.weight
    if weight.device.type != "cpu" or weight.dtype not in (torch.float32, torch.bfloat16):
        return f"{weight.dtype} on {weight.device}"
    return ""


@dataclass
class KeyValues:
    """Keys and values of every layer, ``[1, kv_heads, capacity, head_dim]``, the first ``length`` filled."""

    keys: list[Any]
    values: list[Any]
    length: int = 0

    def kept(self) -> KeyValues:
        """A copy of the filled positions in 16 bits, as the prefix cache keeps them (4 MB, not 8, for a
        SmolLM2 system prompt): float16 from float32 (its values are within 20 here, so the rounding moves
        logits by about 0.005 of 30: 20 of 20 test answers came out the same as without it), else as is.
        """
        import torch

        n = self.length
        dtype = torch.float16 if self.keys[0].dtype == torch.float32 else self.keys[0].dtype
        return KeyValues(
            [k[:, :, :n].to(dtype, copy=True) for k in self.keys],
            [v[:, :, :n].to(dtype, copy=True) for v in self.values],
            n,
        )


ATTENTION = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
MLP = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def _layer_weights(index: int, layer: Any, packed: dict[str, Int4Weight]) -> tuple[Any, ...]:
    def weight(name: str) -> Any:
        return packed.get(f"model.layers.{index}.{name}", layer.get_submodule(name).weight)

    return (
        layer.input_layernorm.weight,
        layer.input_layernorm.variance_epsilon,
        *map(weight, ATTENTION),
        layer.post_attention_layernorm.weight,
        layer.post_attention_layernorm.variance_epsilon,
        *map(weight, MLP),
    )


class FastLlama:
    """Greedy-decoding forward passes for a loaded ``LlamaForCausalLM`` (call ``unsupported`` first)."""

    def __init__(self, model: Any, packed: dict[str, Int4Weight] | None = None) -> None:
        """``packed``: 4-bit weights of some projections (see ``loading``), by module name."""
        import torch

        config = model.config
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.hidden = config.hidden_size
        base = model.model
        self.embed = base.embed_tokens.weight
        packed = packed or {}
        self.packed_bytes = sum(weight.nbytes for weight in packed.values())
        self.layers = [_layer_weights(i, layer, {}) for i, layer in enumerate(base.layers)]
        # the same with 4-bit weights where there are: for a token or a few (PACKED_MAX_TOKENS)
        self.packed_layers = [_layer_weights(i, layer, packed) for i, layer in enumerate(base.layers)]
        self.dense_dropped = False
        self.norm, self.norm_eps = base.norm.weight, base.norm.variance_epsilon
        self.head = model.lm_head.weight
        rotary = base.rotary_emb
        self._inv_freq = rotary.inv_freq.detach().to(torch.float32)
        self._scaling = float(getattr(rotary, "attention_scaling", 1.0))
        self._cos = self._sin = torch.empty(0, self.head_dim)
        self._scratch: KeyValues | None = None

    def drop_dense(self, model: Any, packed: dict[str, Int4Weight]) -> int:
        """Every pass through the 4-bit weights, and the model's 16-bit copies of them freed: the bytes
        freed (0 when some projection has no 4-bit weight, and nothing changes).

        The model itself can no longer run (its projections are empty): the decoder uses this one only.
        """
        import torch

        names = [f"model.layers.{i}.{name}" for i in range(len(self.layers)) for name in (*ATTENTION, *MLP)]
        if not names or any(name not in packed for name in names):
            return 0
        freed = 0
        for name in names:
            module = model.get_submodule(name)
            freed += module.weight.numel() * module.weight.element_size()
            module.weight = torch.nn.Parameter(torch.empty(0, dtype=module.weight.dtype), requires_grad=False)
        self.layers = self.packed_layers
        self.dense_dropped = True
        return freed

    def start(self, capacity: int, prefix: KeyValues | None = None, scratch: bool = False) -> KeyValues:
        """Buffers for ``capacity`` positions, holding a copy of ``prefix`` when given.

        ``prefix`` may be kept in another precision (``KeyValues.kept``): it is converted as it is copied.
        ``scratch``: the decoder's one set of reusable buffers (grown when too small), for an answer; one
        answer at a time may use them.  Allocating 10-40 MB per answer in a new thread each time left
        the memory with the allocator's per-thread arenas: RSS crept up turn after turn.
        """
        import torch

        n = prefix.length if prefix is not None else 0
        capacity = max(capacity, n + 1)
        spare = self._scratch if scratch else None
        if spare is not None and spare.keys[0].shape[2] >= capacity:
            keys, values = spare.keys, spare.values
        else:
            shape = (1, self.kv_heads, capacity, self.head_dim)
            dtype = self.head.dtype
            keys = [torch.empty(shape, dtype=dtype) for _ in self.layers]
            values = [torch.empty(shape, dtype=dtype) for _ in self.layers]
            if scratch:
                self._scratch = KeyValues(keys, values)
        if prefix is not None:
            for key, value, kept_key, kept_value in zip(
                keys, values, prefix.keys, prefix.values, strict=True
            ):
                key[:, :, :n] = kept_key
                value[:, :, :n] = kept_value
        return KeyValues(keys, values, n)

    def forward(self, ids: Any, kv: KeyValues, every: bool = False) -> Any:
        """The logits (vocabulary,) after the (1, n) token ids ``ids``, which are appended to ``kv``.

        ``every``: the logits after each of them, (n, vocabulary), to check guessed tokens in one pass.
        """
        import torch
        import torch.nn.functional as F

        start, count = kv.length, int(ids.shape[-1])
        end = start + count
        if end > kv.keys[0].shape[2]:
            raise RuntimeError(f"fast decoder: {end} positions exceed the buffer of {kv.keys[0].shape[2]}")
        cos, sin = self._rotary(start, end)
        heads, kv_heads, head_dim, half = self.heads, self.kv_heads, self.head_dim, self.head_dim // 2
        # queries see every cached position and the new ones up to their own
        mask = torch.ones(count, end, dtype=torch.bool).tril(start) if count > 1 else None
        x = F.embedding(ids[0], self.embed)  # (count, hidden)
        shape = (self.hidden,)
        layers = self.packed_layers if count <= PACKED_MAX_TOKENS else self.layers
        for i, layer in enumerate(layers):
            w_in, eps_in, w_q, w_k, w_v, w_out, w_post, eps_post, w_gate, w_up, w_down = layer
            h = F.rms_norm(x, shape, w_in, eps_in)
            q = linear(h, w_q).view(count, heads, head_dim).transpose(0, 1)
            k = linear(h, w_k).view(count, kv_heads, head_dim).transpose(0, 1)
            q = q * cos + torch.cat((-q[..., half:], q[..., :half]), dim=-1) * sin
            k = k * cos + torch.cat((-k[..., half:], k[..., :half]), dim=-1) * sin
            kv.keys[i][0, :, start:end] = k
            kv.values[i][0, :, start:end] = linear(h, w_v).view(count, kv_heads, head_dim).transpose(0, 1)
            o = F.scaled_dot_product_attention(
                q.unsqueeze(0),
                kv.keys[i][:, :, :end],
                kv.values[i][:, :, :end],
                attn_mask=mask,
                enable_gqa=True,
            )
            x = x + linear(o[0].transpose(0, 1).reshape(count, heads * head_dim), w_out)
            h = F.rms_norm(x, shape, w_post, eps_post)
            x = x + linear(F.silu(linear(h, w_gate)) * linear(h, w_up), w_down)
        kv.length = end
        last = x if every else x[-1:]
        logits = F.linear(F.rms_norm(last, shape, self.norm, self.norm_eps), self.head)
        return logits if every else logits[0]

    def _rotary(self, start: int, end: int) -> tuple[Any, Any]:
        """cos and sin for positions start..end-1, as transformers computes them (float32, then scaled)."""
        import torch

        if end > self._cos.shape[0]:
            size = max(end, 2 * self._cos.shape[0], 256)
            freqs = torch.arange(size, dtype=torch.float32)[:, None] * self._inv_freq[None, :]
            emb = torch.cat((freqs, freqs), dim=-1)
            self._cos, self._sin = emb.cos() * self._scaling, emb.sin() * self._scaling
        return self._cos[start:end].to(self.head.dtype), self._sin[start:end].to(self.head.dtype)

    def verify(self, model: Any, ids: Any, steps: int = 3) -> str:
        """Compare with transformers on ``ids`` and ``steps`` greedy tokens; '' when they agree, else how not.

        In 16 bits the two may round a near tie differently: a different token is tolerated only where
        transformers' own top two are closer than the tolerance.
        """
        import torch

        tolerance = TOLERANCE if self.head.dtype == torch.float32 else HALF_TOLERANCE

        with torch.inference_mode():
            split = max(1, int(ids.shape[-1]) // 2)
            output = model(input_ids=ids[:, :split], use_cache=True)
            past = output.past_key_values
            output = model(input_ids=ids[:, split:], past_key_values=past, use_cache=True)
            past = output.past_key_values
            kv = self.start(int(ids.shape[-1]) + steps)
            self.forward(ids[:, :split], kv)  # a prefill in two parts: the prefix cache's case
            mine = self.forward(ids[:, split:], kv)
            for step in range(steps + 1):
                theirs = output.logits[0, -1].float()
                allowed = tolerance * max(1.0, float(theirs.abs().max()))
                worst = float((mine.float() - theirs).abs().max())
                if worst > allowed:
                    return f"logits differ by {worst:.2g} at step {step}"
                top = theirs.topk(2).values
                if int(mine.argmax()) != int(theirs.argmax()) and float(top[0] - top[1]) > allowed:
                    return f"a different token at step {step}"
                if step == steps:
                    break
                token = torch.tensor([[int(theirs.argmax())]])
                output = model(input_ids=token, past_key_values=past, use_cache=True)
                past = output.past_key_values
                mine = self.forward(token, kv)
        return ""
