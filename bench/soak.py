"""Soak: a headless kiosk through many turns as fast as it can, watched from its own /metrics.

    .venv/bin/python bench/soak.py                     # 1,000 turns
    .venv/bin/python bench/soak.py --turns 200 --json out.json

The kiosk is the real one (compose(): engine, telemetry, the metrics endpoint on a free loopback port),
with the hardware edges replaced: no microphone (spoken questions are whole recordings, as ``kiosk ask
--wav`` gives them) and a loudspeaker that plays instantly (NullSink(realtime=False)).  The turns are a
fixed, seeded mix: typed questions of every kind from bench/questions (facts, follow-ups, out of scope,
hostile), spoken ones (Piper speech, one with a long pause in it), silence, noise, filtered input,
cancellations (stop tapped mid-answer) and barge-in (the next question arriving while the answer is still
being spoken, which cancels it).  Turns start once the engine has spoken the notes into the TTS cache, as a
kiosk does before its first visitor.  A scraper reads /metrics every second.

Reported: RSS after warm-up and its slope, threads and file descriptors (first and last after warm-up),
the TTS cache and the conversation's size, the A/V offset gauge, the turns by status (from the events and
from /metrics: every turn must end with a counted status), and, when RSS grows, the top growing Python
allocations (tracemalloc, started after warm-up).  ``tests/test_soak.py`` runs 100 turns with the same
checks; ``bench/reliability.py`` runs 1,000 and writes RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import sys
import threading
import time
import tracemalloc
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.machine import describe  # noqa: E402
from kiosk.config import Config, load_config  # noqa: E402
from kiosk.engine import events as ev  # noqa: E402

QUESTIONS = ROOT / "bench" / "questions" / "apollo11-columbia.tsv"
BLOCKED_WORD = "frobnicate"  # put in [answer] blocklist, so a question with it is filtered
SPOKEN = (
    "Who flew on Apollo 11?",
    "How much does the command module weigh?",
    "Where is the capsule now?",
)
PAUSED = ("When did Apollo 11", "land on the Moon?")  # said with a 1.2 s pause between
# kind -> share of the turns (the rest are typed questions)
MIX = {
    "spoken": 0.06,
    "paused": 0.02,
    "silence": 0.03,
    "noise": 0.03,
    "filtered": 0.03,
    "cancel": 0.08,
    "barge_in": 0.20,
}
RSS_GROWTH_TARGET_PCT = 3.0  # issue 15: RSS growth after warm-up over 1,000 turns
RSS_LINE = re.compile(r"^kiosk_process_resident_memory_bytes (\S+)$", re.M)
TURN_LINE = re.compile(r'^kiosk_turns_total\{status="(\w+)"\} (\S+)$', re.M)
AV_LINE = re.compile(r"^kiosk_face_av_offset_seconds (\S+)$", re.M)


def soak_config(cache_dir: str | None = None) -> Config:
    env = {
        "KIOSK_AUDIO__INPUT": '"none"',
        "KIOSK_AUDIO__OUTPUT": '"none"',
        "KIOSK_METRICS__PORT": "0",
        "KIOSK_ANSWER__BACKEND": '"retrieval"',
        "KIOSK_ANSWER__BLOCKLIST": f'["{BLOCKED_WORD}"]',
        "KIOSK_EXHIBIT__PATH": '"apollo11-columbia"',  # its questions are about Apollo 11
    }
    cache_dir = cache_dir or os.environ.get("DOCENT_TEST_CACHE")
    if cache_dir:
        env["KIOSK_PATHS__CACHE_DIR"] = f'"{cache_dir}"'
    return load_config(env=env)


def typed_questions() -> list[str]:
    out = []
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            question = line.split("\t")[1]
            out.extend(part.strip() for part in question.split(">>"))  # a follow-up: both, in order
    return [q for q in out if q and "\\x" not in q and q != "{long}"]


def plan_turns(count: int, seed: int = 15) -> list[str]:
    """The kinds of ``count`` turns, in a seeded order (same run, same turns)."""
    rng = random.Random(seed)
    kinds = []
    for kind, share in MIX.items():
        kinds += [kind] * round(count * share)
    kinds += ["typed"] * (count - len(kinds))
    rng.shuffle(kinds)
    return kinds[:count]


@dataclass
class Sample:
    turn: int
    t: float
    rss_bytes: float
    threads: int
    fds: int
    scraped_rss_bytes: float | None = None


@dataclass
class SoakReport:
    turns: int
    seconds: float
    warmup_turns: int
    kinds: dict[str, int]
    statuses: dict[str, int]  # from TurnFinished events
    counted: dict[str, int]  # from /metrics kiosk_turns_total
    unfinished: int
    scrapes: int
    scrape_failures: int
    rss_warm_mb: float
    rss_end_mb: float
    rss_growth_pct: float
    rss_slope_kb_per_turn: float
    threads: tuple[int, int]  # first and last after warm-up
    threads_max: int
    fds: tuple[int, int]
    fds_max: int
    tts_cache_entries: int
    tts_cache_mb: float
    conversation_said: int
    av_offset_s: float | None
    stage_errors: int
    traced_growth_mb: float | None = None
    top_growth: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    @property
    def every_turn_counted(self) -> bool:
        return self.unfinished == 0 and sum(self.counted.values()) == self.turns == sum(
            self.statuses.values()
        )

    def summary(self) -> list[tuple[str, str]]:
        """(what, figure) rows for the report."""
        return [
            (
                "turns (kinds)",
                f"{self.turns} in {self.seconds:.0f} s ({self.turns / self.seconds:.1f}/s): "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.kinds.items())),
            ),
            ("turns by status (events)", ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))),
            (
                "turns counted in /metrics",
                f"{sum(self.counted.values())} of {self.turns}; unfinished {self.unfinished}",
            ),
            ("/metrics scrapes", f"{self.scrapes} ok, {self.scrape_failures} failed"),
            (
                "RSS after warm-up -> end",
                f"{self.rss_warm_mb:.0f} -> {self.rss_end_mb:.0f} MB "
                f"({self.rss_growth_pct:+.1f} %, slope {self.rss_slope_kb_per_turn:+.1f} kB/turn; "
                f"warm-up {self.warmup_turns} turns)",
            ),
            (
                "threads after warm-up (first, last, max)",
                f"{self.threads[0]}, {self.threads[1]}, {self.threads_max}",
            ),
            ("file descriptors (first, last, max)", f"{self.fds[0]}, {self.fds[1]}, {self.fds_max}"),
            ("TTS cache", f"{self.tts_cache_entries} entries, {self.tts_cache_mb:.1f} MB"),
            ("conversation (sentences said)", str(self.conversation_said)),
            (
                "A/V offset gauge",
                f"{self.av_offset_s or 0:.3f} s (moves only while the face renders; none here)",
            ),
            ("stage errors counted", str(self.stage_errors)),
            (
                "Python heap growth after warm-up (tracemalloc)",
                "not traced" if self.traced_growth_mb is None else f"{self.traced_growth_mb:+.2f} MB",
            ),
        ]


class Scraper:
    """GETs /metrics every ``interval_s`` on its own thread; keeps the last body and the counts."""

    def __init__(self, url: str, interval_s: float = 1.0) -> None:
        self.url = url
        self.interval_s = interval_s
        self.ok = 0
        self.failed = 0
        self.last = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-scraper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def scrape(self) -> str:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:  # noqa: S310 - loopback
                self.last = response.read().decode()
            self.ok += 1
        except OSError:
            self.failed += 1
        return self.last

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.scrape()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def resample(audio: np.ndarray, rate: int, to: int = 16000) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(to, rate)
    return resample_poly(audio, to // g, rate // g).astype(np.float32)


def synthesise(tts, text: str) -> np.ndarray:
    """Piper speech for ``text`` as a microphone would give it: 16 kHz float32."""
    from kiosk.emotion import Emotion
    from kiosk.engine.cancel import CancelToken

    chunks = list(tts.stream(text, Emotion.NEUTRAL, CancelToken()))
    return resample(np.concatenate([c.audio for c in chunks]), chunks[0].sample_rate)


SETTLE_SAMPLES = 3  # samples are 10 turns apart


def _process():
    import psutil

    return psutil.Process()


def _sample(turn: int, started: float, scraped: float | None = None) -> Sample:
    proc = _process()
    return Sample(
        turn, time.monotonic() - started, proc.memory_info().rss, proc.num_threads(), proc.num_fds(), scraped
    )


def _slope(samples: list[Sample]) -> float:
    if len(samples) < 2:
        return 0.0
    x = np.array([s.turn for s in samples], dtype=float)
    y = np.array([s.rss_bytes for s in samples], dtype=float)
    return float(np.polyfit(x, y, 1)[0])


def run_soak(
    pipeline,
    metrics_url: str,
    turns: int,
    warmup: int | None = None,
    trace: bool = True,
    seed: int = 15,
    turn_timeout_s: float = 60.0,
    log=print,
) -> SoakReport:
    """Drive a pipeline (its stages loaded, its bus watched by telemetry serving ``metrics_url``)."""
    rng = random.Random(seed)
    warmup = warmup if warmup is not None else max(10, turns // 10)
    tts = pipeline.stages.tts
    questions = typed_questions()
    spoken = [synthesise(tts, q) for q in SPOKEN]
    gap = np.zeros(int(1.2 * 16000), dtype=np.float32)
    paused = np.concatenate([synthesise(tts, PAUSED[0]), gap, synthesise(tts, PAUSED[1])])
    noise_rng = np.random.default_rng(seed)

    finished: list[ev.TurnFinished] = []
    failures: list[ev.StageFailed] = []

    def record(event: ev.Event) -> None:
        if isinstance(event, ev.TurnFinished):
            finished.append(event)
        elif isinstance(event, ev.StageFailed):
            failures.append(event)

    unsubscribe = pipeline.bus.subscribe(record)
    scraper = Scraper(metrics_url)
    scraper.start()
    kinds = plan_turns(turns, seed)
    made = []
    samples: list[Sample] = []
    started = time.monotonic()
    snapshot = None
    try:
        for index, kind in enumerate(kinds):
            if index == warmup:
                _settle(pipeline, turn_timeout_s)
                if trace:
                    tracemalloc.start(8)
                    snapshot = tracemalloc.take_snapshot()
                samples.append(_sample(index, started))
            turn = _one_turn(pipeline, kind, rng, questions, spoken, paused, noise_rng)
            made.append(turn.finished)  # not the turn: its audio and plan would be the soak's own leak
            if kinds[index + 1 : index + 2] != ["barge_in"]:  # barge-in: the next question interrupts
                turn.done.wait(turn_timeout_s)
            if index > warmup and (index - warmup) % 10 == 0:
                body = scraper.last
                match = RSS_LINE.search(body)
                samples.append(_sample(index, started, float(match.group(1)) if match else None))
                if (index - warmup) % 100 == 0:
                    log(
                        f"turn {index}: rss {samples[-1].rss_bytes / 2**20:.0f} MB, "
                        f"threads {samples[-1].threads}, fds {samples[-1].fds}"
                    )
        for finished_event in made:
            finished_event.wait(turn_timeout_s)
        _settle(pipeline, turn_timeout_s)
        samples.append(_sample(len(kinds), started))
        growth = None
        top: list[str] = []
        if snapshot is not None:
            now = tracemalloc.take_snapshot()
            tracemalloc.stop()
            stats = now.compare_to(snapshot, "traceback")
            growth = sum(s.size_diff for s in stats) / 2**20
            for stat in stats[:8]:
                ours = [f for f in stat.traceback if "numpy" not in f.filename] or list(stat.traceback)
                frames = [
                    f"{f.filename.split('site-packages/')[-1].replace(str(ROOT) + '/', '')}:{f.lineno}"
                    for f in ours[-3:]
                ]
                top.append(
                    f"{stat.size_diff / 1024:+.0f} kB in {stat.count_diff:+d} blocks at "
                    + " < ".join(reversed(frames))
                )
        body = scraper.scrape()
    finally:
        scraper.stop()
        unsubscribe()
    seconds = time.monotonic() - started
    counted = {s: int(float(v)) for s, v in TURN_LINE.findall(body) if float(v)}
    av = AV_LINE.search(body)
    after = samples
    warm = after[0]
    end = after[-1]
    cache = getattr(tts, "cache", None)
    planner = getattr(pipeline.stages.answerer, "_planner", None)
    conversation = getattr(planner, "_conversation", None)
    return SoakReport(
        turns=len(made),
        seconds=seconds,
        warmup_turns=warmup,
        kinds=dict(Counter(kinds)),
        statuses=dict(Counter(e.status for e in finished)),
        counted=counted,
        unfinished=sum(not f.is_set() for f in made),
        scrapes=scraper.ok,
        scrape_failures=scraper.failed,
        rss_warm_mb=warm.rss_bytes / 2**20,
        rss_end_mb=end.rss_bytes / 2**20,
        rss_growth_pct=100 * (end.rss_bytes - warm.rss_bytes) / warm.rss_bytes,
        rss_slope_kb_per_turn=_slope(after) / 1024,
        threads=(warm.threads, end.threads),
        threads_max=max(s.threads for s in after),
        # the fewest over the last samples: a scrape's socket open at the last sample is no leak, and a leak
        # grows, so it still shows
        fds=(warm.fds, min(s.fds for s in after[-SETTLE_SAMPLES:])),
        fds_max=max(s.fds for s in after),
        tts_cache_entries=len(cache) if cache is not None else 0,
        tts_cache_mb=(cache.bytes / 2**20) if cache is not None else 0.0,
        conversation_said=len(conversation.said) if conversation is not None else 0,
        av_offset_s=float(av.group(1)) if av else None,
        stage_errors=len(failures),
        traced_growth_mb=growth,
        top_growth=top,
        samples=samples,
    )


def _settle(pipeline, timeout_s: float) -> None:
    """Idle: no turn running, its threads (worker, speaker, captions) gone, garbage collected."""
    pipeline.wait_idle(timeout_s)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(
        t.name.startswith(("turn-", "captions-")) for t in threading.enumerate()
    ):
        time.sleep(0.02)
    gc.collect()


def _one_turn(pipeline, kind, rng, questions, spoken, paused, noise_rng):
    if kind == "spoken":
        return pipeline.answer_audio(rng.choice(spoken))
    if kind == "paused":
        return pipeline.answer_audio(paused)
    if kind == "silence":
        return pipeline.answer_audio(np.zeros(16000 * 2, dtype=np.float32))
    if kind == "noise":
        return pipeline.answer_audio((noise_rng.standard_normal(16000 * 2) * 0.05).astype(np.float32))
    if kind == "filtered":
        return pipeline.ask(f"Can you {BLOCKED_WORD} the capsule?")
    turn = pipeline.ask(rng.choice(questions))
    if kind == "cancel":
        time.sleep(rng.uniform(0.0, 0.05))
        pipeline.cancel("stop")
    return turn


def start_kiosk(cache_dir: str | None = None):
    """A composed, loaded headless kiosk with its metrics endpoint on a free loopback port."""
    from kiosk.compose import compose
    from kiosk.engine.audio_out import NullSink

    kiosk = compose(soak_config(cache_dir), sink=NullSink(realtime=False))
    kiosk.engine.load()
    if kiosk.engine.failures:
        raise SystemExit(f"models failed to load: {kiosk.engine.failures}")
    # as at a kiosk opening: the notes and fixed replies are spoken into the TTS cache before visitors come
    kiosk.engine.wait_prewarmed(timeout=600)
    return kiosk


def main(argv: list[str] | None = None) -> int:
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=None, help="turns before measuring (default 10 %%)")
    parser.add_argument("--no-trace", action="store_true", help="no tracemalloc after warm-up")
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    kiosk = start_kiosk()
    try:
        assert kiosk.engine.pipeline is not None and kiosk.telemetry is not None
        url = f"{kiosk.telemetry.server.url}/metrics"
        report = run_soak(kiosk.engine.pipeline, url, args.turns, args.warmup, trace=not args.no_trace)
    finally:
        kiosk.close()
    for what, figure in report.summary():
        print(f"{what}: {figure}")
    if report.top_growth:
        print("top growing Python allocations after warm-up:")
        for line in report.top_growth:
            print("  " + line)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=1))
    ok = report.every_turn_counted and report.rss_growth_pct <= RSS_GROWTH_TARGET_PCT
    print("every turn counted" if report.every_turn_counted else "NOT every turn counted")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
