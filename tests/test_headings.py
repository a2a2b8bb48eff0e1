"""A curator's question heading, said inside the guide's own sentence (issue 21: "I can tell you about how
does it work" is not how a guide speaks)."""

from __future__ import annotations

import pytest

from kiosk.engine.replies import nothing_more_reply, offer_reply, unanswered_offer
from kiosk.exhibit import Section
from kiosk.headings import indirect_question


@pytest.mark.parametrize(
    ("heading", "said"),
    [
        ("How does it work?", "how it works"),
        ("Where and when was it caught?", "where and when it was caught"),
        ("Why are there no insides?", "why there are no insides"),
        ("What is this fish?", "what this fish is"),
        ("How many bones does it have?", "how many bones it has"),
        ("When was the lighthouse built?", "when the lighthouse was built"),
        ("Why did it matter?", "why it mattered"),
        ("What did the crew eat?", "what the crew ate"),
        ("How did SUE get to Chicago?", "how SUE got to Chicago"),
        ("Who recognised that it was special?", "who recognised that it was special"),
        ("Who found SUE?", "who found SUE"),
        ("What is in the case?", "what is in the case"),
        ("Is it complete?", "whether it is complete"),
        ("Were more ever found?", "whether more were ever found"),
        ("What do you think?", None),
        ("Early life", None),
    ],
)
def test_a_question_heading_is_turned_round(heading: str, said: str | None) -> None:
    assert indirect_question(heading) == said


def test_offers_name_a_question_heading_as_a_guide_says_it() -> None:
    section = Section(id="work", heading="How does it work?", text="Rotors turn with every key press.")
    assert offer_reply(section) == "Would you like to hear how it works?"
    assert unanswered_offer(section) == "I can tell you how it works, if you like."
    assert nothing_more_reply(section) == "That's all my notes say about how it works. Ask me anything else!"
    plain = Section(id="life", heading="Early life", text="She was born in Elmira.")
    assert offer_reply(plain) == "Would you like to hear more about early life?"
