"""Ask by typing: an on-screen keyboard with large keys, for visitors who cannot or would rather not speak.

It slides over the lower part of the screen; ``submitted`` carries the typed question (the window asks
it through the same turn as a spoken or tapped one), ``cancelled`` closes it.  Keys are plain buttons, so
touch and mouse both work; a physical keyboard types too.

Names and codes need more than a-z: the hyphen has its own key ("STS-114"), and the accent key turns the
three letter rows into the common accented letters for one letter ("Zürich", "Gödel", "Curaçao"), as a
phone's keyboard does, then back.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QPainter
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from kiosk.ui import theme

ROWS = ("1234567890", "qwertyuiop", "asdfghjkl'", "zxcvbnm,.?")
# the accent key's layer, key for key over the three letter rows (the digits stay)
ACCENT_ROWS = ("1234567890", "àáâäãåæçèé", "êëìíîïñòóô", "öõøœùúûüýß")
MAX_CHARS = 160
BACKSPACE, SPACE, SHIFT, ASK, CLOSE, HYPHEN, ACCENTS = "⌫", "space", "⇧", "Ask", "Close", "-", "àé"


class KeyboardPanel(QWidget):
    submitted = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("Keyboard")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.text = ""
        self.shift = True  # a question starts with a capital
        self.accents = False  # the letter keys show accented letters, for one letter
        outer = QVBoxLayout(self)
        self._outer = outer
        top = QHBoxLayout()
        self.line = QLabel("")
        self.line.setObjectName("TypedQuestion")
        # one line, its end in view: a wrapping line grew the panel and squeezed the keys onto each other
        self.line.setWordWrap(False)
        self.line.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )  # not the text's width
        top.addWidget(self.line, 1)
        outer.addLayout(top)
        grid = QGridLayout()
        self._grid = grid
        self.keys: dict[str, QPushButton] = {}
        for r, row in enumerate(ROWS):
            for c, char in enumerate(row):
                self._key(char, "Key", r, c)
        self._faces = {
            base: accented
            for row, other in zip(ROWS, ACCENT_ROWS, strict=True)
            for base, accented in zip(row, other, strict=True)
        }
        self._key(SHIFT, "KeyAction", 4, 0, 2)
        self._key(ACCENTS, "KeyAction", 4, 2)
        self._key(HYPHEN, "Key", 4, 3)
        self._key(SPACE, "Key", 4, 4, 4)
        self._key(BACKSPACE, "KeyAction", 4, 8, 2)
        actions = QHBoxLayout()
        for name in (CLOSE, ASK):
            button = self._button(name, "KeyAsk" if name == ASK else "KeyAction")
            actions.addWidget(button, 1 if name == CLOSE else 2)
        outer.addLayout(grid)
        outer.addLayout(actions)
        self._refresh()
        self.hide()

    def _button(self, name: str, style: str) -> QPushButton:
        button = QPushButton(name)
        button.setObjectName(style)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.clicked.connect(lambda _=False, k=name: self.press(self.face(k)))
        self.keys[name] = button
        return button

    def face(self, key: str) -> str:
        """What the key named ``key`` types now: its accented letter while the accent layer is up."""
        return self._faces.get(key, key) if self.accents else key

    def key_for(self, char: str) -> QPushButton:
        """The button that types ``char`` (a letter of either layer), for the tests and the accent layer."""
        for base, accented in self._faces.items():
            if char in (base, accented):
                return self.keys[base]
        return self.keys[char]

    def _key(self, name: str, style: str, row: int, column: int, span: int = 1) -> None:
        self._grid.addWidget(self._button(name, style), row, column, 1, span)

    def set_metrics(self, m: theme.Metrics) -> None:
        self._outer.setContentsMargins(m.px(36), m.px(24), m.px(36), m.px(28))
        self._outer.setSpacing(m.px(16))
        self._grid.setSpacing(m.px(10))

    def open(self) -> None:
        self.text = ""
        self.shift = True
        self.accents = False
        self._refresh()
        self.show()
        self.raise_()

    def press(self, key: str) -> None:
        if key == BACKSPACE:
            self.text = self.text[:-1]
        elif key == SPACE:
            self.text += " " if self.text and not self.text.endswith(" ") else ""
        elif key == SHIFT:
            self.shift = not self.shift
        elif key == ACCENTS:
            self.accents = not self.accents
        elif key == CLOSE:
            self.hide()
            self.cancelled.emit()
            return
        elif key == ASK:
            question = " ".join(self.text.split())
            if question:
                self.hide()
                self.submitted.emit(question)
            return
        elif len(self.text) < MAX_CHARS:
            self.text += _upper(key) if self.shift else key
            self.shift = self.accents = False
        self._refresh()

    def _refresh(self) -> None:
        self._show_line()
        self.keys[ASK].setEnabled(bool(self.text.strip()))
        self.keys[ACCENTS].setText("abc" if self.accents else ACCENTS)
        for row in ROWS:
            for char in row:
                shown = self.face(char)
                self.keys[char].setText(_upper(shown) if self.shift else shown)

    def _show_line(self) -> None:
        """The typed question on one line; when longer than the line, its start gives way ("…ross the river▏")."""
        if not self.text:
            self.line.setText("Type your question…")
            return
        room = self.line.contentsRect().width()
        typed = self.text + "▏"
        if room > 40:
            typed = self.line.fontMetrics().elidedText(typed, Qt.TextElideMode.ElideLeft, room)
        self.line.setText(typed)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._show_line()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.press(ASK)
        elif event.key() == Qt.Key.Key_Backspace:
            self.press(BACKSPACE)
        elif event.key() == Qt.Key.Key_Escape:
            self.press(CLOSE)
        elif event.text() and event.text().isprintable():
            self.shift = False
            self.text = (self.text + event.text())[:MAX_CHARS]
            self._refresh()
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), theme.colour(theme.SURFACE))  # opaque: nothing shows through
        painter.setPen(theme.colour(theme.HAIRLINE))
        painter.drawLine(0, 0, self.width(), 0)


def _upper(char: str) -> str:
    """A letter's capital, where it has a single one ("ß" stays: its capital is two letters)."""
    upper = char.upper()
    return upper if len(upper) == 1 else char
