"""The visitor-audio store: a visitor's question as a WAV file, only when a museum configured it.

Off by default (``[audio] store_visitor_audio = false``).  When on:

- a question's audio is held when the visitor stops speaking and written only when its turn finishes
  without being cancelled (a visitor who stops the guide, speaks over it or walks away is not kept);
- files older than ``store_days`` are deleted when the store starts and once a day after that;
- a write that fails (disk full, read-only, no such folder) is one warning line and a
  :class:`~kiosk.engine.events.StoreFailed` event (counted as ``kiosk_audio_store_errors_total``), never
  an exception in the listener: the kiosk goes on answering.  A file is written under a temporary name
  and renamed, so a failed write leaves nothing half-written behind.

The store is an EventBus observer: the pipeline calls :meth:`hold`, the store watches ``TurnFinished``.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import time
import wave
from collections import OrderedDict
from pathlib import Path

import numpy as np

from kiosk.config import Config
from kiosk.engine import events as ev

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
DAY_S = 86400.0
# questions waiting for their turn's end; a turn that never finishes is dropped, not stored
MAX_HELD = 8
STORE = "visitor_audio"
# only files this store wrote are ever deleted, whatever else lies in the folder
FILE_NAME = re.compile(r"^turn-\d{8}-\d{6}-\d+\.wav$")
PARTIAL_NAME = re.compile(r"^\.turn-.*\.partial$")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class VisitorAudioStore:
    """Writes finished, uncancelled questions into ``folder`` and deletes them after ``days``."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        days: float,
        bus: ev.EventBus,
        wall_clock=time.time,
        monotonic=time.monotonic,
    ) -> None:
        self.folder = Path(folder).expanduser()
        self.days = days
        self.bus = bus
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._held: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._next_prune = 0.0
        self.stored = 0
        self.errors = 0
        self.prune()
        bus.subscribe(self)

    @classmethod
    def from_config(cls, config: Config, bus: ev.EventBus) -> VisitorAudioStore | None:
        """The store a configuration asks for, or None (the default: nothing is ever written)."""
        audio = config.audio
        if not audio.store_visitor_audio or not audio.store_dir.strip():
            return None
        return cls(audio.store_dir, audio.store_days, bus)

    # --- the pipeline's side ------------------------------------------------------------------------

    def hold(self, turn_id: int, audio: np.ndarray | None) -> None:
        """Keep a question's audio until its turn ends."""
        if audio is None or len(audio) == 0:
            return
        with self._lock:
            self._held[turn_id] = audio
            while len(self._held) > MAX_HELD:
                self._held.popitem(last=False)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.TurnFinished):
            with self._lock:
                audio = self._held.pop(event.turn_id, None)
            if audio is not None and event.status != "cancelled":
                self.save(event.turn_id, audio)
        if self._monotonic() >= self._next_prune:
            self.prune()

    # --- disk -----------------------------------------------------------------------------------------

    def save(self, turn_id: int, audio: np.ndarray) -> Path | None:
        """Write one question; None (after one warning line and a StoreFailed event) when it fails."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._wall_clock()))
        path = self.folder / f"turn-{stamp}-{turn_id}.wav"
        partial = self.folder / f".{path.name}.{os.getpid()}.partial"
        pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1, 1) * 32767).astype("<i2")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as out:
                out.write(_wav_bytes(pcm))
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        except OSError as exc:
            self._failed(f"cannot write {path.name} into {self.folder}: {_reason(exc)}")
            try:
                partial.unlink(missing_ok=True)
            except OSError:
                pass
            return None
        self.stored += 1
        return path

    def prune(self) -> int:
        """Delete stored questions older than ``days`` (and leftovers of failed writes); how many went."""
        self._next_prune = self._monotonic() + DAY_S
        cutoff = self._wall_clock() - self.days * DAY_S
        removed = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        except OSError as exc:
            self._failed(f"cannot list {self.folder} to delete old recordings: {_reason(exc)}")
            return 0
        for entry in entries:
            if not (FILE_NAME.match(entry.name) or PARTIAL_NAME.match(entry.name)):
                continue
            try:
                if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime >= cutoff:
                    continue
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                self._failed(f"cannot delete {entry.name} from {self.folder}: {_reason(exc)}")
        if removed:
            log.info("visitor audio: deleted %d recordings older than %g days", removed, self.days)
        return removed

    def _failed(self, message: str) -> None:
        self.errors += 1
        log.warning("visitor audio: %s", message)
        self.bus.publish(ev.StoreFailed(store=STORE, message=message))


def _wav_bytes(pcm: np.ndarray) -> bytes:
    """16-bit mono PCM at 16 kHz as a whole WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()
