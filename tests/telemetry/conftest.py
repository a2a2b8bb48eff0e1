"""Shared pieces for the telemetry tests: event sequences, a fake GPU, certificates, HTTP helpers."""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.telemetry.metrics import KioskMetrics
from kiosk.telemetry.sampler import GpuSnapshot, ResourceSampler
from kiosk.telemetry.server import MetricsServer
from tests import certs

TOPICS = ["crew", "launch", "landing", "heat-shield"]
GIB = 1024**3


# --- events -------------------------------------------------------------------------------------------


def voice_turn(
    turn_id: int,
    t0: float = 1000.0,
    status: str = "ok",
    topic: str | None = "crew",
    emotion: object = Emotion.HAPPY,
    first_audio: float | None = 0.8,
    duration: float = 6.0,
    stage_seconds: float = 0.1,
    frames: int = 3,
    question: str = "who flew it?",
    answer: str = "Three astronauts.",
) -> list[ev.Event]:
    """One voice turn's events in order, with explicit timestamps (SpeechEnded at t0 + 2)."""
    end = t0 + 2.0
    events: list[ev.Event] = [
        ev.TurnStarted(turn_id=turn_id, source="voice", t=t0),
        ev.SpeechEnded(turn_id=turn_id, audio_seconds=2.0, t=end),
    ]
    infos = {
        "asr": {"audio_seconds": 2.0},
        "llm": {"tokens": 40.0, "tokens_per_second": 20.0},
        "tts_first_audio": {"cache_hit": 0.0},  # where the pipeline reports it
    }
    for stage in ev.STAGES:
        events.append(ev.StageStarted(turn_id=turn_id, stage=stage, t=end))
        events.append(
            ev.StageFinished(
                turn_id=turn_id, stage=stage, seconds=stage_seconds, info=infos.get(stage, {}), t=end
            )
        )
    events.append(ev.Transcribed(turn_id=turn_id, text=question, understood=True, t=end + 0.4))
    events.append(
        ev.AnswerChosen(turn_id=turn_id, status=status, topic=topic, emotion=Emotion.NEUTRAL, t=end + 0.5)
    )
    if first_audio is not None:
        events.append(ev.SentenceStarted(turn_id=turn_id, index=0, text=answer, t=end + first_audio))
        events.append(ev.FirstAudio(turn_id=turn_id, latency_seconds=first_audio, t=end + first_audio))
        for i in range(frames):
            events.append(
                ev.FrameRendered(
                    turn_id=turn_id,
                    render_seconds=0.002,
                    av_offset_seconds=-0.02,
                    t=end + first_audio + 0.05 + i / 30,
                )
            )
    events.append(
        ev.TurnFinished(
            turn_id=turn_id,
            status=status,
            topic=topic,
            emotion=emotion,  # type: ignore[arg-type]
            first_audio_seconds=first_audio,
            duration_seconds=duration,
            question=question,
            answer=answer,
            t=t0 + duration,
        )
    )
    return events


def publish(target, events: list[ev.Event]) -> None:
    for event in events:
        target(event)


# --- exposition ---------------------------------------------------------------------------------------


def samples(text: str | bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from a text exposition."""
    if isinstance(text, bytes):
        text = text.decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def series_count(text: str | bytes) -> int:
    if isinstance(text, bytes):
        text = text.decode()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


# --- a fake GPU -----------------------------------------------------------------------------------------


class FakeGpuReader:
    def __init__(self) -> None:
        self.reads = 0
        self.closed = False

    def read(self) -> tuple[GpuSnapshot, ...]:
        self.reads += 1
        return (
            GpuSnapshot(
                index=0,
                name="Fake RTX 4000",
                utilization_ratio=0.42,
                memory_used_bytes=3 * GIB,
                memory_total_bytes=16 * GIB,
                temperature_c=61.0,
                process_memory_bytes=1 * GIB,
            ),
        )

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_gpu() -> FakeGpuReader:
    return FakeGpuReader()


@pytest.fixture
def metrics(fake_gpu: FakeGpuReader) -> KioskMetrics:
    m = KioskMetrics(topics=TOPICS)
    sampler = ResourceSampler(gpu_reader=fake_gpu)
    sampler.sample_once()
    m.attach_sampler(sampler)
    return m


# --- HTTP -----------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(
    server: MetricsServer,
    path: str = "/metrics",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 5.0,
) -> Reply:
    host, port = "127.0.0.1", server.port
    if server.tls:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


@pytest.fixture
def serve():
    """Start MetricsServers on free ports; all are stopped at the end of the test."""
    started: list[MetricsServer] = []

    def start(metrics: KioskMetrics, health=lambda: {"asr": True}, **kwargs) -> MetricsServer:
        server = MetricsServer(metrics, health, "127.0.0.1", 0, **kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- certificates and web configs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    folder: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # a client certificate from another CA
    rogue_key: Path

    def client_context(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if cert is not None:
            context.load_cert_chain(cert, key)
        return context


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    certs.require_openssl()
    folder = tmp_path_factory.mktemp("pki")
    certs.make_ca(folder, "ca")
    certs.make_ca(folder, "rogue-ca")
    certs.issue(folder, "server", "ca", certs.SERVER_FOR_LOOPBACK)
    certs.issue(folder, "client", "ca", certs.CLIENT)
    certs.issue(folder, "rogue", "rogue-ca", certs.CLIENT)
    return Pki(
        folder,
        folder / "ca.crt",
        folder / "server.crt",
        folder / "server.key",
        folder / "client.crt",
        folder / "client.key",
        folder / "rogue.crt",
        folder / "rogue.key",
    )


@pytest.fixture(scope="session")
def password_hash() -> str:
    """bcrypt of 'secret' at the lowest cost, so the tests stay fast."""
    return bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()


def write_web_config(folder: Path, text: str, name: str = "web.yml") -> Path:
    path = folder / name
    path.write_text(text)
    return path
