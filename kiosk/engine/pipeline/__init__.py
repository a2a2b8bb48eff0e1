"""The conversation pipeline: listening, turns, and the streaming between stages.

Threads: a listener reads the audio source and runs the endpointer; each turn runs on its own worker
(ASR, then the answerer's sentences), a speaker thread per turn synthesises sentence by sentence and
writes to the sink, and a watcher follows the playback clock to publish captions and close the turn.

Speculation: when the visitor pauses for ``speculative_pause_ms`` the turn starts at once, with its
events held back and its audio gated; if the pause becomes the end of the question the turn is committed
(the held events are published and the audio plays), if the visitor goes on it is dropped silently.
Whether a pause ends the question is the end-of-turn stage's call (kiosk/engine/turn/policy.py); when the
visitor goes on just after a turn was committed, before much of its answer has played, that answer is
dropped and the fragment and its continuation are recognised as one question (a merge).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from kiosk.config import Config
from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.engine import watchdog
from kiosk.engine.audio_in import AudioSource, EndOfStream, SourceUnavailable
from kiosk.engine.audio_out import AudioSink
from kiosk.engine.cancel import Cancelled, CancelToken
from kiosk.engine.device import is_out_of_memory
from kiosk.engine.replies import NOT_UNDERSTOOD_REPLY
from kiosk.engine.stage import Answer, Answerer, SpeechChunk, SpeechRecognizer, SpeechSynthesizer, Transcript
from kiosk.engine.tts import first_clause
from kiosk.engine.turn.policy import EndOfTurn
from kiosk.engine.vad import Vad, VadEvent
from kiosk.engine.visitor_audio import VisitorAudioStore

log = logging.getLogger(__name__)

ERROR_REPLY = "Sorry, something went wrong on my side. Please ask me again."
LEVEL_INTERVAL_S = 0.1


class SpeechListener(Protocol):
    """Something that follows the guide's voice (the face animator)."""

    def begin_answer(self, turn_id: int, emotion: Emotion) -> None: ...

    def add_chunk(self, turn_id: int, chunk: SpeechChunk) -> None: ...

    def end_answer(self, turn_id: int) -> None: ...


@dataclass
class Turn:
    id: int
    source: str  # voice | text
    audio: np.ndarray | None = None
    question: str = ""
    speech_end_t: float = 0.0
    cut: bool = False
    cancel: CancelToken = field(default_factory=CancelToken)
    committed: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    held: list[ev.Event] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    topic: str | None = None
    emotion: Emotion = Emotion.NEUTRAL
    spoken: list[str] = field(default_factory=list)
    first_audio_s: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    answer: Answer | None = None  # what the answerer planned, committed once it was played


@dataclass
class Stages:
    """The loaded stages a pipeline uses; a missing one (None) degrades the kiosk, it does not stop it."""

    asr: SpeechRecognizer | None
    answerer: Answerer | None
    tts: SpeechSynthesizer | None
    endpointer_factory: Callable[[], EndOfTurn] | None


class Pipeline:
    def __init__(
        self,
        config: Config,
        stages: Stages,
        sink: AudioSink,
        bus: ev.EventBus,
        listeners: list[SpeechListener] | None = None,
    ) -> None:
        self.config = config
        self.stages = stages
        self.sink = sink
        self.bus = bus
        self.listeners = (
            listeners if listeners is not None else []
        )  # shared: the engine may add the face later
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._sink_lock = threading.Lock()  # writing to the sink, and stopping it
        self._active: Turn | None = None  # the committed turn being answered
        self._speculative: Turn | None = None
        self._listener: threading.Thread | None = None
        self._stop_listening = threading.Event()
        self._session_started: float | None = None
        self._session_turns = 0
        self._last_activity = time.monotonic()
        self._source: AudioSource | None = None
        self.hands_free = config.ui.mode == "hands_free"
        self._ptt_frames: list[np.ndarray] | None = None  # recording while the talk button is held
        self._audio_store = VisitorAudioStore.from_config(config, bus)

    # --- commands -----------------------------------------------------------------------------------

    def ask(self, question: str) -> Turn:
        """A question tapped or typed: answered like a spoken one, without recognition."""
        turn = Turn(next(self._ids), "text", question=question.strip(), speech_end_t=time.monotonic())
        self._begin(turn, committed=True)
        return turn

    def answer_audio(self, audio: np.ndarray, speech_end_t: float | None = None, cut: bool = False) -> Turn:
        """A whole recorded question (``kiosk ask --wav``)."""
        turn = Turn(
            next(self._ids), "voice", audio=audio, speech_end_t=speech_end_t or time.monotonic(), cut=cut
        )
        self._begin(turn, committed=True)
        return turn

    def cancel(self, reason: str = "stop") -> None:
        """Stop the answer now (the visitor tapped stop or started speaking again)."""
        with self._lock:
            turns = [t for t in (self._active, self._speculative) if t is not None]
            self._speculative = None
        for turn in turns:
            self._cancel_turn(turn, reason)

    def set_hands_free(self, enabled: bool) -> None:
        """Hands-free listens all the time; otherwise the visitor holds the talk button."""
        self.hands_free = enabled
        self._ptt_frames = None

    def set_push_to_talk(self, held: bool) -> Turn | None:
        """Press: stop any answer and start recording. Release: answer what was said."""
        if held:
            self.cancel("push_to_talk")
            self._ptt_frames = []
            return None
        frames, self._ptt_frames = self._ptt_frames, None
        if not frames:
            return None
        return self.answer_audio(np.concatenate(frames), time.monotonic())

    def reset_session(self) -> None:
        self.cancel("reset")
        self._end_session()
        if self.stages.answerer is not None:
            self.stages.answerer.reset_session()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._active is not None and not self._active.finished.is_set()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                turn = self._active
            if turn is None or turn.finished.wait(0.05):
                with self._lock:
                    if self._active is None or self._active.finished.is_set():
                        return True
        return False

    # --- listening ----------------------------------------------------------------------------------

    def start_listening(self, source: AudioSource) -> threading.Thread:
        if self.stages.endpointer_factory is None or self.stages.asr is None:
            raise RuntimeError("listening needs the VAD and ASR stages")
        self._stop_listening.clear()
        self._source = source
        self._listener = threading.Thread(target=self._listen, args=(source,), name="listener", daemon=True)
        self._listener.start()
        return self._listener

    def stop_listening(self) -> None:
        self._stop_listening.set()
        if self._listener is not None:
            self._listener.join(timeout=3.0)
            self._listener = None

    def _listen(self, source: AudioSource) -> None:
        assert self.stages.endpointer_factory is not None
        endpointer = self.stages.endpointer_factory()
        last_level = 0.0
        last_voiced_t = time.monotonic()
        try:
            source.open()
        except SourceUnavailable as exc:
            self.bus.publish(ev.InputProblem(message=str(exc)))
        while not self._stop_listening.is_set():
            try:
                frame = source.read(timeout=0.2)
            except EndOfStream:
                break
            except SourceUnavailable as exc:
                self.bus.publish(ev.InputProblem(message=str(exc)))
                endpointer.reset()
                continue
            if frame is None:
                self._check_session_timeout()
                continue
            arrived = time.monotonic()
            if not self.hands_free:
                recording = self._ptt_frames
                if (
                    recording is not None
                    and len(recording) * len(frame) < self.config.vad.max_utterance_s * 16000
                ):
                    recording.append(frame)
                if arrived - last_level >= LEVEL_INTERVAL_S:
                    last_level = arrived
                    rms = float(np.sqrt(np.mean(np.square(frame))))
                    self.bus.publish(ev.InputLevel(rms=rms, speaking=recording is not None))
                continue
            if not self.config.vad.barge_in and self.busy:
                endpointer.reset()
                continue
            for vad_event in endpointer.feed(frame):
                if vad_event.merge_candidate:
                    endpointer.merge(self._merge_into_next())
                self._on_vad(vad_event, last_voiced_t)
            if endpointer.speaking:
                last_voiced_t = arrived
            if arrived - last_level >= LEVEL_INTERVAL_S:
                last_level = arrived
                rms = float(np.sqrt(np.mean(np.square(frame))))
                self.bus.publish(ev.InputLevel(rms=rms, speaking=endpointer.in_utterance))
            self._check_session_timeout()
        endpointer.close()
        source.close()

    def _merge_into_next(self) -> bool:
        """The visitor goes on just after a turn was committed: drop its answer if little has played."""
        with self._lock:
            turn = self._active
        if turn is None or turn.source != "voice" or turn.finished.is_set() or turn.audio is None:
            return False
        if turn.first_audio_s is not None:
            played = time.monotonic() - (turn.speech_end_t + turn.first_audio_s)
            if played * 1000 > self.config.turn.merge_max_played_ms:
                return False
        self._cancel_turn(turn, "merged")
        self.bus.publish(ev.TurnDecided(outcome="merged", seconds=0.0))
        return True

    def _on_vad(self, vad_event: VadEvent, last_voiced_t: float) -> None:
        if vad_event.kind is Vad.DECIDED:
            if vad_event.outcome == "error":
                self.bus.publish(
                    ev.StageFailed(turn_id=0, stage="vad_endpoint", kind="exception", message=vad_event.message)
                )
            else:
                self.bus.publish(
                    ev.TurnDecided(
                        outcome=vad_event.outcome, seconds=vad_event.decision_s, cpu_seconds=vad_event.cpu_s
                    )
                )
        elif vad_event.kind is Vad.STARTED:
            if self.config.vad.barge_in:
                with self._lock:
                    active = self._active
                if active is not None and not active.finished.is_set():
                    self._cancel_turn(active, "barge_in")
        elif vad_event.kind is Vad.PAUSED:
            turn = Turn(next(self._ids), "voice", audio=vad_event.audio, speech_end_t=last_voiced_t)
            with self._lock:
                self._speculative = turn
            self._begin(turn, committed=False)
        elif vad_event.kind is Vad.RESUMED:
            with self._lock:
                turn, self._speculative = self._speculative, None
            if turn is not None:
                turn.cancel.cancel("resumed")  # dropped silently: its events were never published
        elif vad_event.kind is Vad.ENDED:
            with self._lock:
                turn, self._speculative = self._speculative, None
            endpoint_s = time.monotonic() - last_voiced_t
            if turn is None or turn.cancel.cancelled:
                turn = Turn(next(self._ids), "voice", audio=vad_event.audio, speech_end_t=last_voiced_t)
                turn.cut = vad_event.cut
                self._begin(turn, committed=False)
            turn.timings["vad_endpoint"] = endpoint_s
            self._store_visitor_audio(turn)
            self._commit(turn, endpoint_s)

    # --- turns --------------------------------------------------------------------------------------

    def _begin(self, turn: Turn, committed: bool) -> None:
        if committed:
            self._commit(turn, None)
        worker = threading.Thread(target=self._run_turn, args=(turn,), name=f"turn-{turn.id}", daemon=True)
        worker.start()

    def _commit(self, turn: Turn, endpoint_s: float | None) -> None:
        with self._lock:
            previous = self._active
            self._active = turn
        if previous is not None and previous is not turn and not previous.finished.is_set():
            self._cancel_turn(previous, "new_turn")
        self._touch_session(new_turn=True)
        with turn.lock:
            held, turn.held = turn.held, []
            turn.committed.set()
        self.bus.publish(ev.TurnStarted(turn_id=turn.id, source=turn.source, t=turn.speech_end_t))
        if turn.source == "voice":
            seconds = 0.0 if turn.audio is None else len(turn.audio) / 16000
            self.bus.publish(
                ev.SpeechEnded(turn_id=turn.id, audio_seconds=seconds, cut=turn.cut, t=turn.speech_end_t)
            )
        if endpoint_s is not None:
            self.bus.publish(ev.StageFinished(turn_id=turn.id, stage="vad_endpoint", seconds=endpoint_s))
        for event in held:
            self.bus.publish(event)

    def _emit(self, turn: Turn, event: ev.Event) -> None:
        """Publish now if the turn is committed, else hold it until it is (or drop it with the turn)."""
        with turn.lock:
            if turn.cancel.cancelled and turn.cancel.reason == "resumed":
                return
            if not turn.committed.is_set():
                turn.held.append(event)
                return
        if turn.finished.is_set():
            return
        self.bus.publish(event)

    def _timed(self, turn: Turn, stage: str, seconds: float, **info: float) -> None:
        turn.timings[stage] = seconds
        self._emit(turn, ev.StageFinished(turn_id=turn.id, stage=stage, seconds=seconds, info=dict(info)))

    def _cancel_turn(self, turn: Turn, reason: str) -> None:
        turn.cancel.cancel(reason)
        if not turn.committed.is_set():
            return
        with self._lock:
            playing = self._active is turn
        if playing:
            with self._sink_lock:
                self.sink.stop()
        self._finish(turn, "cancelled")

    def _finish(self, turn: Turn, status: str) -> None:
        with turn.lock:
            if turn.finished.is_set():
                return
            turn.finished.set()
        turn.status = status
        for listener in self.listeners:
            listener.end_answer(turn.id)
        if not turn.committed.is_set():
            return
        answer, offer = turn.answer, ""
        if answer is not None and status not in ("cancelled", "error") and self.stages.answerer is not None:
            self.stages.answerer.commit(answer)  # the next question may build on it ("yes", "what did he do?")
            offer = answer.offer if answer.offer and answer.offer in turn.spoken else ""
        duration = time.monotonic() - turn.speech_end_t
        self.bus.publish(
            ev.TurnFinished(
                turn_id=turn.id,
                status=status,
                topic=turn.topic,
                emotion=turn.emotion,
                first_audio_seconds=turn.first_audio_s,
                duration_seconds=duration,
                timings=dict(turn.timings),
                question=turn.question,
                answer=" ".join(turn.spoken),
                offer=offer,
            )
        )
        self._touch_session(new_turn=False)

    def _run_turn(self, turn: Turn) -> None:
        try:
            self._answer_turn(turn)
        except Cancelled:
            pass
        except watchdog.StageTimeout as exc:  # asr or the answerer hung before anything was said
            self._timed_out(turn, exc)
            if not turn.cancel.cancelled:
                self._speak(turn, iter([watchdog.TIMEOUT_REPLY]), "error")
        except Exception as exc:
            log.exception("turn %d failed", turn.id)
            stage = "asr" if turn.source == "voice" and not turn.question else self._answer_stage
            self._emit(
                turn, ev.StageFailed(turn_id=turn.id, stage=stage, kind="exception", message=str(exc)[:200])
            )
            if not turn.cancel.cancelled:
                self._speak(turn, iter([ERROR_REPLY]), "error")

    def _answer_turn(self, turn: Turn) -> None:
        if turn.source == "voice":
            transcript = self._recognise(turn)
            turn.cancel.raise_if_cancelled()
            if not transcript.understood:
                turn.status = "not_understood"
                self._emit(
                    turn,
                    ev.AnswerChosen(
                        turn_id=turn.id, status="not_understood", topic=None, emotion=Emotion.NEUTRAL
                    ),
                )
                self._speak(turn, iter([NOT_UNDERSTOOD_REPLY]), "not_understood")
                return
        answerer = self.stages.answerer
        if answerer is None:
            self._emit(
                turn, ev.StageFailed(turn_id=turn.id, stage="retrieval", kind="load", message="no answerer")
            )
            self._speak(turn, iter([ERROR_REPLY]), "error")
            return
        started = time.monotonic()
        answer = watchdog.call(
            self._answer_stage, self._deadline, lambda: answerer.answer(turn.question, turn.cancel)
        )
        turn.cancel.raise_if_cancelled()
        retrieval_s = answer.info.get("retrieval_seconds", time.monotonic() - started)
        if answer.status not in ("filtered",) and retrieval_s:
            self._timed(turn, "retrieval", retrieval_s, score=answer.info.get("score", 0.0))
        turn.topic, turn.emotion, turn.answer = answer.topic, answer.emotion, answer
        self._emit(
            turn,
            ev.AnswerChosen(
                turn_id=turn.id, status=answer.status, topic=answer.topic, emotion=answer.emotion
            ),
        )
        self._speak(turn, self._sentences(turn, answer, started), answer.status, answer)

    def _recognise(self, turn: Turn) -> Transcript:
        asr = self.stages.asr
        assert asr is not None and turn.audio is not None
        self._emit(turn, ev.StageStarted(turn_id=turn.id, stage="asr"))
        started = time.monotonic()
        transcript = watchdog.call("asr", self._deadline, lambda: asr.transcribe(turn.audio, turn.cancel))
        seconds = time.monotonic() - started
        self._timed(turn, "asr", seconds, audio_seconds=transcript.audio_seconds)
        turn.question = transcript.text
        self._emit(
            turn, ev.Transcribed(turn_id=turn.id, text=transcript.text, understood=transcript.understood)
        )
        return transcript

    def _sentences(self, turn: Turn, answer: Answer, started: float):
        """The answer's sentences, timing an LLM's first sentence and whole generation as it goes."""
        generated = (
            self.stages.answerer is not None
            and self.stages.answerer.name != "retrieval"
            and not answer.info.get("canned")
        )
        first = True
        try:
            for sentence in watchdog.iterate(self._answer_stage, self._deadline, answer.sentences):
                turn.cancel.raise_if_cancelled()
                if first and generated:
                    self._timed(turn, "llm_first_sentence", time.monotonic() - started)
                first = False
                yield sentence
        except watchdog.StageTimeout as exc:  # the answer stopped coming: say sorry in the same voice
            self._timed_out(turn, exc)
            yield watchdog.TIMEOUT_REPLY
            return
        if generated and answer.status == "ok" and not answer.info.get("canned"):
            info = {k: float(v) for k, v in answer.info.items() if k in ("tokens", "tokens_per_second")}
            self._timed(turn, "llm", time.monotonic() - started, **info)
            if answer.info.get("oom"):
                self._emit(
                    turn,
                    ev.StageFailed(turn_id=turn.id, stage="llm", kind="oom", message="CUDA out of memory"),
                )
            elif answer.info.get("error"):
                self._emit(
                    turn,
                    ev.StageFailed(
                        turn_id=turn.id,
                        stage="llm",
                        kind="exception",
                        message="generation failed; answered from the notes",
                    ),
                )
        turn.emotion = Emotion.normalise(answer.emotion)

    # --- speaking -----------------------------------------------------------------------------------

    def _speak(self, turn: Turn, sentences, status: str, answer: Answer | None = None) -> None:
        """Synthesise sentence by sentence, wait for the commit, then play; finish the turn when played."""
        turn.status = status
        tts = self.stages.tts
        played: queue.Queue[tuple[int, int, str] | None] = queue.Queue()
        watcher = threading.Thread(
            target=self._watch_playback, args=(turn, played), name=f"captions-{turn.id}", daemon=True
        )
        offset = 0
        first_chunk = True
        tts_total = 0.0
        index = 0
        try:
            for index, sentence in enumerate(sentences):  # noqa: B007 - index is used after the loop
                if turn.cancel.cancelled:
                    break
                if tts is None:
                    self._wait_commit(turn)
                    if index == 0:
                        self._start_playback(turn, 22050)
                        watcher.start()
                    played.put((offset, index, sentence))
                    turn.spoken.append(sentence)
                    continue
                started = time.monotonic()
                first_piece = True
                for chunk in self._voice(tts, sentence, index == 0, turn):
                    now = time.monotonic()
                    if first_chunk:
                        self._timed(
                            turn,
                            "tts_first_audio",
                            now - started,
                            cache_hit=float(getattr(tts, "last_cache_hit", False)),
                        )
                    tts_total += now - started
                    self._wait_commit(turn)
                    with self._sink_lock:  # a cancel either comes before this check or stops what we wrote
                        if turn.cancel.cancelled:
                            break
                        if first_chunk:
                            self._start_playback(turn, chunk.sample_rate)
                            watcher.start()
                        if first_piece:
                            played.put((offset, index, sentence))
                            turn.spoken.append(sentence)
                            first_piece = False
                        for listener in self.listeners:
                            listener.add_chunk(turn.id, chunk)
                        self.sink.write(chunk.audio, turn.cancel)
                    if first_chunk:
                        self._first_audio(turn)
                        first_chunk = False
                    offset += len(chunk.audio)
                    started = time.monotonic()
        except watchdog.StageTimeout as exc:  # the voice hung: what was said stays, the turn ends
            self._timed_out(turn, exc)
            turn.status = "error"
        except Exception as exc:
            if is_out_of_memory(exc) or not isinstance(exc, Cancelled):
                if isinstance(exc, OSError):  # the loudspeaker went away: one line, the next turn retries
                    log.error("turn %d: audio output failed (%s)", turn.id, exc)
                else:
                    log.exception("speaking failed in turn %d", turn.id)
                self._emit(
                    turn,
                    ev.StageFailed(turn_id=turn.id, stage="tts", kind="exception", message=str(exc)[:200]),
                )
                turn.status = "error"
        if tts is not None and tts_total:
            self._timed(turn, "tts", tts_total)
        played.put(None)
        if watcher.ident is not None:
            watcher.join()
            return
        if not turn.cancel.cancelled:  # nothing was played: close the turn once it is committed
            self._wait_commit(turn)
            self._finish(turn, turn.status)

    def _voice(self, tts: SpeechSynthesizer, sentence: str, first: bool, turn: Turn):
        """The first sentence is spoken clause by clause: a short first clause is heard sooner."""
        for part in first_clause(sentence) if first else (sentence,):
            if part:
                stream = tts.stream(part, turn.emotion, turn.cancel)
                yield from watchdog.iterate("tts", self._deadline, stream)

    @property
    def _deadline(self) -> float:
        return self.config.session.stage_deadline_s

    @property
    def _answer_stage(self) -> str:
        answerer = self.stages.answerer
        return "retrieval" if answerer is None or answerer.name == "retrieval" else "llm"

    def _timed_out(self, turn: Turn, exc: watchdog.StageTimeout) -> None:
        """One line in the log, one counted StageFailed, the stage restarted; the turn ends as an error."""
        log.error("turn %d: %s; the stage is restarted", turn.id, exc)
        turn.status = "error"
        self._emit(turn, ev.StageFailed(turn_id=turn.id, stage=exc.stage, kind="timeout", message=str(exc)))
        instance = {"asr": self.stages.asr, "tts": self.stages.tts}.get(exc.stage, self.stages.answerer)
        watchdog.restart(exc.stage, instance)

    def _wait_commit(self, turn: Turn) -> None:
        while not turn.committed.wait(0.02):
            turn.cancel.raise_if_cancelled()
        turn.cancel.raise_if_cancelled()

    def _start_playback(self, turn: Turn, sample_rate: int) -> None:
        with self._lock:
            if self._active is not turn:
                raise Cancelled("superseded")
        self.sink.start(sample_rate)
        for listener in self.listeners:
            listener.begin_answer(turn.id, turn.emotion)

    def _first_audio(self, turn: Turn) -> None:
        now = time.monotonic()
        turn.first_audio_s = now - turn.speech_end_t
        self._emit(turn, ev.FirstAudio(turn_id=turn.id, latency_seconds=turn.first_audio_s, t=now))

    def _watch_playback(self, turn: Turn, played: queue.Queue[tuple[int, int, str] | None]) -> None:
        """Publish each sentence as its audio starts playing; finish the turn when all has played."""
        pending: list[tuple[int, int, str]] = []
        done = False
        while not turn.cancel.cancelled:
            try:
                while True:
                    item = played.get_nowait()
                    if item is None:
                        done = True
                    else:
                        pending.append(item)
            except queue.Empty:
                pass
            position = self.sink.clock.played_samples
            while pending and pending[0][0] <= position:
                _, index, text = pending.pop(0)
                self._emit(turn, ev.SentenceStarted(turn_id=turn.id, index=index, text=text))
            if done and not pending and self.sink.drain(turn.cancel, timeout=0.05):
                break
            time.sleep(0.01)
        if not turn.cancel.cancelled:
            self._finish(turn, turn.status)

    # --- sessions and privacy -----------------------------------------------------------------------

    def _touch_session(self, new_turn: bool) -> None:
        self._last_activity = time.monotonic()
        if not new_turn:
            return
        if self._session_started is None:
            self._session_started = self._last_activity
            self._session_turns = 0
            self.bus.publish(ev.SessionStarted())
        self._session_turns += 1

    def _check_session_timeout(self) -> None:
        if self._session_started is None or self.busy:
            return
        if time.monotonic() - self._last_activity > self.config.session.idle_timeout_s:
            self._end_session()
            if self.stages.answerer is not None:
                self.stages.answerer.reset_session()

    def _end_session(self) -> None:
        if self._session_started is None:
            return
        duration = time.monotonic() - self._session_started
        self._session_started = None
        self.bus.publish(ev.SessionEnded(duration_seconds=duration, turns=self._session_turns))

    def _store_visitor_audio(self, turn: Turn) -> None:
        """Only when configured; written when the turn finishes uncancelled (kiosk.engine.visitor_audio)."""
        if self._audio_store is not None:
            self._audio_store.hold(turn.id, turn.audio)
