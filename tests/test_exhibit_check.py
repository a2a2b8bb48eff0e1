"""The exhibit check's questions and verdicts, without a model (the whole check runs in tests/test_cli.py)."""

from __future__ import annotations

import pytest

from kiosk.engine.language import words
from kiosk.exhibit_check import Probe, _when_question


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        (
            "Rembrandt van Rijn finished the painting we now call The Night Watch in 1642.",
            "When did Rembrandt van Rijn finish the painting?",
        ),
        ("The lighthouse was finished in 1810.", "When was the lighthouse finished?"),
        ("The Stephensons built Rocket in 1829 at Newcastle.", "When did the Stephensons build Rocket?"),
        ("Its keepers changed the lamp in 1902.", "When did its keepers change the lamp?"),
        ("In 1715 the painting was cut down.", None),  # no subject before its verb: the plainer question
    ],
)
def test_a_dated_sentence_becomes_a_when_question(sentence: str, question: str | None) -> None:
    assert _when_question(words(sentence)) == question


def test_a_reply_without_what_the_notes_state_is_wrong() -> None:
    def probe(status: str, reply: str, expect: str | None = r"\b1780\b") -> Probe:
        return Probe("When was it made?", None, expect, status, "making", reply)

    assert probe("ok", "It was made in 1780.").verdict == "right"
    assert probe("ok", "The Royal Society bought it in 1820.").verdict == "wrong"
    assert probe("unanswered", "I'm sorry, my notes don't say.").verdict == "missed"
    assert probe("out_of_scope", "I can only talk about the orrery.").verdict == "declined"
    assert probe("ok", "It was made in 1780.", expect=None).verdict == "answered"
    assert probe("unanswered", "I'm sorry, my notes don't say.", expect="").verdict == "right"
    assert probe("ok", "It cost a fortune.", expect="").verdict == "wrong"
