"""The visitor screen's widgets: where they go (portrait: face above, words below; landscape: face
left, words right), every size from :class:`kiosk.ui.theme.Metrics`, and :meth:`ScreenLayout.show`,
which puts a :class:`~kiosk.ui.screen_model.ScreenModel` on them.

It decides nothing (that is the model's) and talks to no engine (that is the window's).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFontMetrics, QLinearGradient, QPainter, QPixmap
from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QLabel, QLayout, QPushButton, QVBoxLayout, QWidget

from kiosk.ui import theme
from kiosk.ui.captions import CaptionsView
from kiosk.ui.chips import ChipsView
from kiosk.ui.face_view import FaceView
from kiosk.ui.keyboard import KeyboardPanel
from kiosk.ui.screen_model import ScreenModel, State
from kiosk.ui.screen_text import breakable
from kiosk.ui.widgets import HotCorner, LevelMeter, StatusPill, StillThereOverlay, TalkButton

QWIDGETSIZE_MAX = (1 << 24) - 1  # Qt's "no maximum"
LANDSCAPE_KEYBOARD = 0.56  # of a landscape screen's height, at most: the answer keeps the room above it
KEY_ROWS = 6  # the keyboard's rows of keys (five of letters, one of Close and Ask)
KEY_FLOOR = 64  # px of the unit: a key no shorter than a fingertip's comfortable target
TONES = {"listening": "LISTENING", "thinking": "THINKING", "problem": "PROBLEM", "plain": "TEXT"}


def _button(text: str, name: str, checkable: bool = False) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setCheckable(checkable)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return button


def _label(name: str, wrap: bool = True) -> QLabel:
    label = QLabel("")
    label.setObjectName(name)
    label.setWordWrap(wrap)
    return label


class ScreenLayout:
    """Every widget of the visitor screen, children of ``root``."""

    def __init__(self, root: QWidget, fps: int) -> None:
        self.root = root
        self.portrait: bool | None = None
        self.metrics = theme.Metrics(1.0)
        self._room: tuple[tuple, QPixmap] | None = None
        self.box = QVBoxLayout(root)
        self.box.setSizeConstraint(
            QLayout.SizeConstraint.SetNoConstraint
        )  # the screen's size is the screen's
        top = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        self.subtitle = _label("Subtitle", wrap=False)
        self.subtitle.setText("MUSEUM GUIDE")
        self.title = _label("Title")
        titles.addWidget(self.subtitle)
        titles.addWidget(self.title)
        top.addLayout(titles, 1)
        self.pill = StatusPill()
        top.addWidget(self.pill, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
        self.box.addLayout(top)
        self.notice = _label("Notice")
        self.notice.hide()
        self.box.addWidget(self.notice)
        self.body = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self.box.addLayout(self.body, 1)

        self.stage = QWidget(root)
        self.stage_layout = QVBoxLayout(self.stage)
        self.stage_layout.setContentsMargins(0, 0, 0, 0)
        self.face = FaceView(fps)
        self.stage_layout.addWidget(self.face, 1)

        self.content = QWidget(root)
        self.content_layout = QVBoxLayout(self.content)
        self.content_layout.setContentsMargins(0, 0, 0, 0)
        status_row = QHBoxLayout()
        status_texts = QVBoxLayout()
        status_texts.setSpacing(4)
        self.status = _label("StatusLine")
        self.hint = _label("Hint")
        status_texts.addWidget(self.status)
        status_texts.addWidget(self.hint)
        status_row.addLayout(status_texts, 1)
        self.meter = LevelMeter()
        status_row.addWidget(self.meter, 0, Qt.AlignmentFlag.AlignVCenter)
        self.content_layout.addLayout(status_row)
        self.captions = CaptionsView()
        self.captions.need_changed.connect(lambda _need: self.share_room())
        self.content_layout.addWidget(self.captions, 1)
        self.offer_button = _button("Yes, tell me more", "Offer")
        self.offer_button.hide()
        self.content_layout.addWidget(self.offer_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.chips = ChipsView()
        self.content_layout.addWidget(self.chips)

        self.controls = QWidget(root)
        controls = QHBoxLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        options = QVBoxLayout()
        self.text_button = _button("Aa   Larger text", "Secondary", checkable=True)
        self.contrast_button = _button("◐   High contrast", "Secondary", checkable=True)
        options.addWidget(self.text_button)
        options.addWidget(self.contrast_button)
        controls.addLayout(options)
        controls.addStretch(1)
        talk_column = QVBoxLayout()
        talk_column.setSpacing(6)
        self.talk = TalkButton()
        self.talk_label = _label("Hint", wrap=False)
        self.talk_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        talk_column.addWidget(self.talk, 0, Qt.AlignmentFlag.AlignHCenter)
        talk_column.addWidget(self.talk_label, 0, Qt.AlignmentFlag.AlignHCenter)
        controls.addLayout(talk_column)
        controls.addStretch(1)
        actions = QVBoxLayout()
        self.type_button = _button("⌨   Type a question", "Secondary")
        self.stop_button = _button("■   Stop", "Stop")
        policy = self.stop_button.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.stop_button.setSizePolicy(policy)
        actions.addWidget(self.type_button)
        actions.addWidget(self.stop_button)
        controls.addLayout(actions)

        self.progress = _label("Progress", wrap=False)
        self.box.addWidget(self.progress)
        self.keyboard: KeyboardPanel | None = None  # built when a visitor first wants to type
        self.typing = False  # the keyboard is up: the screen above it is laid out in what is left
        self._key_px = 0  # the keys' height where they were made shorter (0: the style sheet's)
        self.still_there = StillThereOverlay(root)
        self.hot_corner = HotCorner(root)

    def build_keyboard(self) -> KeyboardPanel:
        if self.keyboard is None:
            self.keyboard = KeyboardPanel(self.root)
            self.keyboard.set_metrics(self.metrics)
        return self.keyboard

    def arrange(self, portrait: bool) -> bool:
        """Portrait or landscape; True when that changed."""
        if portrait == self.portrait:
            return False
        self.portrait = portrait
        self.body.removeWidget(self.stage)
        self.body.removeWidget(self.content)
        self.stage_layout.removeWidget(self.controls)
        self.content_layout.removeWidget(self.controls)
        if portrait:
            self.body.setDirection(QBoxLayout.Direction.TopToBottom)
            self.body.addWidget(self.stage, 36)
            self.body.addWidget(self.content, 64)
            self.content_layout.addWidget(self.controls)
        else:
            self.body.setDirection(QBoxLayout.Direction.LeftToRight)
            self.body.addWidget(self.stage, 42)
            self.body.addWidget(self.content, 58)
            self.stage_layout.addWidget(self.controls)
        for widget in (self.stage, self.content, self.controls):
            widget.show()
        return True

    def apply_metrics(self, large: bool) -> theme.Metrics:
        """Sizes for the window's size and the text size; the style sheet for them and the palette."""
        root = self.root
        m = theme.Metrics(theme.unit_for(root.width(), root.height()), large)
        self.metrics = m
        px = m.px
        root.setStyleSheet(theme.style_sheet(m))
        self._set_margins()
        self.box.setSpacing(px(22))
        self.body.setSpacing(px(30) if self.portrait in (None, True) else px(48))
        self.content_layout.setSpacing(px(22))
        self.captions.set_gap(px(18))
        self.captions.restyle()
        self.chips.set_spacing(px(14))
        self.chips.set_style(m.chip, px(28), px(14))
        self.pill.set_font_px(m.small)
        talk = px(124 if self.portrait in (None, True) else 118)
        self.talk.setFixedSize(talk, talk)
        self.meter.setFixedSize(px(120), px(44))
        self.still_there.u = m.u
        self.still_there.text_scale = theme.LARGE_TEXT if large else 1.0
        if self.keyboard is not None:
            self.keyboard.set_metrics(m)
        self.place_overlays()
        return m

    def set_title(self, title: str, hosted: bool = False) -> None:
        """The exhibit's title; above it "ASK ME ABOUT" when the drawn host presents the pack, so that a
        person's name under the host's face is read as the subject, not as the host's own name."""
        self.subtitle.setText("ASK ME ABOUT" if hosted else "MUSEUM GUIDE")
        self.title.setText(breakable(title))
        self._fit_title()

    def _fit_title(self) -> None:
        """A long title in a smaller size (down to 60 %), so that it takes at most two lines: at full size a
        90-letter title took six lines of a portrait screen, and the answer's room with them."""
        m, width = self.metrics, self.title.width()
        if width < 100 or not self.title.text():
            return
        font = self.title.font()
        px = m.title
        while px > m.title * 0.6:
            font.setPixelSize(px)
            metrics = QFontMetrics(font)
            wrapped = metrics.boundingRect(
                QRect(0, 0, width, 1 << 20), int(Qt.TextFlag.TextWordWrap), self.title.text()
            )
            if wrapped.height() <= 2 * metrics.lineSpacing() + 2:
                break
            px -= 2
        style = f"font-size: {px}px;" if px != m.title else ""
        if self.title.styleSheet() != style:
            self.title.setStyleSheet(style)

    def settle(self) -> None:
        """Lay everything out now: sharing the room can ask for a second pass, and a tap that comes before
        the event loop has run it must still find the chips where they are drawn."""
        for _ in range(3):
            self._fit_title()
            self.share_room()
            if not self.box.activate():
                break

    def share_room(self) -> None:
        """The suggested questions get what the sentence being spoken leaves of the words' column (perhaps
        nothing); the captions take the rest.  Measured on the laid-out screen: the chips give up what the
        captions lack, or take back what they have to spare."""
        need = self.captions.need
        if not need or not self.chips.isVisible():
            self.chips.setMaximumHeight(QWIDGETSIZE_MAX)
            return
        spare = self.captions.height() - need
        # the greeting does not push the first suggestions off the screen: they are how a visitor starts
        floor = self.chips.first_row_height() if self.captions.newest_style == "AttractLine" else 0
        limit = max(floor, self.chips.height() + spare)
        if limit != self.chips.maximumHeight():
            self.chips.setMaximumHeight(limit)

    def _set_margins(self) -> None:
        m = self.metrics
        bottom = m.px(22)
        if self.typing and self.keyboard is not None:
            bottom = self.keyboard.height() + m.px(16)
        self.box.setContentsMargins(m.margin, m.px(40), m.margin, bottom)

    def make_room_for_keyboard(self) -> None:
        """With the keyboard up, the screen is laid out above it, not under it: nothing shows cut at its
        edge.  The suggestions and controls it covers leave, and the captions give up their claim on room
        (the face and the words share what is left, in whole lines, or nothing)."""
        typing = self.keyboard is not None and self.keyboard.isVisible()
        if typing == self.typing:
            return
        self.typing = typing
        for widget in (self.chips, self.controls, self.progress):
            widget.setVisible(not typing)
        if typing:  # (show() puts these back as the model says)
            for widget in (self.offer_button, self.status, self.hint, self.meter):
                widget.hide()
        self.captions.set_claim(not typing)
        self.place_overlays()
        self.settle()

    def place_overlays(self) -> None:
        rect = self.root.rect()
        self.still_there.setGeometry(rect)
        if self.keyboard is not None:
            header = self.title.mapTo(self.root, self.title.rect().bottomLeft()).y() + self.metrics.px(16)
            self._fit_keys(int(rect.height() * LANDSCAPE_KEYBOARD) if self.portrait is False else 0)
            height = min(rect.height() - max(0, header), self.keyboard.sizeHint().height())  # the title stays
            self.keyboard.setGeometry(0, rect.height() - height, rect.width(), height)
            self._set_margins()
            # above a tall keyboard only the title fits: the face and the words wait below it, not cut;
            # in landscape the words take the face's column too (fewer lines), the face waits
            room = rect.height() - height - header
            words = not self.typing or room >= self.metrics.px(120 if self.portrait is False else 200)
            self.content.setVisible(words)
            self.stage.setVisible(not self.typing or (self.portrait is not False and words))
        side = self.metrics.px(150)
        self.hot_corner.setGeometry(0, 0, side, side)
        self.hot_corner.raise_()

    def _fit_keys(self, most: int) -> None:
        """Shorter keys (not below ``KEY_FLOOR`` px of the unit) when the keyboard would be taller than
        ``most`` (0: no limit): in landscape a keyboard of full-size keys left no line of the answer."""
        keyboard, m = self.keyboard, self.metrics
        assert keyboard is not None
        keyboard.ensurePolished()
        keyboard.layout().invalidate()
        full_key = m.text(84)
        current = self._key_px or full_key
        full = keyboard.sizeHint().height() + KEY_ROWS * (full_key - current)  # with full-size keys
        key = full_key
        if most and full > most:
            key = max(m.px(KEY_FLOOR), full_key - math.ceil((full - most) / KEY_ROWS))
        if key == current and (self._key_px != 0) == (key != full_key):
            return
        self._key_px = key if key != full_key else 0
        names = ", ".join(f"QPushButton#{name}" for name in ("Key", "KeyAction", "KeyAsk"))
        keyboard.setStyleSheet(
            f"{names} {{ min-height: {key}px; max-height: {key}px; }}" if self._key_px else ""
        )
        keyboard.layout().invalidate()

    def show(self, model: ScreenModel, still_there_total: float) -> bool:
        """Every widget as the model says; True when the "Still there?" overlay has just come up."""
        state = model.state
        self.make_room_for_keyboard()
        typing = self.typing
        self.pill.set_state(model.pill, theme.STATE_COLOURS.get(state, theme.ACCENT))
        status, hint, tone = model.status()
        self.status.setText(status or "\u00a0")  # a blank line keeps its room: the words below stay put
        self.status.setVisible(not typing)
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint) and not typing)
        m = self.metrics
        size = m.caption if state in (State.LISTENING, State.THINKING, State.NOT_UNDERSTOOD) else m.status
        style = f"color: {getattr(theme, TONES.get(tone, 'TEXT_SOFT'))}; font-size: {size}px;"
        if self.status.styleSheet() != style:
            self.status.setStyleSheet(style)
        notice = model.notice_text()
        self.notice.setText(notice)
        self.notice.setVisible(bool(notice))
        self.captions.show_blocks(model.captions())
        self.chips.set_questions([c.question for c in model.chips], enabled=model.chips_enabled)
        self.offer_button.setVisible(model.offer_visible and not typing)
        self.share_room()
        self.offer_button.setToolTip(model.offer)
        self.stop_button.setVisible(model.stop_visible)
        self.type_button.setEnabled(model.chips_enabled)
        hearing = model.microphone
        self.talk.hands_free = model.hands_free
        self.talk.active = state == State.LISTENING or self.talk.isDown()
        self.talk.setVisible(hearing)
        self.talk_label.setVisible(hearing)
        self.talk_label.setText("Just ask out loud" if model.hands_free else "Hold to talk")
        self.talk.update()
        idle = state in (State.ATTRACT, State.IDLE)
        self.meter.setVisible(
            hearing and not typing and (state == State.LISTENING or (model.hands_free and idle))
        )
        self.face.set_state(str(state))
        remaining = model.still_there_remaining
        if remaining is None:
            self.still_there.hide()
            return False
        self.still_there.set_countdown(remaining, still_there_total)
        if self.still_there.isVisible():
            return False
        self.still_there.show()
        self.still_there.raise_()
        return True

    def room(self) -> QPixmap:
        """The room behind everything: a dark gradient (cached per size and palette)."""
        root = self.root
        key = (root.width(), root.height(), theme.high_contrast)
        if self._room is None or self._room[0] != key:
            pixmap = QPixmap(root.size())
            painter = QPainter(pixmap)
            gradient = QLinearGradient(0, 0, 0, root.height())
            gradient.setColorAt(0.0, QColor(theme.BACKGROUND_TOP))
            gradient.setColorAt(0.55, QColor(theme.BACKGROUND))
            gradient.setColorAt(1.0, QColor(theme.BACKGROUND_BOTTOM))
            painter.fillRect(pixmap.rect(), gradient)
            painter.end()
            self._room = (key, pixmap)
        return self._room[1]
