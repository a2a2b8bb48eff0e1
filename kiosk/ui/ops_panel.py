"""The technician's ops panel: live resources, frame rate, turn latency, models, the metrics endpoint,
recent problems, and the admin actions behind the PIN.

It is an opaque page over the visitor screen (the guide keeps running underneath).  Its numbers come
from three places, none of them a model: telemetry's :class:`~kiosk.telemetry.sampler.ResourceSampler`
(CPU, memory, GPUs: the same numbers ``/metrics`` serves), an :class:`OpsModel` the window feeds with engine events (frames, turns,
problems), and the engine's and telemetry's plain attributes (models, failures, the endpoint).
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk import __version__
from kiosk.engine.commands import EngineCommands
from kiosk.telemetry.sampler import NO_GPU, ResourceSampler, ResourceSnapshot
from kiosk.ui import theme
from kiosk.ui.ops_model import OpsModel
from kiosk.ui.ops_widgets import (
    CARD_PLACES,
    MIB,
    Card,
    PinPad,
    fmt_bytes,
    latency_table,
    models_table,
    panel_style,
    scrape_counts,
)

if TYPE_CHECKING:
    from kiosk.telemetry import Telemetry

# --- the panel ------------------------------------------------------------------------------------------------


EXIT_CONFIRM_S = 10.0  # "Really exit?" turns back into "Exit kiosk" after this long without a second tap
TOUCHES = (QEvent.Type.MouseButtonPress, QEvent.Type.TouchBegin)


class OpsPanel(QWidget):
    """The overlay; ``close_requested`` when dismissed, ``timed_out`` when left untouched for ``lock_s``,
    and one signal per admin action (after the PIN).

    Without a PIN the actions are not there at all (figures only): the panel opens with a long press
    any visitor can find, so an open "Exit kiosk" was a way to take the exhibit down.
    """

    exit_requested = Signal()
    reload_requested = Signal()
    hands_free_requested = Signal(bool)
    self_test_requested = Signal()
    close_requested = Signal()
    timed_out = Signal()

    def __init__(
        self,
        engine: EngineCommands,
        resources: ResourceSampler,
        model: OpsModel,
        admin_pin: str = "",
        telemetry: Telemetry | None = None,
        started_at: float | None = None,
        parent: QWidget | None = None,
        lock_s: float = 60.0,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("OpsPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setAutoFillBackground(True)
        self.engine = engine
        self.resources = resources
        self.model = model
        self.telemetry = telemetry
        self.admin_pin = admin_pin
        self.actions_enabled = bool(admin_pin)  # no PIN configured: figures only
        self.unlocked = False
        self.confirming_exit = False
        self.hands_free = True
        self.started = time.monotonic() if started_at is None else started_at  # the kiosk's start
        self._pending: Callable[[], None] | None = None
        self._scrapes_seen: tuple[float, float] | None = None  # (count, monotonic time it changed)
        self._arranged: tuple[bool, bool] | None = None  # (portrait, a GPU to show)
        self._has_gpu = False  # until a sample shows one: most kiosks have none

        root = QVBoxLayout(self)
        self._root = root
        header = QHBoxLayout()
        self.heading = QLabel("Technician panel")
        self.heading.setObjectName("OpsHeading")
        header.addWidget(self.heading)
        self.subheading = QLabel("")
        self.subheading.setObjectName("OpsSub")
        header.addWidget(self.subheading, 1)
        close = QPushButton("Close  ✕")
        close.setObjectName("OpsClose")
        close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close.clicked.connect(self.close_requested.emit)
        header.addWidget(close)
        root.addLayout(header)

        self.cpu = Card("Processor", self)
        self.cpu.add_spark(theme.ACCENT)
        self.memory = Card("Memory", self)
        self.memory.add_spark(theme.LISTENING)
        self.gpu = Card("GPU", self)
        self.gpu.add_spark(theme.THINKING)
        self.frames = Card("Face frames", self)
        self.frames.add_spark(theme.GOOD)
        self.latency = Card("Last turns (ms)", self)
        self.latency.value.hide()
        self.latency_body = self.latency.add_body()
        self.models = Card("Models", self)
        self.models.value.hide()
        self.models_body = self.models.add_body()
        self.endpoint = Card("Metrics endpoint", self)
        self.endpoint.layout().addStretch(1)
        self.problems = Card("Recent problems", self)
        self.problems.value.hide()
        self.problems_body = self.problems.add_body()
        self.admin = Card("Admin", self)
        self.admin.value.hide()
        actions = QGridLayout()
        self.hands_free_button = QPushButton("Hands-free: on")
        self.hands_free_button.setCheckable(True)
        self.hands_free_button.setChecked(True)
        self.reload_button = QPushButton("Reload exhibit")
        self.self_test_button = QPushButton("Run self-test")
        self.exit_button = QPushButton("Exit kiosk")
        self.exit_button.setObjectName("Danger")
        self.exit_cancel_button = QPushButton("Cancel")
        self.action_buttons = (
            self.hands_free_button,
            self.reload_button,
            self.self_test_button,
            self.exit_button,
            self.exit_cancel_button,
        )
        for n, button in enumerate(self.action_buttons):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            actions.addWidget(button, n // 2, n % 2)
            if not self.actions_enabled:  # not merely disabled: nothing to find or to tap
                button.setEnabled(False)
                button.hide()
        self.exit_cancel_button.hide()
        self.admin.layout().addLayout(actions)
        self.hands_free_button.clicked.connect(
            lambda: self._guarded(lambda: self.hands_free_requested.emit(not self.hands_free), revert=True)
        )
        self.reload_button.clicked.connect(lambda: self._guarded(self.reload_requested.emit))
        self.self_test_button.clicked.connect(lambda: self._guarded(self.self_test_requested.emit))
        self.exit_button.clicked.connect(lambda: self._guarded(self._exit_tapped))
        self.exit_cancel_button.clicked.connect(self._end_exit_confirm)
        self._exit_confirm_timer = QTimer(self)
        self._exit_confirm_timer.setSingleShot(True)
        self._exit_confirm_timer.setInterval(int(EXIT_CONFIRM_S * 1000))
        self._exit_confirm_timer.timeout.connect(self._end_exit_confirm)
        self.admin_result = QLabel("")
        self.admin_result.setObjectName("CardDetail")
        self.admin_result.setWordWrap(True)
        self.admin.layout().addWidget(self.admin_result)
        self.admin.layout().addStretch(1)

        self.grid = QGridLayout()
        root.addLayout(self.grid, 1)

        self.pin_pad = PinPad(admin_pin, self)
        self.pin_pad.accepted.connect(self._pin_ok)
        self.pin_pad.cancelled.connect(self._pin_cancelled)

        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.refresh)
        # untouched for lock_s: the panel closes (and so locks), whether a technician left it unlocked
        # or a visitor found the corner; any press on it, a PIN key included, starts the wait again
        self.lock_timer = QTimer(self)
        self.lock_timer.setSingleShot(True)
        self.lock_timer.setInterval(int(lock_s * 1000))
        self.lock_timer.timeout.connect(self.timed_out.emit)
        for widget in (self, *self.findChildren(QWidget)):
            widget.installEventFilter(self)
        self._update_lock_line()
        self.hide()

    # --- showing ----------------------------------------------------------------------------------------

    def open(self) -> None:
        self.unlocked = False
        self._update_lock_line()
        self.setGeometry(self.parentWidget().rect())
        self.show()
        self.raise_()
        self.layout().activate()  # lay the cards out now: a tap may follow at once
        self.refresh()
        self._timer.start()
        self.lock_timer.start()

    def close_panel(self) -> None:
        self._timer.stop()
        self.lock_timer.stop()
        self._end_exit_confirm()
        self.pin_pad.hide()
        self._pending = None
        self.unlocked = False
        self._update_lock_line()
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() in TOUCHES and self.isVisible():
            self.lock_timer.start()  # restarts the wait
        return False

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.pin_pad.setGeometry(self.rect())
        self._arrange(self.height() > self.width(), self._has_gpu)

    def set_metrics(self, m: theme.Metrics) -> None:
        px = m.px
        self._root.setContentsMargins(px(44), px(36), px(44), px(36))
        self._root.setSpacing(px(24))
        self.grid.setSpacing(px(20))
        for card in self._cards():
            card.layout().setContentsMargins(px(24), px(18), px(24), px(18))
            card.layout().setSpacing(px(6))
            if card.spark is not None:
                card.spark.setMinimumHeight(px(70))
        self.setStyleSheet(panel_style(m))

    def _cards(self) -> tuple:
        return (
            self.cpu,
            self.memory,
            self.gpu,
            self.frames,
            self.latency,
            self.models,
            self.endpoint,
            self.problems,
            self.admin,
        )

    def _arrange(self, portrait: bool, gpu: bool) -> None:
        """The cards on the grid; without a GPU its card is one short line above the grid instead of
        an empty card the size of the processor's."""
        if (portrait, gpu) == self._arranged:
            return
        self._arranged = (portrait, gpu)
        for card in self._cards():
            self.grid.removeWidget(card)
        self._root.removeWidget(self.gpu)
        for column in range(4):
            self.grid.setColumnStretch(column, 0)
        for part in (self.gpu.title, self.gpu.value, self.gpu.spark):
            part.setVisible(gpu)
        self.gpu.setSizePolicy(
            QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred if gpu else QSizePolicy.Policy.Maximum
        )
        if not gpu:
            self._root.insertWidget(1, self.gpu)
            self.gpu.show()
        names = CARD_PLACES[("portrait" if portrait else "landscape") + ("" if gpu else " no GPU")]
        places = [(getattr(self, name), *place) for name, place in names.items()]
        columns = 2 if portrait else 4
        for widget, row, column, rows, cols in places:
            self.grid.addWidget(widget, row, column, rows, cols)
            widget.show()
        for column in range(columns):
            self.grid.setColumnStretch(column, 1)
        for row, stretch in enumerate((3, 3, 2, 2, 2, 2) if portrait else (4, 3, 3)):
            self.grid.setRowStretch(row, stretch)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), theme.colour(theme.BACKGROUND))  # opaque: no visitor text shows through

    # --- the PIN -------------------------------------------------------------------------------------------

    def _guarded(self, action: Callable[[], None], revert: bool = False) -> None:
        if revert:  # a checkable button shows the engine's state, not the tap
            self.hands_free_button.setChecked(self.hands_free)
        if not self.actions_enabled:
            return
        if self.unlocked:
            action()
            return
        self._pending = action
        self.pin_pad.setGeometry(self.rect())
        self.pin_pad.open()

    def _pin_ok(self) -> None:
        self.unlocked = True
        self._update_lock_line()
        action, self._pending = self._pending, None
        if action is not None:
            action()

    def _pin_cancelled(self) -> None:
        self._pending = None

    def _exit_tapped(self) -> None:
        """The first tap asks "Really exit?" (with Cancel beside it); the second quits.  Not a modal
        dialog: the GUI thread, the face and the watchdog's pings carry on while it waits."""
        if self.confirming_exit:
            self._end_exit_confirm()
            self.exit_requested.emit()
            return
        self.confirming_exit = True
        self.exit_button.setText("Really exit?")
        self.exit_cancel_button.show()
        self._exit_confirm_timer.start()

    def _end_exit_confirm(self) -> None:
        self.confirming_exit = False
        self._exit_confirm_timer.stop()
        self.exit_button.setText("Exit kiosk")
        self.exit_cancel_button.hide()

    def _update_lock_line(self) -> None:
        if not self.actions_enabled:
            self.admin.detail.setText(
                "Figures only: no technician PIN is set. Set [ui] admin_pin (4-12 digits) in the config "
                "file, or KIOSK_UI__ADMIN_PIN, to exit, reload or run the self-test here."
            )
        elif self.unlocked:
            self.admin.detail.setText("Unlocked until the panel closes (it closes when left untouched).")
        else:
            self.admin.detail.setText("Locked: the actions ask for the technician PIN.")

    def show_result(self, text: str, ok: bool = True) -> None:
        colour = theme.GOOD if ok else theme.PROBLEM
        self.admin_result.setText(f'<span style="color:{colour}">{html.escape(text)}</span>')
        self.admin_result.setTextFormat(Qt.TextFormat.RichText)

    def set_listening(self, microphone: bool, hands_free: bool) -> None:
        """What the listening button says: hands-free on or off, or that there is no microphone."""
        self.hands_free = hands_free
        self.hands_free_button.setChecked(microphone and hands_free)
        self.hands_free_button.setEnabled(microphone and self.actions_enabled)
        if not microphone:
            self.hands_free_button.setText("Listening: no microphone")
        else:
            self.hands_free_button.setText(f"Hands-free: {'on' if hands_free else 'off (push-to-talk)'}")

    # --- the numbers ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        now = time.monotonic()
        uptime = int(now - self.started)
        self.subheading.setText(
            f"   {self.engine.exhibit.id}  ·  docent {__version__}  ·  up {uptime // 3600}:"
            f"{uptime // 60 % 60:02d}:{uptime % 60:02d}"
            + (f"  ·  {self.model.loading_line}" if self.model.loading_line else "")
        )
        history = self.resources.history()
        latest = self.resources.latest()
        self._resources(history, latest, now)
        self._frames(now)
        self._latency()
        self._models()
        self._endpoint(now)
        self._problems()

    def _resources(self, history: list[ResourceSnapshot], latest: ResourceSnapshot | None, now: float) -> None:
        xs = [s.t - now for s in history]
        if latest is None:
            self.cpu.value.setText("sampling…")
            self.memory.value.setText("sampling…")
        else:
            self.cpu.value.setText(f"{latest.cpu_percent:.0f} %")
            self.cpu.detail.setText(f"this process · {os.cpu_count() or 1} cores (100 % = one core)")
            self.cpu.spark.set_data(xs, [s.cpu_percent for s in history], ceiling=100.0)
            self.memory.value.setText(fmt_bytes(latest.rss_bytes))
            used = latest.system_total_bytes - latest.system_available_bytes
            self.memory.detail.setText(
                f"process RSS · system {fmt_bytes(used)} of {fmt_bytes(latest.system_total_bytes)}"
            )
            self.memory.spark.set_data(xs, [s.rss_bytes / MIB for s in history])
        gpus = latest.gpus if latest is not None else ()
        self._has_gpu = bool(gpus)
        self._arrange(self.height() > self.width(), self._has_gpu)
        if not gpus:
            status = self.resources.gpu_status
            self.gpu.value.setText(NO_GPU)
            why = "" if status in (NO_GPU, "unknown") else f" ({status})"
            self.gpu.detail.setText(f"GPU: none{why} · the models run on the processor")
            self.gpu.spark.set_data([], [])
            return
        first = gpus[0]
        util = f"{first.utilization_ratio * 100:.0f} %" if first.utilization_ratio is not None else "–"
        self.gpu.value.setText(util)
        parts = []
        for g in gpus:
            mine = (
                f", this process {fmt_bytes(g.process_memory_bytes)}"
                if g.process_memory_bytes is not None
                else ""
            )
            parts.append(
                f"{g.name}: {fmt_bytes(g.memory_used_bytes)} of {fmt_bytes(g.memory_total_bytes)}{mine}"
            )
        self.gpu.detail.setText("\n".join(parts))
        values = [(s.gpus[0].utilization_ratio or 0.0) * 100 if s.gpus else 0.0 for s in history]
        self.gpu.spark.set_data(xs, values, ceiling=100.0)

    def _frames(self, now: float) -> None:
        xs, fps, dropped = self.model.frame_series(now)
        rendered, lost = self.model.fps_now(now)
        self.frames.value.setText(f"{rendered:.0f} fps")
        screen = self.model.screen_fps() if self.model.screen_fps is not None else None
        self.frames.detail.setText(
            f"{lost:.0f} dropped last second · {self.model.dropped_total} dropped in all"
            + (f" · screen paints {screen:.0f} fps" if screen is not None else "")
            + (f"\n{self.model.face_line}" if self.model.face_line else "")
        )
        self.frames.spark.set_data(xs, fps, ceiling=30.0, extra=dropped)

    def _latency(self) -> None:
        self.latency_body.setText(latency_table(list(self.model.turns)))

    def _models(self) -> None:
        engine = self.engine
        table = models_table(engine.models, engine.failures, self.model.face_line, engine.off)
        self.models_body.setText(table)

    def _endpoint(self, now: float) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            self.endpoint.value.setText("off")
            self.endpoint.detail.setText("telemetry is not running in this kiosk")
            return
        server = telemetry.server
        if server is None:
            self.endpoint.value.setText("off")
            self.endpoint.detail.setText("[metrics] enabled = false")
            return
        self.endpoint.value.setText(f"{server.url}/metrics")
        if not server.running:
            self.endpoint.detail.setText(f"not served: {telemetry.server_error or 'stopped'}")
            return
        counts = scrape_counts(telemetry)
        ok = counts.get("200", 0.0)
        other = sum(v for k, v in counts.items() if k != "200")
        if self._scrapes_seen is None:
            self._scrapes_seen = (ok, -1.0)  # when those happened is unknown
        elif self._scrapes_seen[0] != ok:
            self._scrapes_seen = (ok, now)
        seen_at = self._scrapes_seen[1]
        if ok == 0:
            last = "no scrape yet"
        elif seen_at < 0:
            last = "the last one before this panel first opened"
        else:
            last = f"the last one within {max(1, int(now - seen_at) + 1)} s"
        self.endpoint.detail.setText(
            f"{ok:.0f} scrape{'' if ok == 1 else 's'} served ({last})"
            + (f" · {other:.0f} refused or failed" if other else "")
        )

    def _problems(self) -> None:
        lines = list(self.model.problems)
        if not lines:
            self.problems_body.setText(f'<span style="color:{theme.GOOD}">None since start.</span>')
            return
        self.problems_body.setText("<br>".join(html.escape(line) for line in reversed(lines)))
