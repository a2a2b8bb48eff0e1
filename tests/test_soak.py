"""The soak (bench/soak.py) at 100 turns: every turn ends counted, threads and descriptors stay put.

The session's loaded stages, a pipeline whose loudspeaker plays instantly, and the real telemetry with its
/metrics endpoint on a free loopback port, scraped every second.  Memory is checked the way the bench
checks it, with a looser bound: 100 turns are too few for the TTS cache to fill up.
"""

from __future__ import annotations

import pytest

from bench.soak import run_soak
from kiosk.engine.audio_out import NullSink
from kiosk.telemetry import Telemetry

pytestmark = pytest.mark.timeout(300)


def test_a_hundred_mixed_turns_all_end_counted(make_pipeline, loaded_engine, base_config):
    loaded_engine.wait_prewarmed()  # the notes in the TTS cache, as at a kiosk's opening
    pipeline, _ = make_pipeline(sink=NullSink(realtime=False))
    telemetry = Telemetry(base_config, pipeline.bus, loaded_engine.exhibit.topic_ids, loaded_engine.health)
    telemetry.start()
    try:
        assert telemetry.server is not None and telemetry.server.running
        report = run_soak(
            pipeline, f"{telemetry.server.url}/metrics", turns=100, warmup=20, trace=False, log=lambda _: None
        )
    finally:
        telemetry.stop()
    print("\n".join(f"{what}: {figure}" for what, figure in report.summary()))
    assert report.every_turn_counted, (report.statuses, report.counted, report.unfinished)
    assert {"ok", "cancelled", "not_understood"} <= set(report.statuses)
    # /metrics is scraped once a second: as many scrapes as whole seconds the turns took (a quick machine
    # runs the hundred turns in about 4 s)
    assert report.scrapes >= max(2, int(report.seconds) - 1) and report.scrape_failures == 0
    assert report.fds[1] <= report.fds[0], report.fds
    # a finished turn's worker may still be returning when the count is read: one thread of slack
    assert report.threads[1] <= report.threads[0] + 1, report.threads
    assert report.rss_growth_pct <= 10.0, report.summary()


def test_the_heap_is_settled_unless_the_technician_set_it() -> None:
    """glibc's defaults grew the LLM kiosk by 25 MB a turn; a MALLOC_* variable of the technician's wins."""
    from kiosk.engine.device import settle_heap

    assert settle_heap({"MALLOC_ARENA_MAX": "8"}) is False
    assert settle_heap({}) is True  # glibc (Debian): both mallopt calls accepted
