"""The visitor screen's small painted pieces: the talk button, the level meter, the status pill, the
"Still there?" overlay and the technician's hot corner.  They hold no engine reference: the window feeds
them.  (Captions and chips have modules of their own.)
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QAbstractButton, QSizePolicy, QWidget

from kiosk.ui import theme
from kiosk.ui.screen_text import PILL_TEXT

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
        """As wide as its widest word: the title beside it does not reflow when the state changes."""
        metrics = QFontMetrics(self._font)
        h = metrics.height()
        widest = max(metrics.horizontalAdvance(text) for text in (self.text, *PILL_TEXT.values()))
        return QSize(widest + int(h * 2.6), int(h * 1.9))

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
        self.text_scale = 1.0
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
        painter.fillRect(self.rect(), theme.colour(theme.BACKGROUND_BOTTOM, 0.86))
        u = self.u
        card_w, card_h = min(self.width() - 80 * u, 820 * u), 560 * u
        card = QRectF((self.width() - card_w) / 2, (self.height() - card_h) / 2, card_w, card_h)
        painter.setPen(QPen(theme.colour(theme.HAIRLINE), 1.5))
        painter.setBrush(theme.colour(theme.SURFACE))
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
        painter.setFont(theme.font(theme.SERIF, 64 * u * self.text_scale))
        title = QRectF(card.left(), ring_rect.bottom() + 40 * u, card.width(), 90 * u)
        painter.drawText(title, Qt.AlignmentFlag.AlignCenter, "Still there?")
        painter.setPen(theme.colour(theme.TEXT_SOFT))
        painter.setFont(theme.font(theme.SANS, 30 * u * self.text_scale))
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
