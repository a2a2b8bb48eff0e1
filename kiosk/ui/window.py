"""The kiosk window: the visitor screen, its states, and the technician's ops panel.

The window renders engine events and sends commands; it holds no model code.  Events arrive through an
:class:`~kiosk.ui.bridge.EventBridge` (queued onto the GUI thread).  Commands that return at once
(``engine.ask``, ``engine.stop``) are called directly; everything that may take longer
(``reset_session``, ``reload_exhibit``, the self-test) runs on a worker thread and reports back through
a queued signal.

States: ``loading`` → ``attract`` (no conversation yet) ⇄ ``listening`` → ``thinking`` → ``speaking`` →
``idle`` (a conversation is open) ...; ``not_understood`` when the question was not caught, and
``still_there`` while the idle countdown runs; at zero the session is reset and ``attract`` returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QKeySequence,
    QLinearGradient,
    QPainter,
    QPixmap,
    QRadialGradient,
    QShortcut,
)
from PySide6.QtWidgets import (
    QBoxLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kiosk.config import Config
from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.engine.audio_in import AudioSource
from kiosk.engine.selftest import run_self_test
from kiosk.errors import KioskError
from kiosk.ui import theme
from kiosk.ui.bridge import EventBridge
from kiosk.ui.face_view import FaceView
from kiosk.ui.ops_model import STAGE_NAMES, OpsModel
from kiosk.ui.resources import PsutilResources, ResourceSource
from kiosk.ui.widgets import CaptionsView, ChipsView, LevelMeter, StatusPill, StillThereOverlay, TalkButton

log = logging.getLogger(__name__)

MODEL_STAGES = ("vad", "asr", "tts", "retrieval", "answer")
LISTEN_RELEASE_S = 1.5  # back to idle when the voice stops without becoming a question
NOT_UNDERSTOOD_HOLD_S = 2.5
CORNER_HOLD_MS = 2000
CHIPS_PORTRAIT = 4
CHIPS_LANDSCAPE = 4

FONT_SAMPLE = (
    "“Who flew on Apollo 11?” Three astronauts: Neil Armstrong, Buzz Aldrin and Michael Collins. "
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789 .,;:!?'’\"()-–—…/%&"
)
FAILURE_TEXT = {
    "vad": "I can't hear questions right now. Please tap one of the questions below.",
    "asr": "I can't hear questions right now. Please tap one of the questions below.",
    "tts": "My voice isn't working right now, so I'll answer in writing.",
    "retrieval": "I can't look up answers right now. Please ask a member of staff.",
    "answer": "I can't look up answers right now. Please ask a member of staff.",
    "face": "",  # the still portrait stands in; the ops panel says why
}
PILL_TEXT = {
    "loading": "Getting ready",
    "attract": "Ready",
    "idle": "Ready",
    "listening": "Listening",
    "thinking": "Thinking",
    "speaking": "Speaking",
    "not_understood": "Say again?",
    "still_there": "Still there?",
}


OPS_KEYS = ("F12", "Ctrl+Shift+O")


def is_ops_key(event: QKeyEvent) -> bool:
    """F12 or Ctrl+Shift+O: open or close the ops panel."""
    if event.isAutoRepeat():
        return False
    wanted = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    return event.key() == Qt.Key.Key_F12 or (
        event.key() == Qt.Key.Key_O and (event.modifiers() & wanted) == wanted
    )


class HotCorner(QWidget):
    """An invisible square in the top-left corner: a long press there opens (and closes) the ops panel."""

    pressed = Signal()
    released = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.pressed.emit()
        event.accept()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self.released.emit()
        event.accept()


class KioskWindow(QWidget):
    state_changed = Signal(str)
    first_painted = Signal()
    exit_requested = Signal()
    ready_changed = Signal(str)  # a one-line status for systemd once the engine is ready
    _work_done = Signal(object)

    def __init__(
        self,
        engine: Any,
        config: Config | None = None,
        *,
        telemetry: Any = None,
        resources: ResourceSource | None = None,
        animator: Any = None,
        animator_reason: str = "face: no animator",
        source_factory: Callable[[], AudioSource | None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("KioskRoot")
        self.setWindowTitle("Docent")
        self.engine = engine
        self.config = config or engine.config
        self.ui = self.config.ui
        self.telemetry = telemetry
        self._own_resources = resources is None
        self.resources: ResourceSource = resources or PsutilResources(
            self.config.sampler.interval_s, self.config.sampler.history
        )
        self._source_factory = source_factory
        self.state = "loading"
        self.hands_free = self.ui.mode == "hands_free"
        self.large_text = self.ui.large_text
        self.mic_available = False
        self._listening = False
        self._engine_hands_free_before = getattr(getattr(engine, "pipeline", None), "hands_free", None)
        self._current_turn: int | None = None
        self._not_understood: set[int] = set()
        self._asked_topics: set[str] = set()
        self._conversation = False
        self._last_activity = time.monotonic()
        self._still_deadline: float | None = None
        self._notices: dict[str, str] = {}
        self._loaded: set[str] = set()
        self._attract_index = 0
        self._chip_offset = 0
        self._workers: list[threading.Thread] = []
        self._closed = False
        self._painted_once = False
        self._background_key: tuple | None = None
        self._background_pixmap: QPixmap | None = None
        self._ready = False
        self._portrait: bool | None = None
        self._metrics = theme.Metrics(1.0, self.large_text)
        self.ops_model = OpsModel(history_s=self.config.sampler.history)
        self.ops_model.screen_fps = lambda: self.face.presented_fps
        self._attached_animator: Any = None
        self._added_to: list[list] = []

        self._build()
        self.face.publish = engine.bus.publish
        self.face.set_portrait(getattr(engine.exhibit, "portrait", None))
        self.face.placeholder_letter = (engine.exhibit.title[:1] or "?").upper()
        self.set_animator(animator, animator_reason)
        self._set_exhibit_text()

        self._work_done.connect(self._finish_work, Qt.ConnectionType.QueuedConnection)
        self.bridge = EventBridge(engine.bus, self)
        self.bridge.connect_to(self.handle_event)

        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(200)
        self._tick_timer.timeout.connect(self._tick)
        self._tick_timer.start()
        self._attract_timer = QTimer(self)
        self._attract_timer.setInterval(max(1000, int(self.ui.attract_interval_s * 1000)))
        self._attract_timer.timeout.connect(self._attract_step)
        self._attract_timer.start()
        self._release_timer = QTimer(self)
        self._release_timer.setSingleShot(True)
        self._release_timer.timeout.connect(self._listen_released)
        self._nu_timer = QTimer(self)
        self._nu_timer.setSingleShot(True)
        self._nu_timer.timeout.connect(
            lambda: self._set_state(self._idle_state()) if self.state == "not_understood" else None
        )
        self._corner_timer = QTimer(self)
        self._corner_timer.setSingleShot(True)
        self._corner_timer.setInterval(CORNER_HOLD_MS)
        self._corner_timer.timeout.connect(self.toggle_ops_panel)
        self.hot_corner = HotCorner(self)
        self.hot_corner.pressed.connect(self._corner_pressed)
        self.hot_corner.released.connect(self._corner_timer.stop)
        # keys: shortcuts where the platform routes them, keyPressEvent where a key reaches the window
        self._shortcuts = []
        for keys in OPS_KEYS:
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            shortcut.activated.connect(self.toggle_ops_panel)
            self._shortcuts.append(shortcut)

        self.resources.start()
        self.face.start()
        self._update_controls()
        self._apply_metrics()
        if engine.ready.is_set():
            self._on_ready(tuple(sorted(getattr(engine, "failures", {}))))
        else:
            self._set_state("loading")
            self.progress.setText("Getting ready…")

    # --- building ----------------------------------------------------------------------------------------

    def _build(self) -> None:
        root = QVBoxLayout(self)
        self._root = root
        top = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        self.subtitle = QLabel("MUSEUM GUIDE")
        self.subtitle.setObjectName("Subtitle")
        self.title = QLabel("")
        self.title.setObjectName("Title")
        self.title.setWordWrap(True)
        titles.addWidget(self.subtitle)
        titles.addWidget(self.title)
        top.addLayout(titles, 1)
        self.pill = StatusPill()
        top.addWidget(self.pill, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
        root.addLayout(top)

        self.notice = QLabel("")
        self.notice.setObjectName("Notice")
        self.notice.setWordWrap(True)
        self.notice.hide()
        root.addWidget(self.notice)

        self.body = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        root.addLayout(self.body, 1)

        self.stage = QWidget(self)
        self.stage_layout = QVBoxLayout(self.stage)
        self.stage_layout.setContentsMargins(0, 0, 0, 0)
        self.face = FaceView(self.config.face.fps)
        self.stage_layout.addWidget(self.face, 1)

        self.content = QWidget(self)
        self.content_layout = QVBoxLayout(self.content)
        self.content_layout.setContentsMargins(0, 0, 0, 0)
        status_row = QHBoxLayout()
        status_texts = QVBoxLayout()
        status_texts.setSpacing(4)
        self.status = QLabel("")
        self.status.setObjectName("StatusLine")
        self.status.setWordWrap(True)
        self.hint = QLabel("")
        self.hint.setObjectName("Hint")
        self.hint.setWordWrap(True)
        status_texts.addWidget(self.status)
        status_texts.addWidget(self.hint)
        status_row.addLayout(status_texts, 1)
        self.meter = LevelMeter()
        status_row.addWidget(self.meter, 0, Qt.AlignmentFlag.AlignVCenter)
        self.content_layout.addLayout(status_row)
        self.captions = CaptionsView()
        self.content_layout.addWidget(self.captions, 1)
        self.chips = ChipsView()
        self.chips.asked.connect(self.ask)
        self.content_layout.addWidget(self.chips)

        self.controls = QWidget(self)
        controls = QHBoxLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        self.text_button = QPushButton("Aa   Larger text")
        self.text_button.setObjectName("Secondary")
        self.text_button.setCheckable(True)
        self.text_button.setChecked(self.large_text)
        self.text_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.text_button.toggled.connect(self.set_large_text)
        controls.addWidget(self.text_button, 0, Qt.AlignmentFlag.AlignVCenter)
        controls.addStretch(1)
        talk_column = QVBoxLayout()
        talk_column.setSpacing(6)
        self.talk = TalkButton()
        self.talk.pressed.connect(self._talk_pressed)
        self.talk.released.connect(self._talk_released)
        self.talk_label = QLabel("")
        self.talk_label.setObjectName("Hint")
        self.talk_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        talk_column.addWidget(self.talk, 0, Qt.AlignmentFlag.AlignHCenter)
        talk_column.addWidget(self.talk_label, 0, Qt.AlignmentFlag.AlignHCenter)
        controls.addLayout(talk_column)
        controls.addStretch(1)
        self.stop_button = QPushButton("■   Stop")
        self.stop_button.setObjectName("Stop")
        self.stop_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stop_button.clicked.connect(self.stop)
        policy = self.stop_button.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.stop_button.setSizePolicy(policy)
        controls.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignVCenter)

        self.progress = QLabel("")
        self.progress.setObjectName("Progress")
        root.addWidget(self.progress)

        self.still_there = StillThereOverlay(self)
        self.still_there.touched.connect(self._still_there_touched)
        self._ops: Any = None  # the ops panel, built when first opened (it brings in pyqtgraph)

    def _arrange(self, portrait: bool) -> None:
        if portrait == self._portrait:
            return
        self._portrait = portrait
        self.body.removeWidget(self.stage)
        self.body.removeWidget(self.content)
        self.stage_layout.removeWidget(self.controls)
        self.content_layout.removeWidget(self.controls)
        if portrait:
            self.body.setDirection(QBoxLayout.Direction.TopToBottom)
            self.body.addWidget(self.stage, 46)
            self.body.addWidget(self.content, 54)
            self.content_layout.addWidget(self.controls)
        else:
            self.body.setDirection(QBoxLayout.Direction.LeftToRight)
            self.body.addWidget(self.stage, 44)
            self.body.addWidget(self.content, 56)
            self.stage_layout.addWidget(self.controls)
        for widget in (self.stage, self.content, self.controls):
            widget.show()
        self._refresh_chips()

    def _apply_metrics(self) -> None:
        m = theme.Metrics(theme.unit_for(self.width(), self.height()), self.large_text)
        self._metrics = m
        px = m.px
        self.setStyleSheet(theme.style_sheet(m))
        self._root.setContentsMargins(m.margin, px(44), m.margin, px(26))
        self._root.setSpacing(m.gap)
        self.body.setSpacing(px(48) if not self._portrait else px(30))
        self.content_layout.setSpacing(m.gap)
        self.captions.set_gap(px(20))
        self.chips.set_spacing(px(16))
        self.chips.chip_padding = px(64) + 4
        self.pill.set_font_px(px(22))
        talk = px(132 if self._portrait else 118)
        self.talk.setFixedSize(talk, talk)
        self.meter.setFixedSize(px(120), px(44))
        self.still_there.u = m.u
        if self._ops is not None:
            self._ops.set_metrics(m)
        self.chips.set_questions(self.chips.questions)
        self._refresh_status()

    # --- events from the engine ---------------------------------------------------------------------------

    def handle_event(self, event: ev.Event) -> None:
        """Every engine event, on the GUI thread, in order."""
        if self._closed:
            return
        self.ops_model.on_event(event)
        kind = type(event)
        if kind in (ev.FrameRendered, ev.FrameDropped, ev.StageStarted, ev.StageFinished):
            return
        handler = getattr(self, f"_on_{kind.__name__}", None)
        if handler is not None:
            handler(event)

    def _on_ModelLoading(self, e: ev.ModelLoading) -> None:  # noqa: N802
        done = len(self._loaded) + 1
        total = len(self.engine.health()) if hasattr(self.engine, "health") else len(MODEL_STAGES)
        line = f"Getting ready: loading {STAGE_NAMES.get(e.stage, e.stage)} ({done} of {max(total, done)})…"
        self.progress.setText(line)
        self.ops_model.loading_line = line

    def _on_ModelLoaded(self, e: ev.ModelLoaded) -> None:  # noqa: N802
        self._loaded.add(e.stage)
        self.progress.setText(f"Loaded {STAGE_NAMES.get(e.stage, e.stage)} ({e.load_seconds:.1f} s)")

    def _on_ModelFailed(self, e: ev.ModelFailed) -> None:  # noqa: N802
        self._loaded.add(e.stage)
        text = FAILURE_TEXT.get(e.stage, f"Part of the guide ({e.stage}) is not working right now.")
        log.error("screen: %s could not load (%s); showing: %s", e.stage, e.message, text or "nothing")
        if text:
            self._set_notice(f"model:{e.stage}", text)

    def _on_EngineReady(self, e: ev.EngineReady) -> None:  # noqa: N802
        self._on_ready(e.missing)

    def _on_InputLevel(self, e: ev.InputLevel) -> None:  # noqa: N802
        self.meter.set_level(e.rms, e.speaking)
        self.talk.set_level(e.rms)
        self.face.set_level(e.rms)
        if "input" in self._notices:
            self._set_notice("input", "")
        if e.speaking:
            self._release_timer.stop()
            self.note_activity()
            if (
                self.state in ("attract", "idle", "still_there", "not_understood")
                and self._current_turn is None
            ):
                self._dismiss_still_there()
                self._set_state("listening")
        elif self.state == "listening" and not self._release_timer.isActive() and not self.talk.isDown():
            self._release_timer.start(int(LISTEN_RELEASE_S * 1000))

    def _on_InputProblem(self, e: ev.InputProblem) -> None:  # noqa: N802
        log.warning("screen: input problem: %s", e.message)
        self._set_notice("input", f"Microphone: {e.message}. You can still tap a question below.")

    def _on_TurnStarted(self, e: ev.TurnStarted) -> None:  # noqa: N802
        self._current_turn = e.turn_id
        self._conversation = True
        self._release_timer.stop()
        self._nu_timer.stop()
        self.note_activity()
        self._dismiss_still_there()
        self.face.turn_id = None
        self.meter.reset()
        self._set_state("thinking")

    def _on_SpeechEnded(self, e: ev.SpeechEnded) -> None:  # noqa: N802
        if e.turn_id == self._current_turn and self.state == "listening":
            self._set_state("thinking")

    def _on_Transcribed(self, e: ev.Transcribed) -> None:  # noqa: N802
        if e.understood:
            self.captions.set_question(e.turn_id, e.text)

    def _on_AnswerChosen(self, e: ev.AnswerChosen) -> None:  # noqa: N802
        self.face.set_emotion(e.emotion)
        if e.topic and e.topic not in self._asked_topics:
            self._asked_topics.add(e.topic)
            self._refresh_chips()  # the question being answered leaves the suggestions
        if e.status == "not_understood":
            self._not_understood.add(e.turn_id)
            self.captions.skip_turn(e.turn_id)
            if e.turn_id == self._current_turn:
                self._set_state("not_understood")

    def _on_FirstAudio(self, e: ev.FirstAudio) -> None:  # noqa: N802
        if e.turn_id == self._current_turn:
            self.face.turn_id = e.turn_id

    def _on_SentenceStarted(self, e: ev.SentenceStarted) -> None:  # noqa: N802
        if e.turn_id != self._current_turn:
            return
        self.face.turn_id = e.turn_id
        self.note_activity()
        if e.turn_id in self._not_understood:
            self._set_state("not_understood")
            return
        self.captions.add_sentence(e.turn_id, e.index, e.text)
        self._set_state("speaking")

    def _on_TurnFinished(self, e: ev.TurnFinished) -> None:  # noqa: N802
        if e.question and e.turn_id not in self._not_understood and e.status != "cancelled":
            self.captions.set_question(e.turn_id, e.question)
        if e.turn_id != self._current_turn:
            return
        self._current_turn = None
        self.face.turn_id = None
        self.note_activity()
        self._refresh_chips()
        if e.turn_id in self._not_understood and e.status != "cancelled":
            self._set_state("not_understood")
            self._nu_timer.start(int(NOT_UNDERSTOOD_HOLD_S * 1000))
        elif self.state != "listening":
            self._set_state(self._idle_state())

    # --- readiness and listening -------------------------------------------------------------------------------

    def _on_ready(self, missing: tuple[str, ...]) -> None:
        if self._ready:
            return
        self._ready = True
        self.ops_model.loading_line = ""
        self._engine_face()
        self._attach_animator()
        failures = dict(getattr(self.engine, "failures", {}))
        for stage in missing:
            text = FAILURE_TEXT.get(stage, f"Part of the guide ({stage}) is not working right now.")
            if text and f"model:{stage}" not in self._notices:
                self._set_notice(f"model:{stage}", text)
        if missing:
            self.progress.setText("Ready, without: " + ", ".join(STAGE_NAMES.get(s, s) for s in missing))
            for stage in missing:
                log.error("screen: running without %s (%s)", stage, failures.get(stage, "failed to load"))
        else:
            self.progress.setText("")
        if self._source_factory is not None:
            try:
                source = self._source_factory()
            except Exception as exc:
                log.exception("could not make the audio source")
                source = None
                self._set_notice("input", f"Microphone: {exc}. You can still tap a question below.")
            if source is not None:
                self.start_listening(source)
        self._update_controls()
        if self.state == "loading":
            self._set_state("attract")
        status = "ready" + (f", without {', '.join(missing)}" if missing else "")
        self.ready_changed.emit(status)

    def start_listening(self, source: AudioSource) -> bool:
        """Listen to ``source``; False, with a notice on screen, when it cannot."""
        health = self.engine.health() if hasattr(self.engine, "health") else {}
        if health and not (health.get("asr") and health.get("vad")):
            self._set_notice("model:asr", FAILURE_TEXT["asr"])
            return False
        self._engine_hands_free(self.hands_free)
        try:
            self.engine.start_listening(source)
        except (KioskError, RuntimeError) as exc:
            log.error("screen: cannot listen: %s", exc)
            self._set_notice("input", f"Microphone: {exc}. You can still tap a question below.")
            return False
        self._listening = True
        self.mic_available = True
        self._update_controls()
        self._refresh_status()
        return True

    def stop_listening(self) -> None:
        stop = getattr(self.engine, "stop_listening", None)
        if stop is None:
            stop = getattr(getattr(self.engine, "pipeline", None), "stop_listening", None)
        if stop is not None and self._listening:
            stop()
        self._listening = False

    # --- visitor commands ------------------------------------------------------------------------------------

    def ask(self, question: str) -> int | None:
        """A tapped suggestion (or typed question): answered by the engine; returns the turn id."""
        self.note_activity()
        self._dismiss_still_there()
        try:
            turn = self.engine.ask(question)
        except KioskError as exc:
            self._set_notice("ask", str(exc).capitalize() + ".")
            QTimer.singleShot(4000, lambda: self._set_notice("ask", ""))
            return None
        self._set_notice("ask", "")
        self._conversation = True
        self._current_turn = turn.id
        self.captions.set_question(turn.id, question)
        self._set_state("thinking")
        return turn.id

    def stop(self) -> None:
        """The visitor tapped Stop: silence now."""
        self.note_activity()
        self.engine.stop()
        self._current_turn = None
        self.face.turn_id = None
        self._set_state(self._idle_state())

    def _talk_pressed(self) -> None:
        self.note_activity()
        self._dismiss_still_there()
        if self.hands_free or not self.mic_available:
            return
        if self.state in ("thinking", "speaking", "not_understood"):
            self.engine.stop()
            self._current_turn = None
        self._set_push_to_talk(True)
        self._release_timer.stop()
        self._set_state("listening")

    def _talk_released(self) -> None:
        if self.hands_free or not self.mic_available:
            return
        self._set_push_to_talk(False)
        self._release_timer.start(int((LISTEN_RELEASE_S + 1.0) * 1000))

    def _set_push_to_talk(self, held: bool) -> None:
        hook = getattr(self.engine, "set_push_to_talk", None)
        if callable(hook):
            hook(held)  # press: the engine stops any answer and records; release: it answers the recording
        self.talk.active = held
        self.talk.update()

    def set_push_to_talk(self, held: bool) -> None:
        """The big button held (True) or released (False): for tests and external buttons."""
        if held:
            self._talk_pressed()
        else:
            self._talk_released()

    def set_hands_free(self, on: bool) -> None:
        self.hands_free = bool(on)
        self._engine_hands_free(self.hands_free)
        if self._ops is not None:
            self._ops.set_hands_free(self.hands_free)
            self._ops.show_result(
                "Hands-free listening " + ("on." if on else "off: hold the button to talk.")
            )
        self._update_controls()
        self._refresh_status()

    def _engine_hands_free(self, on: bool) -> None:
        hook = getattr(self.engine, "set_hands_free", None)
        if callable(hook):
            hook(on)

    def set_large_text(self, on: bool) -> None:
        self.note_activity()
        self.large_text = bool(on)
        if self.text_button.isChecked() != self.large_text:
            self.text_button.setChecked(self.large_text)
        self._apply_metrics()

    # --- activity, idle reset, attract --------------------------------------------------------------------------

    def note_activity(self) -> None:
        self._last_activity = time.monotonic()

    def _busy(self) -> bool:
        return self._current_turn is not None or self.state in ("listening", "thinking", "speaking")

    def _tick(self) -> None:
        now = time.monotonic()
        if self._still_deadline is not None:
            remaining = self._still_deadline - now
            self.still_there.set_countdown(remaining, self.ui.still_there_s)
            if remaining <= 0:
                self.reset_conversation()
            return
        if not self._conversation or self._busy() or self._panel_open():
            return
        if now - self._last_activity >= self.ui.idle_reset_s:
            self._show_still_there()

    def _show_still_there(self) -> None:
        self._still_deadline = time.monotonic() + self.ui.still_there_s
        self.still_there.setGeometry(self.rect())
        self.still_there.set_countdown(self.ui.still_there_s, self.ui.still_there_s)
        self.still_there.show()
        self.still_there.raise_()
        if self._panel_open():
            self._ops.raise_()
        self.hot_corner.raise_()
        self._set_state("still_there")

    def _dismiss_still_there(self) -> None:
        if self._still_deadline is None:
            return
        self._still_deadline = None
        self.still_there.hide()
        if self.state == "still_there":
            self._set_state(self._idle_state())

    def _still_there_touched(self) -> None:
        self.note_activity()
        self._dismiss_still_there()

    def reset_conversation(self) -> None:
        """A new visitor: the engine forgets the conversation, the screen returns to the attract loop."""
        self._still_deadline = None
        self.still_there.hide()
        self._run_async(self.engine.reset_session, None)
        self.captions.clear()
        self._conversation = False
        self._current_turn = None
        self._not_understood.clear()
        self._asked_topics.clear()
        self._chip_offset = 0
        self._attract_index = 0
        self._set_exhibit_text()
        self._set_state("attract")
        self.note_activity()

    def _idle_state(self) -> str:
        return "idle" if self._conversation else "attract"

    def _attract_step(self) -> None:
        if self.state != "attract":
            return
        self._attract_index += 1
        self._chip_offset += 1
        self.captions.set_attract(self._attract_line())
        self._refresh_chips()
        if self._attract_index % 2 == 0:
            self.face.set_emotion(Emotion.HAPPY)

    def _attract_line(self) -> str:
        exhibit = self.engine.exhibit
        questions = [s.question for s in exhibit.sections if s.question]
        if self._attract_index % 2 == 0 or not questions:
            return exhibit.greeting
        question = questions[(self._attract_index // 2) % len(questions)]
        return f"Try asking me: \u201c{question}\u201d"

    def _listen_released(self) -> None:
        if self.state == "listening" and self._current_turn is None and not self.talk.isDown():
            self._set_state(self._idle_state())

    # --- what the screen shows ---------------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        changed = state != self.state
        self.state = state
        self.face.set_state(state)
        self.pill.set_state(PILL_TEXT.get(state, state), theme.STATE_COLOURS.get(state, theme.ACCENT))
        self.stop_button.setVisible(state in ("thinking", "speaking", "not_understood"))
        self.talk.active = state == "listening"
        self.talk.update()
        self._refresh_status()
        if state == "attract":
            self.captions.set_attract(self._attract_line())
        if changed:
            self.state_changed.emit(state)

    def _refresh_status(self) -> None:
        title = self.engine.exhibit.title
        hearing = self.mic_available
        texts = {
            "loading": ("Getting ready…", "The guide is waking up. You can already read about the exhibit."),
            "attract": (
                f"Touch or speak to ask about {title}"
                if hearing and self.hands_free
                else f"Hold the button, or touch a question, to ask about {title}"
                if hearing
                else f"Touch a question to ask about {title}",
                "",
            ),
            "idle": (
                "Ask another question, or tap one below." if hearing else "Tap another question below.",
                "",
            ),
            "listening": (
                "Listening…",
                "Release the button when you have finished."
                if not self.hands_free
                else "Go ahead, I'm listening.",
            ),
            "thinking": ("Thinking…", ""),
            "speaking": ("", ""),
            "not_understood": (
                "Sorry, I did not catch that.",
                "Please try again, a little closer to the microphone, or tap a question below.",
            ),
            "still_there": ("Still there?", ""),
        }
        status, hint = texts.get(self.state, ("", ""))
        self.status.setText(status)
        self.status.setVisible(bool(status))
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))
        colour = {
            "not_understood": theme.PROBLEM,
            "listening": theme.LISTENING,
            "thinking": theme.THINKING,
            "attract": theme.TEXT,
        }.get(self.state, theme.TEXT_SOFT)
        big = self.state in ("listening", "thinking", "not_understood", "still_there")
        size = self._metrics.caption if big else self._metrics.px(34 if self.large_text else 30)
        self.status.setStyleSheet(f"color: {colour}; font-size: {size}px;")
        self.meter.setVisible(
            hearing and (self.state == "listening" or (self.hands_free and self.state in ("attract", "idle")))
        )

    def _update_controls(self) -> None:
        self.talk.hands_free = self.hands_free
        self.talk.setVisible(self.mic_available)
        self.talk_label.setVisible(self.mic_available)
        self.talk_label.setText("Just ask out loud" if self.hands_free else "Hold to talk")
        self.talk.update()

    def _set_notice(self, key: str, text: str) -> None:
        if text:
            self._notices[key] = text
        else:
            self._notices.pop(key, None)
        unique = list(dict.fromkeys(self._notices.values()))
        self.notice.setText("\n".join(unique))
        self.notice.setVisible(bool(unique))

    def _set_exhibit_text(self) -> None:
        exhibit = self.engine.exhibit
        self.title.setText(exhibit.title)
        self.face.placeholder_letter = (exhibit.title[:1] or "?").upper()
        self.captions.set_attract(self._attract_line())
        self._refresh_chips()
        self._refresh_status()

    def _refresh_chips(self) -> None:
        sections = [s for s in self.engine.exhibit.sections if s.question and s.id not in self._asked_topics]
        if not sections:
            sections = [s for s in self.engine.exhibit.sections if s.question]
        count = CHIPS_PORTRAIT if self._portrait in (None, True) else CHIPS_LANDSCAPE
        if sections:
            start = (self._chip_offset * count) % len(sections)
            rotated = sections[start:] + sections[:start]
            self.chips.set_questions([s.question for s in rotated[:count]])
        else:
            self.chips.set_questions([])

    # --- the face -------------------------------------------------------------------------------------------------

    def set_animator(self, animator: Any, reason: str = "") -> None:
        """Show the animator's frames (None: the still portrait) and let it follow the guide's voice."""
        self._detach_animator()
        self.face.set_animator(animator, reason)
        self._attached_animator = animator
        if animator is not None:
            self._attach_animator()
            self.ops_model.face_line = f"animated ({type(animator).__name__})"
        else:
            self.ops_model.face_line = reason or "still portrait"

    def _attach_animator(self) -> None:
        """The animator follows the guide's voice: it must be in the pipeline's listener list.

        The engine's own face is already there.  For one given to the window: the engine passes its
        ``listeners`` list to the pipeline it builds, but a pipeline built while that list was empty
        keeps a list of its own; so both are checked (again when the engine is ready).  Only the lists
        the window added to are undone by :meth:`_detach_animator`.
        """
        animator = self._attached_animator
        if animator is None:
            return
        pipeline = getattr(self.engine, "pipeline", None)
        for target in (getattr(self.engine, "listeners", None), getattr(pipeline, "listeners", None)):
            if target is not None and all(item is not animator for item in target):
                target.append(animator)
                self._added_to.append(target)

    def _detach_animator(self) -> None:
        animator, self._attached_animator = self._attached_animator, None
        added, self._added_to = self._added_to, []
        if animator is None:
            return
        for target in added:
            target[:] = [item for item in target if item is not animator]

    def _engine_face(self) -> None:
        """Once the engine is ready: its own face animator, or the reason there is none."""
        if not hasattr(self.engine, "face") or self._attached_animator is not None:
            return
        face = self.engine.face
        if face is not None:
            self.set_animator(face)
        else:
            reason = dict(getattr(self.engine, "failures", {})).get("face", "the face did not load")
            self.set_animator(None, f"still portrait: {reason}")

    # --- the ops panel and admin actions ------------------------------------------------------------------------

    @property
    def ops_panel(self) -> Any:
        """The technician's panel (built on first use)."""
        if self._ops is None:
            from kiosk.ui.ops_panel import OpsPanel

            panel = OpsPanel(
                self.engine, self.resources, self.ops_model, self.ui.admin_pin, self.telemetry, self
            )
            panel.close_requested.connect(self.close_ops_panel)
            panel.exit_requested.connect(self._admin_exit)
            panel.reload_requested.connect(self._admin_reload)
            panel.hands_free_requested.connect(self.set_hands_free)
            panel.self_test_requested.connect(self._admin_self_test)
            panel.set_hands_free(self.hands_free)
            panel.set_metrics(self._metrics)
            panel.setGeometry(self.rect())
            self._ops = panel
        return self._ops

    def _panel_open(self) -> bool:
        return self._ops is not None and self._ops.isVisible()

    def toggle_ops_panel(self) -> None:
        if self._panel_open():
            self.close_ops_panel()
        else:
            self.open_ops_panel()

    def open_ops_panel(self) -> None:
        self.ops_panel.open()
        self.hot_corner.raise_()  # the same long press closes it

    def close_ops_panel(self) -> None:
        if self._ops is not None:
            self._ops.close_panel()
        self.note_activity()

    def _admin_exit(self) -> None:
        log.warning("screen: exit requested from the ops panel")
        self.exit_requested.emit()

    def _admin_reload(self) -> None:
        self.ops_panel.show_result("Reloading the exhibit pack…")

        def done(ok: bool, result: Any) -> None:
            if ok:
                exhibit = self.engine.exhibit
                self.face.set_portrait(exhibit.portrait)
                self._set_exhibit_text()
                self.ops_panel.show_result(f"Reloaded {exhibit.title} ({len(exhibit.sections)} topics).")
            else:
                self.ops_panel.show_result(f"Reload failed: {result}", ok=False)

        self._run_async(self.engine.reload_exhibit, done)

    def _admin_self_test(self) -> None:
        self.ops_panel.self_test_button.setEnabled(False)
        self.ops_panel.show_result("Self-test running…")

        def done(ok: bool, result: Any) -> None:
            self.ops_panel.self_test_button.setEnabled(True)
            if ok:
                self.last_self_test = result
                self.ops_panel.show_result(f"Self-test {result.summary}", ok=result.passed)
            else:
                self.ops_panel.show_result(f"Self-test failed to run: {result}", ok=False)

        face = self.face
        self._run_async(lambda: run_self_test(self.engine, lambda: face.frames_presented), done)

    # --- work off the GUI thread -------------------------------------------------------------------------------------

    def _run_async(
        self, work: Callable[[], Any], done: Callable[[bool, Any], None] | None
    ) -> threading.Thread:
        def run() -> None:
            try:
                payload = (done, True, work())
            except Exception as exc:
                log.exception("background work failed")
                payload = (done, False, exc)
            if not self._closed:
                self._work_done.emit(payload)

        thread = threading.Thread(target=run, name="ui-work", daemon=True)
        self._workers = [t for t in self._workers if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _finish_work(self, payload: tuple) -> None:
        done, ok, result = payload
        if done is not None and not self._closed:
            done(ok, result)

    def wait_for_work(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        for thread in list(self._workers):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._workers)

    # --- Qt plumbing ---------------------------------------------------------------------------------------------------

    def _corner_pressed(self) -> None:
        self.note_activity()
        self._dismiss_still_there()
        self._corner_timer.start()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if is_ops_key(event):
            self.toggle_ops_panel()
            event.accept()
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.note_activity()  # a touch on the screen's background (buttons and chips note their own)
        super().mousePressEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._arrange(self.height() >= self.width())
        self._apply_metrics()
        self.still_there.setGeometry(self.rect())
        if self._ops is not None:
            self._ops.setGeometry(self.rect())
        side = self._metrics.px(150)
        self.hot_corner.setGeometry(0, 0, side, side)
        self.hot_corner.raise_()

    def paintEvent(self, event) -> None:  # noqa: N802
        if not self._painted_once:
            self._painted_once = True
            QTimer.singleShot(0, self.first_painted.emit)
            QTimer.singleShot(50, self._warm_fonts)
        painter = QPainter(self)
        painter.drawPixmap(event.rect(), self._background(), event.rect())

    def _warm_fonts(self, styles: list[str] | None = None) -> None:
        """Lay out and paint each caption style once, off-screen, one per event-loop turn.

        The first sentence in a new type size otherwise pays for shaping and rasterising its glyphs
        (about 40 ms at 40 px on a small CPU), just when the guide starts to speak.
        """
        if styles is None:
            styles = [
                "GuideCaption",
                "VisitorCaption",
                "GuideCaptionOld",
                "StatusLine",
                "AttractLine",
                "Hint",
            ]
        if not styles or self._closed:
            return
        name, rest = styles[0], styles[1:]
        probe = QLabel(self)
        probe.setObjectName(name)
        probe.setWordWrap(True)
        if name == "GuideCaption":  # captions are rich text: the first one also sets up Qt's HTML engine
            probe.setTextFormat(Qt.TextFormat.RichText)
            probe.setText(
                f'<span style="color:{theme.TEXT_SOFT}">{FONT_SAMPLE}</span> <span>{FONT_SAMPLE}</span>'
            )
        else:
            probe.setText(FONT_SAMPLE)
        probe.setFixedWidth(max(200, self.captions.width()))
        probe.grab()
        if name == "StatusLine":  # the big status size is set per state
            probe.setStyleSheet(f"font-size: {self._metrics.caption}px;")
            probe.grab()
        probe.deleteLater()
        QTimer.singleShot(0, lambda: self._warm_fonts(rest))

    def _background(self) -> QPixmap:
        """The room: a dark gradient with a faint warm light behind the stage (cached per size)."""
        key = (self.width(), self.height(), self._portrait)
        if self._background_key != key or self._background_pixmap is None:
            pixmap = QPixmap(self.size())
            painter = QPainter(pixmap)
            gradient = QLinearGradient(0, 0, 0, self.height())
            gradient.setColorAt(0.0, QColor(theme.BACKGROUND_TOP))
            gradient.setColorAt(0.55, QColor(theme.BACKGROUND))
            gradient.setColorAt(1.0, QColor("#08090b"))
            painter.fillRect(pixmap.rect(), gradient)
            centre = self.face.geometry().center() + self.stage.pos()
            glow = QRadialGradient(centre, max(self.width(), self.height()) * 0.5)
            glow.setColorAt(0.0, theme.colour(theme.ACCENT, 0.05))
            glow.setColorAt(1.0, QColor(0, 0, 0, 0))
            painter.fillRect(pixmap.rect(), glow)
            painter.end()
            self._background_key, self._background_pixmap = key, pixmap
        return self._background_pixmap

    def shutdown(self) -> None:
        """Stop observing, timers and threads this window started (the engine itself stays up)."""
        if self._closed:
            return
        self._closed = True
        self.bridge.close()
        for timer in (
            self._tick_timer,
            self._attract_timer,
            self._release_timer,
            self._nu_timer,
            self._corner_timer,
        ):
            timer.stop()
        self.face.stop()
        if self._ops is not None:
            self._ops.close_panel()
        self._detach_animator()
        if self.talk.active and not self.hands_free:
            self._set_push_to_talk(False)
        self.stop_listening()
        if self._engine_hands_free_before is not None and self._engine_hands_free_before != self.hands_free:
            self._engine_hands_free(self._engine_hands_free_before)
        if self._own_resources:
            self.resources.stop()

    def closeEvent(self, event) -> None:  # noqa: N802
        from kiosk.ui.close_guard import should_close

        if not should_close(event):  # Alt+F4 and the like: only the program (technician, SIGTERM) quits
            return
        self.shutdown()
        super().closeEvent(event)

    # for the layout's size policies of custom widgets
    def sizeHint(self):  # noqa: N802
        return QRect(0, 0, 1080, 1920).size()
