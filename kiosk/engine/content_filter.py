"""A blocklist on both sides of the conversation: what a visitor says and what the guide would say."""

from __future__ import annotations

import re
from collections.abc import Iterable

CALM_REPLY = "Let's keep our conversation friendly. Is there something about the exhibit I can tell you?"

# A small default; museums add their own words in [answer] blocklist.
DEFAULT_BLOCKLIST = (
    "fuck",
    "shit",
    "bitch",
    "cunt",
    "asshole",
    "bastard",
    "slut",
    "whore",
    "nigger",
    "faggot",
)


class ContentFilter:
    def __init__(self, words: Iterable[str] = (), include_defaults: bool = True) -> None:
        terms = [w.strip().lower() for w in (*(DEFAULT_BLOCKLIST if include_defaults else ()), *words)]
        terms = sorted({t for t in terms if t}, key=len, reverse=True)
        # whole words, with common suffixes: "fucking" is caught by "fuck"
        self._pattern = (
            re.compile(
                r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")(?:s|es|ed|er|ers|ing|y)?\b", re.I
            )
            if terms
            else None
        )

    def blocks(self, text: str) -> bool:
        return bool(self._pattern and self._pattern.search(text))

    @staticmethod
    def declines(text: str) -> bool:
        """Instructions aimed at the guide itself, or personal data: declined politely, never answered."""
        return bool(_DECLINE.search(text))


# Requests the guide declines politely whatever the exhibit: instructions aimed at the guide itself
# (prompt injection) and personal data, the visitor's or anyone's.
_DECLINE = re.compile(
    r"\b(?:ignore|forget|disregard|override)\b.{0,40}\b(?:instructions?|rules|prompt|guidelines|told)\b"
    r"|\b(?:system prompt|developer mode|jailbreak|you are now|pretend (?:to be|you are)|act as|role-?play"
    r"|repeat after me|say (?:the word|exactly)|your (?:instructions|prompt|rules))\b"
    r"|\b(?:phone number|home address|e-?mail address|credit card|bank account|password|social security"
    r"|passport number|date of birth|where do you live|my (?:address|number|card))\b"
    r"|[\w.+-]+@[\w-]+\.[\w.]+|\b(?:\d[ -]?){9,}\b",
    re.I,
)
