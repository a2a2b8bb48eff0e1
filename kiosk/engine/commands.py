"""What the screen may ask of the engine: one typed surface, implemented by :class:`kiosk.engine.engine.Engine`.

The UI holds an ``EngineCommands`` and nothing else of the engine: no probing for optional methods, no
reaching into the pipeline.  Commands return at once (``ask``, ``stop``, the listening switches) or are
run by the UI off its thread (``reset_session``, ``reload_exhibit``).  Events come back on ``bus``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from kiosk.config import Config
from kiosk.engine.events import EventBus
from kiosk.exhibit import Exhibit

if TYPE_CHECKING:
    from kiosk.engine.audio_in import AudioSource
    from kiosk.engine.pipeline import SpeechListener, Turn


@runtime_checkable
class EngineCommands(Protocol):
    config: Config
    bus: EventBus
    exhibit: Exhibit
    ready: threading.Event
    face: Any  # the talking-face animator once loaded, else None (the still portrait)
    failures: dict[str, str]  # stage -> one-line reason it did not load
    models: Mapping[str, Any]  # stage -> what loaded (name, device, memory, load time)
    off: dict[str, str]  # stage -> why it was not loaded on purpose (no microphone: no recogniser)

    def ask(self, question: str) -> Turn: ...

    def stop(self) -> None: ...

    def reset_session(self) -> None: ...

    def set_push_to_talk(self, held: bool) -> None: ...

    def set_hands_free(self, enabled: bool) -> None: ...

    def hands_free(self) -> bool: ...

    def start_listening(self, source: AudioSource) -> threading.Thread: ...

    def stop_listening(self) -> None: ...

    def reload_exhibit(self, path: str | Path | None = None) -> None: ...

    def add_speech_listener(self, listener: SpeechListener) -> Callable[[], None]: ...

    def health(self) -> dict[str, bool]: ...
