"""What a fitted model sees of one candidate sentence for one question: a row of numbers per sentence.

The features are the clues the hand-written rules weighed one case at a time (how close the sentence is in
meaning and in words, whether it states the kind of thing asked, whether it holds the question's own
words, whether it is about the exhibit or the topic just talked about); a model fitted on labelled
questions (``scripts/fit_chooser.py``) weighs them together instead.  Pure functions over the chooser's
knowledge of the notes: no model, microseconds a sentence.  The kiosk does not answer with a fitted model
yet (it has not beaten the rules on the dev packs); the script is where a new feature is tried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kiosk.engine.answer_kinds import (
    ACCLAIM,
    AGE_STATED,
    MADE_OF,
    MAKING,
    NAMED_AFTER,
    QUOTATION,
    REASON,
    WHY_NAMED,
    counts,
    measure_units,
    names_person,
    says_kind,
    says_made,
    states,
)
from kiosk.engine.language import stem, words
from kiosk.engine.passages import Scored
from kiosk.engine.question import ACCLAIM_TERMS, GENERIC_TERMS, SYNONYMS, AnswerKind, Question
from kiosk.engine.question import VAGUE_TERMS as _VAGUE_TERMS

if TYPE_CHECKING:
    from kiosk.engine.choosing import SentenceChooser
    from kiosk.exhibit import Section

# the order of a feature row; the fitted weights file names them, so a change here refuses old weights
FEATURES = (
    "dense",
    "lexical",
    "dense_gap",  # how far below the closest sentence in meaning
    "score_gap",  # how far below the best sentence by meaning and words together
    "lexical_gap",
    "rank",  # 1 for the best sentence by meaning and words, 1/2 for the next...
    "states_kind",  # states what was asked (a year for "when"), for a question that asks for a kind
    "kind_any",  # "what", "how": any sentence about it may answer
    "coverage",  # the share of the question's specific words the sentence (or its heading) holds
    "sentence_coverage",  # ... the sentence itself
    "heading_coverage",  # ... its section's heading
    "no_specific",  # the question names nothing but the kind of answer ("how tall is it?")
    "about_exhibit",  # names the exhibit or says "it" early on, or is a label's line
    "topic_section",  # in the section just talked about (a follow-up)
    "person_named",  # "who": the sentence names a person
    "made_by",  # "who made it": a person made something in the sentence
    "reason",  # "why": the sentence gives a reason
    "material",  # "what is it made of": "made of granite"
    "counted",  # "how many bones": a number put to bones
    "quotation",  # "what did she say": a quotation
    "named_after",  # "why is it called X": what it was named after
    "acclaim",  # "why is it famous": a claim to fame
    "age_stated",  # "how old": "67 million years ago"
    "kind_of",  # "what kind of dog": the dog qualified
    "first_in_section",
    "length",  # words / 30
    "unknown_name",  # the question names something the notes never do ("Mars")
    "heading_dense",  # how close the question is to the sentence's section heading in meaning
    "heading_best",  # the section whose heading is closest to the question
    "heading_question",  # that heading is itself a question ("## Who named it?"): its section answers it
)


def candidate_features(
    chooser: SentenceChooser,
    question: Question,
    scored: list[Scored],
    unknown: list[str],
    topic: Section | None,
    vector: np.ndarray,
) -> np.ndarray:
    """One row of FEATURES per candidate sentence, in the order of ``scored``; ``vector`` is the question's."""
    if not scored:
        return np.zeros((0, len(FEATURES)), dtype=np.float32)
    title_terms = chooser.title_terms
    specific = [
        t
        for t in question.terms
        if t not in GENERIC_TERMS and t not in _VAGUE_TERMS and t not in chooser.topic_terms
    ]
    units = measure_units(question.text) if question.kind is AnswerKind.MEASURE else None
    wants_made = question.kind is AnswerKind.PERSON and bool(set(question.expanded_terms()) & MAKING)
    acclaim_asked = bool(set(question.terms) & ACCLAIM_TERMS)
    why_named = bool(WHY_NAMED.search(question.text))
    unknown_name = float(bool(set(unknown) & question.names))
    kind_any = question.kind in (AnswerKind.ANY, AnswerKind.REASON)
    dense = np.array([c.dense for c in scored], dtype=np.float32)
    lexical = np.array([c.lexical for c in scored], dtype=np.float32)
    score = np.array([c.score for c in scored], dtype=np.float32)
    order = np.empty(len(scored), dtype=np.float32)
    order[np.argsort(-score)] = np.arange(len(scored), dtype=np.float32)
    sections = {section.id: i for i, section in enumerate(chooser.index.exhibit.sections)}
    headings = chooser.index.heading_scores(vector) if sections else np.zeros(0, dtype=np.float32)
    closest = int(np.argmax(headings)) if len(headings) else -1
    rows = np.zeros((len(scored), len(FEATURES)), dtype=np.float32)
    for i, candidate in enumerate(scored):
        passage = candidate.passage
        text = passage.text
        heading = {stem(w) for w in words(passage.section.heading)}
        rows[i] = (
            dense[i],
            lexical[i],
            dense[i] - dense.max(),
            score[i] - score.max(),
            lexical[i] - lexical.max(),
            1.0 / (1.0 + order[i]),
            float(kind_any or states(question.kind, passage, title_terms, units)),
            float(kind_any),
            _share(specific, passage.stems | heading),
            _share(specific, passage.stems),
            _share(specific, heading),
            float(not specific),
            float(chooser.about_exhibit(passage)),
            float(topic is not None and passage.section is topic),
            float(question.kind is AnswerKind.PERSON and names_person(passage, title_terms)),
            float(wants_made and says_made(passage)),
            float(question.kind is AnswerKind.REASON and bool(REASON.search(text))),
            float(question.kind is AnswerKind.MATERIAL and bool(MADE_OF.search(text))),
            float(bool(question.counted) and counts(passage, question.counted)),
            float(question.wants_words and bool(QUOTATION.search(text))),
            float(why_named and bool(NAMED_AFTER.search(text))),
            float(acclaim_asked and bool(ACCLAIM.search(text))),
            float(question.kind is AnswerKind.AGE and bool(AGE_STATED.search(text))),
            float(bool(question.kind_of) and says_kind(passage, question.kind_of)),
            float(passage.index == 0),
            passage.words / 30.0,
            unknown_name,
            float(headings[at]) if (at := sections.get(passage.section.id, -1)) >= 0 else 0.0,
            float(at == closest),
            float(at == closest and passage.section.heading.rstrip().endswith("?")),
        )
    return rows


def _share(terms: list[str], stems: frozenset[str] | set[str]) -> float:
    """The share of terms held, a usual synonym counting three quarters; 1 when there are none."""
    if not terms:
        return 1.0
    held = 0.0
    for term in terms:
        if term in stems:
            held += 1.0
        elif stems & set(SYNONYMS.get(term, ())):
            held += 0.75
    return held / len(terms)
