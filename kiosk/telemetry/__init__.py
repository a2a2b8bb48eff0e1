"""Telemetry: the kiosk's Prometheus metrics, resource sampler and HTTP endpoint.

The engine never imports prometheus_client; :class:`Telemetry` subscribes an observer to its EventBus,
runs a :class:`ResourceSampler` (which the UI's ops panel reads too) and serves ``/metrics`` and
``/healthz``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.config import Config
from kiosk.engine.events import EventBus
from kiosk.engine.threads import WorkerThread
from kiosk.errors import KioskError
from kiosk.telemetry.metrics import BUILD_LABELS, KioskMetrics
from kiosk.telemetry.observer import TelemetryObserver
from kiosk.telemetry.sampler import GpuReader, GpuSnapshot, NvmlReader, ResourceSampler, ResourceSnapshot
from kiosk.telemetry.server import MetricsServer, health_status

__all__ = [
    "GpuReader",
    "GpuSnapshot",
    "KioskMetrics",
    "MetricsServer",
    "NvmlReader",
    "ResourceSampler",
    "ResourceSnapshot",
    "Telemetry",
    "TelemetryObserver",
    "build_labels",
]

log = logging.getLogger(__name__)


def build_labels(config: Config) -> dict[str, str]:
    """``kiosk_build_info`` labels from the configuration (model names shortened to basenames)."""
    if config.tts.voice_path:
        voice = Path(config.tts.voice_path).stem
    elif config.tts.backend == "piper":
        voice = "en_US-joe-medium"
    else:
        voice = "espeak-ng"
    return {
        "version": __version__,
        "exhibit": Path(config.exhibit.path).name,
        "asr_model": config.asr.model,
        "llm_model": config.llm.model if config.answer.backend == "llm" else "none",
        "tts_voice": voice,
        "device": config.asr.device,
    }


def config_dir(config: Config) -> Path | None:
    """The folder of the configuration file, for relative paths (None for built-in defaults)."""
    source = Path(config.source)
    return source.parent if source.is_file() else None


class Telemetry:
    """Metrics, the observer on ``bus``, the resource sampler and (if enabled) the HTTP endpoint.

    The observer is subscribed at construction, so model-loading events emitted before ``start()`` are
    counted; ``start()`` starts the sampler thread and the server, ``stop()`` stops both and
    unsubscribes.  A server that cannot listen is logged, not raised: the guide keeps talking.
    """

    def __init__(
        self,
        config: Config,
        bus: EventBus,
        exhibit_topics: list[str],
        health: Callable[[], Mapping[str, bool]],
        gpu_reader: GpuReader | None = None,
    ) -> None:
        self.config = config
        self._bus = bus
        self.health = health
        self.metrics = KioskMetrics(topics=exhibit_topics)
        self.metrics.set_build_info(**build_labels(config))
        self.observer = TelemetryObserver(self.metrics)
        self.sampler = ResourceSampler(
            interval_s=config.sampler.interval_s, history=config.sampler.history, gpu_reader=gpu_reader
        )
        self.metrics.attach_sampler(self.sampler)
        self.server: MetricsServer | None = None
        self.server_error: str | None = None
        if config.metrics.enabled:  # a broken web_config raises ConfigError here, at start-up
            self.server = MetricsServer.from_config(
                config.metrics, self.metrics, health, self.observer.failed_stages, config_dir(config)
            )
        self._unsubscribe: Callable[[], None] | None = bus.subscribe(self.observer)
        self._stop_retry = threading.Event()
        self._retry: threading.Thread | None = None

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self._bus.subscribe(self.observer)
        self.sampler.start()
        if self.server is not None and not self._listen():
            log.error(
                "%s; the kiosk runs on, trying again every %g s",
                self.server_error,
                self.config.metrics.listen_retry_s,
            )
            self._stop_retry.clear()
            self._retry = WorkerThread(target=self._retry_listen, name="metrics-retry", daemon=True)
            self._retry.start()

    def _listen(self) -> bool:
        """One attempt to open the port; a failure is counted and kept in ``server_error``."""
        assert self.server is not None
        try:
            self.server.start()
        except KioskError as exc:
            self.server_error = str(exc)
            self.metrics.count_listen_failure()
            return False
        self.server_error = None
        return True

    def _retry_listen(self) -> None:
        while not self._stop_retry.wait(self.config.metrics.listen_retry_s):
            if self._listen():
                assert self.server is not None
                log.warning("metrics: %s/metrics (the port is free now)", self.server.url)
                return

    def stop(self) -> None:
        self._stop_retry.set()
        if self._retry is not None:
            self._retry.join(timeout=5.0)
            self._retry = None
        if self.server is not None:
            self.server.stop()
        self.sampler.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def set_build_info(self, source: Any) -> None:
        """Replace ``kiosk_build_info`` with what actually loaded: ``engine.build_info()`` or a mapping.

        Labels missing from it keep the values taken from the configuration.
        """
        labels = source.build_info() if hasattr(source, "build_info") else source
        self.metrics.update_build_info(**{k: str(v) for k, v in labels.items() if k in BUILD_LABELS})

    def render(self) -> bytes:
        """The text exposition, exactly what a scrape of /metrics returns."""
        return self.metrics.render()

    def health_report(self) -> dict[str, object]:
        """What /healthz answers: {"status": "ok"|"degraded"|"loading", "stages": {stage: bool}}."""
        stages = {str(k): bool(v) for k, v in self.health().items()}
        return {"status": health_status(stages, self.observer.failed_stages()), "stages": stages}
