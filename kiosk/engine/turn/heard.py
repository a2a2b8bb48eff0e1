"""A second opinion on an "incomplete" verdict: what the speculative recognition heard.

Smart Turn hears prosody only, and calls some whole questions incomplete (3 of 40 unpaused questions in
``bench/endpointing.py``; more with flat synthetic voices): the visitor then waits ``max_wait_ms`` for an
answer.  Whisper's transcript of the same pause carries syntax: a question mark after a word that can end
a question.  It is used one way only: it may shorten the wait after "incomplete" (``question_wait_ms``),
never end a turn the model would have waited for at once.

The rule is conservative on purpose.  A transcript that ends on a function word ("What is the?"), a
preposition ("What is it made of?", a whole question, but "Why did they have to stay in?" is not),
trails off ("How fast was the...") or has fewer than three words keeps the model's wait.
"""

from __future__ import annotations

import re

MIN_WORDS = 3
_WORD = re.compile(r"[A-Za-z0-9']+")
# a question does not end on these, or only rarely: the wait stays
OPEN_ENDINGS = frozenset(
    """a an the of to in on at for with from by about into onto over under after before than as like and or
    but so if because is are was were be been being am do does did have has had can could will would shall
    should may might must what who whom whose which where when why how my your our their his its very more
    most some any no not""".split()
)


def reads_as_whole_question(text: str) -> bool:
    """Whether a transcript reads as a whole question: "Who was the commander of Apollo 11?"."""
    text = text.strip()
    if not text.endswith("?") or "..." in text or "\u2026" in text:
        return False
    words = _WORD.findall(text)
    return len(words) >= MIN_WORDS and words[-1].lower() not in OPEN_ENDINGS
