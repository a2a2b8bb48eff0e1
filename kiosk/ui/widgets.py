"""The visitor screen's building blocks: captions, question chips, the talk button, the level meter,
the status pill and the "Still there?" overlay.  They hold no engine reference: the window feeds them.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QAbstractButton,
    QLabel,
    QLayout,
    QLayoutItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
    QWidgetItem,
)

from kiosk.ui import theme

# --- a layout that wraps its items like words ------------------------------------------------------------


class FlowLayout(QLayout):
    """Items left to right, wrapping to the next line (Qt's flow layout example, in Python)."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 12) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def set_spacing(self, spacing: int) -> None:
        self._spacing = spacing
        self.invalidate()

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 - Qt's name
        self._items.append(item)

    def addWidget(self, widget: QWidget) -> None:  # noqa: N802
        self.addChildWidget(widget)
        self.addItem(QWidgetItem(widget))

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._place(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._place(rect, apply=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        return size

    def _place(self, rect: QRect, apply: bool) -> int:
        x, y, line = rect.x(), rect.y(), 0
        for item in self._items:
            if item.widget() is not None and item.widget().isHidden():
                continue
            hint = item.sizeHint()
            width = min(hint.width(), rect.width())
            if x + width > rect.right() + 1 and line > 0:
                x = rect.x()
                y += line + self._spacing
                line = 0
            if apply:
                item.setGeometry(QRect(QPoint(x, y), QSize(width, hint.height())))
            x += width + self._spacing
            line = max(line, hint.height())
        return y + line - rect.y()


# --- captions --------------------------------------------------------------------------------------------


@dataclass
class CaptionTurn:
    turn_id: int
    question: str = ""
    sentences: dict[int, str] = field(default_factory=dict)

    @property
    def answer(self) -> list[str]:
        return [self.sentences[i] for i in sorted(self.sentences)]


class CaptionsView(QScrollArea):
    """The visitor's question and the guide's answer, sentence by sentence as it is spoken.

    The newest turn is shown in full; the one before it stays above, faded; older turns scroll away.
    With no turn yet it shows the attract line (the guide's greeting or a suggestion).
    """

    SHOWN_TURNS = 2

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self._content = QWidget()
        self._layout = QVBoxLayout(self._content)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addStretch(1)
        self.setWidget(self._content)
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(lambda _low, high: bar.setValue(high))  # the newest line stays in view
        self.turns: list[CaptionTurn] = []
        self._labels: list[QLabel] = []
        self._attract = ""
        self._skipped: set[int] = set()
        self._gap = 24
        self._render()

    # the model ------------------------------------------------------------------------------------------

    def entries(self) -> list[tuple[str, str]]:
        """Everything captioned since the last clear, in order: ("visitor", q), ("guide", sentence)..."""
        out: list[tuple[str, str]] = []
        for turn in self.turns:
            if turn.question:
                out.append(("visitor", turn.question))
            out.extend(("guide", s) for s in turn.answer)
        return out

    def clear(self) -> None:
        self.turns.clear()
        self._skipped.clear()
        self._render()

    def set_attract(self, text: str) -> None:
        self._attract = text
        if not self.turns:
            self._render()

    def set_gap(self, gap: int) -> None:
        self._gap = gap
        self._layout.setSpacing(gap)

    def _turn(self, turn_id: int) -> CaptionTurn:
        for turn in self.turns:
            if turn.turn_id == turn_id:
                return turn
        turn = CaptionTurn(turn_id)
        self.turns.append(turn)
        self.turns.sort(key=lambda t: t.turn_id)
        return turn

    def set_question(self, turn_id: int, text: str) -> None:
        if turn_id in self._skipped or not text.strip():
            return
        self._turn(turn_id).question = text.strip()
        self._render()

    def add_sentence(self, turn_id: int, index: int, text: str) -> None:
        if turn_id in self._skipped:
            return
        self._turn(turn_id).sentences[index] = text
        self._render()

    def skip_turn(self, turn_id: int) -> None:
        """Captions of this turn are not shown (the "Sorry, I did not catch that" reply has its banner)."""
        self._skipped.add(turn_id)
        self.turns = [t for t in self.turns if t.turn_id != turn_id]
        self._render()

    # the view -------------------------------------------------------------------------------------------

    def _render(self) -> None:
        wanted: list[tuple[str, str, bool]] = []  # (text, style name, rich)
        shown = [t for t in self.turns if t.question or t.sentences][-self.SHOWN_TURNS :]
        if not shown and self._attract:
            wanted.append((self._attract, "AttractLine", False))
        latest_skipped = max(self._skipped, default=-1)
        for n, turn in enumerate(shown):
            # a newer turn without captions ("Sorry, I did not catch that") fades the last answer too
            newest = n == len(shown) - 1 and turn.turn_id > latest_skipped
            if turn.question:
                wanted.append((f"\u201c{turn.question}\u201d", "VisitorCaption", False))
            answer = turn.answer
            if not answer:
                continue
            if newest:
                parts = [
                    f'<span style="color:{theme.TEXT if i == len(answer) - 1 else theme.TEXT_SOFT}">'
                    f"{html.escape(s)}</span>"
                    for i, s in enumerate(answer)
                ]
                wanted.append((" ".join(parts), "GuideCaption", True))
            else:
                wanted.append((" ".join(answer), "GuideCaptionOld", False))
        # labels are reused (a new label, or a new style, costs a polish and a layout)
        while len(self._labels) < len(wanted):
            label = QLabel()
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
            # above the stretch: the text starts at the top
            self._layout.insertWidget(self._layout.count() - 1, label)
            self._labels.append(label)
        for label, (text, name, rich) in zip(self._labels, wanted, strict=False):
            if label.objectName() != name:
                label.setObjectName(name)
                label.style().unpolish(label)
                label.style().polish(label)
            label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
            if label.text() != text:
                label.setText(text)
            label.setVisible(True)
        for label in self._labels[len(wanted) :]:
            label.setVisible(False)
            label.clear()
        QTimer.singleShot(0, self._scroll_to_end)

    def _scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())


# --- suggested questions -------------------------------------------------------------------------------------


class ChipsView(QWidget):
    """Tappable suggested questions; ``asked`` carries the question's text."""

    asked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.heading = QLabel("TRY ASKING")
        self.heading.setObjectName("ChipsHeading")
        layout.addWidget(self.heading)
        self._holder = QWidget()
        self._flow = FlowLayout(self._holder)
        layout.addWidget(self._holder)
        self.buttons: list[QPushButton] = []
        self.questions: list[str] = []
        self.chip_padding = 80  # the chip's horizontal padding and border, set with the style
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    def set_spacing(self, spacing: int) -> None:
        self._flow.set_spacing(spacing)
        self.layout().setSpacing(spacing // 2)

    def set_questions(self, questions: list[str]) -> None:
        if list(questions) == self.questions and len(self.buttons) == len(questions):
            self._elide()
            return
        self.questions = list(questions)
        while len(self.buttons) < len(self.questions):  # buttons are reused: a new one costs a polish
            button = QPushButton()
            button.setObjectName("Chip")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _=False, b=button: self.asked.emit(b.toolTip()))
            self._flow.addWidget(button)
            self.buttons.append(button)
        for button in self.buttons[len(self.questions) :]:
            self._flow.removeWidget(button)
            button.hide()
            button.setParent(None)
            button.deleteLater()
        self.buttons = self.buttons[: len(self.questions)]
        for button, question in zip(self.buttons, self.questions, strict=True):
            button.setToolTip(question)
            button.setVisible(True)
        self.heading.setVisible(bool(self.questions))
        self._elide()
        self._flow.invalidate()
        self._holder.updateGeometry()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(100, self.width())
        for button, question in zip(self.buttons, self.questions, strict=True):
            metrics = QFontMetrics(button.font())
            room = width - self.chip_padding
            text = metrics.elidedText(question, Qt.TextElideMode.ElideRight, room)
            if button.text() != text:
                button.setText(text)

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self.heading.sizeHint().height() + self._flow.heightForWidth(width) + self.layout().spacing()

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def sizeHint(self) -> QSize:  # noqa: N802
        width = self.width() if self.width() > 100 else 900
        return QSize(width, self.heightForWidth(width))


# --- input level and the talk button ----------------------------------------------------------------------------


def level_from_rms(rms: float) -> float:
    """0..1 from a frame's RMS: -60 dBFS is silence, -12 dBFS is a loud voice near the mic."""
    if rms <= 1e-6:
        return 0.0
    return max(0.0, min(1.0, (20 * math.log10(rms) + 60) / 48))


class LevelMeter(QWidget):
    """A row of rounded bars following the microphone level (InputLevel events)."""

    PROFILE = (0.35, 0.55, 0.78, 0.92, 1.0, 0.92, 0.78, 0.55, 0.35)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = 0.0
        self.speaking = False
        self.setMinimumSize(60, 24)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def reset(self) -> None:
        self.level = 0.0
        self.speaking = False
        self.update()

    def set_level(self, rms: float, speaking: bool) -> None:
        target = level_from_rms(rms)
        self.level = target if target > self.level else 0.6 * self.level + 0.4 * target
        self.speaking = speaking
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        bars = len(self.PROFILE)
        gap = self.width() / (bars * 2.6)
        bar_w = (self.width() - gap * (bars - 1)) / bars
        colour = theme.colour(
            theme.LISTENING if self.speaking else theme.TEXT_SOFT, 0.95 if self.speaking else 0.6
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        for i, weight in enumerate(self.PROFILE):
            h = max(bar_w, self.height() * (0.12 + 0.88 * self.level * weight))
            x = i * (bar_w + gap)
            y = (self.height() - h) / 2
            painter.drawRoundedRect(QRectF(x, y, bar_w, h), bar_w / 2, bar_w / 2)


def draw_microphone(painter: QPainter, centre: QPointF, size: float, colour) -> None:
    """A simple microphone glyph (capsule, cradle, stem and foot) drawn with lines."""
    pen = QPen(colour, max(2.0, size * 0.085), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    w, h = size * 0.34, size * 0.56
    capsule = QRectF(centre.x() - w / 2, centre.y() - size * 0.5, w, h)
    painter.drawRoundedRect(capsule, w / 2, w / 2)
    cradle = QRectF(centre.x() - size * 0.33, centre.y() - size * 0.28, size * 0.66, size * 0.58)
    painter.drawArc(cradle, 200 * 16, 140 * 16)
    painter.drawLine(
        QPointF(centre.x(), centre.y() + size * 0.30), QPointF(centre.x(), centre.y() + size * 0.45)
    )
    painter.drawLine(
        QPointF(centre.x() - size * 0.18, centre.y() + size * 0.45),
        QPointF(centre.x() + size * 0.18, centre.y() + size * 0.45),
    )


class TalkButton(QAbstractButton):
    """The big round button: hold to talk (push-to-talk), or a live microphone badge (hands-free)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hands_free = True
        self.active = False  # the guide is listening to the visitor now
        self.level = 0.0
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_level(self, rms: float) -> None:
        self.level = level_from_rms(rms)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(160, 160)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = min(self.width(), self.height())
        centre = QPointF(self.width() / 2, self.height() / 2)
        radius = side / 2 - 3
        live = self.active or self.isDown()
        accent = theme.LISTENING if live else theme.ACCENT
        inner = radius * 0.78
        if live:  # a halo that follows the voice, inside the button's square
            halo = inner + (radius - inner) * (0.45 + 0.55 * self.level)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.colour(accent, 0.18 + 0.25 * self.level))
            painter.drawEllipse(centre, halo, halo)
        painter.setBrush(theme.colour(accent, 0.95 if (live or not self.hands_free) else 0.14))
        painter.setPen(QPen(theme.colour(accent, 0.9), max(2.0, side * 0.012)))
        painter.drawEllipse(centre, inner, inner)
        glyph = theme.colour(theme.BACKGROUND if (live or not self.hands_free) else accent)
        draw_microphone(painter, centre, inner * 0.95, glyph)


class StatusPill(QWidget):
    """A coloured dot and a word: Ready, Listening, Thinking, Speaking."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = ""
        self.colour = theme.ACCENT
        self.phase = 0.0
        self._font = QFont()
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_state(self, text: str, colour: str) -> None:
        self.text, self.colour = text, colour
        self.updateGeometry()
        self.update()

    def set_font_px(self, px: int) -> None:
        self._font = theme.font(theme.SANS, px, QFont.Weight.DemiBold)
        self.updateGeometry()

    def sizeHint(self) -> QSize:  # noqa: N802
        metrics = QFontMetrics(self._font)
        h = metrics.height()
        return QSize(metrics.horizontalAdvance(self.text) + int(h * 2.6), int(h * 1.9))

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        painter.setPen(QPen(theme.colour(self.colour, 0.55), 1.5))
        painter.setBrush(theme.colour(self.colour, 0.10))
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        dot = rect.height() * 0.16
        centre = QPointF(rect.left() + rect.height() * 0.62, rect.center().y())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(theme.colour(self.colour))
        painter.drawEllipse(centre, dot, dot)
        painter.setPen(theme.colour(theme.TEXT))
        painter.setFont(self._font)
        text_rect = rect.adjusted(rect.height() * 1.0, 0, -rect.height() * 0.45, 0)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.text)


# --- "Still there?" --------------------------------------------------------------------------------------------------


class StillThereOverlay(QWidget):
    """Dims the screen and counts down; a touch anywhere says the visitor is still there."""

    touched = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.remaining = 0.0
        self.total = 1.0
        self.u = 1.0
        self.hide()

    def set_countdown(self, remaining: float, total: float) -> None:
        self.remaining, self.total = max(0.0, remaining), max(0.001, total)
        self.update()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.touched.emit()
        event.accept()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), theme.colour("#050506", 0.82))
        u = self.u
        card_w, card_h = min(self.width() - 80 * u, 820 * u), 560 * u
        card = QRectF((self.width() - card_w) / 2, (self.height() - card_h) / 2, card_w, card_h)
        painter.setPen(QPen(theme.colour(theme.HAIRLINE), 1.5))
        painter.setBrush(theme.colour(theme.SURFACE, 0.96))
        painter.drawRoundedRect(card, 36 * u, 36 * u)
        # the countdown ring
        ring = 220 * u
        ring_rect = QRectF(card.center().x() - ring / 2, card.top() + 70 * u, ring, ring)
        painter.setPen(QPen(theme.colour(theme.HAIRLINE), 12 * u))
        painter.drawEllipse(ring_rect)
        pen = QPen(theme.colour(theme.ACCENT), 12 * u, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        span = int(360 * 16 * self.remaining / self.total)
        painter.drawArc(ring_rect, 90 * 16, span)
        painter.setPen(theme.colour(theme.TEXT))
        painter.setFont(theme.font(theme.SERIF, 96 * u))
        painter.drawText(ring_rect, Qt.AlignmentFlag.AlignCenter, str(math.ceil(self.remaining)))
        painter.setFont(theme.font(theme.SERIF, 64 * u))
        title = QRectF(card.left(), ring_rect.bottom() + 40 * u, card.width(), 90 * u)
        painter.drawText(title, Qt.AlignmentFlag.AlignCenter, "Still there?")
        painter.setPen(theme.colour(theme.TEXT_SOFT))
        painter.setFont(theme.font(theme.SANS, 30 * u))
        hint = QRectF(card.left() + 40 * u, title.bottom() + 10 * u, card.width() - 80 * u, 100 * u)
        painter.drawText(
            hint,
            Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap,
            "Touch the screen to keep talking.",
        )


def rounded_path(rect: QRectF, radius: float) -> QPainterPath:
    path = QPainterPath()
    path.addRoundedRect(rect, radius, radius)
    return path
