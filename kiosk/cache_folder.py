"""The model cache folder the kiosk actually uses: the configured one, or a private temporary one.

A kiosk whose cache (or whole home) is read-only, say a locked-down image or a full disk remounted
read-only, could convert no model, load no retrieval and answer every visitor with an apology.  It is
better served from a private temporary folder: the models are converted again at every start (slower to
start, same answers), one WARNING says so, and the engine counts it (``kiosk_cache_fallbacks_total``).

Resolved once per configured folder and process, so every reader (recogniser, retrieval, LLM, portrait
landmarks, the screen) sees the same folder, and the warning is not repeated.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_lock = threading.Lock()
_resolved: dict[str, Path] = {}
_fallbacks: dict[str, str] = {}  # configured folder -> why it could not be used


def not_writable(folder: Path) -> str | None:
    """Why ``folder`` cannot hold the cache (it, or the nearest folder above it that exists, must be
    writable: it is made at start), or None."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{folder} cannot be created ({probe} is not a folder)"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable for this user"
    return None


def usable_cache_dir(configured: str) -> Path:
    """The configured folder (``~`` expanded) if the kiosk can write there, else a private temporary one."""
    with _lock:
        if configured in _resolved:
            return _resolved[configured]
        folder = Path(os.path.expanduser(configured))
        reason = not_writable(folder)
        if reason is not None:
            fallback = Path(tempfile.mkdtemp(prefix="docent-cache-"))
            log.warning(
                "[paths] cache_dir: %s; using %s until the kiosk stops (models are converted at every start)",
                reason,
                fallback,
            )
            _fallbacks[configured] = reason
            folder = fallback
        _resolved[configured] = folder
        return folder


def cache_fallback(configured: str) -> str | None:
    """Why the configured cache folder was replaced by a temporary one in this process, or None."""
    with _lock:
        return _fallbacks.get(configured)
