"""The engine: builds every stage from the config, loads them off the caller's thread, and runs the pipeline.

The UI and the command line talk only to this class (commands in, events out).  A stage that fails to
load is reported in one line (a ModelFailed event and the log) and the kiosk keeps running with what
works: no ASR means tapped questions only, no TTS means captions only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import kiosk.engine.llm  # noqa: F401 - registers the "llm" answerer (imports no model code)
from kiosk import __version__
from kiosk.cache_folder import cache_fallback
from kiosk.config import Config
from kiosk.engine import events as ev
from kiosk.engine import model_cache
from kiosk.engine.answer import ANSWERERS
from kiosk.engine.asr import RECOGNIZERS, WhisperRecognizer, exhibit_vocabulary
from kiosk.engine.audio_in import AudioSource
from kiosk.engine.audio_out import AudioSink, make_sink
from kiosk.engine.device import cuda_device_count, resolve_device, settle_heap
from kiosk.engine.face.states import FaceStates
from kiosk.engine.pipeline import Pipeline, SpeechListener, Stages, Turn
from kiosk.engine.retrieval import SectionRetriever
from kiosk.engine.speech_cache import speech_cache_texts, warm_speech_cache
from kiosk.engine.stage import MODEL_STAGES, Stage
from kiosk.engine.threads import WorkerThread
from kiosk.engine.turn.model import TurnModel
from kiosk.engine.turn.policy import EndOfTurn
from kiosk.engine.vad import SileroStream
from kiosk.errors import KioskError
from kiosk.exhibit import Exhibit, load_exhibit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    stage: str
    name: str
    device: str
    memory_bytes: int
    load_seconds: float
    fallback: bool = False


def _one_line(text: object) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


class Engine:
    def __init__(
        self,
        config: Config,
        exhibit: Exhibit | None = None,
        bus: ev.EventBus | None = None,
        sink: AudioSink | None = None,
        device_count: Callable[[], int] = cuda_device_count,
        ears: bool = True,
    ) -> None:
        """``ears``: load the speech recogniser.  The screen app passes False for ``[audio] input =
        "none"`` (nothing will ever be heard, so Whisper's memory and load time are saved); headless
        commands keep it, as they feed recorded speech (``kiosk ask --wav``, the soak)."""
        settle_heap()  # before the models and their threads allocate (process-wide, harmless when repeated)
        self.config = config
        self.bus = bus or ev.EventBus()
        self.exhibit = exhibit or load_exhibit(config.exhibit.path)
        self.sink = sink or make_sink(config)
        self._device_count = device_count
        self.stages: dict[str, Stage | None] = {}
        self.models: dict[str, ModelInfo] = {}
        self.failures: dict[str, str] = {}
        self.fallbacks: dict[str, str] = {}
        self.off: dict[str, str] = {} if ears else {"asr": 'the microphone is off ([audio] input = "none")'}
        self.silero: SileroStream | None = None
        self.turn_model: TurnModel | None = None  # None: the silence rule ends turns
        self.face = None  # the FaceAnimator, once the portrait has passed its check
        self.listeners: list[SpeechListener] = []
        self.pipeline: Pipeline | None = None
        self.ready = threading.Event()
        self._hands_free = config.ui.mode == "hands_free"
        self._closing = threading.Event()
        self._prewarm: threading.Thread | None = None
        self._loader: threading.Thread | None = None
        self._llm_pending: Stage | None = None  # an LLM answerer answering from the notes until it loads
        self._llm_loader: threading.Thread | None = None

    # --- loading ------------------------------------------------------------------------------------

    def load_async(self) -> threading.Thread:
        """A kiosk's start: load on a thread; with ``[llm] background_load`` the LLM loads after ``ready``."""
        background = self.config.llm.background_load
        self._loader = WorkerThread(
            target=self.load, kwargs={"background": background}, name="model-loader", daemon=True
        )
        self._loader.start()
        return self._loader

    def load(self, background: bool = False) -> None:
        """Load every stage in order of need; each failure is reported and the rest still load.

        ``background``: an LLM answerer is only prepared (it answers from the notes as written) and its
        model loads on a thread of its own once the engine is ready (``wait_llm``).
        """
        cfg = self.config
        cfg.cache_dir  # noqa: B018 - resolves the folder: a temporary one (one WARNING) if it is read-only
        if (unusable := cache_fallback(cfg.paths.cache_dir)) is not None:
            self.bus.publish(ev.StoreFailed(store="model_cache", message=f"[paths] cache_dir: {unusable}"))
        self._load("vad", "silero-vad-v6", lambda count: self._load_vad())
        if "asr" not in self.off:
            self._load_asr()
        self._load("tts", cfg.tts.backend, self._load_tts, cfg.tts.device)
        retriever = self._load(
            "retrieval",
            "all-MiniLM-L6-v2",
            lambda count: self._make(
                SectionRetriever(
                    self.exhibit,
                    resolve_device(cfg.retrieval.device, count),
                    runtime=cfg.retrieval.runtime,
                    cache_dir=cfg.cache_dir,
                )
            ),
            cfg.retrieval.device,
        )
        if retriever is not None:
            self._load_answerer(retriever, background)
        self._load("face", cfg.face.backend, lambda count: self._load_face())
        self._build_pipeline()
        for rebuild in model_cache.take_rebuilds():  # cached models found damaged and converted again
            self.bus.publish(ev.CacheRebuilt(stage=rebuild.stage, reason=rebuild.reason))
        missing = tuple(sorted(self.failures))
        self.ready.set()
        self.bus.publish(ev.EngineReady(missing=missing))
        pending = self._llm_pending
        if pending is not None:  # the LLM first, then the speech cache: on 2 cores each is slower together
            self._llm_loader = WorkerThread(
                target=self._load_llm, args=(pending,), name="llm-loader", daemon=True
            )
            self._llm_loader.start()
        else:
            self._start_prewarm()

    def _start_prewarm(self) -> None:
        if self.config.tts.prewarm and self.stages.get("tts") is not None and not self._closing.is_set():
            self._prewarm = WorkerThread(target=self.warm_speech_cache, name="speech-prewarm", daemon=True)
            self._prewarm.start()

    def warm_speech_cache(self) -> int:
        """Speak the exhibit's notes and the fixed replies into the TTS cache, while no visitor is waiting
        (:mod:`kiosk.engine.speech_cache`); the number of texts spoken."""
        tts = self.stages.get("tts")
        pipeline = self.pipeline
        if tts is None or pipeline is None:
            return 0
        texts = speech_cache_texts(self.exhibit)
        return warm_speech_cache(tts, texts, lambda: pipeline.busy, self._closing)  # type: ignore[arg-type]

    def _make(self, stage: Stage) -> Stage:
        stage.load()
        return stage

    def _load_asr(self) -> None:
        cfg = self.config
        self._load(
            "asr",
            cfg.asr.model,
            lambda count: self._make(
                RECOGNIZERS.create(
                    "whisper",
                    cfg.asr,
                    resolve_device(cfg.asr.device, count),
                    cfg.cache_dir,
                    exhibit_vocabulary(self.exhibit),
                )
            ),
            cfg.asr.device,
        )

    def _load_face(self) -> None:
        """Check the portrait (the same check as ``kiosk portrait check``) and make the animator."""
        from kiosk.engine.face import create_animator

        animator = create_animator(self.config, self.exhibit, self.sink.clock, self.bus)
        self.face = animator
        self.listeners.append(animator)
        self.bus.subscribe(FaceStates(animator))
        return None

    def _load_vad(self) -> Stage | None:
        self.silero = SileroStream()
        self._load_turn_model()
        return None

    def _load_turn_model(self) -> None:
        """The end-of-turn model; when it cannot load, the silence rule ends turns (one line, counted)."""
        from kiosk.engine.turn.smart_turn import create_turn_model

        try:
            self.turn_model = create_turn_model(self.config.turn)
        except Exception as exc:
            reason = _one_line(str(exc) if isinstance(exc, KioskError) else f"turn: {exc}")
            reason = f"{reason}; the silence rule ends turns"
            log.warning("%s", reason)
            self.fallbacks["turn"] = reason
            self.bus.publish(ev.StageFailed(turn_id=0, stage="vad_endpoint", kind="load", message=reason))
            self.bus.publish(ev.BackendFallback(stage="vad", backend="silence", reason=reason))

    def _load_tts(self, count: Callable[[], int]) -> Stage:
        from kiosk.engine.tts import create_synthesizer, exhibit_voice_path

        device = resolve_device(self.config.tts.device, count)
        synth, reason = create_synthesizer(
            self.config.tts, device, exhibit_voice_path(self.config, self.exhibit)
        )
        if reason:
            self.fallbacks["tts"] = reason
            log.warning("tts: %s", reason)
            self.bus.publish(ev.BackendFallback(stage="tts", backend=synth.name, reason=reason))
        return synth

    def _load_answerer(self, retriever: Stage, background: bool = False) -> None:
        """The configured answerer; when it cannot load (a missing or broken LLM), the notes as written.

        ``background`` with the LLM: the answerer is only prepared here; ``_load_llm`` loads its model later.
        """
        cfg = self.config

        def build(backend: str) -> Callable[[Callable[[], int]], Stage | None]:
            return lambda count: self._make(
                ANSWERERS.create(backend, cfg, self.exhibit, retriever, device_count=count)
            )

        def prepare(count: Callable[[], int]) -> Stage:
            answerer = ANSWERERS.create("llm", cfg, self.exhibit, retriever, device_count=count)
            answerer.prepare()  # type: ignore[attr-defined]
            return answerer

        if background and cfg.answer.backend == "llm":
            self._llm_pending = self._load("answer", cfg.answer.backend, prepare, cfg.llm.device)
            if self._llm_pending is not None:
                return
        device = cfg.llm.device if cfg.answer.backend == "llm" else "cpu"
        if self._load("answer", cfg.answer.backend, build(cfg.answer.backend), device) is not None:
            return
        if cfg.answer.backend == "retrieval":
            return
        reason = f"{self.failures['answer']}; answering with the notes as written"
        self.fallbacks["answer"] = reason
        if self._load("answer", "retrieval", build("retrieval")) is None:
            del self.fallbacks["answer"]
            return
        del self.failures["answer"]  # answering works: the failure was reported, and shows as the fallback
        log.warning("%s", reason)
        self.bus.publish(ev.BackendFallback(stage="answer", backend="retrieval", reason=reason))

    def _load_llm(self, answerer: Stage) -> None:
        """The LLM's model, behind an answerer that answers from the notes meanwhile (``ModelLoaded``/
        ``ModelFailed`` for the stage "llm"); when it cannot load, the notes go on answering."""
        try:
            self._load_llm_model(answerer)
        finally:
            self._start_prewarm()

    def _load_llm_model(self, answerer: Stage) -> None:
        name = getattr(answerer, "name", "llm")
        self.bus.publish(ev.ModelLoading(stage="llm", name=name))
        started = time.monotonic()
        try:
            answerer.load()
        except Exception as exc:
            message = str(exc) if isinstance(exc, KioskError) else f"llm: {type(exc).__name__}: {exc}"
            message = _one_line(message) or "llm: failed to load"
            reason = f"{message}; answering with the notes as written"
            self.fallbacks["answer"] = reason
            log.error("%s", reason)
            self.bus.publish(ev.ModelFailed(stage="llm", name=name, message=message))
            self.bus.publish(ev.BackendFallback(stage="answer", backend="retrieval", reason=reason))
            return
        if self._closing.is_set():
            return
        seconds = time.monotonic() - started
        info = ModelInfo(
            "llm",
            name,
            getattr(answerer, "device", "cpu"),
            int(getattr(answerer, "memory_bytes", 0)),
            seconds,
        )
        self.models["llm"] = info
        self.bus.publish(
            ev.ModelLoaded(
                stage="llm",
                name=name,
                device=info.device,
                load_seconds=seconds,
                memory_bytes=info.memory_bytes,
            )
        )

    def wait_llm(self, timeout: float = 300.0) -> bool:
        """Wait until an LLM loading in the background has loaded or failed (at once when none is)."""
        if not self.ready.wait(timeout):
            return False
        if self._llm_loader is not None:
            self._llm_loader.join(timeout)
            return not self._llm_loader.is_alive()
        return True

    def _load(
        self, stage: str, name: str, build: Callable[[Callable[[], int]], Stage | None], device: str = "cpu"
    ) -> Stage | None:
        """Build and load one stage; with device 'auto', a stage that fails on the GPU is retried on the CPU."""
        self.bus.publish(ev.ModelLoading(stage=stage, name=name))
        started = time.monotonic()
        try:
            try:
                loaded = build(self._device_count)
            except Exception as exc:
                if device != "auto" or self._device_count() == 0:
                    raise
                reason = f"{stage}: could not load on the GPU ({_one_line(exc)}); running on the CPU"
                log.warning("%s", reason)
                self.fallbacks[stage] = reason
                self.bus.publish(ev.BackendFallback(stage=stage, backend="cpu", reason=reason))
                loaded = build(lambda: 0)
        except Exception as exc:
            message = str(exc) if isinstance(exc, KioskError) else f"{stage}: {type(exc).__name__}: {exc}"
            message = _one_line(message) or f"{stage}: failed to load"
            self.failures[stage] = message
            self.stages[stage] = None
            log.error("%s", message)
            self.bus.publish(ev.ModelFailed(stage=stage, name=name, message=message))
            return None
        seconds = time.monotonic() - started
        self.stages[stage] = loaded
        info = ModelInfo(
            stage,
            getattr(loaded, "name", name) or name,
            getattr(loaded, "device", "cpu"),
            int(getattr(loaded, "memory_bytes", 0)),
            seconds,
            stage in self.fallbacks,
        )
        self.models[stage] = info
        self.bus.publish(
            ev.ModelLoaded(
                stage=stage,
                name=info.name,
                device=info.device,
                load_seconds=seconds,
                memory_bytes=info.memory_bytes,
            )
        )
        return loaded

    def _build_pipeline(self) -> None:
        silero = self.silero

        def endpointer() -> EndOfTurn:
            from kiosk.engine.vad import FrameClassifier

            classifier = FrameClassifier(self.config.vad, silero)
            return EndOfTurn(self.config.vad, self.config.turn, classifier, self.turn_model)

        stages = Stages(
            asr=self.stages.get("asr"),  # type: ignore[arg-type]
            answerer=self.stages.get("answer"),  # type: ignore[arg-type]
            tts=self.stages.get("tts"),  # type: ignore[arg-type]
            endpointer_factory=endpointer if silero is not None else None,
        )
        self.pipeline = Pipeline(self.config, stages, self.sink, self.bus, self.listeners)
        self.pipeline.set_hands_free(self._hands_free)

    def wait_ready(self, timeout: float = 300.0) -> bool:
        return self.ready.wait(timeout)

    def wait_prewarmed(self, timeout: float = 300.0) -> bool:
        """Wait until the notes are in the speech cache (a kiosk's start, finished)."""
        if self._llm_loader is not None:  # the speech cache is warmed after the LLM has loaded
            self._llm_loader.join(timeout)
        if self._prewarm is not None:
            self._prewarm.join(timeout)
            return not self._prewarm.is_alive()
        return True

    # --- what the UI and CLI call ---------------------------------------------------------------------

    def health(self) -> dict[str, bool]:
        # the answerer stands for the LLM; a stage switched off (no microphone: no recogniser) is not missing
        wanted = tuple(s for s in MODEL_STAGES if s != "llm" and s not in self.off)
        loaded = {"vad": self.silero is not None, "face": self.face is not None}
        return {stage: loaded.get(stage, stage in self.models) for stage in wanted}

    def build_info(self) -> dict[str, str]:
        asr = self.models.get("asr")
        answer = self.models.get("answer")
        tts = self.models.get("tts")
        devices = sorted({m.device for m in self.models.values()} or {"cpu"})
        return {
            "version": __version__,
            "exhibit": self.exhibit.id,
            "asr_model": asr.name if asr else "none",
            "llm_model": answer.name if answer else "none",
            "tts_voice": tts.name if tts else "none",
            "device": ",".join(devices),
        }

    def _require_pipeline(self) -> Pipeline:
        if self.pipeline is None:
            raise KioskError("the guide is still loading its models")
        return self.pipeline

    def ask(self, question: str) -> Turn:
        return self._require_pipeline().ask(question)

    def answer_audio(self, audio, speech_end_t: float | None = None) -> Turn:
        pipeline = self._require_pipeline()
        if pipeline.stages.asr is None:
            raise KioskError(
                f"speech recognition is not available ({self.failures.get('asr', 'not loaded')})"
            )
        return pipeline.answer_audio(audio, speech_end_t)

    def start_listening(self, source: AudioSource) -> threading.Thread:
        return self._require_pipeline().start_listening(source)

    def stop_listening(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop_listening()

    def stop(self) -> None:
        if self.pipeline is not None:
            self.pipeline.cancel("stop")

    def reset_session(self) -> None:
        if self.pipeline is not None:
            self.pipeline.reset_session()

    def set_push_to_talk(self, held: bool) -> None:
        if self.pipeline is not None:
            self.pipeline.set_push_to_talk(held)

    def set_hands_free(self, enabled: bool) -> None:
        self._hands_free = bool(enabled)
        if self.pipeline is not None:
            self.pipeline.set_hands_free(enabled)

    def hands_free(self) -> bool:
        """Whether the guide answers whenever it hears a question (else only while the button is held)."""
        if self.pipeline is not None:
            return bool(self.pipeline.hands_free)
        return self._hands_free

    def add_speech_listener(self, listener: SpeechListener) -> Callable[[], None]:
        """``listener`` follows the guide's voice (begin_answer/add_chunk/end_answer); returns its remover."""
        targets = [self.listeners]
        if self.pipeline is not None and self.pipeline.listeners is not self.listeners:
            targets.append(self.pipeline.listeners)
        added = [t for t in targets if all(item is not listener for item in t)]
        for target in added:
            target.append(listener)

        def remove() -> None:
            for target in added:
                target[:] = [item for item in target if item is not listener]

        return remove

    def reload_exhibit(self, path: str | Path | None = None) -> None:
        """Read the pack again (a curator edited the notes) and re-index it."""
        exhibit = load_exhibit(path or self.exhibit.folder)
        self.exhibit = exhibit
        retriever = self.stages.get("retrieval")
        if isinstance(retriever, SectionRetriever):
            retriever.index(exhibit)
        recognizer = self.stages.get("asr")
        if isinstance(recognizer, WhisperRecognizer):
            recognizer.vocabulary = exhibit_vocabulary(exhibit)
        answerer = self.stages.get("answer")
        if answerer is not None:
            answerer.exhibit = exhibit  # type: ignore[attr-defined]
            answerer.reset_session()  # type: ignore[attr-defined]

    def close(self) -> None:
        self._closing.set()
        if self._prewarm is not None:
            self._prewarm.join(timeout=5.0)
        if self._llm_loader is not None:
            self._llm_loader.join(timeout=5.0)  # a load still under way drops its model when it ends
        if self.pipeline is not None:
            self.pipeline.cancel("close")
            self.pipeline.stop_listening()
        for stage in self.stages.values():
            if stage is not None:
                try:
                    stage.close()
                except Exception:
                    log.exception("closing %s", stage)
        self.sink.close()
