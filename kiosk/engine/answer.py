"""The answerers' registry, and the retrieval answerer: the sentences of the notes that answer the question.

What a question gets is decided by ``kiosk.engine.planner.AnswerPlanner``, shared by every answerer.  The
retrieval answerer speaks the plan as it is: the notes' own sentences (grounded by construction), an
honest "my notes don't say", or a polite decline, then the offer.  The LLM answerer
(kiosk.engine.llm) words the same plan, and falls back to it.
"""

from __future__ import annotations

from collections.abc import Callable

from kiosk.config import Config
from kiosk.engine import visitor_language
from kiosk.engine.cancel import CancelToken
from kiosk.engine.content_filter import ContentFilter
from kiosk.engine.planner import AnswerPlan, AnswerPlanner
from kiosk.engine.registry import Registry
from kiosk.engine.retrieval import SectionRetriever
from kiosk.engine.stage import Answer, Answerer
from kiosk.exhibit import Exhibit

__all__ = [
    "ANSWERERS",
    "PlannedAnswerer",
    "RetrievalAnswerer",
    "make_planner",
    "plan_info",
]

ANSWERERS: Registry[Answerer] = Registry("answer")


def make_planner(config: Config, exhibit: Exhibit, retriever: SectionRetriever) -> AnswerPlanner:
    if retriever.passages is None or retriever.passages.exhibit.folder != exhibit.folder:
        retriever.index(exhibit)
    assert retriever.passages is not None
    visitor_language.load()  # before the first visitor, not during their question
    return AnswerPlanner(exhibit, retriever.passages, ContentFilter(config.answer.blocklist), config)


def plan_info(plan: AnswerPlan) -> dict[str, float]:
    return {"retrieval_seconds": plan.retrieval_seconds, "score": plan.score}


def llm_wording(info: dict[str, float]) -> str:
    """Who worded an LLM answer (one of ``events.LLM_WORDINGS``), from its ``info``; "" when no model was
    asked: the retrieval answerer, small talk and declines, a cancelled turn."""
    if info.get("llm_loading"):
        return "loading"
    if "prompt_tokens" not in info or info.get("cancelled"):
        return ""
    if info.get("oom") or info.get("error"):
        return "error"
    if not info.get("fallback") and not info.get("filtered_output"):
        return "model"
    return "budget" if info.get("stop_budget") else "checks"


class PlannedAnswerer(Answerer):
    """An answerer over the shared planner: it owns one visitor's conversation, committed turn by turn."""

    def __init__(self, config: Config, exhibit: Exhibit, retriever: SectionRetriever) -> None:
        self.config = config
        self.retriever = retriever
        self._exhibit = exhibit
        self._planner: AnswerPlanner | None = None

    @property
    def exhibit(self) -> Exhibit:
        return self._exhibit

    @exhibit.setter
    def exhibit(self, exhibit: Exhibit) -> None:  # a reloaded pack: plan over its notes from now on
        self._exhibit = exhibit
        self._planner = None

    @property
    def planner(self) -> AnswerPlanner:
        if self._planner is None:
            self._planner = make_planner(self.config, self._exhibit, self.retriever)
        return self._planner

    def reset_session(self) -> None:
        self.planner.reset()

    def commit(self, answer: Answer) -> None:
        if answer.plan is not None:
            self.planner.commit(answer.plan)


@ANSWERERS.register("retrieval")
class RetrievalAnswerer(PlannedAnswerer):
    """Answers with the notes' own sentences: grounded by construction."""

    name = "retrieval"

    def __init__(
        self,
        config: Config,
        exhibit: Exhibit,
        retriever: SectionRetriever,
        device_count: Callable[[], int] | None = None,  # no model of its own: the retriever's device
    ) -> None:
        super().__init__(config, exhibit, retriever)
        self.device = retriever.device

    def load(self) -> None:
        self.planner  # noqa: B018 - the retriever is loaded by the engine; index its sentences now

    def answer(self, question: str, cancel: CancelToken) -> Answer:
        plan = self.planner.plan(question)
        return Answer(
            status=plan.status,
            topic=plan.topic,
            emotion=plan.emotion,
            sentences=iter(plan.spoken),
            fallback=list(plan.sentences),
            info=plan_info(plan),
            offer=plan.offer,
            plan=plan,
        )
