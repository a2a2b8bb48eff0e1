"""Deciding what a question gets: the one or two sentences that answer it, an honest "my notes don't say",
a polite decline, or the rest of a topic the visitor said yes to.

Shared by every answerer.  ``AnswerPlanner.plan`` reads the question (kiosk.engine.question), finds the
sentences that fit it (kiosk.engine.passages), checks that the best one states what was asked (a date
for "when", a name for "who"), and words the extractive reply: no preamble, at most about 30 words, then
an offer to say more.  The conversation (the last topic, the names just said, the pending offer) changes
only when the pipeline commits a turn that was played (``commit``), so a dropped speculative turn or a
cancelled answer leaves it as it was.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from kiosk.config import Config
from kiosk.emotion import Emotion
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
    names_someone,
    says_kind,
    says_made,
    states,
)
from kiosk.engine.content_filter import CALM_REPLY, ContentFilter
from kiosk.engine.language import IRREGULAR, STOPWORDS, stem, word_count, words
from kiosk.engine.passages import Passage, PassageIndex, Scored
from kiosk.engine.question import (
    ACCLAIM_TERMS,
    GENERIC_TERMS,
    MATTER,
    OBJECT_NOUNS,
    SYNONYMS,
    AnswerKind,
    Question,
    read_question,
)
from kiosk.engine.question import VAGUE_TERMS as _VAGUE_TERMS
from kiosk.engine.replies import (
    NOT_UNDERSTOOD_REPLY,
    SHORT_OFFER,
    declined_offer_reply,
    nothing_more_reply,
    offer_reply,
    open_offer_reply,
    out_of_scope_reply,
    proper_words,
    unanswered_reply,
)
from kiosk.engine.retrieval import Match
from kiosk.engine.smalltalk import small_talk
from kiosk.exhibit import Exhibit, Section

# the first reply aims at this many words (the offer included); no reply is longer than MAX_WORDS
TARGET_WORDS = 30
MAX_WORDS = 45
# how much a sentence gains for holding the question's own words
COVERAGE_WEIGHT = 0.3
# a noun the notes never use still means the exhibit when it is this close to the title and first sentence
EXHIBIT_NOUN_SIMILARITY = 0.32
# a usual synonym of a question's word counts this much of the word itself ("ocean" finds "Ocean" before "Sea")
SYNONYM_WEIGHT = 0.75
# the previous turn's section is preferred by this much for a follow-up
FOLLOW_UP_BONUS = 0.08
# a question is about the exhibit when it is this close to the title, a heading or a sentence...
TOPIC_SIMILARITY = 0.42
# ...or when half its words are the notes' own and it is at least this close
TOPIC_SIMILARITY_WITH_WORDS = 0.3
# ...or, for a quantity (how many, how big, how much), when half its words are the notes' own and it is this close
QUANTITY_SIMILARITY = 0.25
_QUANTITIES = frozenset((AnswerKind.COUNT, AnswerKind.MEASURE, AnswerKind.MONEY, AnswerKind.AGE))
# the best sentence must be at least this close, or share a rare word with the question
MIN_DENSE = 0.3

# a museum label's fields: a sentence opening with one is about the object on the label
_ANAPHORA_OTHER = re.compile(r"\b(?:he|she|they|him|her|them|his|their|hers|theirs)\b", re.I)
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


_LABEL_FIELDS = frozenset(
    "height width depth length weight thickness size dimensions material materials medium date dated made maker "
    "artist provenance acquired gift accession inscription inscribed diameter".split()
)
_OPENS_WITH_REFERENCE = re.compile(r"^(?:he|she|they|his|her|their|this|these|those|there)\b", re.I)


@dataclass
class AnswerPlan:
    status: str  # ok, unanswered, out_of_scope, filtered, not_understood
    topic: str | None
    emotion: Emotion
    # the sections an LLM words its reply from, best first (empty when no wording is needed)
    matches: list[Match] = field(default_factory=list)
    # the reply: the answering sentences (notes verbatim), or a fixed reply; the offer comes after them
    sentences: list[str] = field(default_factory=list)
    offer: str = ""
    small_talk: bool = False  # fixed wording: nothing for an LLM to word (greetings, declines, "yes")
    question: Question | None = None
    retrieval_seconds: float = 0.0
    score: float = 0.0
    # what the conversation becomes when this plan is spoken (see AnswerPlanner.commit)
    said: tuple[Passage, ...] = ()
    offered: Section | None = None

    @property
    def spoken(self) -> list[str]:
        return [*self.sentences, self.offer] if self.offer else list(self.sentences)


@dataclass
class Conversation:
    """What the visitor and the guide have said so far (one visitor's session)."""

    section: Section | None = None  # the last topic answered
    names: frozenset[str] = frozenset()  # names in the last reply, for "he" and "they"
    offered: Section | None = None  # the topic a "yes" accepts
    said: set[tuple[str, int]] = field(default_factory=set)  # (section id, sentence index) already said
    asked: Question | None = None  # the last question answered, for "and where from?"
    years: tuple[int, ...] = ()  # the years in the last reply, for "what happened the year before?"


class AnswerPlanner:
    def __init__(
        self, exhibit: Exhibit, index: PassageIndex, content_filter: ContentFilter, config: Config
    ) -> None:
        self.exhibit = exhibit
        self.index = index
        self.content_filter = content_filter
        self.config = config
        self._conversation = Conversation()
        self._lock = threading.Lock()
        self._title_terms = {stem(w) for w in words(exhibit.title)} | {
            w.lower() for w in words(exhibit.title)
        }
        # words in a third of the notes' sentences or more say what the whole exhibit is about ("paint" in
        # a painting's notes): like the title's words they point at the exhibit, not at one answer
        share = max(1, len(index.passages)) / 3
        self._topic_terms = self._title_terms | {t for t, n in index.frequency.items() if n >= max(3, share)}
        self._proper = proper_words(exhibit)
        # what the exhibit is, in a vector: its title and first sentence ("SUE ... the fossil hunter...")
        first = next((p.text for p in index.passages), "")
        self._identity = index.embed(f"{exhibit.title}. {first}")
        self._exhibit_nouns: dict[str, bool] = {}
        self._pronouns = person_pronouns(exhibit)
        self._section_stems: dict[str, frozenset[str]] = {}
        for passage in index.passages:
            known = self._section_stems.get(passage.section.id, frozenset())
            self._section_stems[passage.section.id] = known | passage.stems

    # --- the conversation -----------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._conversation = Conversation()

    def commit(self, plan: AnswerPlan) -> None:
        """The plan was spoken: it becomes the context of the next question."""
        with self._lock:
            c = self._conversation
            if plan.said:
                c.section = plan.said[0].section
                c.names = frozenset(n for p in plan.said for n in p.names)
                c.said.update((p.section.id, p.index) for p in plan.said)
                c.asked = plan.question
                c.years = tuple(int(y) for p in plan.said for y in YEAR_TEXT.findall(p.text))
            c.offered = plan.offered
            if plan.status != "ok" and plan.offered is None:
                c.offered = None

    def _context(self) -> Conversation:
        with self._lock:
            c = self._conversation
            return Conversation(c.section, c.names, c.offered, set(c.said), c.asked, c.years)

    # --- planning -----------------------------------------------------------------------------------

    def plan(self, raw: str) -> AnswerPlan:
        question = read_question(raw)
        context = self._context()
        if not question.text or not words(question.text):
            return self._fixed("not_understood", NOT_UNDERSTOOD_REPLY, question)
        if self.content_filter.blocks(question.raw):
            return self._fixed("filtered", CALM_REPLY, question)
        if self.content_filter.declines(question.raw):
            return self._fixed("out_of_scope", out_of_scope_reply(self.exhibit), question)
        if question.affirmative and not question.terms:
            target = context.offered or (context.section if question.wants_more else None)
            if target is None:
                return self._fixed("ok", open_offer_reply(self.exhibit), question, Emotion.HAPPY)
            return self._more(target, context, question)
        if question.negative:
            return self._fixed("ok", declined_offer_reply(self.exhibit), question)
        canned = small_talk(question.text, self.exhibit)
        if canned is not None:
            return self._fixed("ok", canned[0][0], question, canned[1])
        started = time.monotonic()
        plan = self._answer(question, context)
        plan.retrieval_seconds = time.monotonic() - started
        return plan

    def _fixed(
        self, status: str, reply: str, question: Question, emotion: Emotion = Emotion.NEUTRAL
    ) -> AnswerPlan:
        return AnswerPlan(status, None, emotion, sentences=[reply], small_talk=True, question=question)

    def _heard_as_written(self, question: Question) -> Question:
        """A word the notes nearly have is taken as theirs: the recogniser writes "Colombia" for "Columbia"."""
        vocabulary = self.index.vocabulary | self._title_terms
        fixed = []
        for term in question.terms:
            # a question word is no misheard name: "weigh" is not "eight"
            ordinary = term in GENERIC_TERMS or term in _VAGUE_TERMS or term in SYNONYMS
            if term not in vocabulary and len(term) >= 6 and not ordinary:
                close = difflib.get_close_matches(term, vocabulary, n=1, cutoff=0.85)
                term = close[0] if close else term
            fixed.append(term)
        return (
            dataclasses.replace(question, terms=tuple(fixed)) if fixed != list(question.terms) else question
        )

    def _answer(self, question: Question, context: Conversation) -> AnswerPlan:
        question = self._heard_as_written(question)
        if self._pronouns and question.anaphoric and self._pronouns.search(question.text):
            # a person's exhibit: "when was she born?" asks about her, not about the last answer
            still_leans = _ANAPHORA_OTHER.search(self._pronouns.sub(" ", question.text))
            question = dataclasses.replace(
                question,
                deictic=True,
                anaphoric=bool(still_leans or question.elliptical or question.year_offset),
            )
        follow_up = question.anaphoric and context.section is not None
        query = question.text
        if follow_up and question.elliptical and context.asked is not None:
            # "When did it launch?" then "And where from?": where it launched from
            question = dataclasses.replace(
                question, terms=tuple(dict.fromkeys((*question.terms, *context.asked.terms)))
            )
            query = f"{context.asked.text} {query}"
        if follow_up and context.names:
            query = f"{query} ({' '.join(sorted(context.names))})"
        vector = self.index.embed(query)
        terms = question.expanded_terms()
        if any(t not in self._topic_terms for t in terms):  # the exhibit's name is in every other sentence
            terms = [t for t in terms if t not in self._topic_terms]
        if follow_up:
            terms += [stem(n) for n in context.names]
        if question.wants_more and question.terms:
            section = self._section_named(vector)
            if section is not None:
                return self._more(section, context, question)
        scored = self.index.search(vector, terms, limit=len(self.index.passages))
        if follow_up and context.section is not None:
            scored = _prefer_section(scored, context.section.id)
        known = [t for t in question.terms if t in self.index.vocabulary or t in self._title_terms]
        unknown = [t for t in question.terms if t not in known]
        similarity = self.index.topic_similarity(vector)
        if question.deictic:  # "it" is the exhibit: how close is the question with its name in?
            named = self.index.embed(f"{question.text} ({self.exhibit.title})")
            similarity = max(similarity, self.index.topic_similarity(named))
        coverage = len(known) / len(question.terms) if question.terms else 0.0
        about_exhibit = (
            question.deictic
            or follow_up
            or bool(set(question.terms) & self._title_terms)
            or similarity >= TOPIC_SIMILARITY
            or (coverage >= 0.5 and similarity >= TOPIC_SIMILARITY_WITH_WORDS)
            # "how many steps are there to the top?": a quantity of something the notes speak of
            or (coverage >= 0.5 and similarity >= QUANTITY_SIMILARITY and question.kind in _QUANTITIES)
        )
        matches = self._matches(scored)
        if question.year_offset and context.years:  # "what happened the year before?": that year's sentence
            year = str(context.years[0] + question.year_offset)
            dated = [s for s in scored if year in YEAR_TEXT.findall(s.passage.text)]
            if dated:
                return self._reply(dated[0].passage, scored, context, question, matches, dated[0].score)
        if not about_exhibit or not scored:
            plan = self._fixed("out_of_scope", out_of_scope_reply(self.exhibit), question)
            plan.matches, plan.score = matches, similarity
            return plan
        if question.vague and not follow_up and question.kind in (AnswerKind.ANY, AnswerKind.REASON):
            return self._reply(self.index.passages[0], [], context, question, matches, similarity)
        chosen = self._choose(question, scored, unknown, context.section if follow_up else None)
        if chosen is None:
            nearest = scored[0].passage.section
            plan = AnswerPlan(
                "unanswered",
                nearest.id,
                Emotion.NEUTRAL,
                matches,
                [unanswered_reply(nearest, self._proper)],
                question=question,
                small_talk=True,
                offered=nearest,
                score=scored[0].score,
            )
            return plan
        return self._reply(chosen.passage, scored, context, question, matches, chosen.score)

    def _choose(
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
            and t not in self._topic_terms
            # "the spacecraft": the exhibit (a person's exhibit is no spacecraft: "her first mission" is specific)
            and not (t in OBJECT_NOUNS and not self._pronouns and self._names_the_exhibit(t))
            # "when was it carved?": the making is what a date of the exhibit is, whatever the verb
            and not (t in MAKING and question.deictic and question.kind in (AnswerKind.DATE, AnswerKind.AGE))
            and not (
                question.kind is AnswerKind.MATERIAL and t in MATTER
            )  # "what rock is it?": the kind asked
        ]
        units = measure_units(question.text) if question.kind is AnswerKind.MEASURE else None
        made_it = bool(set(question.expanded_terms()) & MAKING)
        generic = [t for t in question.terms if t in GENERIC_TERMS and t not in self._topic_terms]
        years = [
            int(y)
            for c in scored
            if states(question.kind, c.passage, self._title_terms)
            for y in YEAR_TEXT.findall(c.passage.text)
        ]
        latest = max(years) if years else 0
        ranked: list[tuple[float, Scored, float]] = []
        for candidate in scored:
            if not states(question.kind, candidate.passage, self._title_terms, units):
                continue
            if question.kind_of and not says_kind(candidate.passage, question.kind_of):
                continue  # "what kind of dog is it?" is not answered by "a small dog watches the cart"
            section_stems = self._section_stems[candidate.passage.section.id]
            covered = _coverage(specific, candidate.passage, section_stems)
            bonus = COVERAGE_WEIGHT * covered
            if question.wants_words and QUOTATION.search(candidate.passage.text):
                bonus += 0.25  # "what did Armstrong say?": the sentence that quotes him
            if question.deictic and not self._pronouns and self._names_exhibit(candidate.passage):
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
                bonus += 0.5 if self._names_exhibit(candidate.passage) else 0.15
            if question.kind is AnswerKind.PERSON and names_person(candidate.passage, self._title_terms):
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
        plain = [
            t
            for t in question.terms
            if t not in _VAGUE_TERMS and t not in ACCLAIM_TERMS and t not in _UNINDEXED
        ]
        for _, candidate, covered in ranked:
            passage = candidate.passage
            if not specific and question.kind is not AnswerKind.ANY:
                # the kind of answer is the whole question: a weight said of the exhibit, or ("how much did
                # they weigh?" after the Moon rocks) of the topic just talked about
                if self._about_exhibit(passage) or passage.section is topic:
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

    def _names_the_exhibit(self, noun: str) -> bool:
        """A noun for the exhibit itself: one the notes use, or one close to what it is ("the dinosaur" at a
        T. rex); "this painting" at a spacecraft is not."""
        if noun in self.index.vocabulary:
            return True
        if noun not in self._exhibit_nouns:  # one embedding per noun, kept
            self._exhibit_nouns[noun] = (
                float(self.index.embed(noun) @ self._identity) >= EXHIBIT_NOUN_SIMILARITY
            )
        return self._exhibit_nouns[noun]

    def _names_exhibit(self, passage: Passage) -> bool:
        """The sentence writes the exhibit's name as a name: "Columbia", not "the lunar module"."""
        return any(
            w[0].isupper() and w.lower() in self._title_terms and w.lower() not in STOPWORDS
            for w in words(passage.text)
        )

    def _about_exhibit(self, passage: Passage) -> bool:
        """The sentence is about the exhibit itself: it names it, or says "it" early on."""
        tokens = words(passage.text)
        opening = {w.lower() for w in tokens[:8]}
        if tokens and tokens[0].lower() in _LABEL_FIELDS:  # label copy: "Height 114 cm, width 72 cm"
            return True
        if not any(
            _is_verb(t) for t in tokens
        ):  # a label's fragment: "Granodiorite stele; Ptolemaic period, 196 BC."
            return True
        return bool(opening & {"it", "its", "this", "that"}) or bool(passage.stems & self._title_terms)

    def _reply(
        self,
        passage: Passage,
        scored: list[Scored],
        context: Conversation,
        question: Question,
        matches: list[Match],
        score: float,
    ) -> AnswerPlan:
        section = passage.section
        in_section = self.index.in_section(section.id)
        said = [passage]
        # "He flew alone..." needs the sentence that says who he is
        if _OPENS_WITH_REFERENCE.match(passage.text) and passage.index > 0:
            before = in_section[passage.index - 1]
            if before.words + passage.words <= TARGET_WORDS + 5:
                said.insert(0, before)
        # "Three astronauts flew on Apollo 11." answers "who" with the sentences that name them
        elif question.kind is AnswerKind.PERSON and not names_someone(passage, self._title_terms):
            for after in in_section[passage.index + 1 :]:
                if not names_someone(after, self._title_terms):
                    break
                if sum(p.words for p in said) + after.words > TARGET_WORDS + 4:
                    break
                said.append(after)
        # a short answer may take the next sentence when it continues it
        elif passage.index + 1 < len(in_section):
            after = in_section[passage.index + 1]
            if passage.words + after.words <= TARGET_WORDS - 8 and _OPENS_WITH_REFERENCE.match(after.text):
                said.append(after)
        said = said[: self.config.answer.max_sentences]
        sentences = [_trimmed(p.text) for p in said]
        unsaid = [p for p in in_section if p not in said and (section.id, p.index) not in context.said]
        offer = ""
        offered: Section | None = None
        said_words = sum(word_count(s) for s in sentences)
        if unsaid and said_words + word_count(SHORT_OFFER) <= MAX_WORDS:
            offer, offered = offer_reply(section, self._proper), section
            if said_words + word_count(offer) > TARGET_WORDS:
                offer = SHORT_OFFER  # a long answer gets the short question
        return AnswerPlan(
            "ok",
            section.id,
            section.tone,
            matches,
            sentences,
            offer=offer,
            question=question,
            score=score,
            said=tuple(said),
            offered=offered,
        )

    def _more(self, section: Section, context: Conversation, question: Question) -> AnswerPlan:
        """The next sentences of a topic the visitor wants more of (about 30 words), then perhaps another offer."""
        rest = [p for p in self.index.in_section(section.id) if (section.id, p.index) not in context.said]
        if not rest:
            plan = self._fixed("ok", nothing_more_reply(section, self._proper), question, section.tone)
            plan.topic = section.id
            return plan
        said: list[Passage] = []
        for passage in rest[: self.config.answer.max_sentences]:
            if said and sum(p.words for p in said) + passage.words > MAX_WORDS - 9:
                break
            said.append(passage)
        left = len(rest) > len(said)
        sentences = [_trimmed(p.text) for p in said]
        return AnswerPlan(
            "ok",
            section.id,
            section.tone,
            self._matches([]),
            sentences,
            offer=offer_reply(section, self._proper) if left else "",
            question=question,
            small_talk=True,  # the notes as written: nothing to word
            said=tuple(said),
            offered=section if left else None,
        )

    def _section_named(self, vector: np.ndarray) -> Section | None:
        scores = self.index.heading_scores(vector)
        best = int(np.argmax(scores))
        return self.exhibit.sections[best] if scores[best] >= 0.35 else None

    def _matches(self, scored: list[Scored]) -> list[Match]:
        """Sections in the order their best sentences came, each with its sentences ranked (for an LLM)."""
        order: dict[str, list[Scored]] = {}
        for item in scored:
            order.setdefault(item.passage.section.id, []).append(item)
        matches = []
        for items in order.values():
            section = items[0].passage.section
            ranked = tuple((i.passage.text, i.score) for i in items)
            matches.append(Match(section, items[0].score, ranked))
        return matches


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


def _prefer_section(scored: list[Scored], section_id: str) -> list[Scored]:
    boosted = [
        Scored(
            s.passage,
            s.dense,
            s.lexical,
            s.score + (FOLLOW_UP_BONUS if s.passage.section.id == section_id else 0),
        )
        for s in scored
    ]
    return sorted(boosted, key=lambda s: -s.score)


def _trimmed(sentence: str, limit: int = MAX_WORDS - 10) -> str:
    """A sentence of the notes, cut at a clause break when it is longer than ``limit`` words."""
    tokens = sentence.split()
    if len(tokens) <= limit:
        return sentence
    head = " ".join(tokens[:limit])
    cut = max(head.rfind(", "), head.rfind("; "), head.rfind(" - "), head.rfind(" — "))
    if cut < len(head) // 3:
        return sentence  # no clause break: say it whole rather than cut a fact in half
    return head[:cut].rstrip(",;: ") + "."
