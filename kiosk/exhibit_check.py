"""``kiosk exhibit check PACK``: what visitors will ask, and whether the notes answer it, before they ask.

For each section it asks the questions a visitor would (the curator's suggested question, "tell me about"
the heading, and one question per sentence made from what the sentence states: a date, a number, a
name), plus the questions every exhibit gets ("how old is it?", "who made it?", "why is it famous?"),
through the same planner the kiosk answers with, and prints which are answered from that section, which
from another one, and which get "my notes don't say".  A curator sees the gaps before visitors do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiosk.config import Config
from kiosk.engine.language import STOPWORDS, names, numbers, words
from kiosk.engine.passages import Passage
from kiosk.engine.planner import AnswerPlanner
from kiosk.exhibit import Section

EVERY_EXHIBIT = (
    "What is this?",
    "How old is it?",
    "Who made it?",
    "Why is it famous?",
    "How big is it?",
    "Where is it from?",
    "How much did it cost?",
)
_YEAR = re.compile(r"\b1[0-9]{3}\b|\b20[0-9]{2}\b")
_UNIT = re.compile(r"\b(?:metres?|meters?|feet|foot|inches|kilometres?|miles?|kilograms?|tonnes?|tons?|hours?|days?)\b")


@dataclass(frozen=True)
class Probe:
    question: str
    section: Section | None  # where its answer is in the notes (None: an every-exhibit question)
    status: str
    answered_from: str | None  # the section the kiosk answered from
    reply: str

    @property
    def ok(self) -> bool:
        if self.section is None:
            return self.status == "ok"
        return self.status == "ok" and self.answered_from == self.section.id


def probe_question(passage: Passage) -> str:
    """A visitor's question that this sentence answers, made from what it states."""
    tokens = words(passage.text)
    keywords = [t for t in tokens[1:] if t.lower() not in STOPWORDS and not t[0].isdigit()][:4]
    about = " ".join(keywords) or passage.section.heading
    if _YEAR.search(passage.text):
        return f"When: {about}?"
    if numbers(tokens) and _UNIT.search(passage.text):
        return f"How much: {about}?"
    if numbers(tokens):
        return f"How many: {about}?"
    if names(tokens):
        return f"Who: {about}?"
    return f"Tell me about {about}"


def check_exhibit(planner: AnswerPlanner) -> list[Probe]:
    probes: list[Probe] = []

    def ask(question: str, section: Section | None) -> None:
        planner.reset()
        plan = planner.plan(question)
        probes.append(Probe(question, section, plan.status, plan.topic, " ".join(plan.spoken)))

    for section in planner.exhibit.sections:
        if section.question:
            ask(section.question, section)
        ask(f"Tell me about {section.heading.lower()}", section)
        for passage in planner.index.in_section(section.id):
            ask(probe_question(passage), section)
    for question in EVERY_EXHIBIT:
        ask(question, None)
    return probes


def report(probes: list[Probe], title: str) -> str:
    lines = [f"{title}: what visitors may ask, and what the kiosk answers"]
    by_section: dict[str, list[Probe]] = {}
    for probe in probes:
        by_section.setdefault(probe.section.heading if probe.section else "(every exhibit)", []).append(probe)
    for heading, group in by_section.items():
        answered = sum(p.ok for p in group)
        lines.append(f"\n## {heading}: {answered}/{len(group)} answered from here")
        for p in group:
            mark = "ok " if p.ok else "-- "
            where = f" [from {p.answered_from}]" if p.answered_from and not p.ok else ""
            lines.append(f"  {mark}{p.question!r} -> {p.status}{where}: {p.reply[:110]}")
    total = sum(p.ok for p in probes)
    lines.append(f"\n{total}/{len(probes)} answered where the notes say it")
    return "\n".join(lines)


def exhibit_check_command(config: Config) -> int:
    from kiosk.engine.answer import make_planner
    from kiosk.engine.device import resolve_device
    from kiosk.engine.retrieval import SectionRetriever
    from kiosk.exhibit import load_exhibit

    exhibit = load_exhibit(config.exhibit.path)
    retriever = SectionRetriever(
        exhibit,
        resolve_device(config.retrieval.device, lambda: 0),
        runtime=config.retrieval.runtime,
        cache_dir=config.cache_dir,
    )
    retriever.load()
    probes = check_exhibit(make_planner(config, exhibit, retriever))
    print(report(probes, exhibit.title))
    return 0
