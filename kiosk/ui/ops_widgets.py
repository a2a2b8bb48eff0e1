"""The ops panel's pieces: number cards with sparklines, the technician's PIN pad, and their style."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import Qt, Signal  # noqa: E402
from PySide6.QtGui import QColor, QPainter  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.engine.stage import MODEL_STAGES  # noqa: E402
from kiosk.ui import theme  # noqa: E402

if TYPE_CHECKING:
    from kiosk.engine.engine import ModelInfo
    from kiosk.telemetry import Telemetry

pg.setConfigOptions(antialias=True, background=None, foreground=theme.TEXT_SOFT)

GIB = 1024**3
MIB = 1024**2
LATENCY_COLUMNS = (
    ("vad_endpoint", "endpoint"),
    ("asr", "ASR"),
    ("llm_first_sentence", "LLM 1st"),
    ("tts_first_audio", "TTS 1st"),
    ("first_audio", "1st audio"),
    ("first_frame", "1st frame"),
)


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= GIB:
        return f"{value / GIB:.2f} GiB"
    return f"{value / MIB:.0f} MiB"


def fmt_ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


# --- pieces -------------------------------------------------------------------------------------------------


class Sparkline(pg.PlotWidget):
    """A small line over the last minutes: no axes, no mouse, a faint fill."""

    def __init__(self, colour: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=None)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        item = self.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(False, False)
        item.setContentsMargins(0, 0, 0, 0)
        self.setStyleSheet("background: transparent; border: none;")
        c = QColor(colour)
        self.curve = item.plot(
            pen=pg.mkPen(c, width=2.2), fillLevel=0, brush=pg.mkBrush(c.red(), c.green(), c.blue(), 46)
        )
        self.extra = item.plot(pen=pg.mkPen(QColor(theme.PROBLEM), width=1.6))
        self.setMinimumHeight(40)

    def set_data(
        self, xs: list[float], ys: list[float], ceiling: float | None = None, extra: list[float] | None = None
    ) -> None:
        self.curve.setData(xs, ys)
        self.extra.setData(xs, extra or [])
        top = max([*ys, *(extra or []), ceiling or 0.0, 1e-9])
        self.getPlotItem().setYRange(0, top * 1.1, padding=0)
        if xs:
            self.getPlotItem().setXRange(min(xs[0], -10.0), 0, padding=0)


class Card(QFrame):
    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Card")
        layout = QVBoxLayout(self)
        self.title = QLabel(title.upper())
        self.title.setObjectName("CardTitle")
        layout.addWidget(self.title)
        self.value = QLabel("–")
        self.value.setObjectName("CardValue")
        layout.addWidget(self.value)
        self.detail = QLabel("")
        self.detail.setObjectName("CardDetail")
        self.detail.setWordWrap(True)
        layout.addWidget(self.detail)
        self.spark: Sparkline | None = None

    def add_spark(self, colour: str) -> Sparkline:
        self.spark = Sparkline(colour)
        self.layout().addWidget(self.spark, 1)
        return self.spark

    def add_body(self) -> QLabel:
        body = QLabel("")
        body.setObjectName("CardBody")
        body.setTextFormat(Qt.TextFormat.RichText)
        body.setWordWrap(True)
        body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.layout().addWidget(body, 1)
        return body


class PinPad(QWidget):
    """A PIN pad over the panel; ``accepted`` when the PIN is right, ``cancelled`` otherwise.

    Five wrong PINs lock the pad for 30 seconds.
    """

    accepted = Signal()
    cancelled = Signal()
    MAX_TRIES = 5
    LOCKOUT_S = 30.0

    def __init__(self, pin: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PinPad")
        self._pin = pin
        self.entered = ""
        self._wrong = 0
        self._locked_until = 0.0
        outer = QVBoxLayout(self)
        outer.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.card = QFrame()
        self.card.setObjectName("PinCard")
        outer.addWidget(self.card, 0, Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self.card)
        self.title = QLabel("Technician PIN")
        self.title.setObjectName("PinTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.title)
        self.dots = QLabel("")
        self.dots.setObjectName("PinDots")
        self.dots.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.dots)
        self.message = QLabel("Enter the PIN to use the admin actions.")
        self.message.setObjectName("PinMessage")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        grid = QGridLayout()
        self.keys: dict[str, QPushButton] = {}
        for n, key in enumerate(["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "OK"]):
            button = QPushButton(key)
            button.setObjectName("PinKey" if key.isdigit() else "PinAction")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _=False, k=key: self.press(k))
            grid.addWidget(button, n // 3, n % 3)
            self.keys[key] = button
        layout.addLayout(grid)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("PinCancel")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button.clicked.connect(self._cancel)
        layout.addWidget(self.cancel_button)
        self._refresh()
        self.hide()

    def open(self) -> None:
        self.entered = ""
        self._refresh()
        self.show()
        self.raise_()
        self.layout().activate()

    def press(self, key: str) -> None:
        if time.monotonic() < self._locked_until:
            self.message.setText("Too many wrong PINs. Wait a moment.")
            return
        if key == "⌫":
            self.entered = self.entered[:-1]
        elif key == "OK":
            self._check()
            return
        elif key.isdigit() and len(self.entered) < 12:
            self.entered += key
        self._refresh()

    def _check(self) -> None:
        if self.entered == self._pin:
            self._wrong = 0
            self.entered = ""
            self.hide()
            self.accepted.emit()
            return
        self._wrong += 1
        self.entered = ""
        if self._wrong >= self.MAX_TRIES:
            self._wrong = 0
            self._locked_until = time.monotonic() + self.LOCKOUT_S
            self.message.setText("Too many wrong PINs: locked for 30 seconds.")
        else:
            self.message.setText("Wrong PIN. Try again.")
        self._refresh(keep_message=True)

    def _cancel(self) -> None:
        self.entered = ""
        self.hide()
        self.cancelled.emit()

    def _refresh(self, keep_message: bool = False) -> None:
        self.dots.setText(" ".join("●" for _ in self.entered) or " ")
        if not keep_message and not self.entered:
            self.message.setText("Enter the PIN to use the admin actions.")

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), theme.colour(theme.BACKGROUND_BOTTOM, 0.9))



# where each card goes: (row, column, rows, columns)
CARD_PLACES = {
    "portrait": {
        "cpu": (0, 0, 1, 1),
        "memory": (0, 1, 1, 1),
        "gpu": (1, 0, 1, 1),
        "frames": (1, 1, 1, 1),
        "latency": (2, 0, 1, 2),
        "models": (3, 0, 1, 2),
        "endpoint": (4, 0, 1, 1),
        "problems": (4, 1, 1, 1),
        "admin": (5, 0, 1, 2),
    },
    "landscape": {
        "cpu": (0, 0, 1, 1),
        "memory": (0, 1, 1, 1),
        "gpu": (0, 2, 1, 1),
        "frames": (0, 3, 1, 1),
        "latency": (1, 0, 1, 2),
        "models": (1, 2, 1, 2),
        "endpoint": (2, 0, 1, 1),
        "problems": (2, 1, 1, 1),
        "admin": (2, 2, 1, 2),
    },
}


# no GPU: its card is one line above the grid (kiosk/ui/ops_panel.py), and the face's frames take its place
for _layout, _frames in (("portrait", (1, 0, 1, 2)), ("landscape", (0, 2, 1, 2))):
    CARD_PLACES[f"{_layout} no GPU"] = {
        name: (_frames if name == "frames" else place)
        for name, place in CARD_PLACES[_layout].items()
        if name != "gpu"
    }


def scrape_counts(telemetry: Telemetry) -> dict[str, float]:
    """``kiosk_metrics_scrapes_total`` by HTTP code, read from the telemetry's own counter."""
    counts: dict[str, float] = {}
    try:
        for family in telemetry.metrics.scrapes.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels.get("code", "?")] = sample.value
    except Exception:
        return {}
    return counts


def latency_table(rows: list) -> str:
    """The last turns' stage latencies as an HTML table (newest first)."""
    if not rows:
        return f'<span style="color:{theme.TEXT_FAINT}">No turns yet.</span>'
    head = "".join(f'<th align="right">&nbsp;{label}</th>' for _, label in LATENCY_COLUMNS)
    lines = [f'<tr><th align="left">turn</th><th align="left">status</th>{head}</tr>']
    for row in reversed(rows):
        cells = "".join(
            f'<td align="right">&nbsp;{fmt_ms(row.timings.get(key))}</td>' for key, _ in LATENCY_COLUMNS
        )
        colour = theme.TEXT if row.status == "ok" else theme.THINKING
        lines.append(
            f'<tr><td>{row.turn_id}</td><td style="color:{colour}">{html.escape(row.status)}</td>{cells}</tr>'
        )
    return f'<table cellspacing="0" cellpadding="3" width="100%">{"".join(lines)}</table>'


def models_table(
    models: Mapping[str, ModelInfo],
    failures: Mapping[str, str],
    face_line: str,
    off: Mapping[str, str] | None = None,
) -> str:
    """What loaded, what failed and what is off on purpose, as an HTML table; the face is listed once.

    A stage that is off (the recogniser without a microphone) is said in plain words, not in the
    failure colour: nothing is broken and a technician should not go looking."""
    lines = []
    for stage, info in models.items():
        memory = fmt_bytes(info.memory_bytes) if info.memory_bytes else "–"
        fallback = " (fallback)" if info.fallback else ""
        lines.append(
            f"<tr><td>{html.escape(MODEL_STAGES.get(stage, stage))}</td>"
            f"<td>{html.escape(str(info.name))}{fallback}</td><td>{html.escape(str(info.device))}</td>"
            f'<td align="right">{memory}</td><td align="right">{info.load_seconds:.1f} s</td></tr>'
        )
    for stage, message in failures.items():
        lines.append(
            f"<tr><td>{html.escape(MODEL_STAGES.get(stage, stage))}</td>"
            f'<td colspan="4" style="color:{theme.PROBLEM}">failed: {html.escape(message[:120])}</td></tr>'
        )
    for stage, reason in (off or {}).items():
        lines.append(
            f"<tr><td>{html.escape(MODEL_STAGES.get(stage, stage))}</td>"
            f'<td colspan="4" style="color:{theme.TEXT_FAINT}">not loaded: {html.escape(reason)}</td></tr>'
        )
    if face_line and "face" not in models and "face" not in failures:
        lines.append(f'<tr><td>face</td><td colspan="4">{html.escape(face_line)}</td></tr>')
    if not lines:
        return f'<span style="color:{theme.TEXT_FAINT}">Loading…</span>'
    head = (
        '<tr><th align="left">stage</th><th align="left">model</th><th align="left">device</th>'
        '<th align="right">memory</th><th align="right">load</th></tr>'
    )
    return f'<table cellspacing="0" cellpadding="3" width="100%">{head}{"".join(lines)}</table>'


def panel_style(m: theme.Metrics) -> str:
    px = m.px
    mono = ", ".join(f'"{f}"' for f in theme.MONO)
    serif = ", ".join(f'"{f}"' for f in theme.SERIF)
    return f"""
    QWidget#OpsPanel {{ background: {theme.BACKGROUND}; }}
    QLabel#OpsHeading {{ font-family: {serif}; font-size: {px(38)}px; color: {theme.TEXT}; }}
    QLabel#OpsSub {{ font-size: {px(19)}px; color: {theme.TEXT_SOFT}; }}
    QFrame#Card {{ background: {theme.SURFACE}; border: 1px solid {theme.HAIRLINE};
                   border-radius: {px(20)}px; }}
    QLabel#CardTitle {{ font-size: {px(16)}px; color: {theme.TEXT_FAINT}; letter-spacing: {px(2)}px; }}
    QLabel#CardValue {{ font-size: {px(36)}px; color: {theme.TEXT}; font-weight: 600; }}
    QLabel#CardDetail {{ font-size: {px(17)}px; color: {theme.TEXT_SOFT}; }}
    QLabel#CardBody {{ font-family: {mono}; font-size: {px(16)}px; color: {theme.TEXT_SOFT}; }}
    QPushButton {{ font-size: {px(20)}px; padding: {px(14)}px {px(18)}px; border-radius: {px(14)}px;
                   background: {theme.SURFACE_HIGH}; border: 1px solid {theme.HAIRLINE}; }}
    QPushButton:checked {{ background: {theme.rgba(theme.LISTENING, 0.18)}; border-color: {theme.LISTENING}; }}
    QPushButton#Danger {{ background: {theme.rgba(theme.PROBLEM, 0.14)}; border-color: {theme.rgba(theme.PROBLEM, 0.6)}; }}
    QPushButton#OpsClose {{ font-size: {px(20)}px; border-radius: {px(20)}px; padding: {px(12)}px {px(26)}px; }}
    QFrame#PinCard {{ background: {theme.SURFACE}; border: 1px solid {theme.HAIRLINE}; border-radius: {px(30)}px;
                      min-width: {px(520)}px; padding: {px(30)}px; }}
    QLabel#PinTitle {{ font-family: {serif}; font-size: {px(40)}px; }}
    QLabel#PinDots {{ font-size: {px(40)}px; color: {theme.ACCENT}; min-height: {px(60)}px;
                      letter-spacing: {px(6)}px; }}
    QLabel#PinMessage {{ font-size: {px(20)}px; color: {theme.TEXT_SOFT}; min-height: {px(36)}px; }}
    QPushButton#PinKey {{ font-size: {px(40)}px; min-width: {px(120)}px; min-height: {px(96)}px;
                          border-radius: {px(48)}px; }}
    QPushButton#PinAction {{ font-size: {px(30)}px; min-width: {px(120)}px; min-height: {px(96)}px;
                             border-radius: {px(48)}px; background: {theme.rgba(theme.ACCENT, 0.14)};
                             border-color: {theme.rgba(theme.ACCENT, 0.5)}; }}
    QPushButton#PinCancel {{ font-size: {px(22)}px; margin-top: {px(10)}px; }}
    """
