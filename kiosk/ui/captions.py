"""The captions: the visitor's question and the guide's answer, as whole lines that fit.

It shows the blocks :meth:`kiosk.ui.screen_model.ScreenModel.captions` gives, from the newest back,
as many as fit *whole* in its height; nothing is ever drawn cut at the top (no scrolling).  When the
newest answer alone is taller than the view, its earliest sentences leave first.  ``need`` is the height
of the newest turn whole (the visitor's question and the answer so far), and ``need_changed`` tells the
screen's layout, which takes that room from the suggested questions rather than lose the answer, while it
is spoken and after, until the next question.  Labels are top-aligned, so a block
given fewer lines than it has loses its last lines, never half a line at the top.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from kiosk.ui import theme
from kiosk.ui.caption_log import Caption
from kiosk.ui.screen_text import breakable

FONT_SAMPLE = (
    "“Who flew on Apollo 11?” Three astronauts: Neil Armstrong, Buzz Aldrin and Michael Collins. "
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789 .,;:!?'’\"()-–—…/%&"
)
WARMED_STYLES = ("GuideCaption", "VisitorCaption", "GuideCaptionOld", "AttractLine", "StatusLine")


class CaptionsView(QWidget):
    need_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self._labels: list[QLabel] = []
        self._blocks: list[Caption] = []
        self._gap = 24
        self._claiming = True
        self.need = 0  # the newest turn's height, whole (0 while the keyboard is up)
        self._measured_at = -1  # the view's height when ``need`` was last told
        self._need_key: tuple | None = None  # what the newest sentence's height was measured for
        self._need_measured = 0

    def set_gap(self, gap: int) -> None:
        self._gap = gap
        self._fit()

    def show_blocks(self, blocks: list[Caption]) -> None:
        if blocks == self._blocks:
            return
        self._blocks = list(blocks)
        self._fit()

    def set_claim(self, claiming: bool) -> None:
        """Whether the view asks the layout for the newest sentence's room (not while the keyboard is up)."""
        self._claiming = claiming
        self._fit(force=True)

    @property
    def newest_style(self) -> str:
        """The newest block's style ("AttractLine" for the greeting), or ""."""
        return self._blocks[-1].style if self._blocks else ""

    def visible_texts(self) -> list[str]:
        return [label.text() for label in self._labels if not label.isHidden()]

    def restyle(self) -> None:
        """After a style change (text size, palette): measure again."""
        for label in self._labels:
            label.style().unpolish(label)
            label.style().polish(label)
        self._fit(force=True)

    def warm(self, styles: tuple[str, ...] = WARMED_STYLES) -> None:
        """Lay out and paint each caption style once, off-screen, one per event-loop turn.

        The first sentence in a new type size otherwise pays for shaping and rasterising its glyphs
        (about 40 ms at 40 px on a small CPU), just when the guide starts to speak.
        """
        if not styles or not self.isVisible():
            return
        probe = QLabel(self)
        probe.setObjectName(styles[0])
        probe.setWordWrap(True)
        if styles[0] == "GuideCaption":  # rich text: the first one also sets up Qt's HTML engine
            probe.setTextFormat(Qt.TextFormat.RichText)
            probe.setText(
                f'<span style="color:{theme.TEXT_SOFT}">{FONT_SAMPLE}</span> <span>{FONT_SAMPLE}</span>'
            )
        else:
            probe.setText(FONT_SAMPLE)
        probe.setFixedWidth(max(200, self.width()))
        probe.grab()
        probe.deleteLater()
        QTimer.singleShot(0, self, lambda: self.warm(styles[1:]))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit(force=True)

    # --- fitting --------------------------------------------------------------------------------------

    def _label(self, index: int) -> QLabel:
        while len(self._labels) <= index:  # labels are reused: a new one costs a polish
            label = QLabel(self)
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            self._labels.append(label)  # placed by _fit, not a layout: the view never grows to its text
        return self._labels[index]

    def _set(self, label: QLabel, block: Caption, parts: tuple[str, ...]) -> None:
        if label.objectName() != block.style:
            label.setObjectName(block.style)
            label.style().unpolish(label)
            label.style().polish(label)
        if parts:
            spans = [
                f'<span style="color:{theme.TEXT if i == len(parts) - 1 else theme.TEXT_SOFT}">'
                f"{html.escape(breakable(s))}</span>"
                for i, s in enumerate(parts)
            ]
            label.setTextFormat(Qt.TextFormat.RichText)
            text = " ".join(spans)
        else:
            label.setTextFormat(Qt.TextFormat.PlainText)
            text = breakable(block.text)
        if label.text() != text:
            label.setText(text)

    def _height(self, label: QLabel, width: int) -> int:
        return label.heightForWidth(width) if label.hasHeightForWidth() else label.sizeHint().height()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(400, 200)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(100, 50)

    def _newest_turn(self) -> list[tuple[int, Caption]]:
        """The newest block and, when it is an answer, the visitor's question just above it."""
        if not self._blocks:
            return []
        last = len(self._blocks) - 1
        chosen = [(last, self._blocks[last])]
        if (
            last
            and self._blocks[last].style == "GuideCaption"
            and self._blocks[last - 1].style == "VisitorCaption"
        ):
            chosen.insert(0, (last - 1, self._blocks[last - 1]))
        return chosen

    def _claim(self, width: int) -> None:
        """Measure the room the newest turn needs, whole (the visitor's question and every sentence of the
        answer so far), and tell the layout when it changed: the answer stays readable until the next
        question, and the suggestions give way to it, not it to them."""
        need = 0
        if self._blocks and self._claiming:
            newest = self._newest_turn()
            label = self._label(len(self._blocks) - 1)
            # measured once per turn's text, width and type (a rich-text layout on the GUI thread)
            key = (tuple((b.style, b.parts or b.text) for _, b in newest), width, label.font().toString())
            if key == self._need_key:
                need = self._need_measured
            else:
                for index, block in newest:
                    label = self._label(index)
                    self._set(label, block, block.parts)
                    need += self._height(label, width)
                need += self._gap * (len(newest) - 1)
                self._need_key, self._need_measured = key, need
        if need != self.need or self.height() != self._measured_at:
            self.need, self._measured_at = need, self.height()
            self.need_changed.emit(need)

    def _whole_lines(self, label: QLabel, width: int, room: int) -> int:
        """The height of as many of ``label``'s lines as fit in ``room`` (rich text lines are a little taller
        than the font's line spacing: the line height is measured from the whole text)."""
        full = self._height(label, width)
        lines = max(1, round(full / max(1, label.fontMetrics().lineSpacing())))
        line = full / lines
        return int(room // line * line)

    def _fit(self, force: bool = False) -> None:
        width, room = max(50, self.width()), self.height()
        blocks = self._blocks
        self._claim(width)
        chosen: list[tuple[Caption, tuple[str, ...], int]] = []
        used = 0
        for n, block in enumerate(reversed(blocks)):
            label = self._label(len(blocks) - 1 - n)
            parts = block.parts
            self._set(label, block, parts)
            height = self._height(label, width)
            while parts and len(parts) > 1 and n == 0 and height > room:  # the newest answer: drop its start
                parts = parts[1:]
                self._set(label, block, parts)
                height = self._height(label, width)
            if not chosen and height > room:  # one sentence taller than the view: whole lines only, or none
                height = self._whole_lines(label, width, room)
                if height == 0:
                    break
            extra = height + (self._gap if chosen else 0)
            if chosen and used + extra > room:
                break
            chosen.append((block, parts, height))
            used += extra
        first_shown = len(blocks) - len(chosen)
        y = 0
        for index, label in enumerate(self._labels):
            shown = first_shown <= index < len(blocks)
            if shown:
                height = chosen[len(blocks) - 1 - index][2]
                label.setGeometry(0, y, width, height)  # from the top, whole
                y += height + self._gap
            label.setVisible(shown)
            if not shown and index >= len(blocks):
                label.clear()
