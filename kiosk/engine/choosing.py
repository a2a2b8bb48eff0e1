"""Which of the notes' sentences answers a question, or none: the heart of the answer planner.

``SentenceChooser`` knows what the exhibit's notes are about (the title's words, the words of a third of
the sentences, each section's words, what the exhibit is in a vector, whether it is a person) and picks,
among the sentences retrieval found, the best one that states what was asked (a date for "when", a name
for "who"), holds the question's own words, and is about the exhibit when the question points at it.
None means the notes do not say.  Rules over words, English only, microseconds a question.
"""

from __future__ import annotations

import re

from kiosk.engine.answer_kinds import (
    ACCLAIM,
    AGE_STATED,
    MADE_OF,
    MAKING,
    NAMED_AFTER,
    NO_YEAR,
    QUOTATION,
    REASON,
    STRONG_ACCLAIM,
    WHY_NAMED,
    YEAR_TEXT,
    counts,
    earliest_year,
    measure_units,
    names_person,
    says_kind,
    says_made,
    states,
)
from kiosk.engine.language import IRREGULAR, STOPWORDS, stem, words
from kiosk.engine.passages import Passage, PassageIndex, Scored
from kiosk.engine.question import (
    ACCLAIM_TERMS,
    GENERIC_TERMS,
    MATTER,
    OBJECT_NOUNS,
    SYNONYMS,
    AnswerKind,
    Question,
)
from kiosk.engine.question import VAGUE_TERMS as _VAGUE_TERMS
from kiosk.exhibit import Exhibit, Section

# how much a sentence gains for holding the question's own words
COVERAGE_WEIGHT = 0.3
# a noun the notes never use still means the exhibit when it is this close to the title and first sentence
EXHIBIT_NOUN_SIMILARITY = 0.32
# a usual synonym of a question's word counts this much of the word itself ("ocean" finds "Ocean" before "Sea")
SYNONYM_WEIGHT = 0.75
# the best sentence must be at least this close, or share a rare word with the question
MIN_DENSE = 0.3

_PERSON_PRONOUNS = {
    "she": re.compile(r"\b(?:she|her|hers|herself)\b", re.I),
    "he": re.compile(r"\b(?:he|him|his|himself)\b", re.I),
}


def person_pronouns(exhibit: Exhibit) -> re.Pattern[str] | None:
    """The pronouns that mean the exhibit when it is a person ("Eileen Collins": she, her), else None.

    A person's exhibit has a name for a title (capitalised words, no article) and notes that say "she" or
    "he" more than "it"."""
    title = words(exhibit.title)
    if not title or title[0].lower() in ("the", "a", "an") or not all(w[0].isupper() for w in title):
        return None
    text = " ".join(s.text for s in exhibit.sections)
    its = len(re.findall(r"\b(?:it|its)\b", text, re.I))
    counts = {key: len(pattern.findall(text)) for key, pattern in _PERSON_PRONOUNS.items()}
    key = max(counts, key=lambda k: counts[k])
    return _PERSON_PRONOUNS[key] if counts[key] >= 3 and counts[key] > its else None


# a museum label's fields: a sentence opening with one is about the object on the label
_LABEL_FIELDS = frozenset(
    "height width depth length weight thickness size dimensions material materials medium date dated made maker "
    "artist provenance acquired gift accession inscription inscribed diameter".split()
)


class SentenceChooser:
    """What the planner knows of one exhibit's notes, and the choice of the sentence that answers."""

    def __init__(self, exhibit: Exhibit, index: PassageIndex) -> None:
        self.index = index
        self.title_terms = {stem(w) for w in words(exhibit.title)} | {w.lower() for w in words(exhibit.title)}
        # words in a third of the notes' sentences or more say what the whole exhibit is about ("paint" in
        # a painting's notes): like the title's words they point at the exhibit, not at one answer
        share = max(1, len(index.passages)) / 3
        self.topic_terms = self.title_terms | {t for t, n in index.frequency.items() if n >= max(3, share)}
        # what the exhibit is, in a vector: its title and first sentence ("SUE ... the fossil hunter...")
        first = next((p.text for p in index.passages), "")
        self.identity = index.embed(f"{exhibit.title}. {first}")
        self.pronouns = person_pronouns(exhibit)
        self.section_stems: dict[str, frozenset[str]] = {}
        for passage in index.passages:
            known = self.section_stems.get(passage.section.id, frozenset())
            self.section_stems[passage.section.id] = known | passage.stems
        self._exhibit_nouns: dict[str, bool] = {}

    def choose(
        self, question: Question, scored: list[Scored], unknown: list[str], topic: Section | None = None
    ) -> Scored | None:
        """The best sentence that states what was asked, or None when the notes do not say."""
        vocabulary = self.index.vocabulary
        specific_unknown = [  # "Britain" is known when the notes say "British"
            t
            for t in unknown
            if t not in GENERIC_TERMS and t not in _VAGUE_TERMS and not vocabulary & set(SYNONYMS.get(t, ()))
        ]
        # what the question is about, beyond its kind: "what colour is it?" names nothing but the kind
        specific = [
            t
            for t in question.terms
            if t not in GENERIC_TERMS
            and t not in _VAGUE_TERMS
            and t not in self.topic_terms
            # "the spacecraft": the exhibit (a person's exhibit is no spacecraft: "her first mission" is specific)
            and not (t in OBJECT_NOUNS and not self.pronouns and self.names_the_exhibit(t))
            # "when was it carved?": the making is what a date of the exhibit is, whatever the verb
            and not (t in MAKING and question.deictic and question.kind in (AnswerKind.DATE, AnswerKind.AGE))
            # "what rock is it?": the word is the kind of answer asked
            and not (question.kind is AnswerKind.MATERIAL and t in MATTER)
        ]
        units = measure_units(question.text) if question.kind is AnswerKind.MEASURE else None
        made_it = bool(set(question.expanded_terms()) & MAKING)
        generic = [t for t in question.terms if t in GENERIC_TERMS and t not in self.topic_terms]
        years = [
            int(y)
            for c in scored
            if states(question.kind, c.passage, self.title_terms)
            for y in YEAR_TEXT.findall(c.passage.text)
        ]
        latest = max(years) if years else 0
        ranked: list[tuple[float, Scored, float]] = []
        for candidate in scored:
            if not states(question.kind, candidate.passage, self.title_terms, units):
                continue
            if question.kind_of and not says_kind(candidate.passage, question.kind_of):
                continue  # "what kind of dog is it?" is not answered by "a small dog watches the cart"
            section_stems = self.section_stems[candidate.passage.section.id]
            covered = _coverage(specific, candidate.passage, section_stems)
            bonus = COVERAGE_WEIGHT * covered
            if question.wants_words and QUOTATION.search(candidate.passage.text):
                bonus += 0.25  # "what did Armstrong say?": the sentence that quotes him
            if question.deictic and not self.pronouns and self.names_exhibit(candidate.passage):
                bonus += 0.1  # "where did it land?": where the exhibit did, before a part of it
            if question.wants_latest and latest and str(latest) in YEAR_TEXT.findall(candidate.passage.text):
                bonus += (
                    0.4  # "who owns it now?": the latest owner the notes name, before a named earlier one
                )
            if question.kind is AnswerKind.MATERIAL and (
                MADE_OF.search(candidate.passage.text)
                or not any(_is_verb(t) for t in words(candidate.passage.text))
            ):
                bonus += 0.3  # "made of granite", or a label's "Granodiorite stele": not "a wooden barrack"
            if question.counted and counts(candidate.passage, question.counted):
                bonus += 0.3  # "how many bones?": "more than 250 bones", not the day they were found
            if question.kind is AnswerKind.REASON and REASON.search(candidate.passage.text):
                bonus += 0.3  # "why": a sentence that gives a reason
            if WHY_NAMED.search(question.text) and NAMED_AFTER.search(candidate.passage.text):
                # "why is it called X?": the sentence that says what it was named after (the exhibit's name
                # before the name of a part)
                bonus += 0.5 if self.names_exhibit(candidate.passage) else 0.15
            if question.kind is AnswerKind.PERSON and names_person(candidate.passage, self.title_terms):
                bonus += 0.15  # "who": a sentence that names someone beats "three astronauts"
                if made_it and says_made(candidate.passage):
                    bonus += 0.25  # "who painted it?": a sentence where someone made it
            if (
                generic
            ):  # "when did the British get it?": "passed to the British" before "on display at the British"
                bonus += 0.1 * _coverage(generic, candidate.passage, frozenset())
            ranked.append((candidate.score + bonus, candidate, covered))
        if set(question.terms) & ACCLAIM_TERMS:  # "why is it famous?": the first claim to fame in the notes
            order = {id(p): i for i, p in enumerate(self.index.passages)}
            acclaimed = [r for r in ranked if ACCLAIM.search(r[1].passage.text)]
            if acclaimed:  # "the oldest ... in the world" or "a record" before "the first ..."
                return min(
                    acclaimed,
                    key=lambda r: (not STRONG_ACCLAIM.search(r[1].passage.text), order[id(r[1].passage)]),
                )[1]
        # how old, or when was it made (carved, painted): an age said outright, else the earliest year said
        # of it, a year of its making first
        making_date = (
            question.kind is AnswerKind.DATE and question.deictic and bool(set(question.terms) & MAKING)
        )
        if question.kind is AnswerKind.AGE or making_date:
            ranked.sort(
                key=lambda r: (
                    not AGE_STATED.search(r[1].passage.text),  # "lived 67 million years ago"
                    earliest_year(r[1].passage.text) == NO_YEAR,
                    not r[1].passage.stems & MAKING,
                    earliest_year(r[1].passage.text),
                    -r[0],
                )
            )
        else:
            ranked.sort(key=lambda r: -r[0])
        # the question's plain words ("when did work begin?"): a sentence holding them all answers it even
        # when it does not name the exhibit; "when was it built?" (pointing at the exhibit) still needs one that does
        # ("how long did the mission last?": "long" asks for a measure, which ``states`` has checked)
        measured = question.kind in (AnswerKind.MEASURE, AnswerKind.COUNT, AnswerKind.MONEY, AnswerKind.AGE)
        plain = [
            t
            for t in question.terms
            if t not in _VAGUE_TERMS
            and t not in ACCLAIM_TERMS
            and t not in _UNINDEXED
            and not (measured and t in GENERIC_TERMS)
        ]
        for _, candidate, covered in ranked:
            passage = candidate.passage
            if not specific and question.kind is not AnswerKind.ANY:
                # the kind of answer is the whole question: a weight said of the exhibit, or ("how much did
                # they weigh?" after the Moon rocks) of the topic just talked about
                if self.about_exhibit(passage) or passage.section is topic:
                    return candidate
                if question.kind is AnswerKind.AGE and passage.stems & MAKING:
                    return candidate  # "how old is it?": "work began in 1807" need not name it
                if plain and not question.deictic and _holds_all(plain, passage):
                    return candidate
                continue
            if candidate.dense < MIN_DENSE and candidate.lexical <= 0:
                continue
            if specific and (covered < 0.5 or (covered <= 0.5 and candidate.dense < 0.55)):
                continue  # "what was the crew's favourite food?" is not answered by "the crew's living quarters"
            if set(specific_unknown) & question.names and candidate.dense < 0.55:
                continue  # "who was the first person on Mars": the notes know no Mars
            return candidate
        return None

    def answers(self, question: Question | None, text: str, section: Section) -> bool:
        """Whether a sentence not from the notes (the LLM's) states what was asked: a name for "who", a year
        for "when", a colour for "what colour"; any sentence answers "why" and "what"."""
        if question is None:
            return True
        passage = Passage.of(section, 0, text)
        units = measure_units(question.text) if question.kind is AnswerKind.MEASURE else None
        if question.kind_of and not says_kind(passage, question.kind_of):
            return False
        return states(question.kind, passage, self.title_terms, units)

    def names_the_exhibit(self, noun: str) -> bool:
        """A noun for the exhibit itself: one the notes use, or one close to what it is ("the dinosaur" at a
        T. rex); "this painting" at a spacecraft is not."""
        if noun in self.index.vocabulary:
            return True
        if noun not in self._exhibit_nouns:  # one embedding per noun, kept
            self._exhibit_nouns[noun] = (
                float(self.index.embed(noun) @ self.identity) >= EXHIBIT_NOUN_SIMILARITY
            )
        return self._exhibit_nouns[noun]

    def names_exhibit(self, passage: Passage) -> bool:
        """The sentence writes the exhibit's name as a name: "Columbia", not "the lunar module"."""
        return any(
            w[0].isupper() and w.lower() in self.title_terms and w.lower() not in STOPWORDS
            for w in words(passage.text)
        )

    def about_exhibit(self, passage: Passage) -> bool:
        """The sentence is about the exhibit itself: it names it or says "it" early on, or it is a label's
        line ("Height 114 cm, width 72 cm"; a fragment without a verb: "Granodiorite stele; 196 BC.")."""
        tokens = words(passage.text)
        if tokens and tokens[0].lower() in _LABEL_FIELDS or not any(_is_verb(t) for t in tokens):
            return True
        opening = {w.lower() for w in tokens[:8]}
        return bool(opening & {"it", "its", "this", "that"}) or bool(passage.stems & self.title_terms)


def _heading_stems(section: Section) -> set[str]:
    return {stem(w) for w in words(section.heading)}


def _coverage(terms: list[str], passage: Passage, section_stems: frozenset[str]) -> float:
    """The share of a question's specific words that a sentence (or its heading) holds, or a usual synonym
    of; a word only elsewhere in the sentence's section counts half (the answer is within that topic).

    Every word weighs the same: weighing a word the notes never use at half (for misheard words) let
    "what was the weather at the launch?" be answered with the launch date.
    """
    if not terms:
        return 1.0
    held = passage.stems | _heading_stems(passage.section)

    def has(stems: frozenset[str] | set[str], term: str) -> float:
        if term in stems:
            return 1.0
        return SYNONYM_WEIGHT if stems & set(SYNONYMS.get(term, ())) else 0.0

    return sum(has(held, t) or 0.5 * has(section_stems, t) for t in terms) / len(terms)


# stems of words the notes' index leaves out ("made", "called"): no sentence can be asked to hold them
_UNINDEXED = frozenset(stem(w) for w in STOPWORDS)
_VERBS = frozenset(
    "is are was were be been has have had do does did can could will would may might shall should must "
    "became becomes become stands stood lies lay lived lives".split()
)


def _is_verb(token: str) -> bool:
    """A finite verb, roughly: an auxiliary, a past form ("built", "ran") or a word ending in -ed."""
    lower = token.lower()
    return lower in _VERBS or lower in IRREGULAR or (lower.endswith("ed") and len(lower) > 4)


def _holds_all(terms: list[str], passage: Passage) -> bool:
    """The sentence itself holds every one of the terms, or a usual synonym of it."""
    return all(t in passage.stems or bool(passage.stems & set(SYNONYMS.get(t, ()))) for t in terms)
