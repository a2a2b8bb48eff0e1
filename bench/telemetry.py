"""Telemetry costs: rendering /metrics, instrumenting a turn, scraping under concurrency.

    .venv/bin/python bench/telemetry.py [--turns 1000] [--scrapers 10] [--scrapes 40] [--tls]

Prints one table.  Targets: render after 1,000 turns < 5 ms; the observer's cost per turn < 0.1 % of
a turn's CPU time (3.0 s unless --turn-cpu-s says otherwise: a real 8-13 s turn with the face animating
measured 3.0-3.9 s of process CPU on the 2-core machine); scrape latency is reported, not judged.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bcrypt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe  # noqa: E402
from kiosk.emotion import Emotion  # noqa: E402
from kiosk.engine import events as ev  # noqa: E402
from kiosk.engine.events import EventBus  # noqa: E402
from kiosk.telemetry.metrics import KioskMetrics  # noqa: E402
from kiosk.telemetry.observer import TelemetryObserver  # noqa: E402
from kiosk.telemetry.sampler import GpuSnapshot, ResourceSampler  # noqa: E402
from kiosk.telemetry.server import MetricsServer  # noqa: E402

TOPICS = ["crew", "launch", "journey", "landing", "return", "capsule", "heat-shield", "splashdown"]
FPS = 30
ANSWER_SECONDS = 8.0  # three spoken sentences


class FakeGpu:
    def read(self) -> tuple[GpuSnapshot, ...]:
        return (GpuSnapshot(0, "bench GPU", 0.3, 2 << 30, 16 << 30, 55.0, 1 << 30),)


def turn_events(turn_id: int) -> list[ev.Event]:
    """What the pipeline emits in one voice turn, frames included (30 fps for an 8 s answer)."""
    t = 1000.0 * turn_id
    events: list[ev.Event] = [
        ev.TurnStarted(turn_id=turn_id, source="voice", t=t),
        ev.SpeechEnded(turn_id=turn_id, audio_seconds=2.0, t=t + 2),
    ]
    info = {
        "asr": {"audio_seconds": 2.0},
        "llm": {"tokens": 40.0, "tokens_per_second": 17.0},
        "tts_first_audio": {"cache_hit": 0},
    }
    for stage in ev.STAGES:
        events.append(ev.StageStarted(turn_id=turn_id, stage=stage, t=t + 2))
        events.append(
            ev.StageFinished(turn_id=turn_id, stage=stage, seconds=0.2, info=info.get(stage, {}), t=t + 2)
        )
    events.append(ev.Transcribed(turn_id=turn_id, text="who were the crew?", understood=True, t=t + 2.5))
    events.append(
        ev.AnswerChosen(turn_id=turn_id, status="ok", topic="crew", emotion=Emotion.HAPPY, t=t + 2.6)
    )
    events.append(ev.FirstAudio(turn_id=turn_id, latency_seconds=0.9, t=t + 2.9))
    for index in range(3):
        events.append(ev.SentenceStarted(turn_id=turn_id, index=index, text="A sentence.", t=t + 3 + index))
    for frame in range(int(FPS * ANSWER_SECONDS)):
        events.append(
            ev.FrameRendered(
                turn_id=turn_id, render_seconds=0.002, av_offset_seconds=0.01, t=t + 2.95 + frame / FPS
            )
        )
    events.append(
        ev.TurnFinished(
            turn_id=turn_id,
            status="ok",
            topic=TOPICS[turn_id % len(TOPICS)],
            emotion=Emotion.HAPPY,
            first_audio_seconds=0.9,
            duration_seconds=11.0,
            question="who were the crew?",
            answer="Three astronauts.",
            t=t + 11,
        )
    )
    return events


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


def bench_render(metrics: KioskMetrics, repeats: int) -> tuple[float, int]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        body = metrics.render()
        times.append(time.perf_counter() - start)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return median_ms(times), series


def bench_turn_cost(turns: list[list[ev.Event]]) -> tuple[float, float, int]:
    """Median seconds to publish one turn's events: through a bus with the observer, and an empty bus."""
    with_observer = EventBus()
    with_observer.subscribe(TelemetryObserver(KioskMetrics(topics=TOPICS)))
    empty = EventBus()
    results = []
    for bus in (with_observer, empty):
        times = []
        for _ in range(3):
            for events in turns:
                start = time.perf_counter()
                for event in events:
                    bus.publish(event)
                times.append(time.perf_counter() - start)
        results.append(statistics.median(times))
    return results[0], results[1], len(turns[0])


def scrape_loop(port: int, scrapers: int, scrapes: int, auth: str, cafile: str) -> list[float]:
    """``scrapers`` threads each GET /metrics ``scrapes`` times on a fresh connection; their latencies."""
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    headers = {"Authorization": auth} if auth else {}
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def scraper() -> None:
        mine = []
        try:
            for _ in range(scrapes):
                if context is not None:
                    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
                else:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                start = time.perf_counter()
                conn.request("GET", "/metrics", headers=headers)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - start)
                conn.close()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=scraper) for _ in range(scrapers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} scrapers failed, first: {errors[0]!r}")
    return latencies


def bench_scrapes(
    server: MetricsServer, scrapers: int, scrapes: int, auth: str = "", cafile: str = ""
) -> list[float]:
    """Scrape from another process, as Prometheus would: the load generator does not share our GIL."""
    scrape_loop(server.port, 1, 1, auth, cafile)  # warm up (and fill the bcrypt cache)
    command = [sys.executable, __file__, "--child-scrape", str(server.port), str(scrapers), str(scrapes)]
    command += ["--auth", auth, "--cafile", cafile]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"scraper process failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def make_tls(folder: Path, password_hash: str) -> tuple[Path, Path]:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    )
    web = folder / "web.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  bench: '{password_hash}'\n"
    )
    return web, folder / "server.crt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--scrapers", type=int, default=10)
    parser.add_argument("--scrapes", type=int, default=40, help="per scraper")
    parser.add_argument("--turn-cpu-s", type=float, default=3.0, help="CPU seconds a typical turn costs")
    parser.add_argument("--tls", action="store_true", help="also scrape over TLS with basic auth")
    parser.add_argument("--child-scrape", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--auth", default="", help=argparse.SUPPRESS)
    parser.add_argument("--cafile", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_scrape:
        print(json.dumps(scrape_loop(*args.child_scrape, args.auth, args.cafile)))
        return 0
    print(describe(), flush=True)

    metrics = KioskMetrics(topics=TOPICS)
    sampler = ResourceSampler(gpu_reader=FakeGpu())
    sampler.sample_once()
    metrics.attach_sampler(sampler)
    observer = TelemetryObserver(metrics)
    for i in range(args.turns):
        for event in turn_events(i):
            observer(event)
    render_ms, series = bench_render(metrics, repeats=200)

    turns = [turn_events(i) for i in range(200)]
    with_observer, empty_bus, events_per_turn = bench_turn_cost(turns)
    observer_cost = max(0.0, with_observer - empty_bus)
    share = observer_cost / args.turn_cpu_s * 100

    rows = [
        (
            f"render /metrics after {args.turns} turns ({series} series), median",
            f"{render_ms:.2f} ms",
            "< 5 ms",
            render_ms < 5,
        ),
        (
            f"publish one turn ({events_per_turn} events) through bus + observer",
            f"{with_observer * 1e6:.0f} µs",
            "",
            None,
        ),
        ("  of which the observer (minus an empty bus)", f"{observer_cost * 1e6:.0f} µs", "", None),
        ("  observer per event", f"{observer_cost / events_per_turn * 1e6:.2f} µs", "a few µs", None),
        (f"  share of a turn's CPU ({args.turn_cpu_s:g} s)", f"{share:.4f} %", "< 0.1 %", share < 0.1),
    ]

    server = MetricsServer(metrics, lambda: {"asr": True}, "127.0.0.1", 0)
    server.start()
    try:
        alone = bench_scrapes(server, 1, args.scrapes)
        rows.append(("scrape latency, one scraper, median", f"{median_ms(alone):.2f} ms", "", None))
        request_count = args.scrapers * args.scrapes
        latencies = bench_scrapes(server, args.scrapers, args.scrapes)
        rows.append(
            (
                f"scrape latency, {args.scrapers} concurrent scrapers ({request_count} GETs), median",
                f"{median_ms(latencies):.2f} ms",
                "",
                None,
            )
        )
        rows.append(("  P95", f"{p95_ms(latencies):.2f} ms", "", None))
    finally:
        server.stop()

    if args.tls and shutil.which("openssl"):
        hashed = bcrypt.hashpw(b"bench", bcrypt.gensalt(rounds=12)).decode()
        with tempfile.TemporaryDirectory() as folder:
            web, cafile = make_tls(Path(folder), hashed)
            server = MetricsServer(metrics, lambda: {"asr": True}, "127.0.0.1", 0, web_config=web)
            server.start()
            try:
                auth = "Basic " + base64.b64encode(b"bench:bench").decode()
                latencies = bench_scrapes(server, args.scrapers, args.scrapes, auth, str(cafile))
                rows.append(
                    (
                        "scrape over TLS + basic auth (new TLS connection each), median",
                        f"{median_ms(latencies):.2f} ms",
                        "",
                        None,
                    )
                )
                rows.append(
                    (
                        "  P95",
                        f"{p95_ms(latencies):.2f} ms",
                        "",
                        None,
                    )
                )
            finally:
                server.stop()

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  {'target':>9}  ok")
    print("-" * (width + 30))
    for name, measured, target, ok in rows:
        mark = "" if ok is None else ("yes" if ok else "NO")
        print(f"{name:<{width}}  {measured:>12}  {target:>9}  {mark}")
    return 0 if all(ok is not False for *_, ok in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
