"""The talking face as a video file with its voice, for checking the face without a screen.

The playback clock is simulated: frame k shows the mouth for audio time k / fps exactly, so the file is
deterministic and in step by construction, like the live face.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from kiosk.config import Config, load_config
from kiosk.emotion import Emotion
from kiosk.engine.audio_out import PlaybackClock
from kiosk.engine.cancel import CancelToken
from kiosk.engine.face.animator import FaceAnimator
from kiosk.engine.stage import SpeechChunk
from kiosk.errors import KioskError
from kiosk.exhibit import Exhibit, load_exhibit

TAIL_SECONDS = 0.5  # the face settles after the last word


class SimulatedClock(PlaybackClock):
    """A playback clock set by hand: ``position()`` is whatever was last set."""

    def __init__(self, sample_rate: int = 22050) -> None:
        super().__init__(sample_rate)
        self.seconds = 0.0

    def set(self, seconds: float) -> None:
        self.seconds = seconds

    def position(self, at: float | None = None) -> float:
        return self.seconds


def render_video(
    chunks: Sequence[SpeechChunk],
    out_path: str | Path,
    animator_factory,
    emotion: Emotion = Emotion.NEUTRAL,
    fps: int = 30,
) -> Path:
    """Write ``chunks`` spoken by the face to an MP4 (H.264 + AAC). Returns the path."""
    import av

    if not chunks:
        raise KioskError("render: nothing to say")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    clock = SimulatedClock(chunks[0].sample_rate)
    t = 0.0
    animator: FaceAnimator = animator_factory(clock, lambda: t)
    animator.begin_answer(1, emotion)
    for chunk in chunks:
        animator.add_chunk(1, chunk)
    animator.end_answer(1)
    audio = np.concatenate([c.audio for c in chunks]).astype(np.float32)
    rate = chunks[0].sample_rate
    duration = len(audio) / rate + TAIL_SECONDS

    container = av.open(str(out_path), mode="w")
    try:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        video = container.add_stream(codec, rate=fps)
        first = animator.frame_at(0.0).image
        video.width, video.height = first.shape[1], first.shape[0]
        video.pix_fmt = "yuv420p"
        if codec == "libx264":
            video.options = {"crf": "20", "preset": "veryfast"}
        sound = container.add_stream("aac", rate=rate)
        sound.layout = "mono"
        for k in range(int(duration * fps)):
            t = k / fps
            clock.set(t)
            frame = av.VideoFrame.from_ndarray(animator.frame_at(t).image, format="rgb24")
            frame.pts = k
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        step = 1024
        for start in range(0, len(pcm), step):
            block = pcm[start : start + step]
            frame = av.AudioFrame.from_ndarray(block[None, :], format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            container.mux(sound.encode(frame))
        container.mux(sound.encode())
    finally:
        container.close()
    return out_path


def _factory(config: Config, exhibit: Exhibit):
    from kiosk.engine.face import check_exhibit_portrait, create_backend

    portrait = check_exhibit_portrait(exhibit, config.cache_dir)
    backend = create_backend(config, portrait)

    def make(clock: PlaybackClock, now) -> FaceAnimator:
        return FaceAnimator(backend, clock, fps=config.face.fps, seed=7, now=now)

    return make


def synthesise(text: str, emotion: Emotion, config: Config) -> list[SpeechChunk]:
    from kiosk.engine.device import resolve_device
    from kiosk.engine.tts import create_synthesizer, first_clause

    tts, _ = create_synthesizer(config.tts, resolve_device(config.tts.device))
    from kiosk.exhibit import split_sentences

    chunks: list[SpeechChunk] = []
    for index, sentence in enumerate(split_sentences(text)):
        for part in first_clause(sentence) if index == 0 else (sentence,):
            if part:
                chunks.extend(tts.stream(part, emotion, CancelToken()))
    return chunks


def render_command(text: str, out: str, config: Config | None = None, emotion: str = "neutral") -> int:
    """``kiosk render --text ... --out answer.mp4``."""
    config = config or load_config()
    exhibit = load_exhibit(config.exhibit.path)
    mood = Emotion.normalise(emotion)
    path = render_video(synthesise(text, mood, config), out, _factory(config, exhibit), mood, config.face.fps)
    print(f"video: {path}")
    return 0


def render_chunks_command(
    chunks: Sequence[SpeechChunk], out: str, exhibit: Exhibit, config: Config | None = None
) -> int:
    """``kiosk ask ... --video out.mp4``: the answer just spoken, as a video."""
    config = config or load_config()
    if not chunks:
        print("kiosk: no spoken answer to render", file=sys.stderr)
        return 2
    path = render_video(list(chunks), out, _factory(config, exhibit), fps=config.face.fps)
    print(f"video: {path}")
    return 0
