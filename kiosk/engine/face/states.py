"""The face's state kept in step with the conversation, from the engine's events."""

from __future__ import annotations

from kiosk.engine import events as ev


class FaceStates:
    """Keeps the face's state in step with the conversation: listening, thinking, speaking, idle."""

    def __init__(self, animator) -> None:
        self.animator = animator

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.InputLevel):
            if event.speaking and self.animator.state == "idle":
                self.animator.set_state("listening")
            elif not event.speaking and self.animator.state == "listening":
                self.animator.set_state("idle")
        elif isinstance(event, ev.SpeechEnded | ev.TurnStarted):
            if self.animator.state in ("idle", "listening"):
                self.animator.set_state("thinking")
        elif isinstance(event, ev.AnswerChosen):
            self.animator.set_emotion(event.emotion)
        elif isinstance(event, ev.TurnFinished) and self.animator.state != "speaking":
            self.animator.set_state("idle")
