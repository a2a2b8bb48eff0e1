"""The token loop: greedy (or sampled) decoding with a KV cache, a prefix cache and guessed tokens.

``Decoder`` owns the loaded model, its lean CPU decoder (``fast``, when it agrees with transformers) and
the KV caches of recent system messages (``prefixes``).  The caller holds the model lock.
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Protocol

from kiosk.config import LlmConfig
from kiosk.engine.cancel import CancelToken
from kiosk.engine.llm.fast import FastLlama, KeyValues

# a kept system message's keys and values are reused for a new one that begins with this many of its tokens
MIN_SHARED_TOKENS = 16


class Stoppable(Protocol):
    """A turn as the token loop sees it: a cancel token (or None) and a stop flag."""

    @property
    def cancel(self) -> CancelToken | None: ...

    @property
    def stop(self) -> Any: ...  # a threading.Event


class Decoder:
    """Writes a prompt's answer token by token; ``config`` and ``fast`` may be changed between turns."""

    def __init__(
        self, model: Any, config: LlmConfig, device: Any, stop_ids: set[int], forward_kwargs: dict[str, Any]
    ) -> None:
        self.model = model
        self.config = config
        self.device = device  # the torch device the model is on
        self.stop_ids = stop_ids
        # extra arguments of every forward call: only the last position's logits are needed
        self.forward_kwargs = forward_kwargs
        self.fast: FastLlama | None = None
        # system-message token ids -> their KV cache (read and written under the model lock)
        self.prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def tokens(
        self,
        input_ids: Any,
        max_new_tokens: int,
        deadline: float,
        turn: Stoppable,
        state: dict[str, Any],
        prefix: int = 0,
    ) -> Iterator[int]:
        """Greedy (or sampled) decoding with a KV cache; ends at a stop token, a cap or cancellation.

        Why it ended by itself is left in ``state["stop"]``; the prompt's time in ``state["prompt_seconds"]``,
        how many of its tokens came from the prefix cache in ``state["cached_tokens"]`` and how many
        answer tokens were guessed right in ``state["drafted"]``.  The first ``prefix`` tokens (the system
        message) are taken from, or added to, the prefix cache.

        With the fast decoder and greedy decoding, the tokens that followed the answer's last few tokens
        where they occur in the prompt (the notes, mostly) are guessed and checked in one forward pass
        with the next one: the guesses the model agrees with are taken, so the answer is the one greedy
        decoding writes, in fewer passes (a small model copies its notes a lot).
        """
        import torch

        model, temperature = self.model, self.config.temperature
        # a forward wrapped on the instance (instrumentation, a test double) is honoured: no fast path
        # (unless the model's dense weights are gone: then only the fast decoder can run it)
        fast = self.fast if "forward" not in vars(model) or (self.fast and self.fast.dense_dropped) else None
        started = time.monotonic()
        ids = input_ids.to(self.device)
        kept = None
        if 0 < prefix < ids.shape[-1] and self.config.prefix_cache > 0:
            kept, state["cached_tokens"] = self.prefix_past(ids[:, :prefix], fast)
            ids = ids[:, prefix:]
        guesses = self.config.draft_tokens if fast is not None and temperature <= 0 else 0
        if fast is not None:
            kv = fast.start(int(input_ids.shape[-1]) + max_new_tokens + guesses, kept, scratch=True)

            def forward(new: Any) -> Any:
                return fast.forward(new, kv)

        else:
            past = kept

            def forward(new: Any) -> Any:
                nonlocal past
                output = model(input_ids=new, past_key_values=past, use_cache=True, **self.forward_kwargs)
                past = output.past_key_values
                return output.logits[0, -1, :]

        context = input_ids[0].tolist()  # the prompt, then the answer: where guesses are looked up
        produced = 0
        while produced < max_new_tokens:
            if (turn.cancel is not None and turn.cancel.cancelled) or turn.stop.is_set():
                state["stop"] = "cancelled"
                return
            if produced and time.monotonic() >= deadline:
                state["stop"] = "max_seconds"
                return
            guess = lookup(context, guesses) if guesses and produced else []
            if guess:
                assert fast is not None
                picks = (
                    fast.forward(torch.tensor([[context[-1], *guess]]), kv, every=True).argmax(-1).tolist()
                )
                taken = 0
                while taken < len(guess) and picks[taken] == guess[taken]:
                    taken += 1
                kv.length -= len(guess) - taken  # the keys and values of wrong guesses are overwritten
                state["drafted"] = state.get("drafted", 0) + taken
                new = picks[: taken + 1]
            else:
                logits = forward(ids).float()
                if not produced:
                    state["prompt_seconds"] = time.monotonic() - started
                if temperature > 0:
                    new = [int(torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).item())]
                else:
                    new = [int(torch.argmax(logits).item())]
            for token in new:
                if token in self.stop_ids:
                    state["stop"] = "eos"
                    return
                yield token
                produced += 1
                context.append(token)
                if produced >= max_new_tokens:
                    break
            ids = torch.tensor([[context[-1]]], device=ids.device)
        state["stop"] = "max_tokens"

    def prefix_past(self, prefix_ids: Any, fast: FastLlama | None) -> tuple[Any, int]:
        """The KV cache of ``prefix_ids`` (computed and kept when new) for a turn to extend, and the tokens reused.

        The kept cache is never extended: for transformers a turn gets a copy, the fast decoder copies it
        into the turn's own buffers.
        """
        key = (fast is not None, *(int(t) for t in prefix_ids[0].tolist()))
        kept = self.prefixes.get(key)
        reused = len(key) - 1 if kept is not None else 0
        if kept is None:
            if fast is not None:
                # the kept message that begins the same way (notes of two sections begin with the best
                # one's, warmed alone): its keys and values of that beginning are taken, the rest computed
                shared, reused = self._longest_shared(key)
                computed = fast.start(int(prefix_ids.shape[-1]), shared)
                fast.forward(prefix_ids[:, reused:], computed)
                kept = computed.kept()
            else:
                kept = self.model(input_ids=prefix_ids, use_cache=True, **self.forward_kwargs).past_key_values
            self.prefixes[key] = kept
            while len(self.prefixes) > self.config.prefix_cache:
                self.prefixes.popitem(last=False)
        self.prefixes.move_to_end(key)
        return (kept if isinstance(kept, KeyValues) else copy_cache(kept)), reused


    def _longest_shared(self, key: tuple[int, ...]) -> tuple[KeyValues | None, int]:
        """The kept fast-decoder cache sharing the most leading tokens with ``key`` (at least
        MIN_SHARED_TOKENS, and one token short of all of it), cut to them, and how many they are."""
        best: KeyValues | None = None
        most = 0
        for other, kept in self.prefixes.items():
            if not isinstance(kept, KeyValues) or other[0] != key[0]:
                continue
            n = 0
            limit = min(len(other), len(key) - 1)  # at least one token is left to compute
            while n + 1 < limit and other[n + 1] == key[n + 1]:
                n += 1
            if n > most:
                best, most = kept, n
        if best is None or most < MIN_SHARED_TOKENS:
            return None, 0
        return KeyValues([k[:, :, :most] for k in best.keys], [v[:, :, :most] for v in best.values], most), most


def stop_token_ids(tokenizer: Any, model: Any) -> set[int]:
    """The tokens that end an answer: the model's end of sequence and the usual chat end markers."""
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    vocab = tokenizer.get_vocab()
    for text in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"):
        if text in vocab:
            ids.add(vocab[text])
    return ids


def lookup(context: list[int], size: int, longest: int = 3, shortest: int = 2) -> list[int]:
    """Up to ``size`` tokens that followed the latest earlier occurrence of the context's last 3 (or 2) tokens."""
    end = len(context)
    for n in range(longest, shortest - 1, -1):
        if end <= n:
            continue
        tail = context[-n:]
        first = tail[0]
        for start in range(end - n - 1, -1, -1):
            if context[start] == first and context[start : start + n] == tail:
                return context[start + n : start + n + size]
    return []


def copy_cache(cache: Any) -> Any:
    """A copy of a KV cache that a turn may extend: new tensors, same shapes (2 ms for 200 tokens).

    ``copy.deepcopy`` does the same for any cache but takes about a second on CPU tensors.
    """
    import torch

    layers = getattr(cache, "layers", None)
    if not layers or not all(isinstance(getattr(layer, "keys", None), torch.Tensor) for layer in layers):
        return copy.deepcopy(cache)
    twin = copy.copy(cache)
    twin.layers = []
    for layer in layers:
        copied = copy.copy(layer)
        copied.keys, copied.values = layer.keys.clone(), layer.values.clone()
        twin.layers.append(copied)
    return twin
