"""The composition root: the engine, telemetry and the one resource sampler, built from a config.

``kiosk`` (the screen app) and the headless commands (``kiosk listen``, ``kiosk ask``) both call
:func:`compose`, so a kiosk is assembled one way.  Telemetry is optional (``[metrics] enabled``, or not
installed): the resource sampler is then a :class:`~kiosk.telemetry.sampler.ResourceSampler` of its own,
so the ops panel reads the same kind of numbers either way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kiosk.config import Config
from kiosk.engine.audio_out import AudioSink
from kiosk.engine.engine import Engine
from kiosk.errors import KioskError
from kiosk.telemetry.sampler import ResourceSampler

log = logging.getLogger(__name__)


def process_started_at() -> float:
    """When this process started, on the monotonic clock (the ops panel's "up" counts from it)."""
    try:
        import psutil

        return time.monotonic() - (time.time() - psutil.Process().create_time())
    except Exception:
        return time.monotonic()


@dataclass
class Kiosk:
    config: Config
    engine: Engine
    telemetry: Any  # kiosk.telemetry.Telemetry, or None
    resources: ResourceSampler
    started_at: float
    _own_sampler: bool = False

    def start(self) -> None:
        if self.telemetry is None and self._own_sampler:
            self.resources.start()

    def close(self) -> None:
        if self.telemetry is not None:
            self.telemetry.stop()
        elif self._own_sampler:
            self.resources.stop()
        self.engine.close()


def compose(config: Config, sink: AudioSink | None = None, metrics: bool = True, ears: bool = True) -> Kiosk:
    """The engine (not yet loaded), its telemetry started (unless ``metrics`` is False or it cannot be),
    and the resource sampler.  ``ears``: load the speech recogniser (the screen app: only when there is
    a microphone to hear with; headless commands feed recorded speech and keep it)."""
    engine = Engine(config, sink=sink, ears=ears)
    telemetry = start_telemetry(config, engine) if metrics else None
    if telemetry is not None:
        return Kiosk(config, engine, telemetry, telemetry.sampler, process_started_at())
    sampler = ResourceSampler(interval_s=config.sampler.interval_s, history=config.sampler.history)
    return Kiosk(config, engine, None, sampler, process_started_at(), _own_sampler=True)


def start_telemetry(config: Config, engine: Engine) -> Any:
    """The Telemetry facade, started; None when disabled, not installed, or it cannot start."""
    if not config.metrics.enabled:
        return None
    try:
        from kiosk.telemetry import Telemetry
    except ImportError as exc:
        log.warning("telemetry is not available (%s): no /metrics", exc)
        return None
    try:
        telemetry = Telemetry(config, engine.bus, engine.exhibit.topic_ids, engine.health)
        telemetry.start()
    except KioskError as exc:
        log.error("telemetry: %s; the kiosk runs on without it", exc)
        return None
    if telemetry.server is not None and telemetry.server.running:
        log.warning("metrics: %s/metrics", telemetry.server.url)
    return telemetry
