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

One job a module: ``turns`` (a turn's record, its commit and finish, the session), ``listening`` (the
listener thread and the endpointer's events), ``replying`` (a turn's worker: recognise, answer),
``speaking`` (synthesis, playback and captions); this module holds the state they share and the
commands the engine calls.
"""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np

from kiosk.config import Config
from kiosk.engine import events as ev
from kiosk.engine.audio_in import AudioSource
from kiosk.engine.audio_out import AudioSink
from kiosk.engine.pipeline.listening import Listening
from kiosk.engine.pipeline.replying import ERROR_REPLY, Replying
from kiosk.engine.pipeline.speaking import Speaking
from kiosk.engine.pipeline.turns import SpeechListener, Stages, Turn, TurnBook
from kiosk.engine.replies import NOT_UNDERSTOOD_REPLY
from kiosk.engine.visitor_audio import VisitorAudioStore

__all__ = ["ERROR_REPLY", "NOT_UNDERSTOOD_REPLY", "Pipeline", "SpeechListener", "Stages", "Turn"]


class Pipeline(Listening, Replying, Speaking, TurnBook):
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
            if turn is None or turn.done.wait(0.05):
                with self._lock:
                    if self._active is None or self._active.done.is_set():
                        return True
        return False

    @property
    def _deadline(self) -> float:
        return self.config.session.stage_deadline_s
