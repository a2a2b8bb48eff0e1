"""Loading a model folder in the precision it will run in, without holding its file and a copy at once.

transformers' ``from_pretrained`` maps the whole safetensors file and converts every tensor while the
mapping lives: SmolLM2 in bfloat16 peaked at about 900 MB over the process (a float32 file of 540 MB,
touched, plus 270 MB converted) for a model that then holds 410 MB.  Here the model is built without
initialising its weights and each tensor is read from the file on its own and copied into place, so the
peak is the loaded model plus one tensor.  The same pass packs 4-bit projections (``int4``) from the
file's exact float32 values.  Folders this does not understand (no safetensors, names that do not
match the model's) are left to ``from_pretrained``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kiosk.engine.device import trim_heap
from kiosk.engine.llm import int4

log = logging.getLogger(__name__)


def safetensors_files(folder: Path) -> dict[str, Path]:
    """Which file holds each tensor of a safetensors model folder (one file or a sharded index)."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        return {name: folder / file for name, file in weight_map.items()}
    where: dict[str, Path] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), "pt") as opened:
            where.update(dict.fromkeys(opened.keys(), file))
    return where


def load_model(folder: Path, dtype: Any, pack: bool) -> tuple[Any, dict[str, int4.Int4Weight]]:
    """The causal LM in ``folder`` in ``dtype`` on the CPU, and its 4-bit projections when ``pack``."""
    from transformers import AutoModelForCausalLM

    where = safetensors_files(folder)
    try:
        model = _load_tensor_by_tensor(folder, where, dtype) if where else None
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=dtype)
            return model, {}
        return model, (_pack_from_files(where, model, dtype) if pack else {})
    finally:
        # the file's float32 tensors (SmolLM2's projections are 3.5 MB each, under the heap's 4 MB mapping
        # threshold) were freed into the C heap, which kept them: 450 MB over the loaded model until the
        # next trim, the start's peak
        trim_heap()


def _load_tensor_by_tensor(folder: Path, where: dict[str, Path], dtype: Any) -> Any | None:
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers
        from transformers.modeling_utils import no_init_weights

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    with no_init_weights():  # memory is only touched when the file's tensors are copied in
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.tie_weights()
    state = model.state_dict()
    tied = {
        name for name, tensor in state.items() if name not in where and _shares_storage(tensor, state, where)
    }
    missing = [name for name in state if name not in where and name not in tied]
    if missing:
        log.info(
            "llm: %s names tensors differently (%s...): loading it with transformers", folder, missing[0]
        )
        return None
    with torch.no_grad():
        for name, tensor in state.items():
            if name in tied:
                continue
            with safe_open(str(where[name]), "pt") as opened:  # mapped for this one tensor only
                tensor.copy_(opened.get_tensor(name))
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(str(folder), local_files_only=True)
    model.eval()
    return model


def _shares_storage(tensor: Any, state: dict[str, Any], where: dict[str, Path]) -> bool:
    """``tensor`` is another loaded tensor under a second name (a head tied to the embedding)."""
    pointer = tensor.data_ptr()
    return any(other.data_ptr() == pointer for name, other in state.items() if name in where)


def _pack_from_files(where: dict[str, Path], model: Any, dtype: Any) -> dict[str, int4.Int4Weight]:
    import torch
    from safetensors import safe_open

    packed: dict[str, int4.Int4Weight] = {}
    for name in int4.projection_names(model):
        key = f"{name}.weight"
        if key not in where:
            continue
        with safe_open(str(where[key]), "pt") as opened:
            exact = opened.get_tensor(key)
        if exact.dtype == torch.float32:
            weight = int4.pack(exact, dtype)
            if weight is not None:
                packed[name] = weight
    return packed
