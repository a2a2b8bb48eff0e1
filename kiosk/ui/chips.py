"""The suggested questions: large rounded chips that wrap their text (never truncated), in rows.

``asked`` carries the tapped question.  Disabled chips (the guide is still getting ready) are drawn
plainly, without the accent, so they do not look tappable.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractButton,
    QLabel,
    QLayout,
    QLayoutItem,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
    QWidgetItem,
)

from kiosk.ui import theme

WRAP = Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


class FlowLayout(QLayout):
    """Items left to right, wrapping to the next line; an item as wide as the line wraps its text."""

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
        return QSize(100, 10)

    def _place(self, rect: QRect, apply: bool) -> int:
        x, y, line = rect.x(), rect.y(), 0
        for item in self._items:
            widget = item.widget()
            if widget is not None and widget.isHidden():
                continue
            hint = widget.sizeHint() if widget is not None else item.sizeHint()  # fresh, not the item's cache
            width = min(hint.width(), rect.width())
            height = widget.heightForWidth(width) if widget is not None else hint.height()
            if x + width > rect.right() + 1 and line > 0:
                x = rect.x()
                y += line + self._spacing
                line = 0
            if apply:
                item.setGeometry(QRect(QPoint(x, y), QSize(width, height)))
            x += width + self._spacing
            line = max(line, height)
        return y + line - rect.y()


class ChipButton(QAbstractButton):
    """One suggested question: a rounded chip; its text wraps onto more lines when the row is narrow."""

    def __init__(self, question: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.question = question
        self.setText(question)
        self.setToolTip(question)
        self.pad_x, self.pad_y = 30, 16
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def set_question(self, question: str) -> None:
        self.question = question
        self.setText(question)
        self.setToolTip(question)
        self.updateGeometry()

    def sizeHint(self) -> QSize:  # noqa: N802
        metrics = QFontMetrics(self.font())
        width = metrics.horizontalAdvance(self.question) + 2 * self.pad_x + 6  # slack: no wrap from rounding
        return QSize(width, self.heightForWidth(width))

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def _text_rect(self, width: int, height: int) -> QRect:
        return QRect(self.pad_x, self.pad_y, max(10, width - 2 * self.pad_x), max(1, height - 2 * self.pad_y))

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        metrics = QFontMetrics(self.font())
        text = metrics.boundingRect(self._text_rect(width, 100000), int(WRAP), self.question)
        return text.height() + 2 * self.pad_y

    def text_fits(self) -> bool:
        """The whole question is drawn inside the chip (for tests)."""
        return self.heightForWidth(self.width()) <= self.height()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        radius = min(rect.height() / 2, self.pad_y * 1.6 + 8)
        enabled = self.isEnabled()
        if enabled:
            painter.setBrush(theme.colour(theme.ACCENT, 0.22 if self.isDown() else 0.07))
        else:
            painter.setBrush(theme.colour(theme.SURFACE))
        painter.setPen(QPen(theme.colour(theme.ACCENT if enabled else theme.HAIRLINE, 0.6), 1.5))
        painter.drawRoundedRect(rect, radius, radius)
        painter.setPen(theme.colour(theme.TEXT if enabled else theme.TEXT_FAINT))
        painter.setFont(self.font())
        painter.drawText(self._text_rect(self.width(), self.height()), int(WRAP), self.question)


class ChipsView(QWidget):
    """The heading and the chips; ``asked`` carries the tapped question."""

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
        self.buttons: list[ChipButton] = []
        self.questions: list[str] = []
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def set_spacing(self, spacing: int) -> None:
        self._flow.set_spacing(spacing)
        self.layout().setSpacing(spacing // 2)

    def set_style(self, font_px: int, pad_x: int, pad_y: int) -> None:
        font = theme.font(theme.SANS, font_px)
        for button in self.buttons:
            button.setFont(font)
            button.pad_x, button.pad_y = pad_x, pad_y
            button.updateGeometry()
        self._font, self._pads = font, (pad_x, pad_y)
        self._relayout()

    def set_questions(self, questions: list[str], enabled: bool = True) -> None:
        if list(questions) == self.questions and all(b.isEnabled() == enabled for b in self.buttons):
            return  # nothing to lay out again
        if list(questions) != self.questions:
            self.questions = list(questions)
            while len(self.buttons) < len(self.questions):  # buttons are reused
                button = ChipButton("")
                if hasattr(self, "_font"):
                    button.setFont(self._font)
                    button.pad_x, button.pad_y = self._pads
                button.clicked.connect(lambda _=False, b=button: self.asked.emit(b.question))
                self._flow.addWidget(button)
                self.buttons.append(button)
            for button in self.buttons[len(self.questions) :]:
                self._flow.removeWidget(button)
                button.hide()
                button.setParent(None)
                button.deleteLater()
            self.buttons = self.buttons[: len(self.questions)]
            for button, question in zip(self.buttons, self.questions, strict=True):
                button.set_question(question)
                button.setVisible(True)
            self.heading.setVisible(bool(self.questions))
        for button in self.buttons:
            if button.isEnabled() != enabled:
                button.setEnabled(enabled)
        self._relayout()

    def _relayout(self) -> None:
        self._flow.invalidate()
        self._holder.updateGeometry()
        self.updateGeometry()

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self.heading.sizeHint().height() + self._flow.heightForWidth(width) + self.layout().spacing()

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def sizeHint(self) -> QSize:  # noqa: N802
        width = self.width() if self.width() > 100 else 900
        return QSize(width, self.heightForWidth(width))
