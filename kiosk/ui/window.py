"""The kiosk window: renders the :class:`~kiosk.ui.screen_model.ScreenModel` and forwards taps.

Engine events arrive through an :class:`~kiosk.ui.bridge.EventBridge` (queued onto the GUI thread) and
go to the model; taps go to the model, which says whether to ask; commands go to the engine through its
typed :class:`~kiosk.engine.commands.EngineCommands` surface.  One 100 ms timer feeds the model the
clock.  Widgets and their places are :mod:`kiosk.ui.screen_layout`'s; the technician's panel and the
slow commands are :mod:`kiosk.ui.admin`'s; the visitor's commands are :mod:`kiosk.ui.visitor_commands`'.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QRect, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QPainter
from PySide6.QtWidgets import QWidget

from kiosk.config import Config
from kiosk.engine import events as ev
from kiosk.engine.audio_in import AudioSource
from kiosk.engine.commands import EngineCommands
from kiosk.engine.stage import MODEL_STAGES as STAGE_NAMES
from kiosk.ui import theme
from kiosk.ui.admin import Admin, Workers, is_ops_key
from kiosk.ui.bridge import EventBridge
from kiosk.ui.face_view import host_still, portrait_square
from kiosk.ui.listening import Listening
from kiosk.ui.ops_model import OpsModel, face_line
from kiosk.ui.screen_layout import ScreenLayout
from kiosk.ui.screen_model import Chip, ScreenModel, State, Timing
from kiosk.ui.visitor_commands import VisitorCommands

log = logging.getLogger(__name__)

TICK_MS = 100
WIDGETS = (
    *("face", "status", "hint", "notice", "captions", "chips", "meter", "talk", "talk_label", "stop_button"),
    *("text_button", "contrast_button", "type_button", "offer_button", "still_there"),
    *("hot_corner", "progress", "pill", "title"),
)


def exhibit_chips(exhibit: Any) -> list[Chip]:
    return [Chip(s.id, s.suggested) for s in exhibit.sections if s.suggested]


class KioskWindow(VisitorCommands, QWidget):
    state_changed = Signal(str)
    first_painted = Signal()
    exit_requested = Signal()
    ready_changed = Signal(str)  # a one-line status for systemd once the engine is ready

    def __init__(
        self,
        engine: EngineCommands,
        config: Config | None = None,
        *,
        telemetry: Any = None,
        resources: Any = None,
        source_factory: Callable[[], AudioSource | None] | None = None,
        started_at: float | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("KioskRoot")
        self.setWindowTitle("Docent")
        self.engine = engine
        self.config = config or engine.config
        ui = self.config.ui
        self.telemetry = telemetry
        self.started_at = time.monotonic() if started_at is None else started_at
        self._own_resources = resources is None
        if resources is None:
            from kiosk.telemetry.sampler import ResourceSampler

            resources = ResourceSampler(self.config.sampler.interval_s, self.config.sampler.history)
        self.resources = resources
        self._source_factory = source_factory
        self.large_text = ui.large_text
        self.high_contrast = ui.high_contrast
        theme.use_palette(self.high_contrast)
        self._closed = False
        self._painted_once = False
        self._rendered = -1
        self._state_seen = ""
        exhibit = engine.exhibit
        timing = Timing(ui.idle_reset_s, ui.still_there_s, ui.attract_interval_s, ui.chips_settle_s)
        self.model = ScreenModel(
            exhibit.title, exhibit.greeting, exhibit_chips(exhibit), timing, ui.mode == "hands_free"
        )
        self.ops_model = OpsModel(history_s=self.config.sampler.history)

        self.layout_ = lay = ScreenLayout(self, self.config.face.fps)
        for name in WIDGETS:  # the widgets by name, for the tests and the admin side
            setattr(self, name, getattr(lay, name))
        self.ops_model.screen_fps = lambda: self.face.presented_fps
        self.face.publish = engine.bus.publish
        self.face.placeholder_letter = (exhibit.title[:1] or "?").upper()
        self.text_button.setChecked(self.large_text)
        self.contrast_button.setChecked(self.high_contrast)

        lay.chips.asked.connect(self.ask)
        lay.chips.touched.connect(self.note_activity)
        lay.offer_button.clicked.connect(self.accept_offer)
        lay.type_button.clicked.connect(self.open_keyboard)
        lay.stop_button.clicked.connect(self.stop)
        lay.text_button.toggled.connect(self.set_large_text)
        lay.contrast_button.toggled.connect(self.set_high_contrast)
        lay.talk.pressed.connect(lambda: self.set_push_to_talk(True))
        lay.talk.released.connect(lambda: self.set_push_to_talk(False))
        lay.still_there.touched.connect(self.note_activity)

        self.listening = Listening(engine, self.model, lay.talk)
        self.workers = Workers(self)
        self.admin = Admin(self, engine, self.workers)
        self.bridge = EventBridge(engine.bus, self)
        self.bridge.connect_to(self.handle_event)
        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(TICK_MS)
        self._tick_timer.timeout.connect(self._tick)
        self._tick_timer.start()
        self.admin.install_keys(lay.hot_corner)

        self._frame_portrait(exhibit.portrait)
        self.resources.start()
        self.face.start()
        self.layout_.set_title(exhibit.title, hosted=exhibit.portrait is None)
        lay.apply_metrics(self.large_text)
        if engine.ready.is_set():
            self._on_ready(tuple(sorted(engine.failures)))
        else:
            self.progress.setText("Getting ready…")
        self.render()

    # --- what the screen is in (the model's) ----------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.model.state

    @property
    def hands_free(self) -> bool:
        return self.model.hands_free

    @property
    def mic_available(self) -> bool:
        return self.model.microphone

    @property
    def ops_panel(self) -> Any:
        return self.admin.panel

    # --- engine events ----------------------------------------------------------------------------------

    def handle_event(self, event: ev.Event) -> None:
        """Every engine event, on the GUI thread, in order."""
        if self._closed:
            return
        self.ops_model.on_event(event)
        if isinstance(event, ev.FrameRendered | ev.FrameDropped | ev.StageStarted | ev.StageFinished):
            return
        if isinstance(event, ev.InputLevel):
            self.meter.set_level(event.rms, event.speaking)
            self.talk.set_level(event.rms)
            self.face.set_level(event.rms)
        elif isinstance(event, ev.ModelLoading):
            line = f"Getting ready: loading {STAGE_NAMES.get(event.stage, event.stage)}…"
            self.progress.setText(line)
            self.ops_model.loading_line = line
        elif isinstance(event, ev.ModelLoaded):
            self.progress.setText(f"Loaded {STAGE_NAMES.get(event.stage, event.stage)}")
        elif isinstance(event, ev.ModelFailed):
            log.error("screen: %s could not load (%s)", event.stage, event.message)
        elif isinstance(event, ev.TurnStarted):
            self.face.turn_id = None
            self.meter.reset()
        elif isinstance(event, ev.FirstAudio | ev.SentenceStarted):
            self.face.turn_id = event.turn_id
        elif isinstance(event, ev.TurnFinished):
            self.face.turn_id = None
        self.model.on_event(event)
        if isinstance(event, ev.EngineReady):
            self._on_ready(event.missing)
        self.render()

    def _on_ready(self, missing: tuple[str, ...]) -> None:
        self.model.set_ready(missing)
        self.ops_model.loading_line = ""
        face = self.engine.face
        reason = self.engine.failures.get("face", "the face did not load")
        self.face.set_animator(face, "" if face is not None else f"still portrait: {reason}")
        self.ops_model.face_line = face_line(face, reason)
        names = ", ".join(STAGE_NAMES.get(s, s) for s in missing)
        self.progress.setText(f"Ready, without: {names}" if missing else "")
        if self._source_factory is not None and not self.listening.on:
            source = self.listening.open_source(self._source_factory)
            if source is not None:
                self.start_listening(source)
        status = "ready" + (f", without {', '.join(missing)}" if missing else "")
        self.ready_changed.emit(status)

    def exhibit_changed(self) -> None:
        """The pack was reloaded: new title, portrait, greeting and questions."""
        exhibit = self.engine.exhibit
        self.layout_.set_title(exhibit.title, hosted=exhibit.portrait is None)
        self._frame_portrait(exhibit.portrait)
        self.face.placeholder_letter = (exhibit.title[:1] or "?").upper()
        self.model.set_exhibit(exhibit.title, exhibit.greeting, exhibit_chips(exhibit))
        self.render()

    def _frame_portrait(self, path: Any) -> None:
        """The still portrait in the animator's framing (its landmarks are cached after the first check),
        or the drawn host at rest for a pack without a portrait; worked out after the first paint, as
        importing OpenCV holds the GIL for a moment."""

        def done(ok: bool, square: Any) -> None:
            self.face.set_portrait(path, square if ok else None)

        def drawn(ok: bool, still: Any) -> None:
            self.face.set_still_array(still if ok else None)

        self.face.portrait_ready = False
        if path is None:
            size = self.config.face.size
            self._framing = lambda: self.workers.run(lambda: host_still(size), drawn)
        else:
            self._framing = lambda: self.workers.run(
                lambda: portrait_square(path, self.config.cache_dir), done
            )
        if self._painted_once:
            self._framing()

    def _tick(self) -> None:
        if self.model.tick():
            self.workers.run(self.engine.reset_session)
            self.restore_display_defaults()  # the next visitor finds the screen as configured
        self.render()

    # --- rendering ----------------------------------------------------------------------------------------

    def render(self, force: bool = False) -> None:
        """Show what the model says (only when something changed, unless ``force``)."""
        if (self.model.revision == self._rendered and not force) or self._closed:
            return
        self._rendered = self.model.revision
        if self.layout_.show(self.model, self.config.ui.still_there_s):
            if self.admin.is_open():
                self.admin.panel.raise_()
            self.hot_corner.raise_()
        state = str(self.model.state)
        if state != self._state_seen:
            self._state_seen = state
            self.state_changed.emit(state)

    # --- Qt plumbing --------------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if is_ops_key(event):
            self.admin.toggle()
            event.accept()
            return
        if self.layout_.keyboard is not None and self.layout_.keyboard.isVisible():
            self.layout_.keyboard.keyPressEvent(event)
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.note_activity()  # a touch on the screen's background (buttons and chips note their own)
        super().mousePressEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.layout_.arrange(self.height() >= self.width())
        m = self.layout_.apply_metrics(self.large_text)
        self.layout_.settle()
        if self.admin.built:
            self.admin.panel.setGeometry(self.rect())
            self.admin.panel.set_metrics(m)
        self.render(force=True)

    def paintEvent(self, event) -> None:  # noqa: N802
        if not self._painted_once:
            self._painted_once = True
            QTimer.singleShot(0, self, lambda: self.first_painted.emit())
            QTimer.singleShot(0, self, lambda: self._framing())
            QTimer.singleShot(50, self, lambda: self.captions.warm())
        painter = QPainter(self)
        painter.drawPixmap(event.rect(), self.layout_.room(), event.rect())

    def shutdown(self) -> None:
        """Stop observing, timers and threads this window started (the engine itself stays up)."""
        if self._closed:
            return
        self._closed = True
        self.workers.closed = True
        self.bridge.close()
        self._tick_timer.stop()
        self.admin.corner_timer.stop()
        self.face.stop()
        if self.admin.built:
            self.admin.panel.close_panel()
        self.listening.close()
        if self._own_resources:
            self.resources.stop()

    def allow_close(self) -> None:
        """The app is quitting (SIGTERM, the technician's Exit): the close that follows is accepted."""
        self.admin.quit_requested = True

    def closeEvent(self, event) -> None:  # noqa: N802
        """A close request is ignored unless the program asked: the window system's (Alt+F4, a title bar)
        always, and any other unless the technician's Exit or SIGTERM allowed it first."""
        from kiosk.ui.close_guard import should_close

        if not should_close(event):
            return
        if not (self.admin.quit_requested or self._closed):
            log.warning("screen: a close request was ignored (quit from the technician panel)")
            event.ignore()
            return
        self.shutdown()
        super().closeEvent(event)

    def sizeHint(self):  # noqa: N802
        return QRect(0, 0, 1080, 1920).size()
