"""A short first piece: the first clause of a sentence is spoken on its own, so the first audio is ready
sooner."""

from __future__ import annotations

import re

from kiosk.engine.tts.base import normalise_text

#: a sentence this short is spoken whole
SHORT_SENTENCE_WORDS = 8
#: a first clause has at least this many words ...
MIN_CLAUSE_WORDS = 3
#: ... and at most this many (a later comma gains nothing over speaking the sentence whole)
MAX_CLAUSE_WORDS = 12
#: and leaves at least this many words for the rest
MIN_REST_WORDS = 2
_CLAUSE_BREAK = re.compile(r"[,;:](?=\s)")  # not "1,000" or "10:30"


def first_clause(text: str) -> tuple[str, str]:
    """Split a sentence into a short first clause and the rest, so the first audio is ready sooner.

    Splits at the first comma, semicolon or colon that ends a clause of ``MIN_CLAUSE_WORDS`` to
    ``MAX_CLAUSE_WORDS`` words; a short sentence, or one with no such break, is returned whole as
    ``(sentence, "")``.  Whitespace is collapsed; the punctuation stays with the first clause.
    """
    text = normalise_text(text)
    if len(text.split()) <= SHORT_SENTENCE_WORDS:
        return text, ""
    for match in _CLAUSE_BREAK.finditer(text):
        head, rest = text[: match.end()], text[match.end() :].strip()
        words = len(head.split())
        if words < MIN_CLAUSE_WORDS:
            continue
        if words > MAX_CLAUSE_WORDS or len(rest.split()) < MIN_REST_WORDS:
            break
        return head, rest
    return text, ""
