"""End of visitor speech to first answer audio, over 20 spoken questions, with real models.

Each question is synthesised with the default voice, then played into the pipeline in real time (as a
microphone would deliver it) and answered into a real-time null sink.  Prints medians and P95s per
configuration, each run in its own process so that its peak RSS is its own; run it on an otherwise idle
machine.  ``llm-float32`` is the LLM without bfloat16 and 4-bit weights (the baseline of that tuning).

    .venv/bin/python bench/turn_latency.py [--backends retrieval,llm,llm-float32] [--questions 20] [--pack P]

``--pack`` names another pack (under assets/exhibits or bench/packs); its questions are the first ones
of ``bench/questions/<pack>.tsv`` (else the Apollo questions below, for the Apollo pack).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from bench.machine import describe  # noqa: E402
from kiosk.config import load_config  # noqa: E402
from kiosk.emotion import Emotion  # noqa: E402
from kiosk.engine import events as ev  # noqa: E402
from kiosk.engine.audio_in import MemorySource  # noqa: E402
from kiosk.engine.audio_out import NullSink  # noqa: E402
from kiosk.engine.cancel import CancelToken  # noqa: E402
from kiosk.engine.engine import Engine  # noqa: E402

QUESTIONS = [
    "Who was the commander of Apollo 11?",
    "When did Apollo 11 launch?",
    "Where did they land on the Moon?",
    "What did Michael Collins do during the landing?",
    "How did the astronauts come back to Earth?",
    "Why is the outside of the capsule scorched?",
    "How big is the command module?",
    "Why is it called Columbia?",
    "Is there writing inside the spacecraft?",
    "Did they bring back Moon rocks?",
    "How did Columbia get to the museum?",
    "What is this spacecraft?",
    "Who flew the command module?",
    "What rocket launched Apollo 11?",
    "What did Armstrong say on the Moon?",
    "Which ship picked up the crew?",
    "How fast did Columbia come back into the atmosphere?",
    "Who built the command module?",
    "How long did the mission last?",
    "Where is Columbia displayed?",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = np.gcd(16000, rate)
    return resample_poly(audio, 16000 // g, rate // g).astype(np.float32)


# configurations: the answer backend and settings of their own
CONFIGURATIONS = {
    "retrieval": {"KIOSK_ANSWER__BACKEND": '"retrieval"'},
    # before issue 14: MiniLM through sentence-transformers and torch, Whisper's 30 s window
    "retrieval-torch": {
        "KIOSK_ANSWER__BACKEND": '"retrieval"',
        "KIOSK_RETRIEVAL__RUNTIME": '"torch"',
        "KIOSK_ASR__WINDOW_S": "30.0",
    },
    "llm": {"KIOSK_ANSWER__BACKEND": '"llm"'},
    "llm-float32": {"KIOSK_ANSWER__BACKEND": '"llm"', "KIOSK_LLM__PRECISION": '"float32"'},
    # 4-bit weights with bfloat16 activations whatever the processor (emulated bfloat16 on AVX2)
    "llm-bfloat16": {"KIOSK_ANSWER__BACKEND": '"llm"', "KIOSK_LLM__PRECISION": '"bfloat16"'},
}


def run_backend(backend: str, questions: list[str]) -> dict[str, object]:
    config = load_config(
        env={
            **os.environ,  # the run's own KIOSK_* settings still apply
            "KIOSK_AUDIO__INPUT": '"none"',
            "KIOSK_AUDIO__OUTPUT": '"none"',
            **CONFIGURATIONS[backend],
        }
    )
    engine = Engine(config, sink=NullSink(realtime=True))
    loaded = time.monotonic()
    engine.load()
    load_seconds = time.monotonic() - loaded
    rss_loaded = psutil.Process().memory_info().rss / 2**20
    engine.wait_prewarmed()  # the kiosk's start is over before the first visitor speaks
    rss_warm = psutil.Process().memory_info().rss / 2**20
    if engine.failures:
        return {"backend": backend, "error": "; ".join(engine.failures.values())}
    tts = engine.stages["tts"]
    clips = []
    for question in questions:
        chunks = list(tts.stream(question, Emotion.NEUTRAL, CancelToken()))
        clips.append(to_16k(np.concatenate([c.audio for c in chunks]), chunks[0].sample_rate))

    finished: list[ev.TurnFinished] = []
    asr_rtf: list[float] = []
    tokens_per_second: list[float] = []
    done = threading.Event()

    def observe(event: ev.Event) -> None:
        if isinstance(event, ev.TurnFinished):
            finished.append(event)
            done.set()
        elif isinstance(event, ev.StageFinished) and event.stage == "asr" and event.info.get("audio_seconds"):
            asr_rtf.append(event.seconds / event.info["audio_seconds"])
        elif (
            isinstance(event, ev.StageFinished)
            and event.stage == "llm"
            and event.info.get("tokens_per_second")
        ):
            tokens_per_second.append(event.info["tokens_per_second"])

    engine.bus.subscribe(observe)
    assert engine.pipeline is not None
    for clip in clips:
        done.clear()
        audio = np.concatenate([np.zeros(8000, np.float32), clip, np.zeros(16000, np.float32)])
        listener = engine.pipeline.start_listening(MemorySource(audio, realtime=True, tail_silence_s=0.5))
        listener.join()
        done.wait(120)
        engine.pipeline.wait_idle(120)
    rss_end = psutil.Process().memory_info().rss / 2**20
    engine.close()

    stage_names = ["vad_endpoint", "asr", "retrieval", "llm_first_sentence", "llm", "tts_first_audio"]
    first_audio = [f.first_audio_seconds for f in finished if f.first_audio_seconds is not None]
    return {
        "backend": backend,
        "turns": len(finished),
        "statuses": sorted({f.status for f in finished}),
        "load_s": load_seconds,
        "first_audio_median": statistics.median(first_audio) if first_audio else float("nan"),
        "first_audio_p95": percentile(first_audio, 95),
        "stages": {
            s: statistics.median([f.timings[s] for f in finished if s in f.timings] or [float("nan")])
            for s in stage_names
        },
        "asr_rtf": statistics.median(asr_rtf) if asr_rtf else float("nan"),
        "tokens_per_second": statistics.median(tokens_per_second) if tokens_per_second else float("nan"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": "torch" in sys.modules,
        "rss_mb": (rss_loaded, rss_warm, rss_end),
    }


def pack_questions(pack: str) -> list[str]:
    """The questions of ``bench/questions/<pack>.tsv`` (the second column), Apollo's list for Apollo."""
    table = Path(__file__).resolve().parent / "questions" / f"{Path(pack).name}.tsv"
    if Path(pack).name == "apollo11-columbia" or not table.is_file():
        return QUESTIONS
    rows = [line.split("\t") for line in table.read_text(encoding="utf-8").splitlines()]
    return [row[1] for row in rows if len(row) > 1 and not row[0].startswith("#") and row[1].strip()]


def pack_path(pack: str) -> str:
    """A pack's name as the config takes it: a shipped one by name, a bench pack by its folder."""
    bench = Path(__file__).resolve().parent / "packs" / pack
    return str(bench) if bench.is_dir() else pack


def run_in_child(backend: str, questions: int, pack: str) -> dict[str, object]:
    command = [sys.executable, __file__, "--one", backend, "--questions", str(questions), "--pack", pack]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"backend": backend, "error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="retrieval,llm")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--one", choices=sorted(CONFIGURATIONS), help="run one configuration, print JSON")
    parser.add_argument("--pack", default="apollo11-columbia", help="the exhibit pack and its question set")
    args = parser.parse_args()
    os.environ["KIOSK_EXHIBIT__PATH"] = json.dumps(pack_path(args.pack))
    questions = (pack_questions(args.pack) * 2)[: args.questions]
    if args.one:
        print(json.dumps(run_backend(args.one, questions)))
        return 0
    print(describe(), flush=True)
    results = [run_in_child(backend, args.questions, args.pack) for backend in args.backends.split(",")]

    print(
        f"\nEnd of speech to first answer audio, {len(questions)} questions of {Path(args.pack).name}, "
        f"{os.cpu_count()} CPUs (seconds), load average {os.getloadavg()[0]:.1f} at the end"
    )
    columns = [r["backend"] for r in results]
    print(f"{'':28}" + "".join(f"{c:>16}" for c in columns))

    def row(label: str, values: list[str]) -> None:
        print(f"{label:28}" + "".join(f"{v:>16}" for v in values))

    for r in results:
        if "error" in r:
            print(f"{r['backend']}: could not load: {r['error']}")
    ok = [r for r in results if "error" not in r]
    if not ok:
        return 1
    row("turns", [str(r["turns"]) for r in ok])
    row("first audio median", [f"{r['first_audio_median']:.3f}" for r in ok])
    row("first audio P95", [f"{r['first_audio_p95']:.3f}" for r in ok])
    for stage in ok[0]["stages"]:
        row(f"  {stage} (median)", [f"{r['stages'][stage]:.3f}" for r in ok])
    row("ASR real-time factor", [f"{r['asr_rtf']:.3f}" for r in ok])
    row("LLM tokens/s", [f"{r['tokens_per_second']:.1f}" for r in ok])
    row("model load (s)", [f"{r['load_s']:.1f}" for r in ok])
    row("peak RSS (MB)", [f"{r['peak_rss_mb']:.0f}" for r in ok])
    row("torch imported", ["yes" if r.get("torch") else "no" for r in ok])
    row("RSS loaded/warm/end (MB)", ["/".join(f"{v:.0f}" for v in r["rss_mb"]) for r in ok])
    print(
        "targets (issue 14, 2 idle cores): retrieval median <= 0.45 s, P95 <= 0.7 s, peak RSS <= 0.9 GB; "
        "llm median <= 0.9 s, P95 <= 1.3 s, peak RSS <= 1.5 GB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
