"""Checksums for the models the kiosk converts once into its cache (the LLM's safetensors, Whisper base).

A conversion writes ``docent-checksums.json`` (the sha256 of each weight file) last; a start verifies it
before loading.  A folder whose weights are missing, truncated or overwritten (a disk error, a partial
copy) no longer matches and is converted again, once, with one warning line; each rebuild is recorded
and the engine publishes it as a ``CacheRebuilt`` event (``kiosk_model_cache_rebuilds_total``).

Hashing the 540 MB LLM file takes about 0.9 s on the 2-core reference machine, in the background
loader, and leaves the file in the page cache that the load then reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CHECKSUMS = "docent-checksums.json"
_rebuilds: list[Rebuild] = []
_lock = threading.Lock()


@dataclass(frozen=True)
class Rebuild:
    stage: str  # asr, llm
    folder: Path
    reason: str


def sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_checksums(folder: Path, names: list[str]) -> None:
    """Record the weight files' checksums; written last, so a folder that has it is whole."""
    sums = {name: sha256(folder / name) for name in sorted(names)}
    (folder / CHECKSUMS).write_text(json.dumps({"sha256": sums}, indent=1), encoding="utf-8")


def mismatch(folder: Path) -> str | None:
    """None when every recorded file matches its checksum; else why not (one short phrase)."""
    try:
        recorded = json.loads((folder / CHECKSUMS).read_text(encoding="utf-8"))["sha256"]
    except FileNotFoundError:
        return "no checksum recorded"
    except (OSError, ValueError, KeyError, TypeError):
        return "its checksum file is unreadable"
    if not isinstance(recorded, dict) or not recorded:
        return "its checksum file is unreadable"
    for name, expected in recorded.items():
        path = folder / str(name)
        try:
            actual = sha256(path)
        except FileNotFoundError:
            return f"{name} is missing"
        except OSError as exc:
            return f"{name} is unreadable ({exc.strerror})"
        if actual != expected:
            return f"{name} does not match its checksum"
    return None


def record_rebuild(stage: str, folder: Path, reason: str) -> None:
    log.warning("%s: cached model %s: %s; converting it again", stage, folder, reason)
    with _lock:
        _rebuilds.append(Rebuild(stage, folder, reason))
        del _rebuilds[:-32]  # bounded, if nobody collects them


def take_rebuilds() -> list[Rebuild]:
    """The rebuilds recorded since the last call (the engine publishes them after loading)."""
    with _lock:
        taken = list(_rebuilds)
        _rebuilds.clear()
    return taken
