"""The claim check: a sentence may be spoken only when one passage of the notes says it.

A small model recombines facts: every word of "The lighthouse was built in 1988, when the light was
automated." occurs somewhere in the notes, but no sentence says it.  So a claim passes only when a
single source sentence (or two adjacent ones, the second continuing the first: "It...", "He...")
holds all of its numbers and names and nearly all of its content words.  No package carries an NLI or
cross-encoder model for this, and a rule over one passage runs in microseconds; ``bench/answers.py``
reports how many recombined claims it lets through and how many true sentences it rejects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiosk.engine.language import MONTHS, STOPWORDS, content_stems, is_number, names, numbers, stem, words
from kiosk.engine.passages import Passage

# the share of a claim's content words that its source passage must hold; a claim of three or more
# content words besides its names may also change one of them ("served as" for "was"), never a name or a number
MIN_SUPPORT = 0.8
# a second sentence continues the first when it opens with one of these
_CONTINUES = re.compile(
    r"^(?:it|its|he|she|they|his|her|their|this|that|these|those|there|the two|both)\b", re.I
)
# coordinated clauses: "Armstrong was the commander, and Collins flew Columbia."
_CLAUSES = re.compile(r",\s+(?:and|but|while)\s+|;\s+")
# the visitor's alternatives: "Is it male or female?"
_ALTERNATIVES = re.compile(r"\b([a-z]+)\s+or\s+([a-z]+)\b", re.I)
# saying that the notes are silent is always allowed
_HONEST = re.compile(
    r"\b(?:i (?:do not|don't) know|my notes (?:do not|don't) say|not in my notes|i'm not sure)\b", re.I
)


# words that turn a statement round: "Acid does not dissolve it" is not "Acid dissolves it"
_NEGATORS = frozenset("not no never cannot nor neither none nothing nobody nowhere without".split())
# "painted by John Constable": who did it; a claim may not give that deed to another name
_AGENT = re.compile(r"\b([a-z]+(?:ed|en|t|wn|ng|de))\s+by\s+((?:[A-Z][\w'’.-]*\s*){1,4})")
_DOER = re.compile(r"((?:[A-Z][\w'’.-]*\s+){1,4})([a-z]+ed)\b")


@dataclass(frozen=True)
class ClaimVerdict:
    ok: bool
    reason: str  # ok, honest, empty, unsupported_number, unsupported_name, unsupported_relation
    support: float = 0.0  # the best passage's share of the claim's content words
    source: str = ""  # the passage that supports it


class ClaimChecker:
    """Checks spoken sentences against the passages of one exhibit's notes.

    ``allowed`` is curated text whose words may be added freely (the exhibit's title, the guide's name):
    "Columbia" for "it" does not make a claim unsupported.
    """

    def __init__(self, passages: list[Passage], allowed: str = "", min_support: float = MIN_SUPPORT) -> None:
        self.min_support = min_support
        allowed_tokens = words(allowed)
        self._free = content_stems(allowed_tokens) | {t.lower() for t in allowed_tokens}
        # "Apollo 11" in the title is a name: "The commander of Apollo 11 was ..." claims no number 11
        self._title_numbers = {
            (before.lower(), token)
            for before, token in zip(allowed_tokens, allowed_tokens[1:], strict=False)
            if is_number(token) and before[0].isupper()
        }
        self._windows: list[tuple[str, frozenset[str], frozenset[str], frozenset[str]]] = []
        for i, passage in enumerate(passages):
            self._windows.append((passage.text, passage.stems, passage.numbers, passage.names))
            following = passages[i + 1] if i + 1 < len(passages) else None
            if (
                following is not None
                and following.section.id == passage.section.id
                and _CONTINUES.match(following.text)
            ):
                self._windows.append(
                    (
                        f"{passage.text} {following.text}",
                        passage.stems | following.stems,
                        passage.numbers | following.numbers,
                        passage.names | following.names,
                    )
                )

    def check(self, claim: str, context: str = "") -> ClaimVerdict:
        """``context``: the visitor's question, whose words may be echoed ("Yes, it was built by ...").

        Clauses joined by ", and" or ";" are claims of their own: each must pass (and one passage may
        support one clause, another passage the other).
        """
        clauses = [c for c in _CLAUSES.split(claim) if content_stems(words(c)) or numbers(words(c))]
        if len(clauses) > 1:
            verdicts = [self._check(c, context) for c in clauses]
            failed = [v for v in verdicts if not v.ok]
            return failed[0] if failed else ClaimVerdict(True, "ok", min(v.support for v in verdicts))
        return self._check(claim, context)

    def _check(self, claim: str, context: str) -> ClaimVerdict:
        tokens = self._read(claim)
        stems = content_stems(tokens)
        claim_numbers = numbers(tokens)
        claim_names = {n for n in names(tokens) if n not in self._free}
        if not stems and not claim_numbers:
            return ClaimVerdict(False, "empty")
        if _HONEST.search(claim.replace("’", "'")) and not claim_numbers and not claim_names:
            return ClaimVerdict(True, "honest", 1.0)
        acclaim = bool(_ACCLAIMS.search(claim))
        # the question's words may be echoed, but not into a claim to fame: "Was she the first woman in
        # space?" must not make "She was the first woman to fly in space." true
        echo = set() if acclaim else content_stems(words(context))
        # nor its alternatives: "Is it male or female?" answered "...they are female" picks one, and a
        # passage that names the other too ("no way to tell a male from a female") does not decide
        offered = alternatives(context)
        echo -= {word for pair in offered for word in pair}
        picked = {a for a, b in offered if a in stems and b not in stems}
        picked |= {b for a, b in offered if b in stems and a not in stems}
        undecided = {b for a, b in offered if a in picked} | {a for a, b in offered if b in picked}
        needed = stems - self._free - echo
        # the words that may change by one: not the names, which the passage holds anyway ("The command
        # module was piloted by Neil Armstrong" is one word from "Neil Armstrong was the commander")
        plain = needed - {stem(n) for n in names(tokens)}
        best = ClaimVerdict(False, "unsupported_relation")
        negated = negations(tokens)
        deeds = agents(claim)
        for text, window_stems, window_numbers, window_names in self._windows:
            if undecided & window_stems or not picked <= window_stems:  # the pick is said, and decided
                continue
            if not _same_polarity(negated, stems, text) or not _same_agents(deeds, text):
                continue
            if not claim_numbers <= window_numbers or not _bound(tokens, self._read(text)):
                if best.reason == "unsupported_relation" and best.support == 0.0:
                    best = ClaimVerdict(False, "unsupported_number")
                continue
            missing_names = {n for n in claim_names if n not in window_names and stem(n) not in window_stems}
            if missing_names:
                if best.reason in ("unsupported_relation", "unsupported_number") and best.support == 0.0:
                    best = ClaimVerdict(False, "unsupported_name")
                continue
            held = len(needed & window_stems)
            support = held / len(needed) if needed else 1.0
            # a claim to fame ("the first woman to ...", "the oldest") changes with one word: it must hold all
            if acclaim:
                if held == len(needed):
                    return ClaimVerdict(True, "ok", support, text)
            elif support >= self.min_support or (len(plain) >= 3 and len(plain - window_stems) <= 1):
                return ClaimVerdict(True, "ok", support, text)
            if support > best.support:
                best = ClaimVerdict(False, "unsupported_relation", support, text)
        return best

    def _read(self, text: str) -> list[str]:
        """A sentence's tokens as the check compares them: title numbers left out, dates day first."""
        return day_first(self._without_title_numbers(words(text)))

    def _without_title_numbers(self, tokens: list[str]) -> list[str]:
        """The claim's tokens less each number that is part of a name in the title ("Apollo 11")."""
        return [
            token
            for i, token in enumerate(tokens)
            if not (i and (tokens[i - 1].lower(), token) in self._title_numbers)
        ]


def alternatives(question: str) -> list[tuple[str, str]]:
    """The content-word stems a question offers as alternatives: "male or female" -> ("male", "female")."""
    pairs = []
    for first, second in _ALTERNATIVES.findall(question):
        a, b = content_stems([first]), content_stems([second])
        if len(a) == len(b) == 1:
            pairs.append((next(iter(a)), next(iter(b))))
    return pairs


def day_first(tokens: list[str]) -> list[str]:
    """Dates in one order: "July 16, 1969" and "July 16th" as "16 July", so either way of writing meets the other."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        day = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token.lower() in MONTHS and day.isdigit() and len(day) <= 2 and 1 <= int(day) <= 31:
            out += [day, token]
            i += 2
            if i < len(tokens) and tokens[i].lower() in ("st", "nd", "rd", "th"):  # "20th" is two tokens
                i += 1
            continue
        out.append(token)
        i += 1
    return out


# "the first woman to fly in space" from "the first woman to pilot a Space Shuttle": one word apart
_ACCLAIMS = re.compile(
    r"\b(?:first|only|last|oldest|youngest|largest|biggest|smallest|tallest|longest|fastest|greatest|best|"
    r"worst|most|least|record|earliest|latest)\b",
    re.I,
)


def _bound(claim: list[str], source: list[str]) -> bool:
    """Each number of the claim stands where the source has it, and each run of names is the source's.

    "3.9 metres tall and 3.9 metres wide" is refused by a source that says "3.2 metres tall and 3.9
    metres wide": a number may not occur more often than in the source, and a number followed by a word
    must be followed by that word in the source ("1969 from" in the notes, "1969." in a claim passes; "in
    130." for "about 130 centimetres" does not, through the word before it).  Runs of two or more
    capitalised words ("Michael Collins") must occur as such.  Both come as ``ClaimChecker._read`` gives them.
    """
    lower = [t.lower() for t in source]
    counts: dict[str, int] = {}
    for token in lower:
        if token[0].isdigit():
            counts[token.replace(",", "")] = counts.get(token.replace(",", ""), 0) + 1
    seen: dict[str, int] = {}
    for i, token in enumerate(claim):
        if not token[0].isdigit():
            continue
        value = token.replace(",", "")
        seen[value] = seen.get(value, 0) + 1
        if seen[value] > counts.get(value, 0):
            return False
        places = [j for j, t in enumerate(lower) if t.replace(",", "") == value]
        if i > 0 and claim[i - 1].lower() in MONTHS:  # the year of a date is bound by its month: "July 1969"
            if not any(j > 0 and lower[j - 1] == claim[i - 1].lower() for j in places):
                return False
        elif i + 1 < len(claim):
            after = claim[i + 1].lower()
            if not any(j + 1 < len(lower) and lower[j + 1] == after for j in places):
                return False
        elif i > 0:
            before = claim[i - 1].lower()
            if not any(j > 0 and lower[j - 1] == before for j in places):
                return False
    pairs = set(zip(lower, lower[1:], strict=False))
    for i in range(1, len(claim)):  # a sentence's capitalised first word counts unless it is "The", "It"...
        first, second = claim[i - 1], claim[i]
        if i == 1 and first.lower() in STOPWORDS:
            continue
        if first[0].isupper() and second[0].isupper() and not second[0].isdigit():
            if (first.lower(), second.lower()) not in pairs:
                return False
    return True


def negations(tokens: list[str]) -> list[str]:
    """The content stem each negator of a sentence turns round ("never flew" -> "flew"; "" when none follows)."""
    out = []
    lower = [t.lower() for t in tokens]
    for i, token in enumerate(lower):
        if token in _NEGATORS or token.endswith("n't"):
            following = [t for t in lower[i + 1 : i + 4] if t not in STOPWORDS and not is_number(t)]
            out.append(stem(following[0]) if following else "")
    return out


def _same_polarity(negated: list[str], claim_stems: set[str], source: str) -> bool:
    """A negated claim needs a negated source ("X does not dissolve in acid" against "Acid dissolves
    it"), and a source that negates a word of the claim needs the claim to negate it too ("It never flew
    again" does not say "It flew again")."""
    source_negated = negations(words(source))
    if negated and not source_negated:
        return False
    return all(n == "" or n not in claim_stems or negated for n in source_negated)


def agents(text: str) -> dict[str, set[str]]:
    """Who did what, as a sentence binds them: "painted by John Constable" and "John Constable painted"
    -> {"paint": {"john constable"}}."""
    found: dict[str, set[str]] = {}
    for verb, name in _AGENT.findall(text):
        found.setdefault(stem(verb), set()).add(" ".join(name.split()).lower())
    for name, verb in _DOER.findall(text):
        first = name.split()[0]
        if first.lower() in STOPWORDS:  # "The Jazz signed": the sentence's first word is no name
            name = " ".join(name.split()[1:])
        if name.strip():
            found.setdefault(stem(verb), set()).add(" ".join(name.split()).lower())
    return found


def _same_agents(claimed: dict[str, set[str]], source: str) -> bool:
    """A deed the source gives to one name is not given to another by the claim: "John Patrick Shanley
    directed the movie" against "directed by Norman Jewison and written by John Patrick Shanley"."""
    if not claimed:
        return True
    held = agents(source)
    for verb, claimed_doers in claimed.items():
        doers = held.get(verb)
        if doers and not any(n in d or d in n for n in claimed_doers for d in doers):
            return False
    return True
