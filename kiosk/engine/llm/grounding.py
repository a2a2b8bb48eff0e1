"""Checking what a small model says: sentence cutting, grounding in the notes, and emotion tags.

A 135M model echoes its prompt and invents facts.  Every generated sentence is checked before it is
spoken: its content words must mostly be in the notes, and its numbers and names must all be there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiosk.emotion import Emotion
from kiosk.engine.language import (
    NUMBER_WORDS,
    QUANTITY_WORDS,
    STOPWORDS,
    content_stems,
    is_number,
    stem,
    words,
)

_NUMBER_WORDS = frozenset(NUMBER_WORDS) | QUANTITY_WORDS
_UNKNOWN = re.compile(
    r"\b(?:i (?:do not|don't|am not sure|'m not sure|cannot|can't)|i'm not sure|not (?:mentioned|known|sure)"
    r"|(?:notes|exhibit) (?:do not|don't|does not|doesn't|did not|didn't)|no (?:information|record|mention))\b",
    re.I,
)
_STOPWORDS = STOPWORDS
_is_number = is_number
_stem = stem
_content_stems = content_stems


def _number(token: str) -> str:
    return token.replace(",", "")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # "ok", "echo", "question", "unsupported_number", "unsupported_name", "low_overlap",
    # "off_question" (the writer: a first sentence that does not state what was asked)
    overlap: float = 0.0


class Grounding:
    """Checks a generated sentence against the notes the model was given.

    ``notes`` is what the model saw; ``allowed`` is further curated text (title, persona) whose numbers
    and names may be spoken; ``scaffold`` is the instruction and persona, whose echo is dropped;
    ``question`` is the visitor's question, whose echo is dropped too.
    """

    def __init__(
        self, notes: str, question: str = "", scaffold: str = "", allowed: str = "", min_overlap: float = 0.5
    ) -> None:
        note_tokens = words(notes)
        allowed_tokens = note_tokens + words(allowed)
        self.min_overlap = min_overlap
        self._note_stems = _content_stems(note_tokens) | {_stem(t) for t in note_tokens if not _is_number(t)}
        self._allowed_words = {t.lower() for t in allowed_tokens if not _is_number(t)}
        self._allowed_stems = {_stem(t) for t in allowed_tokens if not _is_number(t)}
        self._allowed_numbers = {_number(t) for t in allowed_tokens if _is_number(t)}
        self._question_stems = _content_stems(words(question))
        self._scaffold_stems = _content_stems(words(scaffold))

    def check(self, sentence: str) -> Verdict:
        tokens = words(sentence)
        content = _content_stems(tokens)
        numbers = [t for t in tokens if _is_number(t)]
        if not content and not numbers:
            return Verdict(False, "echo")  # "Sure!", "Yes."
        if (
            content
            and content <= self._question_stems
            and all(_number(n) in self._allowed_numbers for n in numbers)
        ):
            return Verdict(False, "echo")
        overlap = len(content & self._note_stems) / len(content) if content else 1.0
        if content and content <= self._scaffold_stems | self._question_stems and overlap < self.min_overlap:
            return Verdict(False, "echo", overlap)
        if sentence.rstrip().endswith("?"):
            return Verdict(False, "question", overlap)
        unsupported = self._unsupported(tokens)
        if unsupported:
            return Verdict(False, unsupported, overlap)
        if overlap >= self.min_overlap or _UNKNOWN.search(sentence.replace("’", "'")):
            return Verdict(True, "ok", overlap)
        return Verdict(False, "low_overlap", overlap)

    def unsupported(self, beginning: str) -> str:
        """'unsupported_number' or 'unsupported_name' when the words of an unfinished sentence already fail
        ``check`` (whatever follows), else ''.  ``beginning`` holds only whole words, from the sentence's first.
        """
        return self._unsupported(words(beginning))

    def _unsupported(self, tokens: list[str]) -> str:
        for token in tokens:
            if _is_number(token) and _number(token) not in self._allowed_numbers:
                return "unsupported_number"
        for index, token in enumerate(tokens):
            lower = token.lower()
            if _is_number(token) or lower in _STOPWORDS:
                continue
            strict = lower in _NUMBER_WORDS or (index > 0 and token[0].isupper() and token != "I")
            if strict and lower not in self._allowed_words and _stem(token) not in self._allowed_stems:
                return "unsupported_name"
        return ""


_EMOTION_WORDS = "|".join(
    sorted(
        {
            *(e.value for e in Emotion),
            "joy",
            "joyful",
            "cheerful",
            "excited",
            "glad",
            "sorrow",
            "melancholy",
            "unhappy",
            "anger",
            "mad",
            "surprise",
            "amazed",
            "astonished",
            "calm",
            "none",
        },
        key=len,
        reverse=True,
    )
)
_BRACKET_TAG = re.compile(r"\s*\[\s*(?:emotion\s*[:=]\s*)?([A-Za-z]+)\s*\]")
_PAREN_TAG = re.compile(r"\s*\(\s*(?:emotion\s*[:=]\s*)?(" + _EMOTION_WORDS + r")\s*\)", re.I)
_LABEL_TAG = re.compile(r"\s*\b(?:emotion|mood|tone)\s*[:=]\s*\**\s*(" + _EMOTION_WORDS + r")\b\**\.?", re.I)
_TAG_WORDS = re.compile(r"^(?:" + _EMOTION_WORDS + r")$", re.I)


def strip_emotion_tags(text: str) -> tuple[str, Emotion | None]:
    """The text without emotion tags ([happy], (happy), "Emotion: happy"), and the last valid tag's emotion.

    Other one-word bracketed asides ("[smiles]") are removed too but give no emotion.
    """
    found: list[str] = []

    def take(match: re.Match[str]) -> str:
        if _TAG_WORDS.match(match.group(1)):
            found.append(match.group(1))
        return ""

    for pattern in (_LABEL_TAG, _BRACKET_TAG, _PAREN_TAG):
        text = pattern.sub(take, text)
    text = " ".join(text.split())
    return text, (Emotion.normalise(found[-1]) if found else None)


# a sentence ends at . ! ? followed by space and the next sentence's start, or at a line break
SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(A-Z0-9*])|\s*\n+\s*")
SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s*$")
LIST_MARKER = re.compile(r"\(?\d{1,2}[.)]")


def tag_inside(text: str) -> bool:
    """An emotion tag with words on both sides: the model lost the thread ("brought back [happy] rocks")."""
    for pattern in (_LABEL_TAG, _BRACKET_TAG, _PAREN_TAG):
        for match in pattern.finditer(text):
            if (
                _TAG_WORDS.match(match.group(1))
                and words(text[: match.start()])
                and words(text[match.end() :])
            ):
                return True
    return False


def normalised(sentence: str) -> str:
    return " ".join(words(sentence.lower()))
