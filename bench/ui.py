"""The screen while the guide talks: the GUI thread's longest stall and the presented frame rate.

The kiosk window (1080x1920, offscreen) runs over the real engine while it answers: idle, a tapped
question and a spoken one (played into the pipeline in real time, answered into a real-time null sink).
A 5 ms precise QTimer on the GUI thread measures how late the event loop gets to it (a stall is the
lateness beyond those 5 ms); the face view counts the frames it paints.  Both screen shapes are measured
(1080x1920 and 1920x1080).  Targets: no stall over 50 ms, a 99th percentile of at most 16 ms, at least
30 presented frames a second.  ``--load N`` runs N busy processes alongside (a busy machine).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/ui.py [--idle 3] [--sizes 1080x1920,1920x1080] [--load 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KIOSK_EXHIBIT__PATH", '"apollo11-columbia"')  # its questions are about Apollo 11
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from bench.machine import describe  # noqa: E402
from kiosk.config import load_config  # noqa: E402
from kiosk.emotion import Emotion  # noqa: E402
from kiosk.engine import events as ev  # noqa: E402
from kiosk.engine.audio_in import MemorySource  # noqa: E402
from kiosk.engine.audio_out import NullSink  # noqa: E402
from kiosk.engine.cancel import CancelToken  # noqa: E402
from kiosk.engine.engine import Engine  # noqa: E402

PROBE_MS = 5
STALL_LIMIT_MS = 50.0
P99_LIMIT_MS = 16.0
FPS_TARGET = 30.0


class LoopProbe:
    """A 5 ms timer on the GUI thread; records how late each tick is."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.late_ms: list[float] = []
        self._last = 0

    def start(self) -> None:
        self.late_ms = []
        self.clock.start()
        self._last = self.clock.nsecsElapsed()
        self.timer.start()

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.late_ms.append(max(0.0, (now - self._last) / 1e6 - PROBE_MS))
        self._last = now

    def stop(self) -> list[float]:
        self.timer.stop()
        return self.late_ms


def run_until(app: QApplication, done, timeout: float) -> bool:
    """Run the real Qt event loop until ``done()`` (checked every 20 ms) or the timeout."""
    loop = QEventLoop()
    deadline = time.monotonic() + timeout
    result = [False]

    def check() -> None:
        if done():
            result[0] = True
            loop.quit()
        elif time.monotonic() >= deadline:
            loop.quit()

    checker = QTimer()
    checker.setInterval(20)
    checker.timeout.connect(check)
    checker.start()
    loop.exec()
    checker.stop()
    return result[0]


def speak(engine: Engine, text: str) -> np.ndarray:
    tts = engine.stages["tts"]
    chunks = list(tts.stream(text, Emotion.NEUTRAL, CancelToken()))
    audio = np.concatenate([c.audio for c in chunks])
    rate = chunks[0].sample_rate
    n = int(len(audio) * 16000 / rate)
    return np.interp(np.linspace(0, len(audio) - 1, n), np.arange(len(audio)), audio).astype(np.float32)


def spin(stop) -> None:
    """A busy process: the concurrent load."""
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def measure_size(app, engine: Engine, config, width: int, height: int, idle: float, audio: np.ndarray) -> list:
    from kiosk.ui.app import settle_heap
    from kiosk.ui.window import KioskWindow

    finished: list[ev.TurnFinished] = []
    unsubscribe = engine.bus.subscribe(lambda e: finished.append(e) if isinstance(e, ev.TurnFinished) else None)
    window = KioskWindow(engine, config)
    window.resize(width, height)
    window.show()
    run_until(app, lambda: window.face.portrait_ready, 20)  # the start's own work: portrait framed,
    run_until(app, lambda: False, 1.5)  # first paints, style, fonts warmed
    settle_heap()  # the app has one window: the one measured before is garbage, not the kiosk's work
    probe = LoopProbe()
    rows = []

    def measure(name: str, start, done, timeout: float) -> None:
        face = window.face
        presented0, rendered0, dropped0 = face.frames_presented, face.frames_rendered, face.frames_dropped
        began = time.monotonic()
        probe.start()
        start()
        ok = run_until(app, done, timeout)
        late = probe.stop()
        seconds = time.monotonic() - began
        rows.append(
            {
                "size": f"{width}x{height}",
                "phase": name + ("" if ok else " (timed out)"),
                "seconds": seconds,
                "max_stall": max(late) if late else float("nan"),
                "p99": float(np.percentile(late, 99)) if late else float("nan"),
                "over": sum(1 for v in late if v > STALL_LIMIT_MS),
                "presented": (face.frames_presented - presented0) / seconds,
                "rendered": (face.frames_rendered - rendered0) / seconds,
                "dropped": face.frames_dropped - dropped0,
            }
        )

    idle_until = [0.0]
    measure(
        "idle",
        lambda: idle_until.__setitem__(0, time.monotonic() + idle),
        lambda: time.monotonic() >= idle_until[0],
        idle + 5,
    )
    count = [0]

    def ask() -> None:
        count[0] = len(finished)
        window.ask("Who flew on Apollo 11?")

    measure("tapped question", ask, lambda: len(finished) > count[0], 60)
    run_until(app, lambda: False, 1.0)

    def listen() -> None:
        count[0] = len(finished)
        window.start_listening(MemorySource(audio, realtime=True, tail_silence_s=1.0))

    measure("spoken question", listen, lambda: len(finished) > count[0], 60)
    print(f"window {width}x{height} offscreen; face: {window.ops_model.face_line or 'animated'}", flush=True)
    window.shutdown()
    window.close()
    window.deleteLater()
    run_until(app, lambda: False, 0.3)
    engine.pipeline.wait_idle(timeout=10)
    engine.reset_session()
    unsubscribe()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=3.0, help="seconds measured with the guide idle")
    parser.add_argument("--sizes", default="1080x1920,1920x1080", help="window sizes, WIDTHxHEIGHT,...")
    parser.add_argument("--load", type=int, default=0, help="busy processes running alongside")
    args = parser.parse_args()
    print(describe(), flush=True)
    sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes.split(",")]

    env = {"KIOSK_AUDIO__INPUT": '"none"', "KIOSK_AUDIO__OUTPUT": '"none"', "KIOSK_METRICS__PORT": "0"}
    if os.environ.get("DOCENT_TEST_CACHE"):
        env["KIOSK_PATHS__CACHE_DIR"] = f'"{os.environ["DOCENT_TEST_CACHE"]}"'
    config = load_config(env={**os.environ, **env})
    app = QApplication.instance() or QApplication([])

    from kiosk.ui.app import settle_heap

    print("loading the models…", flush=True)
    engine = Engine(config, sink=NullSink(realtime=True))
    engine.load()
    settle_heap()  # as the app does once the models are loaded
    audio = np.concatenate([np.zeros(8000, np.float32), speak(engine, "Who flew on Apollo 11?")])

    import multiprocessing

    stop = multiprocessing.Event()
    load = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.load)]
    for process in load:
        process.start()
    try:
        rows = [row for w, h in sizes for row in measure_size(app, engine, config, w, h, args.idle, audio)]
    finally:
        stop.set()
        for process in load:
            process.join(5)
    print(f"\nconcurrent load: {args.load} busy process(es) on {os.cpu_count()} cores")
    header = ("size", "phase", "seconds", "max stall ms", "p99 late ms", f">{STALL_LIMIT_MS:.0f} ms",
              "presented fps", "animator fps", "dropped")
    print(f"{header[0]:<11}{header[1]:<18}" + "".join(f"{h:>14}" for h in header[2:]))
    for r in rows:
        values = (
            f"{r['seconds']:.1f}",
            f"{r['max_stall']:.1f}",
            f"{r['p99']:.1f}",
            str(r["over"]),
            f"{r['presented']:.1f}",
            f"{r['rendered']:.1f}",
            str(r["dropped"]),
        )
        print(f"{r['size']:<11}{r['phase']:<18}" + "".join(f"{v:>14}" for v in values))
    worst = max(r["max_stall"] for r in rows)
    p99 = max(r["p99"] for r in rows)
    slowest = min(r["presented"] for r in rows)
    ok = worst <= STALL_LIMIT_MS and p99 <= P99_LIMIT_MS and slowest >= FPS_TARGET
    print(
        f"\n{'PASS' if ok else 'FAIL'}: longest stall {worst:.1f} ms (target <= {STALL_LIMIT_MS:.0f}), "
        f"p99 {p99:.1f} ms (target <= {P99_LIMIT_MS:.0f}), "
        f"lowest presented rate {slowest:.1f} fps (target >= {FPS_TARGET:.0f})"
    )
    engine.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
