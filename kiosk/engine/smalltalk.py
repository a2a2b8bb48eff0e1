"""Greetings, thanks and goodbyes: the persona answers these without looking anything up."""

from __future__ import annotations

import re

from kiosk.emotion import Emotion
from kiosk.exhibit import Exhibit

_GREETING = re.compile(
    r"^\s*(hi|hello|hey|good (morning|afternoon|evening)|greetings)\b[\s,!.]*(there|nova)?\W*$", re.I
)
_THANKS = re.compile(r"\b(thank(s| you)|cheers|that'?s (great|interesting|cool))\b", re.I)
_BYE = re.compile(r"^\s*(bye|goodbye|see you|see ya)\b", re.I)
_WHO = re.compile(r"\b(who|what) are you\b", re.I)


GOODBYE = "Goodbye, and enjoy the rest of the museum!"
THANKS = "You're welcome! Ask me anything else about the exhibit."


def canned_replies(exhibit: Exhibit) -> list[tuple[str, Emotion]]:
    """Everything small talk can say, for warming the speech cache."""
    return [(exhibit.greeting, Emotion.HAPPY), (GOODBYE, Emotion.HAPPY), (THANKS, Emotion.HAPPY)]


def small_talk(question: str, exhibit: Exhibit) -> tuple[list[str], Emotion] | None:
    """A canned reply and its emotion, or None when the question is not small talk."""
    if _GREETING.match(question):
        return [exhibit.greeting], Emotion.HAPPY
    if _BYE.match(question):
        return [GOODBYE], Emotion.HAPPY
    if _WHO.search(question):
        return [exhibit.greeting], Emotion.HAPPY
    if _THANKS.search(question) and len(question.split()) <= 6:
        return [THANKS], Emotion.HAPPY
    return None
