"""A heading written as a question, said inside the guide's own sentence.

FAQ notes head their sections with questions ("## How does it work?").  Said as a topic name they came out
as "Would you like to hear more about how does it work?"; a guide says "Would you like to hear how it
works?".  ``indirect_question`` turns the question round (subject before verb, "does X work" to "X works")
or gives None when it cannot do so safely, and the caller then words the offer without the heading.
"""

from __future__ import annotations

from kiosk.engine.language import IRREGULAR

_WH = frozenset("who whom whose what when where why how which".split())
_BE_HAVE = frozenset("is are was were has have had can could will would should may might must".split())
_DO = frozenset(("do", "does", "did"))
# a subject that is one word: "it", "they", "there" ("why are there no insides?")
_PRONOUNS = frozenset("it they he she we you i there this these those that".split())
# where the rest of the sentence starts after a longer subject: "was [the lighthouse] built"
_PREDICATE_START = frozenset(
    "ever still really always once first also never only now then made used found kept called named "
    "in on at from to for with by into over under about after before during inside".split()
)
_DETERMINERS = frozenset("this that these those".split())
# a verb after "does the keeper ...": where a subject of two words ends
_BASE_VERBS = frozenset("live work do make see mean come go look show hold stand weigh cost last".split())
# "did she eat" -> "she ate": the past of the verbs museum questions use; others take -ed
_PAST = dict(
    pair.split(":")
    for pair in (
        "eat:ate see:saw do:did go:went come:came make:made take:took give:gave find:found get:got say:said "
        "know:knew think:thought build:built begin:began break:broke choose:chose drive:drove fly:flew "
        "grow:grew hide:hid keep:kept leave:left lose:lost meet:met pay:paid put:put run:ran sell:sold "
        "send:sent sing:sang sink:sank sit:sat speak:spoke spend:spent stand:stood steal:stole swim:swam "
        "teach:taught tell:told throw:threw wear:wore win:won write:wrote fall:fell feel:felt bring:brought "
        "buy:bought catch:caught fight:fought hold:held hear:heard become:became have:had be:was mean:meant "
        "draw:drew shine:shone light:lit"
    ).split()
)


def is_question(heading: str) -> bool:
    return heading.rstrip().endswith("?")


def indirect_question(heading: str) -> str | None:
    """ "How does it work?" -> "how it works"; "Where and when was it caught?" -> "where and when it was
    caught"; "Who found SUE?" -> "who found SUE"; "Is it complete?" -> "whether it is complete"; None when
    the heading is no question or cannot be turned round ("What do you think?")."""
    tokens = heading.strip().rstrip("?!. ").split()
    if not tokens or not is_question(heading):
        return None
    lower = [t.lower() for t in tokens]
    if lower[0] in _WH:
        verb_at = next((i for i, t in enumerate(lower[:4]) if t in _BE_HAVE or t in _DO), None)
        if verb_at is not None and any(t.endswith("ed") or t in IRREGULAR for t in lower[1:verb_at]):
            verb_at = None  # "Who recognised that it was special?": the question word is the subject
        if verb_at is None or verb_at == len(tokens) - 1 and verb_at == 1:
            return _first_lower(tokens)  # "Who found SUE?", "What happened afterwards?", "Who is?"
        if verb_at == 1 and lower[0] in ("who", "what", "which") and not _has_subject(lower[2:]):
            return _first_lower(tokens)  # "What is in the case?": the question word is the subject
        asked = tokens[:verb_at]
        turned = _turned(tokens[verb_at], tokens[verb_at + 1 :])
        return None if turned is None else _first_lower(asked + turned)
    if lower[0] in _BE_HAVE or lower[0] in _DO:
        turned = _turned(tokens[0], tokens[1:])
        return None if turned is None else " ".join(["whether", *turned])
    return None


def _turned(verb: str, rest: list[str]) -> list[str] | None:
    """ "was" + "it caught" -> "it was caught"; "does" + "it work" -> "it works"; None where unsure."""
    if not rest or rest[0].lower() in ("you", "i", "we"):
        return None  # "What do you think?": the guide would not say "what you think"
    subject, predicate = _split_subject(rest)
    lowered = verb.lower()
    if lowered not in _DO:
        return [*subject, lowered, *predicate]
    if not predicate and len(subject) >= 2:  # "did the crew eat": the last word is the verb
        subject, predicate = subject[:-1], subject[-1:]
    if not predicate:
        return None
    main, after = predicate[0].lower(), predicate[1:]
    if lowered == "did":
        past = _PAST.get(main) or _regular_past(main)
        return [*subject, past, *after]
    if lowered == "does":
        third = {"have": "has", "be": "is"}.get(main) or (
            main + "es" if main.endswith(("s", "sh", "ch", "x", "o")) else main + "s"
        )
        return [*subject, third, *after]
    return [*subject, main, *after]


def _split_subject(rest: list[str]) -> tuple[list[str], list[str]]:
    """The subject of a turned-round question and what follows it: ("it", "caught"), ("the keepers", "")."""
    first = rest[0].lower()
    if first in _PRONOUNS and not (first in _DETERMINERS and len(rest) > 1):
        return rest[:1], rest[1:]
    if rest[0][:1].isupper():  # a name: "Galileo", "Grace Darling"
        end = next((i for i, t in enumerate(rest) if not t[:1].isupper()), len(rest))
        return rest[:end], rest[end:]
    if first in _DETERMINERS or first in ("the", "a", "an", "its", "his", "her", "their"):
        for i in range(2, len(rest)):
            word = rest[i].lower()
            if word in _PREDICATE_START or word.endswith("ed") or word in IRREGULAR or word in _BASE_VERBS:
                return rest[:i], rest[i:]
        return (rest[:2], rest[2:]) if len(rest) >= 3 else (rest, [])
    for i in range(1, len(rest)):
        word = rest[i].lower()
        if word in _PREDICATE_START or word.endswith("ed") or word in IRREGULAR:
            return rest[:i], rest[i:]
    return rest, []


def _regular_past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ied"
    vowels = "aeiou"
    if len(verb) <= 4 and verb[-1] not in vowels + "wxy" and verb[-2] in vowels and verb[-3] not in vowels:
        return verb + verb[-1] + "ed"  # "stop" -> "stopped"
    return verb + "ed"


def _has_subject(rest: list[str]) -> bool:
    return bool(rest) and rest[0].lower() not in _PREDICATE_START


def _first_lower(tokens: list[str]) -> str:
    first = tokens[0]
    return " ".join([first[:1].lower() + first[1:], *tokens[1:]])
