"""What the visitor screen says in each state: the status line and hint, the pill, the calm notices."""

from __future__ import annotations

import re
from enum import StrEnum

LONG_WORD = re.compile(r"\S{21,}")
BREAK = "\u200b"  # a zero-width space: a place the line may break, drawn as nothing


class State(StrEnum):
    LOADING = "loading"
    ATTRACT = "attract"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    NOT_UNDERSTOOD = "not_understood"
    STILL_THERE = "still_there"


PILL_TEXT = {
    State.LOADING: "Getting ready",
    State.ATTRACT: "Ready",
    State.IDLE: "Ready",
    State.LISTENING: "Listening",
    State.THINKING: "Thinking",
    State.SPEAKING: "Speaking",
    State.NOT_UNDERSTOOD: "Say again?",
    State.STILL_THERE: "Still there?",
}
FAILURE_TEXT = {
    "vad": "I can't hear questions right now. Please tap or type a question.",
    "asr": "I can't hear questions right now. Please tap or type a question.",
    "tts": "My voice isn't working right now, so I'll answer in writing.",
    "retrieval": "I can't look up answers right now. Please ask a member of staff.",
    "answer": "I can't look up answers right now. Please ask a member of staff.",
    "face": "",  # the still portrait stands in; the ops panel says why
}

# The visitor's words when a device fails; the device's own message is the technician's (the ops panel).
NO_MICROPHONE = "Please tap or type your question."
NO_SOUND = "Sound is not working, so here is my answer in writing."


def failure_text(stage: str) -> str:
    return FAILURE_TEXT.get(stage, f"Part of the guide ({stage}) is not working right now.")


def status_text(s: State, hearing: bool, hands_free: bool) -> tuple[str, str, str]:
    """(status line, hint, tone) for a state: tone is one of plain, soft, listening, thinking, problem.

    The attract line does not name the exhibit: its title stands right above, and a long one said there
    again (and in the greeting) filled the screen with it."""
    if s == State.LOADING:
        return (
            "Getting ready…",
            "The guide is waking up: the questions below work in a moment.",
            "soft",
        )
    if s == State.ATTRACT:
        if hearing and hands_free:
            return "Touch a question or just ask me", "", "plain"
        if hearing:
            return "Hold the button and ask, or touch a question", "", "plain"
        return "Touch a question, or type your own", "", "plain"
    if s == State.IDLE:
        line = "Ask another question, or tap one below." if hearing else "Tap or type another question."
        return line, "", "soft"
    if s == State.LISTENING:
        hint = "Go ahead, I'm listening." if hands_free else "Release the button when you have finished."
        return "Listening…", hint, "listening"
    if s == State.THINKING:
        return "Thinking…", "", "thinking"
    if s == State.NOT_UNDERSTOOD:
        return (
            "Sorry, I did not catch that.",
            "Please try again, a little closer to the microphone, or tap a question below.",
            "problem",
        )
    if s == State.STILL_THERE:
        return "Still there?", "", "plain"
    return "", "", "soft"


def breakable(text: str, every: int = 10) -> str:
    """``text`` with a break opportunity every ``every`` letters inside words longer than 20 ("Llanfair…"
    or a long URL would otherwise run off the screen's edge or be cut mid-letter)."""
    return LONG_WORD.sub(lambda m: BREAK.join(m[0][i : i + every] for i in range(0, len(m[0]), every)), text)
