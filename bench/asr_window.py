"""Whisper's encoder window on short questions: word error rate and seconds per clip, per setting.

Whisper pads every input to a 30 s window, so a 2 s question costs nearly as much as a 30 s one.
faster-whisper's ``chunk_length`` shortens the window; ``[asr] window_s`` sets it ("fit": the clip's
length plus a margin, rounded up).  Clips: bench/endpointing.py's recordings (asterisk prompts, LibriVox),
clean and with pink noise at 10 dB, each with 0.3 s of silence either side as the endpointer leaves it.

    .venv/bin/python bench/asr_window.py [--windows 30,10,fit] [--clips 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from endpointing import asterisk_clips, at_snr, librivox_clips, pink_noise, wer  # noqa: E402

from bench.machine import describe  # noqa: E402
from kiosk.config import Config  # noqa: E402
from kiosk.engine.asr import RECOGNIZERS  # noqa: E402
from kiosk.engine.device import Device  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="30,10,fit", help="window_s settings: 30 (Whisper's), N, fit")
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache-dir", default=os.environ.get("DOCENT_TEST_CACHE", "~/.cache/docent"))
    args = parser.parse_args()
    print(describe(), flush=True)
    recorded = librivox_clips()
    clips = (asterisk_clips(max(0, args.clips - len(recorded))) + recorded)[: args.clips]
    rng = np.random.default_rng(args.seed)
    pad = np.zeros(4800, np.float32)
    clean = [np.concatenate([pad, c.audio, pad]) for c in clips]
    noisy = [np.concatenate([pad, at_snr(c.audio, pink_noise(len(c.audio), rng), 10), pad]) for c in clips]
    lengths = [len(a) / 16000 for a in clean]
    print(
        f"{len(clips)} recorded clips, {min(lengths):.1f}-{max(lengths):.1f} s (median "
        f"{statistics.median(lengths):.1f} s); model {args.model}, CPU, load {os.getloadavg()[0]:.1f}\n"
    )
    print(
        f"{'window':<8} {'WER clean':>10} {'WER pink':>10} {'s med':>7} {'s P90':>7} {'s med <3 s':>11} {'redone':>6}"
    )
    for window in args.windows.split(","):
        window_s = 0.0 if window == "fit" else float(window)
        config = Config().replace(asr={"model": args.model, "window_s": window_s}).asr
        asr = RECOGNIZERS.create("whisper", config, Device("cpu"), Path(args.cache_dir).expanduser())
        asr.load()
        cells, seconds, short = [], [], []
        for audios in (clean, noisy):
            errors = total = 0
            for clip, audio in zip(clips, audios, strict=True):
                started = time.perf_counter()
                text = asr.transcribe(audio).text
                spent = time.perf_counter() - started
                seconds.append(spent)
                if len(audio) < 3 * 16000:
                    short.append(spent)
                e, n = wer(clip.text, text)
                errors, total = errors + e, total + n
            cells.append(f"{100 * errors / total:>9.1f}%")
        p90 = sorted(seconds)[int(0.9 * (len(seconds) - 1))]
        short_med = f"{statistics.median(short):>10.3f}s" if short else f"{'-':>11}"
        print(
            f"{window:<8} {cells[0]} {cells[1]} {statistics.median(seconds):>6.3f}s {p90:>6.3f}s {short_med}"
        )
        asr.close()


if __name__ == "__main__":
    main()
