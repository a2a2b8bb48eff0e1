"""The Telemetry facade on a real EventBus and configuration, and the metrics dump."""

from __future__ import annotations

import json
import logging

import pytest

from kiosk.config import load_config
from kiosk.engine import events as ev
from kiosk.engine.events import EventBus
from kiosk.errors import ConfigError
from kiosk.telemetry import Telemetry
from kiosk.telemetry.dump import dump_metrics

from .conftest import FakeGpuReader, publish, request, samples, value, voice_turn, write_web_config


@pytest.fixture
def config_file(tmp_path):
    def make(metrics: str = "port = 0\n") -> str:
        path = tmp_path / "kiosk.toml"
        path.write_text("[metrics]\n" + metrics + "[sampler]\ninterval_s = 0.05\n")
        return str(path)

    return make


def test_telemetry_end_to_end(config_file, fake_gpu):
    config = load_config(config_file(), env={})
    bus = EventBus()
    stages = {"asr": False, "tts": True}
    telemetry = Telemetry(config, bus, ["crew", "launch"], lambda: dict(stages), gpu_reader=fake_gpu)
    bus.publish(ev.ModelLoading(stage="asr", name="tiny.en"))  # before start(): still counted
    telemetry.start()
    try:
        server = telemetry.server
        assert server is not None and server.running and server.port > 0
        for i in range(3):
            for event in voice_turn(i, topic="launch"):
                bus.publish(event)
        reply = request(server)
        found = samples(reply.body)
        assert value(found, "kiosk_turns_total", status="ok") == 3
        assert value(found, "kiosk_answers_total", emotion="happy", topic="launch") == 3
        assert value(found, "kiosk_stage_up", stage="asr") == 0
        assert value(found, "kiosk_gpu_memory_total_bytes", gpu="0") == 16 * 1024**3
        assert (
            value(
                found,
                "kiosk_build_info",
                version="0.1.0",
                exhibit="eileen-collins",  # the shipped default (env={})
                asr_model="tiny.en",
                llm_model="none",  # the default answer backend is retrieval: no LLM
                tts_voice="en_US-joe-medium",
                device="auto",
            )
            == 1
        )
        assert samples(telemetry.render()).keys() == found.keys()
        assert telemetry.sampler.running and telemetry.sampler.latest() is not None

        health = request(server, "/healthz")
        assert health.status == 503 and json.loads(health.body)["status"] == "loading"
        bus.publish(ev.ModelFailed(stage="asr", name="tiny.en", message="no model"))
        assert telemetry.health_report() == {"status": "degraded", "stages": {"asr": False, "tts": True}}
        stages["asr"] = True
        assert request(server, "/healthz").status == 200
    finally:
        telemetry.stop()
    assert not telemetry.server.running and not telemetry.sampler.running
    publish(bus.publish, voice_turn(9))  # unsubscribed: no longer counted
    assert value(samples(telemetry.render()), "kiosk_turns_total", status="ok") == 3


def test_build_info_from_the_loaded_engine(config_file):
    class LoadedEngine:
        def build_info(self) -> dict[str, str]:
            return {
                "asr_model": "/opt/whisper/base",
                "llm_model": "smollm2",
                "device": "cpu,cuda:0",
                "x": "y",
            }

    config = load_config(config_file("enabled = false\n"), env={})
    bus = EventBus()
    telemetry = Telemetry(config, bus, [], dict, gpu_reader=FakeGpuReader())
    telemetry.set_build_info(LoadedEngine())
    bus.publish(
        ev.ModelLoaded(stage="answer", name="smollm2", device="cpu", load_seconds=1.0, memory_bytes=5)
    )
    found = samples(telemetry.render())
    info = [dict(labels) for (name, labels), v in found.items() if name == "kiosk_build_info"]
    assert info == [
        {
            "version": "0.1.0",
            "exhibit": "eileen-collins",  # the shipped default (env={})
            "asr_model": "base",
            "llm_model": "smollm2",
            "tts_voice": "en_US-joe-medium",
            "device": "cpu,cuda:0",
        }
    ]
    assert value(found, "kiosk_stage_up", stage="answer") == 1
    assert value(found, "kiosk_model_memory_bytes", stage="answer", model="smollm2", device="cpu") == 5


def test_web_config_is_relative_to_the_config_file(tmp_path, config_file, password_hash):
    write_web_config(tmp_path, f"basic_auth_users:\n  ops: '{password_hash}'\n")
    config = load_config(config_file('port = 0\nweb_config = "web.yml"\n'), env={})
    telemetry = Telemetry(config, EventBus(), [], dict, gpu_reader=FakeGpuReader())
    telemetry.start()
    try:
        assert request(telemetry.server).status == 401
    finally:
        telemetry.stop()


def test_broken_web_config_fails_at_construction(tmp_path, config_file):
    write_web_config(tmp_path, "basic_auth_users:\n  ops: hunter2\n")
    config = load_config(config_file('port = 0\nweb_config = "web.yml"\n'), env={})
    with pytest.raises(ConfigError, match=r"web\.yml: basic_auth_users\.ops: expected a bcrypt hash"):
        Telemetry(config, EventBus(), [], dict)


def test_port_in_use_leaves_the_kiosk_running(config_file, caplog):
    first = Telemetry(load_config(config_file(), env={}), EventBus(), [], dict, gpu_reader=FakeGpuReader())
    first.start()
    try:
        taken = first.server.port
        second = Telemetry(
            load_config(config_file(f"port = {taken}\n"), env={}),
            EventBus(),
            [],
            dict,
            gpu_reader=FakeGpuReader(),
        )
        with caplog.at_level(logging.ERROR, logger="kiosk.telemetry"):
            second.start()
        assert second.server_error and "cannot listen" in second.server_error
        assert second.sampler.running
        second.stop()
    finally:
        first.stop()


def test_metrics_disabled_means_no_server(config_file):
    config = load_config(config_file("enabled = false\n"), env={})
    telemetry = Telemetry(config, EventBus(), [], dict, gpu_reader=FakeGpuReader())
    telemetry.start()
    try:
        assert telemetry.server is None
        assert b"kiosk_turns_total" in telemetry.render()
    finally:
        telemetry.stop()


def test_dump_metrics(fake_gpu):
    text = dump_metrics(load_config(env={}), gpu_reader=fake_gpu)
    found = samples(text)
    assert value(found, "kiosk_gpu_available") == 1
    assert value(found, "kiosk_process_resident_memory_bytes") > 0
    # the shipped exhibit's topics are label values from the start
    assert value(found, "kiosk_answers_total", emotion="neutral", topic="other") == 0
    topics = {dict(labels)["topic"] for (name, labels) in found if name == "kiosk_answers_total"}
    assert len(topics) > 3 and {"other", "none"} <= topics
