"""Deciding what kind of answer a question gets, and the retrieval answerer that reads the notes aloud.

``plan_answer`` is shared by every answerer: it applies the content filter, handles small talk, finds the
best sections and decides whether the question is in scope.  An answerer then words the reply: the
retrieval answerer speaks the section's best sentences; the LLM answerer (kiosk.engine.llm) writes one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.config import Config
from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken
from kiosk.engine.content_filter import CALM_REPLY, ContentFilter
from kiosk.engine.registry import Registry
from kiosk.engine.retrieval import Match, SectionRetriever, best_sentences
from kiosk.engine.smalltalk import small_talk
from kiosk.engine.stage import Answer, Answerer
from kiosk.exhibit import Exhibit


@dataclass
class AnswerPlan:
    status: str  # ok, out_of_scope, filtered
    topic: str | None
    emotion: Emotion
    matches: list[Match] = field(default_factory=list)
    # the reply when no wording is needed (small talk, out of scope, filtered) or when wording fails
    sentences: list[str] = field(default_factory=list)
    small_talk: bool = False
    retrieval_seconds: float = 0.0


def out_of_scope_reply(exhibit: Exhibit) -> str:
    return f"I'm sorry, I can only talk about {exhibit.title}: for example {exhibit.topics_phrase()}."


def plan_answer(
    question: str,
    exhibit: Exhibit,
    retriever: SectionRetriever,
    content_filter: ContentFilter,
    config: Config,
) -> AnswerPlan:
    if content_filter.blocks(question):
        return AnswerPlan("filtered", None, Emotion.NEUTRAL, sentences=[CALM_REPLY])
    canned = small_talk(question, exhibit)
    if canned is not None:
        return AnswerPlan("ok", None, canned[1], sentences=canned[0], small_talk=True)
    started = time.monotonic()
    matches = retriever.search(question, top_k=config.retrieval.top_k)
    elapsed = time.monotonic() - started
    if not matches or matches[0].score < config.retrieval.similarity_threshold:
        return AnswerPlan(
            "out_of_scope",
            None,
            Emotion.NEUTRAL,
            matches,
            [out_of_scope_reply(exhibit)],
            retrieval_seconds=elapsed,
        )
    best = matches[0]
    return AnswerPlan(
        "ok",
        best.section.id,
        best.section.tone,
        matches,
        best_sentences(best, config.answer.max_sentences),
        retrieval_seconds=elapsed,
    )


ANSWERERS: Registry[Answerer] = Registry("answer")


@ANSWERERS.register("retrieval")
class RetrievalAnswerer(Answerer):
    """Answers with the best section's own sentences: grounded by construction."""

    name = "retrieval"

    def __init__(
        self,
        config: Config,
        exhibit: Exhibit,
        retriever: SectionRetriever,
        device_count: Callable[[], int] | None = None,  # no model of its own: the retriever's device
    ) -> None:
        self.config = config
        self.exhibit = exhibit
        self.retriever = retriever
        self.device = retriever.device
        self.content_filter = ContentFilter(config.answer.blocklist)

    def load(self) -> None:
        pass  # the retriever is loaded by the engine

    def answer(self, question: str, cancel: CancelToken) -> Answer:
        plan = plan_answer(question, self.exhibit, self.retriever, self.content_filter, self.config)
        return Answer(
            status=plan.status,
            topic=plan.topic,
            emotion=plan.emotion,
            sentences=iter(plan.sentences),
            fallback=list(plan.sentences),
            info={
                "retrieval_seconds": plan.retrieval_seconds,
                "score": plan.matches[0].score if plan.matches else 0,
            },
        )
