"""The suggested questions: large rounded chips that wrap their text (never truncated), in rows.

``asked`` carries the tapped question.  Disabled chips (the guide is still getting ready) are drawn
plainly, without the accent, so they do not look tappable.  The view may be given less height than all
its chips need (the answer above it comes first): the chips that do not fit whole are left out, from
the last; with no room for a whole row, the heading goes too.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractButton,
    QLabel,
    QLayout,
    QLayoutItem,
    QSizePolicy,
    QWidget,
    QWidgetItem,
)

from kiosk.ui import theme
from kiosk.ui.screen_text import breakable

WRAP = Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


class FlowLayout(QLayout):
    """Items left to right, wrapping to the next line; an item as wide as the line wraps its text."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 12) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self.placed = 0  # how many items the last placement showed; the rest did not fit
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

    def first_row_height(self, width: int) -> int:
        heights = [h for _, h, row in self._rows(width) if row == 0]
        return max(heights, default=0)

    def _rows(self, width: int) -> list[tuple[QRect, int, int]]:
        """Each shown item's place (from 0, 0) in ``width``, its height and its row."""
        x, y, line, row = 0, 0, 0, 0
        places = []
        for item in self._items:
            widget = item.widget()
            if widget is not None and widget.isHidden():
                continue
            hint = widget.sizeHint() if widget is not None else item.sizeHint()  # fresh, not the item's cache
            item_width = min(hint.width(), width)
            height = widget.heightForWidth(item_width) if widget is not None else hint.height()
            if x + item_width > width and line > 0:
                x, y, line, row = 0, y + line + self._spacing, 0, row + 1
            places.append((QRect(QPoint(x, y), QSize(item_width, height)), height, row))
            x += item_width + self._spacing
            line = max(line, height)
        return places

    def _place(self, rect: QRect, apply: bool) -> int:
        places = self._rows(rect.width())
        if apply:
            shown = [item for item in self._items if item.widget() is None or not item.widget().isHidden()]
            self.placed = 0
            folded = False
            for item, (place, _, _) in zip(shown, places, strict=True):
                folded = folded or place.bottom() > rect.height() - 1  # from the first that does not fit
                item.setGeometry(QRect() if folded else place.translated(rect.topLeft()))
                self.placed += not folded
        return max((place.bottom() + 1 for place, _, _ in places), default=0)


class ChipButton(QAbstractButton):
    """One suggested question: a rounded chip; its text wraps onto more lines when the row is narrow."""

    def __init__(self, question: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.question = question
        self.shown_text = breakable(question)  # what is drawn: a very long word may break
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
        self.shown_text = breakable(question)
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
        text = metrics.boundingRect(self._text_rect(width, 100000), int(WRAP), self.shown_text)
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
        painter.drawText(self._text_rect(self.width(), self.height()), int(WRAP), self.shown_text)


class ChipsView(QWidget):
    """The heading and the chips; ``asked`` carries the tapped question, ``touched`` says a finger came
    down on one (before it is lifted: the chips must not change under it)."""

    asked = Signal(str)
    touched = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # placed by hand (resizeEvent), not by a box layout: a box layout would never give the chips less
        # than all of them need, and the captions above would be squeezed instead
        self.heading = QLabel("TRY ASKING", self)
        self.heading.setObjectName("ChipsHeading")
        self._holder = QWidget(self)
        self._flow = FlowLayout(self._holder)
        self._gap = 7
        self.buttons: list[ChipButton] = []
        self.questions: list[str] = []
        self._font: QFont | None = None  # set_style's, for chips made later
        self._pads = (30, 16)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    @property
    def shown(self) -> list[ChipButton]:
        """The chips there was room for (the rest are left out until there is)."""
        return self.buttons[: self._flow.placed]

    def set_spacing(self, spacing: int) -> None:
        self._flow.set_spacing(spacing)
        self._gap = spacing // 2
        self._relayout()

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
                if self._font is not None:
                    button.setFont(self._font)
                    button.pad_x, button.pad_y = self._pads
                button.clicked.connect(lambda _=False, b=button: self.asked.emit(b.question))
                button.pressed.connect(self.touched)
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
        for button in self.buttons:
            if button.isEnabled() != enabled:
                button.setEnabled(enabled)
        self._relayout()

    def _relayout(self) -> None:
        self._place()
        self._flow.invalidate()
        self.updateGeometry()

    def _heading_height(self) -> int:
        return self.heading.sizeHint().height() + self._gap if self.questions else 0

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        """All the chips' height (the view's wish; it may get less)."""
        return self._heading_height() + self._flow.heightForWidth(width)

    def sizeHint(self) -> QSize:  # noqa: N802
        width = self._width()
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """Nothing: when the sentence being spoken needs the whole column, the suggestions wait."""
        return QSize(100, 0)

    def first_row_height(self) -> int:
        """The heading and the first row of chips."""
        return self._heading_height() + self._flow.first_row_height(self._width())

    def _width(self) -> int:
        return self.width() if self.width() > 100 else 900

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._place()
        if event.oldSize().width() != event.size().width():
            self.updateGeometry()  # the wish depends on the width

    def _place(self) -> None:
        heading = self._heading_height()
        room = self.height() - heading
        fits = bool(self.questions) and room >= self._flow.first_row_height(self.width())
        self.heading.setVisible(fits)  # no heading over nothing
        self.heading.setGeometry(0, 0, self.width(), max(0, heading - self._gap))
        self._holder.setGeometry(0, heading, self.width(), max(0, room))
