"""The guide's fixed wordings: declines, honest unknowns and offers (spoken into the TTS cache at start)."""

from __future__ import annotations

from kiosk.emotion import Emotion
from kiosk.engine.language import names, words
from kiosk.exhibit import Exhibit, Section, as_phrase, topic_name
from kiosk.headings import is_question

NOT_UNDERSTOOD_REPLY = "Sorry, I didn't catch that. Could you say it again?"
SHORT_OFFER = "Would you like to hear more?"
NOTES_DONT_SAY = "I'm sorry, my notes don't say."


def lower_first(text: str, proper: frozenset[str] = frozenset()) -> str:
    """'The crew' -> 'the crew', but 'Apollo 11', 'NASA', 'Space Shuttle missions' and a name in ``proper``
    stay as they are."""
    if text.split(" ", 1)[0].lower() in proper:
        return text
    return as_phrase(text)


def proper_words(exhibit: Exhibit) -> frozenset[str]:
    """Words the notes and title capitalise in mid-sentence: names, which keep their capital."""
    found = set(names(words(exhibit.title)))
    for section in exhibit.sections:
        for sentence in section.sentences:
            found |= names(words(sentence))
    lowered = {w.lower() for s in exhibit.sections for w in words(s.text) if w[:1].islower()}
    return frozenset(found - lowered)


def out_of_scope_reply(exhibit: Exhibit) -> str:
    return f"I'm sorry, I can only talk about {exhibit.title}: for example {exhibit.topics_phrase()}."


def unanswered_reply(section: Section, proper: frozenset[str] = frozenset()) -> str:
    """On topic, but the notes do not say: say so, and offer the nearest thing the guide can talk about."""
    return f"{NOTES_DONT_SAY} {unanswered_offer(section, proper)}"


def unanswered_offer(section: Section, proper: frozenset[str] = frozenset()) -> str:
    """The offer that closes an honest unknown.  It is the plan's ``offer``, not one of its sentences:
    a spoken offer is one the visitor can also accept with the "Yes, tell me more" button."""
    name = topic_name(section.heading)
    if name is None:  # "What do you think?" is no topic to name
        return "Would you like to hear something close to it?"
    if is_question(section.heading):  # "I can tell you how it works"
        return f"I can tell you {name}, if you like."
    return f"I can tell you about {lower_first(name, proper)}, if you like."


def offer_reply(section: Section, proper: frozenset[str] = frozenset()) -> str:
    name = topic_name(section.heading)
    if name is not None and len(name.split()) <= 6:
        if is_question(section.heading):  # "Would you like to hear how it works?"
            return f"Would you like to hear {name}?"
        return f"Would you like to hear more about {lower_first(name, proper)}?"
    return SHORT_OFFER


def declined_offer_reply(exhibit: Exhibit) -> str:
    return f"All right. What else would you like to know about {exhibit.title}?"


def nothing_more_reply(section: Section, proper: frozenset[str] = frozenset()) -> str:
    name = topic_name(section.heading)
    if name is None:
        return "That's all my notes say about that. Ask me anything else!"
    return f"That's all my notes say about {lower_first(name, proper)}. Ask me anything else!"


def open_offer_reply(exhibit: Exhibit) -> str:
    return f"What would you like to know about {exhibit.title}?"


def fixed_replies(exhibit: Exhibit) -> list[tuple[str, Emotion]]:
    """Every fixed reply this exhibit can give, in the tone it is spoken in, for the speech cache.

    Offers and "that's all" close a section's answer, so they take that section's tone.
    """
    proper = proper_words(exhibit)
    texts = [
        (out_of_scope_reply(exhibit), Emotion.NEUTRAL),
        (declined_offer_reply(exhibit), Emotion.NEUTRAL),
        (open_offer_reply(exhibit), Emotion.HAPPY),
        (NOT_UNDERSTOOD_REPLY, Emotion.NEUTRAL),
        (NOTES_DONT_SAY, Emotion.NEUTRAL),
    ]
    for section in exhibit.sections:
        texts.append((unanswered_offer(section, proper), Emotion.NEUTRAL))
        texts.append((offer_reply(section, proper), section.tone))
        texts.append((SHORT_OFFER, section.tone))
        texts.append((nothing_more_reply(section, proper), section.tone))
    return list(dict.fromkeys(texts))
