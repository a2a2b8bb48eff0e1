"""Engine events in, exact values out of a scrape over HTTP."""

from __future__ import annotations

import random
import shutil
import string
import subprocess
import threading

import pytest

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.telemetry.metrics import KioskMetrics, short_name, topic_labels
from kiosk.telemetry.observer import TelemetryObserver

from .conftest import TOPICS, publish, request, samples, series_count, value, voice_turn


def scrape(server) -> dict:
    reply = request(server)
    assert reply.status == 200
    return samples(reply.body)


def test_turns_latencies_and_answers(metrics, serve):
    observer = TelemetryObserver(metrics)
    for i in range(3):
        publish(observer, voice_turn(i, t0=100.0 * i, first_audio=0.8, duration=6.0, topic="crew"))
    publish(observer, voice_turn(3, status="out_of_scope", topic=None, emotion="neutral", first_audio=0.9))
    publish(observer, voice_turn(4, status="cancelled", first_audio=None, duration=1.5))
    publish(observer, voice_turn(5, topic="not-a-topic", emotion="joy"))
    server = serve(metrics)
    found = scrape(server)

    assert value(found, "kiosk_turns_total", status="ok") == 4
    assert value(found, "kiosk_turns_total", status="out_of_scope") == 1
    assert value(found, "kiosk_turns_total", status="cancelled") == 1
    assert value(found, "kiosk_turns_total", status="error") == 0
    # first audio: five turns spoke (0.8 x4, 0.9), the cancelled one did not
    assert value(found, "kiosk_turn_first_audio_seconds_count") == 5
    assert value(found, "kiosk_turn_first_audio_seconds_sum") == pytest.approx(0.8 * 4 + 0.9)
    assert value(found, "kiosk_turn_first_audio_seconds_bucket", le="0.75") == 0
    assert value(found, "kiosk_turn_first_audio_seconds_bucket", le="1.0") == 5
    assert value(found, "kiosk_turn_duration_seconds_count") == 6
    assert value(found, "kiosk_turn_duration_seconds_sum") == pytest.approx(6.0 * 5 + 1.5)
    assert value(found, "kiosk_turn_duration_seconds_bucket", le="2.5") == 1
    # answers: ok turns by topic, out of scope as "none", an unknown topic as "other"
    assert value(found, "kiosk_answers_total", emotion="happy", topic="crew") == 3
    assert value(found, "kiosk_answers_total", emotion="neutral", topic="none") == 1
    assert value(found, "kiosk_answers_total", emotion="happy", topic="other") == 1  # "joy" -> happy
    assert sum(v for (name, _), v in found.items() if name == "kiosk_answers_total") == 5
    # stages: 6 turns x 0.1 s each
    assert value(found, "kiosk_stage_duration_seconds_count", stage="asr") == 6
    assert value(found, "kiosk_stage_duration_seconds_sum", stage="asr") == pytest.approx(0.6)
    assert value(found, "kiosk_stage_duration_seconds_bucket", stage="asr", le="0.05") == 0
    assert value(found, "kiosk_stage_duration_seconds_bucket", stage="asr", le="0.1") == 6
    # stage info numbers
    assert value(found, "kiosk_asr_audio_seconds_total") == pytest.approx(12.0)
    assert value(found, "kiosk_llm_tokens_total") == 240
    assert value(found, "kiosk_llm_tokens_per_second") == 20
    assert value(found, "kiosk_tts_cache_misses_total") == 6
    assert value(found, "kiosk_tts_cache_hits_total") == 0
    # face: 3 frames for each of the 5 spoken turns
    assert value(found, "kiosk_face_frames_rendered_total") == 15
    assert value(found, "kiosk_face_av_offset_seconds") == pytest.approx(0.02)
    assert not any(name.endswith("_created") for name, _ in found)


def test_who_worded_the_llm_answers(metrics, serve):
    """kiosk_llm_answers_total: how often the model's words were spoken, and why the notes were instead."""
    observer = TelemetryObserver(metrics)
    wordings = ["model", "budget", "budget", "checks", "loading", "", "not-a-wording"]
    publish(
        observer,
        [
            ev.TurnFinished(i, "ok", "crew", Emotion.HAPPY, 0.5, 2.0, llm_wording=wording)
            for i, wording in enumerate(wordings)
        ],
    )
    found = scrape(serve(metrics))
    expected = {"model": 1, "loading": 1, "budget": 2, "checks": 1, "error": 0}
    assert {w: value(found, "kiosk_llm_answers_total", wording=w) for w in ev.LLM_WORDINGS} == expected
    assert sum(v for (name, _), v in found.items() if name == "kiosk_llm_answers_total") == 5


def test_first_frame_latency_counts_the_first_frame_after_first_audio(metrics):
    observer = TelemetryObserver(metrics)
    publish(
        observer,
        [
            ev.TurnStarted(turn_id=7, source="voice", t=100.0),
            ev.SpeechEnded(turn_id=7, audio_seconds=1.0, t=101.0),
            ev.FrameRendered(turn_id=7, render_seconds=0.002, t=101.2),  # idle face before the answer
            ev.FirstAudio(turn_id=7, latency_seconds=0.8, t=101.8),
            ev.FrameRendered(turn_id=None, render_seconds=0.002, t=101.85),
            ev.FrameRendered(turn_id=7, render_seconds=0.002, t=101.9),  # this one: 0.9 s
            ev.FrameRendered(turn_id=7, render_seconds=0.002, t=101.95),
            ev.FrameDropped(turn_id=7, t=101.96),
            # a tapped question: the tap (TurnStarted) is the origin
            ev.TurnStarted(turn_id=8, source="text", t=200.0),
            ev.FirstAudio(turn_id=8, latency_seconds=0.5, t=200.5),
            ev.FrameRendered(turn_id=8, render_seconds=0.002, t=200.6),
        ],
    )
    found = samples(metrics.render())
    assert value(found, "kiosk_turn_first_frame_seconds_count") == 2
    assert value(found, "kiosk_turn_first_frame_seconds_sum") == pytest.approx(0.9 + 0.6)
    assert value(found, "kiosk_face_frames_rendered_total") == 5
    assert value(found, "kiosk_face_frames_dropped_total") == 1
    # each frame's render time is the animator_frame stage
    assert value(found, "kiosk_stage_duration_seconds_count", stage="animator_frame") == 5
    assert value(found, "kiosk_stage_duration_seconds_sum", stage="animator_frame") == pytest.approx(0.01)


def test_errors_sessions_and_models(metrics):
    observer = TelemetryObserver(metrics)
    publish(
        observer,
        [
            ev.StageFailed(turn_id=1, stage="llm", kind="oom", message="CUDA out of memory"),
            ev.StageFinished(turn_id=1, stage="tts", seconds=0.3, info={"cache_hit": 1.0}),
            ev.StageFailed(turn_id=1, stage="llm", kind="segfault?", message="x"),
            ev.StageFailed(turn_id=2, stage="made-up stage", kind="timeout", message="x"),
            ev.SessionStarted(t=10.0),
            ev.SessionEnded(duration_seconds=95.0, turns=4, t=105.0),
            ev.SessionStarted(t=200.0),
            ev.ModelLoading(stage="asr", name="tiny.en"),
            ev.ModelLoaded(
                stage="asr",
                name="/opt/models/whisper-tiny.en/",
                device="cuda:0",
                load_seconds=0.5,
                memory_bytes=150_000_000,
            ),
            ev.ModelLoading(stage="tts", name="piper"),
            ev.ModelFailed(stage="tts", name="piper", message="voice file missing"),
            ev.BackendFallback(stage="tts", backend="espeak-ng", reason="piper failed"),
            ev.ModelLoaded(
                stage="tts", name="espeak-ng", device="cpu", load_seconds=0.01, memory_bytes=2_000_000
            ),
            ev.ModelLoading(stage="llm", name="smollm2"),
            ev.ModelFailed(stage="llm", name="smollm2", message="gone"),
        ],
    )
    assert observer.failed_stages() == {"llm"}
    found = samples(metrics.render())
    assert value(found, "kiosk_tts_cache_hits_total") == 1
    assert value(found, "kiosk_stage_errors_total", stage="llm", kind="oom") == 1
    assert value(found, "kiosk_stage_errors_total", stage="llm", kind="other") == 1
    assert value(found, "kiosk_stage_errors_total", stage="other", kind="timeout") == 1
    assert value(found, "kiosk_visitors_active") == 1
    assert value(found, "kiosk_sessions_total") == 2
    assert value(found, "kiosk_session_duration_seconds_count") == 1
    assert value(found, "kiosk_session_duration_seconds_sum") == 95.0
    assert value(found, "kiosk_stage_up", stage="asr") == 1
    assert value(found, "kiosk_stage_up", stage="tts") == 1
    assert value(found, "kiosk_stage_up", stage="llm") == 0
    assert value(found, "kiosk_backend_fallback", stage="tts") == 1
    assert value(found, "kiosk_backend_fallback", stage="asr") == 0
    memory = {labels: v for (name, labels), v in found.items() if name == "kiosk_model_memory_bytes"}
    assert memory == {
        (("device", "cuda:0"), ("model", "whisper-tiny.en"), ("stage", "asr")): 150_000_000,
        (("device", "cpu"), ("model", "espeak-ng"), ("stage", "tts")): 2_000_000,
    }


def test_build_info_and_short_names(metrics):
    metrics.set_build_info(
        "0.1.0", "/srv/exhibits/apollo11", "C:\\models\\whisper-base", "smollm2", "joe", "cpu"
    )
    metrics.update_build_info(device="cuda:0")
    found = samples(metrics.render())
    info = [labels for (name, labels), v in found.items() if name == "kiosk_build_info" and v == 1]
    assert info == [
        (
            ("asr_model", "whisper-base"),
            ("device", "cuda:0"),
            ("exhibit", "apollo11"),
            ("llm_model", "smollm2"),
            ("tts_voice", "joe"),
            ("version", "0.1.0"),
        ),
    ]
    assert short_name("") == "none"
    assert short_name("/a/b/model.onnx") == "model.onnx"
    assert len(short_name("x" * 500)) == 64


def test_topics_are_capped_at_40():
    labels = topic_labels([f"t{i}" for i in range(60)] + ["t1", None, 3])
    assert len(labels) == 42 and labels[-2:] == ("other", "none")


def test_series_count_is_bounded_whatever_the_visitors_say(fake_gpu, serve):
    """5,000 turns of random questions, topics, emotions and statuses add no series after the first 10."""
    metrics = KioskMetrics(topics=TOPICS)
    observer = TelemetryObserver(metrics)
    server = serve(metrics)
    rng = random.Random(5)
    words = [
        "".join(rng.choices(string.ascii_letters + string.digits + ' {}"=\n', k=rng.randint(5, 40)))
        for _ in range(200)
    ]
    statuses = [*ev.TURN_STATUSES, "weird-status"]
    topics = [*TOPICS, None, "unknown-topic", "DROP TABLE"]

    def turn(i: int) -> None:
        question = rng.choice(words) + f" #{i}"
        events = voice_turn(
            i,
            t0=float(i),
            status=rng.choice(statuses),
            topic=rng.choice(topics + [question]),
            emotion=rng.choice([*Emotion, "furious", "", question]),
            first_audio=rng.choice([None, rng.uniform(0.2, 3.0)]),
            duration=rng.uniform(0.5, 70.0),
            stage_seconds=rng.uniform(0.001, 12.0),
            frames=1,
            question=question,
            answer=rng.choice(words),
        )
        events.append(
            ev.StageFailed(
                turn_id=i,
                stage=rng.choice([*ev.STAGES, question]),
                kind=rng.choice(["oom", "timeout", question]),
                message=question,
            )
        )
        publish(observer, events)

    for i in range(10):
        turn(i)
    after_ten = request(server).body
    for i in range(10, 5000):
        turn(i)
    after_many = request(server).body
    assert series_count(after_many) == series_count(after_ten)
    assert value(samples(after_many), "kiosk_turn_duration_seconds_count") == 5000
    text = after_many.decode()
    assert "#4999" not in text and "unknown-topic" not in text and "furious" not in text


def test_promtool_accepts_the_exposition(metrics, serve):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package 'prometheus') is not installed")
    observer = TelemetryObserver(metrics)
    publish(observer, voice_turn(1))
    observer(ev.ModelLoaded(stage="asr", name="tiny.en", device="cpu", load_seconds=0.4, memory_bytes=10))
    observer(ev.StageFailed(turn_id=1, stage="asr", kind="timeout", message="slow"))
    metrics.set_build_info("0.1.0", "apollo11-columbia", "tiny.en", "none", "en_US-joe-medium", "cpu")
    body = request(serve(metrics)).body
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_scraping_while_events_are_published(metrics, serve):
    observer = TelemetryObserver(metrics)
    server = serve(metrics)
    failures: list[object] = []
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            try:
                reply = request(server)
                assert reply.status == 200
                samples(reply.body)  # parses
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(exc)
                return

    threads = [threading.Thread(target=scraper) for _ in range(3)]
    for thread in threads:
        thread.start()
    publishers = [
        threading.Thread(target=lambda k=k: [publish(observer, voice_turn(k * 1000 + i)) for i in range(300)])
        for k in range(2)
    ]
    for thread in publishers:
        thread.start()
    for thread in publishers:
        thread.join()
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    found = scrape(server)
    assert value(found, "kiosk_turns_total", status="ok") == 600
    assert value(found, "kiosk_turn_first_frame_seconds_count") == 600
    assert value(found, "kiosk_metrics_scrapes_total", code="200") >= 3
