"""``kiosk metrics dump``: the exposition text a scrape would return now, without a server."""

from __future__ import annotations

import logging

from kiosk.config import Config
from kiosk.telemetry import build_labels
from kiosk.telemetry.metrics import KioskMetrics
from kiosk.telemetry.sampler import GpuReader, ResourceSampler

log = logging.getLogger(__name__)


def exhibit_topics(config: Config) -> list[str]:
    """The configured exhibit's topic ids, or none if the pack does not load (the dump still works)."""
    from kiosk.errors import KioskError
    from kiosk.exhibit import load_exhibit

    try:
        return load_exhibit(config.exhibit.path).topic_ids
    except KioskError as exc:
        log.warning("%s; topics will show as 'other'", exc)
        return []


def dump_metrics(config: Config, gpu_reader: GpuReader | None = None) -> str:
    """Build the registry, take one resource sample and render the text exposition."""
    metrics = KioskMetrics(topics=exhibit_topics(config))
    metrics.set_build_info(**build_labels(config))
    sampler = ResourceSampler(
        interval_s=config.sampler.interval_s, history=config.sampler.history, gpu_reader=gpu_reader
    )
    sampler.sample_once()
    metrics.attach_sampler(sampler)
    return metrics.render().decode("utf-8")
