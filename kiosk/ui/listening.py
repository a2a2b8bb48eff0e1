"""The visitor's microphone: listening hands-free or while the talk button is held, through the engine's
commands; the screen model hears what changed.  On close the shared engine is left as it was found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kiosk.engine.audio_in import AudioSource
from kiosk.engine.commands import EngineCommands
from kiosk.errors import KioskError
from kiosk.ui.screen_model import ScreenModel
from kiosk.ui.widgets import TalkButton

log = logging.getLogger(__name__)

CANNOT_HEAR = "I can't hear questions right now. Please tap or type a question."


class Listening:
    def __init__(self, engine: EngineCommands, model: ScreenModel, talk: TalkButton) -> None:
        self.engine = engine
        self.model = model
        self.talk = talk
        self.on = False
        self._hands_free_before = engine.hands_free()

    def open_source(self, factory: Callable[[], AudioSource | None]) -> AudioSource | None:
        """The microphone from ``factory``; None (with a calm notice) when it cannot be opened."""
        try:
            return factory()
        except Exception as exc:
            log.exception("could not make the audio source (%s)", exc)
            self.model.microphone_lost()
            return None

    def start(self, source: AudioSource) -> bool:
        """Listen to ``source``; False, with a notice on the model, when it cannot."""
        health = self.engine.health()
        if not (health.get("asr") and health.get("vad")):
            self.model.set_notice("model:asr", CANNOT_HEAR)
            return False
        self.engine.set_hands_free(self.model.hands_free)
        try:
            self.engine.start_listening(source)
        except (KioskError, RuntimeError) as exc:
            log.error("screen: cannot listen: %s", exc)
            self.model.microphone_lost()
            return False
        self.on = True
        self.model.set_microphone(True)
        return True

    def stop(self) -> None:
        if self.on:
            self.engine.stop_listening()
        self.on = False

    def push_to_talk(self, held: bool) -> None:
        """The big button held (True) or released (False); nothing in hands-free or without a mic."""
        if self.model.hands_free or not self.model.microphone:
            self.model.touched()
            return
        if held:
            if self.model.talk_pressed():
                self.engine.stop()
            self.engine.set_push_to_talk(True)
        else:
            self.engine.set_push_to_talk(False)
            self.model.talk_released()
        self.talk.active = held
        self.talk.update()

    def set_hands_free(self, on: bool) -> None:
        self.model.set_hands_free(on)
        self.engine.set_hands_free(on)

    def close(self) -> None:
        if self.talk.active and not self.model.hands_free:
            self.engine.set_push_to_talk(False)
        self.stop()
        if self.engine.hands_free() != self._hands_free_before:
            self.engine.set_hands_free(self._hands_free_before)
