"""End of turn on real and synthetic speech: who is cut off, how soon a turn ends, and what ASR hears.

Speech: a professional speaker's prompts (Debian ``asterisk-core-sounds-en-g722``, transcripts in
``asterisk-core-sounds-en``'s ``core-sounds-en.txt``, CC-BY-SA-3.0; G.722 decoded with PyAV), LibriVox
read speech from Debian ``pocketsphinx-testdata`` (BSD-2), and museum questions in the kiosk's default
Piper voice.  Each question is played unpaused, and paused: a 0.5-1.2 s hesitation spliced in at a word
gap in its middle (Piper's alignments; for recordings the longest quiet stretch there).

Per policy (the silence rule at 400 and 200 ms, Smart Turn): paused questions cut off (two turns, or
whole after the merge), unpaused ones cut early, the end-of-turn decision's latency after the end of
speech (median, P95, on unpaused questions heard whole; "waited": unpaused questions the model called
incomplete, ended only by the wait; "idle med": the median with the model's CPU time in place of its wall
time, what an otherwise idle core gives) and the model's CPU per call.  Then word error
rate of tiny.en and base on the clips, clean and with babble (other clips) or pink noise at 10 dB SNR.

The policy runs with ``inline=True``: the model's measured time counts as stream time, so the audio
replays faster than real time with the latency it would have live.  A merge is accepted as the pipeline
would: while no more than ``merge_max_played_ms`` of the answer has played, the answer starting
``--first-audio`` seconds after the end of speech (0.55 s: the retrieval answer's median).

    .venv/bin/python bench/endpointing.py [--questions 40] [--no-wer]
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import describe  # noqa: E402
from kiosk.config import Config  # noqa: E402
from kiosk.engine.stage import SpeechRecognizer  # noqa: E402
from kiosk.engine.turn.policy import EndOfTurn  # noqa: E402
from kiosk.engine.turn.smart_turn import SmartTurn  # noqa: E402
from kiosk.engine.vad import FRAME_SECONDS, FrameClassifier, SileroStream, Vad  # noqa: E402

SR = 16000
ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
QUESTIONS = [
    "Who was the commander of Apollo eleven?",
    "When did Apollo eleven launch from Florida?",
    "Why is the outside of the capsule scorched?",
    "How much moon rock did they bring back?",
    "Why is the command module called Columbia?",
    "How long did the trip to the moon take?",
    "What did the astronauts eat on the way to the moon?",
    "Who stayed in orbit while the others walked on the moon?",
    "How fast was the capsule going when it came back?",
    "Where did the capsule land when it came home?",
    "How many people could fit inside the command module?",
    "What is the heat shield made of?",
    "How did the astronauts sleep in such a small space?",
    "Which company built the command module?",
    "How hot did the capsule get during reentry?",
    "What happened to the lunar module after they left it?",
    "How did they talk to mission control from the moon?",
    "Can you tell me what the crew did after splashdown?",
    "How heavy is the command module without its fuel?",
    "Why did they have to stay in quarantine when they got back?",
]


@dataclass
class Clip:
    name: str
    kind: str  # piper | asterisk | librivox
    text: str
    audio: np.ndarray  # float32, 16 kHz, speech only (trimmed)
    split: int  # sample index of the word gap where a hesitation is spliced in


# --- speech -------------------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    units = "zero one two three four five six seven eight nine".split()
    text = re.sub(r"\d", lambda m: f" {units[int(m.group())]} ", text.lower())
    return re.sub(r"[^a-z' ]", " ", text).replace("'", "").split()


def trim(audio: np.ndarray, level: float = 0.03) -> np.ndarray:
    """Without the recording's own leading and trailing silence (50 ms kept either side)."""
    loud = np.flatnonzero(np.abs(audio) > level * max(1e-6, float(np.abs(audio).max())))
    return audio[max(0, loud[0] - 800) : loud[-1] + 800] if len(loud) else audio


def quiet_gap(audio: np.ndarray) -> int:
    """The middle of the longest quiet stretch in the middle half of a recording: a gap between words."""
    hop = 160
    rms = np.sqrt(np.convolve(np.square(audio), np.ones(hop) / hop, mode="same")[::hop])
    floor = 0.1 * float(np.median(rms[rms > rms.max() * 0.05]))
    low, high = len(rms) * 30 // 100, len(rms) * 70 // 100
    best, best_len, run_start = (low + high) // 2, 0, None
    for i in range(low, high):
        if rms[i] < floor:
            run_start = i if run_start is None else run_start
            if i - run_start + 1 > best_len:
                best_len, best = i - run_start + 1, (run_start + i) // 2
        else:
            run_start = None
    if best_len == 0:
        best = low + int(np.argmin(rms[low:high]))
    return best * hop


def asterisk_clips(count: int) -> list[Clip]:
    import av

    lines = gzip.decompress(ASTERISK_TEXT.read_bytes()).decode("utf-8", "replace").splitlines()
    clips = []
    for line in lines:
        name, _, text = line.partition(": ")
        text = text.strip()
        if "[" in text or not 5 <= len(words(text)) <= 14 or text.count(".") > 1 or "..." in text:
            continue
        path = ASTERISK / f"{name.strip()}.g722"
        if not path.is_file():
            continue
        with av.open(str(path), format="g722") as container:
            pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        audio = trim(pcm.astype(np.float32) / 32768.0)
        clips.append(Clip(name.strip(), "asterisk", text, audio, quiet_gap(audio)))
        if len(clips) == count:
            break
    return clips


def librivox_clips() -> list[Clip]:
    from kiosk.engine.audio_in import load_audio

    clips = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        match = re.match(r"<s>(.*)</s>\s*\((.*)\)", line)
        if match:
            audio = trim(load_audio(LIBRIVOX / f"{match.group(2)}.wav"))
            clips.append(Clip(match.group(2), "librivox", match.group(1).strip(), audio, quiet_gap(audio)))
    return clips


def piper_clips(count: int, seed: int) -> list[Clip]:
    from piper import PiperVoice
    from scipy.signal import resample_poly

    from kiosk.engine.tts import resolve_voice

    model, config = resolve_voice("")
    voice = PiperVoice.load(model, config_path=config, include_alignments=True)
    rng = np.random.default_rng(seed)
    clips = []
    for text in QUESTIONS[:count]:
        chunks = list(voice.synthesize(text, include_alignments=True))
        rate = chunks[0].sample_rate
        gaps, position = [], 0
        for chunk in chunks:
            for alignment in chunk.phoneme_alignments:
                if alignment.phoneme == " ":
                    gaps.append((position + alignment.num_samples // 2) * SR // rate)
                position += alignment.num_samples
        audio = resample_poly(np.concatenate([c.audio_float_array for c in chunks]), 160, rate // 100)
        middle = gaps[len(gaps) * 3 // 10 : max(len(gaps) * 3 // 10 + 1, len(gaps) * 7 // 10)]
        clips.append(Clip(text, "piper", text, audio.astype(np.float32), int(rng.choice(middle))))
    return clips


def espeak_clips(count: int) -> list[Clip]:
    """Questions in another synthetic voice (espeak-ng's), split at the longest quiet stretch mid-question."""
    import subprocess
    import tempfile

    from kiosk.engine.audio_in import load_audio

    clips = []
    with tempfile.TemporaryDirectory() as folder:
        for i, text in enumerate(QUESTIONS[::-1][:count]):
            path = Path(folder) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
            audio = trim(load_audio(path))
            clips.append(Clip(f"espeak: {text}", "espeak", text, audio, quiet_gap(audio)))
    return clips


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    return np.fft.irfft(spectrum, n).astype(np.float32)


def at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    gain = np.sqrt(np.mean(speech**2) / (np.mean(noise**2) * 10 ** (snr_db / 10) + 1e-12))
    return (speech + gain * noise).astype(np.float32)


def babble(clips: list[Clip], exclude: int, n: int, rng: np.random.Generator) -> np.ndarray:
    others = rng.choice([i for i in range(len(clips)) if i != exclude], size=4, replace=False)
    mix = np.zeros(n, dtype=np.float32)
    for i in others:
        voice = np.tile(clips[i].audio, n // len(clips[i].audio) + 1)[:n]
        mix += voice / (np.sqrt(np.mean(voice**2)) + 1e-9)
    return mix


# --- endpointing --------------------------------------------------------------------------------------


@dataclass
class Run:
    turns: int  # ENDED events (each is a committed turn)
    questions: int  # after merges
    heard_fragment: bool  # a dropped fragment's answer had started playing
    decision_s: float | None  # the final decision, after the end of speech
    idle_s: float | None  # the same with the model's CPU time in place of its wall time (an idle core)
    cpu: list[float]
    outcomes: list[str]


def endpoint(
    policy: EndOfTurn, audio: np.ndarray, config: Config, first_audio_s: float, asr: SpeechRecognizer | None = None
) -> Run:
    """One recording through the policy; with ``asr``, each pause's speculative recognition is handed to
    the policy (``heard``) as many frames after the pause as recognising it took."""
    turns = questions = 0
    heard_at, heard_text = -1, ""
    heard = False
    last_end: float | None = None
    decision: float | None = None
    idle: float | None = None
    cpu: list[float] = []
    outcomes: list[str] = []
    frame = round(FRAME_SECONDS * SR)
    for i in range(len(audio) // frame):
        if i == heard_at:
            policy.heard(heard_text)
        for event in policy.feed(audio[i * frame : (i + 1) * frame]):
            now = policy.position_seconds
            if event.kind is Vad.PAUSED and asr is not None and event.audio is not None:
                started = time.perf_counter()
                heard_text = asr.transcribe(event.audio).text
                heard_at = i + 1 + math.ceil((time.perf_counter() - started) / FRAME_SECONDS)
            elif event.kind in (Vad.RESUMED, Vad.ENDED):
                heard_at = -1
            if event.merge_candidate:
                answer_at = (last_end or 0.0) + first_audio_s
                accept = (now - answer_at) * 1000 <= config.turn.merge_max_played_ms
                policy.merge(accept)
                if accept:
                    questions -= 1
                    heard = heard or now > answer_at
                    outcomes.append("merged")
            elif event.kind is Vad.DECIDED:
                outcomes.append(event.outcome)
                if event.cpu_s:
                    cpu.append(event.cpu_s)
                decision = event.decision_s
                pause = config.vad.speculative_pause_ms / 1000
                idle = pause + math.ceil(event.cpu_s / FRAME_SECONDS) * FRAME_SECONDS if event.cpu_s else decision
            elif event.kind is Vad.ENDED:
                turns += 1
                questions += 1
                last_end = event.speech_end
    return Run(turns, questions, heard, decision, idle, cpu, outcomes)


POLICIES = {
    "VAD 400 ms": ({"trailing_silence_ms": 400}, {"backend": "none"}),
    "VAD 200 ms": ({"trailing_silence_ms": 200}, {"backend": "none"}),
    "Smart Turn": ({}, {"backend": "smart_turn", "question_wait_ms": 0}),
    # the kiosk's default: the model, and after "incomplete" what recognition heard (turn/heard.py)
    "ST + heard": ({}, {"backend": "smart_turn"}),
    "ST + heard 0.5": ({}, {"backend": "smart_turn", "question_wait_ms": 500}),  # a shorter wait, compared
}


def bench_endpointing(
    clips: list[Clip], first_audio_s: float, seed: int, noise: str = "none", cache_dir: Path | None = None
) -> None:
    from kiosk.engine.asr import RECOGNIZERS
    from kiosk.engine.device import Device

    silero = SileroStream()
    model = SmartTurn(Config().turn)
    model.load()
    asr = RECOGNIZERS.create("whisper", Config().asr, Device("cpu"), cache_dir or Path("~/.cache/docent"))
    asr.load()
    rng = np.random.default_rng(seed)
    lead, tail = np.zeros(int(0.6 * SR), np.float32), np.zeros(int(2.5 * SR), np.float32)
    versions = []
    for clip in clips:
        pause = np.zeros(int(rng.uniform(0.5, 1.2) * SR), np.float32)
        paused = np.concatenate([lead, clip.audio[: clip.split], pause, clip.audio[clip.split :], tail])
        unpaused = np.concatenate([lead, clip.audio, tail])
        if noise == "pink":  # the whole recording, pauses included, under a steady hall noise at 10 dB SNR
            unpaused = at_snr(unpaused, pink_noise(len(unpaused), rng), 10)
            paused = at_snr(paused, pink_noise(len(paused), rng), 10)
        versions.append((clip, unpaused.astype(np.float32), paused.astype(np.float32)))
    kinds = ", ".join(sorted({c.kind for c in clips}))
    print(f"\n{len(clips)} questions ({kinds}), paused 0.5-1.2 s, noise: {noise}\n")
    header = (
        f"{'policy':<11} {'paused cut':>10} {'cut, merged':>11} {'frag heard':>10} {'unpaused early':>14}"
        f" {'decision med':>12} {'P95':>6} {'idle med':>8} {'waited':>7} {'CPU/call':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, (vad, turn) in POLICIES.items():
        config = Config().replace(vad=vad, turn=turn)
        runs_p, runs_u = [], []
        for _, unpaused, paused in versions:
            for audio, runs in ((unpaused, runs_u), (paused, runs_p)):
                silero.reset()
                policy = EndOfTurn(
                    config.vad,
                    config.turn,
                    FrameClassifier(config.vad, silero),
                    model if turn.get("backend") == "smart_turn" else None,
                    inline=True,
                )
                hears = asr if turn.get("backend") == "smart_turn" and config.turn.question_wait_ms else None
                runs.append(endpoint(policy, audio, config, first_audio_s, hears))
        cut = sum(r.turns > 1 for r in runs_p)
        cut_merged = sum(r.questions > 1 for r in runs_p)
        heard = sum(r.heard_fragment for r in runs_p)
        early = sum(r.turns > 1 for r in runs_u)
        waited = sum(r.turns == 1 and r.outcomes[-1:] == ["timeout"] for r in runs_u)
        latencies = [r.decision_s for r in runs_u if r.turns == 1 and r.decision_s is not None]
        p95 = float(np.percentile(latencies, 95)) if latencies else float("nan")
        idle = statistics.median(r.idle_s for r in runs_u if r.turns == 1 and r.idle_s is not None)
        cpu = [c for r in runs_p + runs_u for c in r.cpu]
        cpu_text = f"{statistics.median(cpu) * 1000:.0f} ms" if cpu else "-"
        n = len(versions)
        print(
            f"{name:<11} {cut:>4}/{n:<5} {cut_merged:>5}/{n:<5} {heard:>4}/{n:<5} {early:>8}/{n:<5}"
            f" {statistics.median(latencies):>10.3f} s {p95:>5.2f} {idle:>6.3f} s {waited:>3}/{n:<3} {cpu_text:>8}"
        )
        outcomes: dict[str, int] = {}
        for r in runs_p + runs_u:
            for o in r.outcomes:
                outcomes[o] = outcomes.get(o, 0) + 1
        print(f"{'':<11} decisions: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")
        missed = [c.name for (c, _, _), r in zip(versions, runs_p, strict=True) if r.questions > 1]
        if missed:
            print(f"{'':<11} paused, cut after merge: {'; '.join(m[:40] for m in missed[:6])}")
        waited_names = [
            c.name
            for (c, _, _), r in zip(versions, runs_u, strict=True)
            if r.turns == 1 and r.outcomes[-1:] == ["timeout"]
        ]
        if waited_names:
            print(f"{'':<11} unpaused, waited: {'; '.join(m[:40] for m in waited_names[:6])}")
        early_names = [c.name for (c, _, _), r in zip(versions, runs_u, strict=True) if r.turns > 1]
        if early_names:
            merged_too = sum(r.questions > 1 for r in runs_u)
            print(f"{'':<11} unpaused, cut early ({merged_too} after merge): {'; '.join(m[:40] for m in early_names[:6])}")


# --- word error rate ----------------------------------------------------------------------------------


def wer(reference: str, hypothesis: str) -> tuple[int, int]:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def bench_wer(clips: list[Clip], cache_dir: Path, seed: int) -> None:
    from kiosk.engine.asr import RECOGNIZERS
    from kiosk.engine.device import Device

    real = [c for c in clips if c.kind != "piper"]
    rng = np.random.default_rng(seed)
    conditions = {"clean": [c.audio for c in real]}
    conditions["babble 10 dB"] = [
        at_snr(c.audio, babble(real, i, len(c.audio), rng), 10) for i, c in enumerate(real)
    ]
    conditions["pink 10 dB"] = [at_snr(c.audio, pink_noise(len(c.audio), rng), 10) for c in real]
    print(f"\nword error rate on {len(real)} recorded clips (asterisk prompts, LibriVox)\n")
    print(f"{'model':<8} " + " ".join(f"{k:>13}" for k in conditions) + f" {'s per clip':>10}")
    for name in ("tiny.en", "base"):
        asr_config = Config().replace(asr={"model": name}).asr
        asr = RECOGNIZERS.create("whisper", asr_config, Device("cpu"), cache_dir)
        asr.load()
        cells, spent, calls = [], 0.0, 0
        for audios in conditions.values():
            errors = total = 0
            for clip, audio in zip(real, audios, strict=True):
                started = time.perf_counter()
                padded = np.concatenate([np.zeros(4800, np.float32), audio, np.zeros(4800, np.float32)])
                text = asr.transcribe(padded).text
                spent += time.perf_counter() - started
                calls += 1
                e, n = wer(clip.text, text)
                errors, total = errors + e, total + n
            cells.append(f"{100 * errors / total:>12.1f}%")
        print(f"{name:<8} " + " ".join(cells) + f" {spent / calls:>9.2f}s")
        asr.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=40, help="half Piper, half recordings")
    parser.add_argument("--first-audio", type=float, default=0.55, help="end of speech to the answer's audio")
    parser.add_argument("--other-voice", type=int, default=0, help="add this many espeak-ng questions")
    parser.add_argument("--no-wer", action="store_true")
    parser.add_argument("--noise", choices=("none", "pink"), default="none", help="pink: 10 dB SNR throughout")
    parser.add_argument("--thresholds", default="0.5", help="Smart Turn thresholds to compare, e.g. 0.5,0.7")
    parser.add_argument("--pauses", default="150", help="speculative pauses (ms) to compare, e.g. 90,150")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache-dir", default=os.environ.get("DOCENT_TEST_CACHE", "~/.cache/docent"))
    args = parser.parse_args()
    print(describe(), flush=True)
    real_count = args.questions - args.questions // 2
    recorded = librivox_clips()
    recorded = asterisk_clips(max(0, real_count - len(recorded))) + recorded
    clips = piper_clips(min(args.questions // 2, len(QUESTIONS)), args.seed) + recorded[:real_count]
    clips += espeak_clips(args.other_voice)
    for threshold in [float(t) for t in args.thresholds.split(",")]:
        if threshold != 0.5:
            POLICIES[f"ST p>={threshold}"] = ({}, {"backend": "smart_turn", "threshold": threshold})
    for pause in [int(p) for p in args.pauses.split(",")]:
        if pause != 150:
            POLICIES[f"ST {pause} ms"] = ({"speculative_pause_ms": pause}, {"backend": "smart_turn"})
    bench_endpointing(clips, args.first_audio, args.seed, args.noise, Path(args.cache_dir).expanduser())
    if not args.no_wer:
        bench_wer(clips, Path(args.cache_dir).expanduser(), args.seed)


if __name__ == "__main__":
    main()
