"""From launch to the first question answered: the time to each stage ready, per configuration.

Each configuration starts in a fresh process (imports, model loads and caches as a kiosk's start has
them; conversions already cached by ``kiosk prepare``), loads the engine as the screen does
(``load_async``), asks its first question the moment the engine is ready and waits for the answer's
first audio.  With the LLM (``[llm] background_load``, the default) the first question is answered from
the notes while the model loads behind it: ``first answer audio`` is when a visitor is first answered,
``llm`` when the model is ready and answers in its words (``llm answer audio``: a question asked then).
Times are seconds since the process was launched.  Run it on an otherwise idle machine;
the load average is printed beside.

    .venv/bin/python bench/startup.py [--configs retrieval,llm] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: bench.machine
from bench.machine import describe  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Who was the commander of Apollo 11?"
STAGES = ("vad", "asr", "tts", "retrieval", "answer", "face")
AFTER_READY = ("llm", "llm answer audio")  # the LLM, loaded in the background
CONFIGURATIONS = {
    "retrieval": {"KIOSK_ANSWER__BACKEND": '"retrieval"'},
    "retrieval-torch": {"KIOSK_ANSWER__BACKEND": '"retrieval"', "KIOSK_RETRIEVAL__RUNTIME": '"torch"'},
    "llm": {"KIOSK_ANSWER__BACKEND": '"llm"'},
    # the start before background loading: ready (and the first answer) only once the LLM has loaded
    "llm-wait": {"KIOSK_ANSWER__BACKEND": '"llm"', "KIOSK_LLM__BACKGROUND_LOAD": "false"},
}


def child(launched: float) -> dict[str, object]:
    """Runs in the measured process: every time is wall time since ``launched`` (the parent's clock)."""
    import resource
    import threading

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("KIOSK_EXHIBIT__PATH", '"apollo11-columbia"')  # its questions are about Apollo 11
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from kiosk.config import load_config
    from kiosk.engine import events as ev
    from kiosk.engine.audio_out import NullSink
    from kiosk.engine.engine import Engine

    times: dict[str, float] = {"imports": time.time() - launched}
    env = {**os.environ, "KIOSK_AUDIO__INPUT": '"none"', "KIOSK_AUDIO__OUTPUT": '"none"'}
    engine = Engine(load_config(env=env), sink=NullSink(realtime=True))
    first_audio = threading.Event()

    def observe(event: ev.Event) -> None:
        if isinstance(event, ev.ModelLoaded | ev.ModelFailed):
            times[event.stage] = time.time() - launched
        elif isinstance(event, ev.EngineReady):
            times["ready"] = time.time() - launched
        elif isinstance(event, ev.FirstAudio):
            times["first answer audio"] = time.time() - launched
            first_audio.set()

    engine.bus.subscribe(observe)
    engine.load_async()
    engine.wait_ready(300)
    engine.ask(QUESTION)
    first_audio.wait(120)
    if engine.pipeline is not None:
        engine.pipeline.wait_idle(120)
    first_answer = times.get("first answer audio")
    if engine.wait_llm(300) and "llm" in engine.models:
        times.setdefault("llm", time.time() - launched)  # loaded in the background: a question now is its own
        first_audio.clear()
        engine.ask(QUESTION)
        first_audio.wait(120)
        times["llm answer audio"] = times.pop("first answer audio")
        if first_answer is not None:
            times["first answer audio"] = first_answer
    engine.wait_prewarmed(300)
    times["speech cache warm"] = time.time() - launched
    result = {
        "times": times,
        "failures": engine.failures,
        "torch": "torch" in sys.modules,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    engine.close()
    return result


def run(config: str) -> dict[str, object]:
    env = {**os.environ, **CONFIGURATIONS[config], "PYTHONPATH": str(ROOT)}
    launched = time.time()
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(launched)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="retrieval,llm")
    parser.add_argument("--runs", type=int, default=3, help="launches per configuration (medians printed)")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return 0
    print(describe(), flush=True)
    configs = args.configs.split(",")
    print(
        f"launch to ready, seconds (median of {args.runs}); {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    results: dict[str, list[dict]] = {}
    for config in configs:
        results[config] = [run(config) for _ in range(args.runs)]
        for r in results[config]:
            if "error" in r:
                print(f"{config}: {r['error']}")
    rows = ["imports", *STAGES, "ready", "first answer audio", *AFTER_READY, "speech cache warm"]
    print(f"{'':22}" + "".join(f"{c:>18}" for c in configs))
    for row in rows:
        cells = []
        for config in configs:
            values = [r["times"][row] for r in results[config] if "times" in r and row in r["times"]]
            cells.append(f"{statistics.median(values):.2f}" if values else "-")
        print(f"{row:22}" + "".join(f"{c:>18}" for c in cells))
    for label, key in (("peak RSS (MB)", "peak_rss_mb"), ("torch imported", "torch")):
        cells = []
        for config in configs:
            values = [r[key] for r in results[config] if key in r]
            cells.append(
                ("yes" if any(values) else "no")
                if key == "torch"
                else (f"{statistics.median(values):.0f}" if values else "-")
            )
        print(f"{label:22}" + "".join(f"{c:>18}" for c in cells))
    print(
        f"load average {os.getloadavg()[0]:.1f} at the end; target: first answer audio <= 12 s (2 cores, idle);"
        " llm: the LLM loaded in the background and answering"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
