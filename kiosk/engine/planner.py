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
    YEAR_TEXT,
    names_someone,
)
from kiosk.engine.choosing import SentenceChooser
from kiosk.engine.content_filter import CALM_REPLY, ContentFilter
from kiosk.engine.language import stem, word_count, words
from kiosk.engine.passages import Passage, PassageIndex, Scored
from kiosk.engine.question import (
    GENERIC_TERMS,
    SYNONYMS,
    AnswerKind,
    Question,
    read_question,
)
from kiosk.engine.question import VAGUE_TERMS as _VAGUE_TERMS
from kiosk.engine.replies import (
    NOT_UNDERSTOOD_REPLY,
    NOTES_DONT_SAY,
    SHORT_OFFER,
    declined_offer_reply,
    nothing_more_reply,
    offer_reply,
    open_offer_reply,
    out_of_scope_reply,
    proper_words,
    unanswered_offer,
)
from kiosk.engine.retrieval import Match
from kiosk.engine.smalltalk import small_talk
from kiosk.engine.visitor_language import english_only_reply, no_words, other_language
from kiosk.exhibit import Exhibit, Section

# the first reply aims at this many words (the offer included); no reply is longer than MAX_WORDS
TARGET_WORDS = 30
MAX_WORDS = 45
# the previous turn's section is preferred by this much for a follow-up
FOLLOW_UP_BONUS = 0.08
# a question is about the exhibit when it is this close to the title, a heading or a sentence...
TOPIC_SIMILARITY = 0.42
# ...or when half its words are the notes' own and it is at least this close
TOPIC_SIMILARITY_WITH_WORDS = 0.3
# ...or, for a quantity (how many, how big, how much), when half its words are the notes' own and it is this close
QUANTITY_SIMILARITY = 0.25
_QUANTITIES = frozenset((AnswerKind.COUNT, AnswerKind.MEASURE, AnswerKind.MONEY, AnswerKind.AGE))

# "he" or "they" beside a person exhibit's own pronoun still leans on the last answer
_ANAPHORA_OTHER = re.compile(r"\b(?:he|she|they|him|her|them|his|their|hers|theirs)\b", re.I)
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
        self._proper = proper_words(exhibit)
        self.chooser = SentenceChooser(exhibit, index)

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
        if (language := other_language(question.raw)) is not None:
            return self._fixed("out_of_scope", english_only_reply(language), question)
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
        vocabulary = self.index.vocabulary | self.chooser.title_terms
        fixed = []
        for term in _unglued(question.terms, vocabulary):
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
        titled = self.exhibit.section_titled(question.about) if question.about else None
        if titled is not None:  # "tell me about the keepers", as the chips offer a pack's headings: no search
            return self._more(titled, context, question)
        question = self._heard_as_written(question)
        if self.chooser.pronouns and question.anaphoric and self.chooser.pronouns.search(question.text):
            # a person's exhibit: "when was she born?" asks about her, not about the last answer
            still_leans = _ANAPHORA_OTHER.search(self.chooser.pronouns.sub(" ", question.text))
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
        if any(
            t not in self.chooser.topic_terms for t in terms
        ):  # the exhibit's name is in every other sentence
            terms = [t for t in terms if t not in self.chooser.topic_terms]
        if follow_up:
            terms += [stem(n) for n in context.names]
        if question.wants_more and question.terms:
            section = self._section_named(vector)
            if section is not None:
                return self._more(section, context, question)
        scored = self.index.search(vector, terms, limit=len(self.index.passages))
        if follow_up and context.section is not None:
            scored = _prefer_section(scored, context.section.id)
        known = [t for t in question.terms if t in self.index.vocabulary or t in self.chooser.title_terms]
        unknown = [t for t in question.terms if t not in known]
        similarity = self.index.topic_similarity(vector)
        if question.deictic:  # "it" is the exhibit: how close is the question with its name in?
            named = self.index.embed(f"{question.text} ({self.exhibit.title})")
            similarity = max(similarity, self.index.topic_similarity(named))
        coverage = len(known) / len(question.terms) if question.terms else 0.0
        # "what happened in 1911?": a year the notes date something by is about the exhibit, whatever its words
        asked_years = set(YEAR_TEXT.findall(question.text))
        dated = (
            [s for s in scored if asked_years & set(YEAR_TEXT.findall(s.passage.text))] if asked_years else []
        )
        about_exhibit = (
            bool(dated)
            or question.deictic
            or follow_up
            or bool(set(question.terms) & self.chooser.title_terms)
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
            if no_words(question.raw, self.index.vocabulary | self.chooser.title_terms):  # "asdf qwer"
                return self._fixed("not_understood", NOT_UNDERSTOOD_REPLY, question)
            plan = self._fixed("out_of_scope", out_of_scope_reply(self.exhibit), question)
            plan.matches, plan.score = matches, similarity
            return plan
        if dated and question.kind is AnswerKind.ANY:
            return self._reply(dated[0].passage, scored, context, question, matches, dated[0].score)
        if question.vague and not follow_up and question.kind in (AnswerKind.ANY, AnswerKind.REASON):
            return self._reply(self.index.passages[0], [], context, question, matches, similarity)
        chosen = self.chooser.choose(question, scored, unknown, context.section if follow_up else None)
        if chosen is None:
            nearest = scored[0].passage.section
            plan = AnswerPlan(
                "unanswered",
                nearest.id,
                Emotion.NEUTRAL,
                matches,
                [NOTES_DONT_SAY],
                offer=unanswered_offer(nearest, self._proper),
                question=question,
                small_talk=True,
                offered=nearest,
                score=scored[0].score,
            )
            return plan
        return self._reply(chosen.passage, scored, context, question, matches, chosen.score)

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
        elif question.kind is AnswerKind.PERSON and not names_someone(passage, self.chooser.title_terms):
            for after in in_section[passage.index + 1 :]:
                if not names_someone(after, self.chooser.title_terms):
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


def _unglued(terms: tuple[str, ...], vocabulary: frozenset[str] | set[str]) -> list[str]:
    """A word the recogniser glued to a name of the notes is taken apart: "Collins-born" (the default
    voice's "When was Eileen Collins born?") is "collin" and "born" when the notes know either and not
    the whole; "STS-114", a code the notes use, stays whole."""
    out: list[str] = []
    for term in terms:
        parts = [stem(p) for p in term.split("-") if p]
        if "-" in term and term not in vocabulary and any(p in vocabulary for p in parts):
            out.extend(parts)
        else:
            out.append(term)
    return out


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
