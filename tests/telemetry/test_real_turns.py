"""Telemetry over the real engine: turns driven through real models, then scraped over HTTP."""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from kiosk.engine import events as ev
from kiosk.engine.audio_in import MemorySource
from kiosk.engine.audio_out import NullSink
from kiosk.telemetry import Telemetry
from tests.conftest import silence


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_real_turns_are_scraped_with_their_values(make_pipeline, loaded_engine, speak) -> None:
    pipeline, recorder = make_pipeline(sink=NullSink(realtime=False))
    telemetry = Telemetry(
        loaded_engine.config, pipeline.bus, loaded_engine.exhibit.topic_ids, loaded_engine.health
    )
    telemetry.set_build_info(loaded_engine)
    telemetry.start()
    try:
        url = telemetry.server.url.rstrip("/") + "/metrics"
        for question in ("Who flew on Apollo 11?", "Why is it called Columbia?", "Where can I buy a pizza?"):
            pipeline.ask(question)
            assert pipeline.wait_idle(60)
        audio = np.concatenate([silence(0.5), speak("When did Apollo 11 launch?"), silence(1.0)])
        pipeline.start_listening(MemorySource(audio)).join(60)
        assert pipeline.wait_idle(60)
        finished = recorder.finished()
        assert [f.status for f in finished] == ["ok", "ok", "out_of_scope", "ok"]

        samples = scrape(url)
        assert value(samples, "kiosk_turns_total", status="ok") == 3
        assert value(samples, "kiosk_turns_total", status="out_of_scope") == 1
        assert value(samples, "kiosk_turns_total", status="cancelled") == 0
        assert value(samples, "kiosk_answers_total", emotion="happy", topic="crew") == 1
        assert value(samples, "kiosk_answers_total", emotion="happy", topic="name") == 1
        assert value(samples, "kiosk_answers_total", emotion="surprised", topic="launch") == 1
        assert value(samples, "kiosk_turn_first_audio_seconds_count") == 4
        first_audio_sum = sum(f.first_audio_seconds for f in finished)
        assert abs(value(samples, "kiosk_turn_first_audio_seconds_sum") - first_audio_sum) < 1e-6
        assert value(samples, "kiosk_stage_duration_seconds_count", stage="asr") == 1
        assert value(samples, "kiosk_stage_duration_seconds_count", stage="retrieval") == 4
        asr_seconds = next(e for e in recorder.of(ev.StageFinished) if e.stage == "asr").info["audio_seconds"]
        assert abs(value(samples, "kiosk_asr_audio_seconds_total") - asr_seconds) < 1e-6
        assert value(samples, "kiosk_process_resident_memory_bytes") > 100e6
        assert value(samples, "kiosk_gpu_available") == 0
        build = [k for k in samples if k[0] == "kiosk_build_info"]
        assert len(build) == 1 and dict(build[0][1])["asr_model"] == "whisper-tiny.en"
        with urllib.request.urlopen(url.replace("/metrics", "/healthz"), timeout=10) as response:
            assert response.status == 200
    finally:
        telemetry.stop()


def test_scraping_during_turns_does_not_slow_them(make_pipeline, loaded_engine) -> None:
    pipeline, recorder = make_pipeline(sink=NullSink(realtime=False))
    telemetry = Telemetry(
        loaded_engine.config, pipeline.bus, loaded_engine.exhibit.topic_ids, loaded_engine.health
    )
    telemetry.start()
    url = telemetry.server.url.rstrip("/") + "/metrics"
    stop = threading.Event()
    scrapes = []

    def scraper() -> None:
        while not stop.is_set():
            started = time.monotonic()
            urllib.request.urlopen(url, timeout=10).read()
            scrapes.append(time.monotonic() - started)
            stop.wait(0.02)  # 50 scrapes a second: 750 times what Prometheus asks

    def turns(count: int) -> list[float]:
        times = []
        for i in range(count):
            started = time.monotonic()
            pipeline.ask(["Who flew on Apollo 11?", "How big is the command module?"][i % 2])
            assert pipeline.wait_idle(60)
            times.append(time.monotonic() - started)
        return times

    try:
        turns(2)  # warm the cache of spoken sentences for both
        quiet = turns(10)
        thread = threading.Thread(target=scraper, daemon=True)
        thread.start()
        busy = turns(10)
        stop.set()
        thread.join(5)
    finally:
        telemetry.stop()
    assert len(scrapes) >= 5
    # a turn with its sentences cached takes milliseconds: a scrape's cost would show plainly
    assert statistics.median(busy) < statistics.median(quiet) + 0.05, (quiet, busy)
