"""What a visitor (and the technician's panel) can ask of the kiosk window: listen, talk, ask, stop,
type, larger text, high contrast, a new conversation.

A mixin of :class:`~kiosk.ui.window.KioskWindow`: each command goes to the screen model, which says what
to do, and to the engine through its :class:`~kiosk.engine.commands.EngineCommands` surface; the window
then renders.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QTimer

from kiosk.engine.audio_in import AudioSource
from kiosk.errors import KioskError
from kiosk.ui import theme
from kiosk.ui.keyboard import KeyboardPanel
from kiosk.ui.screen_model import YES

log = logging.getLogger("kiosk.ui.window")  # the screen's lines keep their logger's name


class VisitorCommands:
    """Commands from taps, keys and the technician's panel (mixed into the window, whose state it shares)."""

    # --- listening (kiosk.ui.listening) ------------------------------------------------------------------

    def start_listening(self, source: AudioSource) -> bool:
        """Listen to ``source``; False, with a notice on screen, when it cannot."""
        started = self.listening.start(source)
        if started and self.admin.built:
            self.admin.panel.set_listening(True, self.model.hands_free)
        self.render()
        return started

    def stop_listening(self) -> None:
        self.listening.stop()

    def set_push_to_talk(self, held: bool) -> None:
        """The big button held (True) or released (False)."""
        self.listening.push_to_talk(held)
        self.render()

    # --- visitor commands ---------------------------------------------------------------------------------

    def ask(self, question: str) -> int | None:
        """A tapped, typed or accepted question: asked once, through the engine's turn; the turn id."""
        wanted = self.model.tap(question)
        if wanted is None:
            self.render()
            return None
        try:
            turn = self.engine.ask(wanted)
        except KioskError as exc:
            log.warning("screen: the question was not asked: %s", exc)
            self.model.ask_failed()
            self.render()
            return None
        self.model.asked(turn.id, wanted)
        self.render()
        return turn.id

    def accept_offer(self) -> int | None:
        return self.ask(YES) if self.model.offer_visible else None

    @property
    def keyboard(self) -> KeyboardPanel:
        """The on-screen keyboard (built on first use)."""
        if self.layout_.keyboard is None:
            keyboard = self.layout_.build_keyboard()
            keyboard.submitted.connect(self.ask)
            keyboard.cancelled.connect(self._keyboard_closed)
        return self.layout_.keyboard

    def open_keyboard(self) -> None:
        self.model.touched()
        self.keyboard.open()
        self.layout_.place_overlays()
        self.layout_.make_room_for_keyboard()
        self.keyboard.setFocus()

    def _keyboard_closed(self) -> None:
        self.model.touched()
        self.render(force=True)  # what the keyboard's room took comes back as the model says

    def stop(self) -> None:
        """The visitor tapped Stop: silence now."""
        self.engine.stop()
        self.face.turn_id = None
        self.model.stop()
        self.render()

    def set_hands_free(self, on: bool) -> None:
        self.listening.set_hands_free(bool(on))
        if self.admin.built:
            panel = self.admin.panel
            panel.set_listening(self.model.microphone, self.model.hands_free)
            panel.show_result("Hands-free listening " + ("on." if on else "off: hold the button to talk."))
        self.render()

    def set_large_text(self, on: bool) -> None:
        self._set_options(bool(on), self.high_contrast)

    def set_high_contrast(self, on: bool) -> None:
        self._set_options(self.large_text, bool(on))

    def _set_options(self, large: bool, high: bool) -> None:
        """Larger text and high contrast, the visitor's choices: every size and colour follows."""
        self.large_text, self.high_contrast = large, high
        self.model.touched()
        self.text_button.setChecked(large)  # (a toggled signal for an unchanged state is not sent)
        self.contrast_button.setChecked(high)
        theme.use_palette(high)
        m = self.layout_.apply_metrics(large)
        if self.admin.built:
            self.admin.panel.set_metrics(m)
        self.render(force=True)
        self.update()
        QTimer.singleShot(50, self, lambda: self.captions.warm())  # the new type sizes

    def restore_display_defaults(self) -> None:
        """Larger text and high contrast were one visitor's choices: they leave with that visitor's
        conversation, and the screen returns to what the kiosk is configured with."""
        ui = self.config.ui
        if (self.large_text, self.high_contrast) != (ui.large_text, ui.high_contrast):
            self._set_options(ui.large_text, ui.high_contrast)

    def note_activity(self) -> None:
        self.model.touched()
        self.render()

    def reset_conversation(self) -> None:
        """A new visitor: the engine forgets the conversation, the screen returns to the attract loop."""
        self.model.reset()
        self.workers.run(self.engine.reset_session)
        self.restore_display_defaults()
        self.render()
