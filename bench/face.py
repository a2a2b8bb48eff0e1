"""The talking face: frame rate on one core, A/V offset over a long answer, CPU at 30 fps, and drift.

.venv/bin/python bench/face.py [--seconds 60] [--face both|host|portrait]

``host`` is the drawn host (a pack without a portrait, both shipped packs); ``portrait`` the procedural
backend on a curator's portrait (the sample photograph the tests use).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from kiosk.config import load_config  # noqa: E402
from kiosk.emotion import Emotion  # noqa: E402
from kiosk.engine.audio_out import NullSink  # noqa: E402
from kiosk.engine.face import check_portrait, create_backend  # noqa: E402
from kiosk.engine.face.animator import (
    EXPRESSIONS,  # noqa: E402
    FaceAnimator,  # noqa: E402
)
from kiosk.engine.face.backend import FaceState  # noqa: E402
from kiosk.engine.face.host import HostFace  # noqa: E402
from kiosk.engine.face.pixels import mouth_opening  # noqa: E402
from kiosk.engine.face.video import SimulatedClock, synthesise  # noqa: E402
from kiosk.engine.face.visemes import MouthShape  # noqa: E402

cv2.setNumThreads(1)

LONG_TEXT = " ".join(
    [
        "Columbia is the command module of Apollo 11, the first crewed mission to land on the Moon.",
        "It was the crew's living quarters and control centre for most of the flight.",
        "Neil Armstrong was the commander, Michael Collins flew Columbia, and Buzz Aldrin piloted the lunar module.",
        "Apollo 11 launched on 16 July 1969 from the Kennedy Space Center in Florida on a Saturn V rocket.",
        "The lunar module Eagle landed in the Sea of Tranquility on 20 July 1969.",
        "While Armstrong and Aldrin walked on the Moon, Michael Collins stayed aboard Columbia in lunar orbit.",
        "Columbia splashed down in the Pacific Ocean on 24 July 1969, and the aircraft carrier USS Hornet recovered the crew.",
        "Its heat shield burned away slowly on purpose and carried the heat away from the crew.",
        "That is why the outside of the capsule looks scorched and brown.",
    ]
)
from bench.machine import describe  # noqa: E402

# a curator's portrait for the procedural backend (the shipped packs name none: the drawn host presents them)
SAMPLE_PORTRAIT = Path(__file__).resolve().parent.parent / "tests" / "face" / "astronaut.png"


def frames_per_second(backend, seconds: float = 3.0) -> float:
    rng = np.random.default_rng(0)
    states = [
        FaceState(
            mouth=MouthShape(jaw=float(j), width=float(w)),
            blink=float(b),
            expression={"smile": 0.5},
            offset=(float(o), 0.0),
        )
        for j, w, b, o in rng.uniform(0, 1, (90, 4))
    ]
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        backend.render(states[count % len(states)])
        count += 1
    return count / (time.perf_counter() - started)


def ms_per_frame(backend, frames: int = 300) -> float:
    """The median time of one frame (ms) over states that move the mouth, lids, brows and sway."""
    rng = np.random.default_rng(0)
    names = list(EXPRESSIONS)
    times = []
    for k in range(frames):
        j, b, o = rng.uniform(0, 1, 3)
        state = FaceState(
            mouth=MouthShape(jaw=float(j), width=0.2),
            blink=float(b) if k % 3 == 0 else 0.0,
            expression=EXPRESSIONS[names[k % len(names)]],
            offset=(float(o) - 0.5, 0.2),
        )
        started = time.perf_counter()
        backend.render(state)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def idle_cpu_share(backend, seconds: float) -> tuple[float, float]:
    """CPU (share of one core) and delivered frames/s of an idle face (blinks, sway) at 30 fps."""
    animator = FaceAnimator(backend, NullSink(realtime=True).clock, fps=30, seed=2)
    stop = threading.Event()
    thread = threading.Thread(target=animator.run, args=(lambda frame: None, stop))
    wall0, process0 = time.perf_counter(), time.process_time()
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    wall = time.perf_counter() - wall0
    return (time.process_time() - process0) / wall, animator.rendered / wall


def host_results() -> list[tuple[str, str, str]]:
    results = []
    for size in (512, 1080):
        host = HostFace(None, size)
        started = time.perf_counter()
        host.load()
        load = time.perf_counter() - started
        median = statistics.median(ms_per_frame(host) for _ in range(3))
        share, fps = idle_cpu_share(host, 5.0)
        results.append((f"host: load (static layers) at {size}", f"{load * 1000:.0f} ms", ""))
        results.append((f"host: ms/frame at {size}x{size}, median", f"{median:.2f} ms", ""))
        results.append(
            (f"host: CPU idle at 30 fps, {size}", f"{share * 100:.0f}% of a core", f"<= 25% ({fps:.1f} fps)")
        )
    return results


def mouth_signal(animator, clock, chunks, rate_hz: int) -> tuple[np.ndarray, np.ndarray]:
    """Mouth opening (from the rendered pixels) and audio loudness (50 ms RMS), sampled at ``rate_hz``."""
    backend = animator.backend
    m = backend.margin
    inner = np.concatenate([backend.inner_upper, backend.inner_lower]) - m
    x0, y0 = inner.min(axis=0).astype(int) - 4
    x1, y1 = inner.max(axis=0).astype(int) + int(backend.jaw_travel) + 4
    animator.begin_answer(1, Emotion.NEUTRAL)
    for chunk in chunks:
        animator.add_chunk(1, chunk)
    audio = np.concatenate([c.audio for c in chunks])
    rate = chunks[0].sample_rate
    openings, loudness = [], []
    for k in range(int(len(audio) / rate * rate_hz)):
        t = k / rate_hz
        clock.set(t)
        image = animator.frame_at(t).image
        openings.append(mouth_opening(image, (x0, y0, x1, y1)))
        window = audio[max(0, int((t - 0.025) * rate)) : int((t + 0.025) * rate)]
        loudness.append(float(np.sqrt(np.mean(np.square(window)))) if len(window) else 0.0)
    return np.array(openings), np.array(loudness)


def best_lag(a: np.ndarray, b: np.ndarray, fps: int, max_lag_s: float = 0.3) -> float:
    """The shift of ``a`` against ``b`` (seconds) with the highest correlation; >0: ``a`` is late."""
    a = (a - a.mean()) / (a.std() + 1e-9)
    b = (b - b.mean()) / (b.std() + 1e-9)
    lags = range(-int(max_lag_s * fps), int(max_lag_s * fps) + 1)
    scores = [np.mean(a[max(0, k) : len(a) + min(0, k)] * b[max(0, -k) : len(b) + min(0, -k)]) for k in lags]
    return list(lags)[int(np.argmax(scores))] / fps


def peak_offsets(
    openings: np.ndarray, loudness: np.ndarray, fps: int, within_s: float = 0.15
) -> tuple[list, int]:
    """For each syllable (a loudness peak), the offset of the mouth-opening peak that belongs to it.

    A mouth peak belongs to a syllable when it is the nearest one within ``within_s`` (about half a
    syllable); >0: the mouth opens after the sound.  Returns the offsets and how many syllables had none.
    """
    from scipy.signal import find_peaks

    audio_peaks, _ = find_peaks(loudness, prominence=0.3 * loudness.max(), distance=max(1, fps // 8))
    mouth_peaks, _ = find_peaks(openings, prominence=0.2 * openings.max(), distance=max(1, fps // 8))
    offsets, unmatched = [], 0
    for peak in audio_peaks:
        if not len(mouth_peaks):
            unmatched += 1
            continue
        nearest = int(min(mouth_peaks - peak, key=abs))
        if abs(nearest) <= within_s * fps:
            offsets.append(nearest / fps)
        else:
            unmatched += 1
    return offsets, unmatched


def cpu_share_at_30fps(backend, chunks, seconds: float) -> tuple[float, float, int]:
    sink = NullSink(realtime=True)
    animator = FaceAnimator(backend, sink.clock, fps=30, seed=2)
    sink.start(chunks[0].sample_rate)
    animator.begin_answer(1, Emotion.NEUTRAL)
    for chunk in chunks:
        animator.add_chunk(1, chunk)
        sink.write(chunk.audio)
    stop = threading.Event()
    frames = []
    thread = threading.Thread(target=animator.run, args=(frames.append, stop))
    wall0 = time.perf_counter()
    process0 = time.process_time()
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    wall = time.perf_counter() - wall0
    sink.close()
    return (time.process_time() - process0) / wall, animator.rendered / wall, animator.dropped


def drift_over(hours: float, chunks, backend) -> float:
    """Worst offset between the audio time the mouth shows and the clock, over simulated hours of answers."""
    clock = SimulatedClock(chunks[0].sample_rate)
    now = {"t": 0.0}
    animator = FaceAnimator(backend, clock, fps=30, seed=5, now=lambda: now["t"])
    duration = sum(c.seconds for c in chunks)
    worst = 0.0
    t = 0.0
    turn = 0
    while t < hours * 3600:
        turn += 1
        clock.reset(chunks[0].sample_rate)
        animator.begin_answer(turn, Emotion.NEUTRAL)
        for chunk in chunks:
            animator.add_chunk(turn, chunk)
        animator.end_answer(turn)
        for position in (0.0, duration / 2, duration - 0.01):  # start, middle and end of every answer
            clock.set(position)
            now["t"] = t + position
            _, audio_time = animator.state_at(now["t"])
            worst = max(worst, abs((audio_time or 0.0) - position))
        t += 60.0  # one answer a minute, all day
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the long answer")
    parser.add_argument("--face", choices=("both", "host", "portrait"), default="both")
    args = parser.parse_args()
    print(describe(), flush=True)
    config = load_config()
    results: list[tuple[str, str, str]] = host_results() if args.face != "portrait" else []
    if args.face == "host":
        return report(results)
    portrait = check_portrait(SAMPLE_PORTRAIT, config.cache_dir)

    backends = {size: create_backend(config, portrait, size) for size in (512, 1080)}
    for size, backend in backends.items():
        fps = statistics.median(frames_per_second(backend, 2.0) for _ in range(3))
        results.append((f"frames/s at {size}x{size}, one core", f"{fps:.0f}", ">= 30 at 1080"))

    text = LONG_TEXT
    chunks = synthesise(text, Emotion.NEUTRAL, config)
    while sum(c.seconds for c in chunks) < args.seconds:
        chunks += chunks
    audio_seconds = sum(c.seconds for c in chunks)
    clock = SimulatedClock(chunks[0].sample_rate)
    animator = FaceAnimator(backends[512], clock, fps=30, seed=1, now=lambda: 0.0)
    rate_hz = 100  # the mouth sampled finer than the 30 fps it is shown at, to time it to 10 ms
    openings, loudness = mouth_signal(animator, clock, chunks, rate_hz)
    lag = best_lag(openings, loudness, rate_hz)
    signed, unmatched = peak_offsets(openings, loudness, rate_hz)
    offsets = [abs(o) for o in signed]
    r = float(np.corrcoef(openings, loudness)[0, 1])
    results.append(
        (f"A/V lag, cross-correlation over {audio_seconds:.0f} s", f"{lag * 1000:+.0f} ms", "within 40 ms")
    )
    if offsets:
        results.append(
            (
                "A/V offset at syllable peaks, median",
                f"{statistics.median(offsets) * 1000:.0f} ms",
                "within 40 ms",
            )
        )
        results.append(
            ("A/V offset at syllable peaks, mean (signed)", f"{np.mean(signed) * 1000:+.0f} ms", "")
        )
        results.append(
            (
                "A/V offset at syllable peaks, worst",
                f"{max(offsets) * 1000:.0f} ms",
                f"{len(offsets)} syllables matched, {unmatched} not",
            )
        )
    results.append(("mouth opening vs loudness, Pearson r", f"{r:.2f}", ""))

    for size in (512, 1080):
        share, fps, dropped = cpu_share_at_30fps(backends[size], chunks, 10.0)
        results.append(
            (
                f"CPU while rendering 30 fps at {size}",
                f"{share * 100:.0f}% of a core",
                "< 50% at 1080" if size == 1080 else "",
            )
        )
        results.append((f"  delivered frames/s, dropped ({size})", f"{fps:.1f}, {dropped}", ""))

    results.append(
        (
            "drift after 12 simulated hours",
            f"{drift_over(12, chunks[:4], backends[512]) * 1000:.3f} ms",
            "none",
        )
    )

    return report(results)


def report(results: list[tuple[str, str, str]]) -> int:
    width = max(len(r[0]) for r in results)
    print(f"\nTalking face benchmark ({os.cpu_count()} CPUs, OpenCV on one thread)")
    for label, value, target in results:
        print(f"{label:<{width}}  {value:>16}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
