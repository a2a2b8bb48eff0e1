"""``kiosk exhibit check PACK``: what visitors will ask, and whether the kiosk answers it right, before they ask.

For each section it asks the questions a visitor would (the curator's suggested question, "tell me about"
the heading, and one question per sentence made from what the sentence states: "When did Rembrandt
finish the painting?" for a sentence with a year), plus the questions every exhibit gets, through the same
planner the kiosk answers with.  Each reply gets a verdict: **right** (it holds what the sentence states:
its year, number or name, or the sentence itself), **wrong** (an answer without it: another sentence
answered), **missed** ("my notes don't say") or **declined**.  A curator's own questions, one per line
with what a right reply holds (``questions.tsv`` in the pack, or ``--questions FILE``), are judged the
same way; an empty expectation means the notes should not answer.  The curator sees the gaps, and the
wrong answers, before visitors do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kiosk.config import Config
from kiosk.engine.language import IRREGULAR, STOPWORDS, numbers, words
from kiosk.engine.passages import Passage
from kiosk.engine.planner import AnswerPlanner
from kiosk.errors import KioskError
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
QUESTIONS_FILE = "questions.tsv"  # a curator's own questions, in the pack
_YEAR = re.compile(r"\b1[0-9]{3}\b|\b20[0-9]{2}\b")
_UNIT = re.compile(
    r"\b(?:metres?|meters?|feet|foot|inches|kilometres?|miles?|kilograms?|tonnes?|tons?|hours?|days?)\b"
)
_PREPOSITIONS = frozenset(
    "in on at from to for with by into over under about after before during of as".split()
)
_PAST_AUX = frozenset(("was", "were"))
_PERFECT = frozenset("has have had is are been being".split())
_NUMBER_WORDS = frozenset(
    "two three four five six seven eight nine ten eleven twelve twenty hundred dozens".split()
)
_CLAUSE = frozenset("we you they he she it which that who whom whose when where while and but".split())


@dataclass(frozen=True)
class Probe:
    question: str
    section: Section | None  # where its answer is in the notes (None: an every-exhibit question)
    expect: str | None  # a pattern a right reply matches; "" when the notes should not answer; None: unknown
    status: str
    answered_from: str | None  # the section the kiosk answered from
    reply: str

    @property
    def verdict(self) -> str:
        """right, wrong, missed, declined, or answered (an every-exhibit question: nothing to judge by)."""
        if self.expect == "":
            return "right" if self.status in ("unanswered", "out_of_scope") else "wrong"
        if self.status == "unanswered":
            return "missed"
        if self.status != "ok":
            return "declined"
        if self.expect is None:
            return "answered"
        return "right" if re.search(self.expect, self.reply, re.I) else "wrong"


def probe_question(passage: Passage) -> str:
    """A visitor's question that this sentence answers, in a visitor's words where the sentence allows:
    "When did Rembrandt finish the painting?", "What happened in 1939?", "How many guilders?", "Tell me
    about the drummer", "Tell me about Banninck Cocq"; else one made from its key words."""
    tokens = words(passage.text)
    year = _YEAR.search(passage.text)
    if year:
        return _when_question(tokens) or f"What happened in {year.group(0)}?"
    counted = _counted(tokens)
    if counted:
        return f"How many {counted}?"
    if numbers(tokens) and _UNIT.search(passage.text):
        return "How big is it?"
    subject = _subject(tokens)
    if subject:
        return f"Tell me about {subject}"
    keywords = [t for t in tokens[1:] if t.lower() not in STOPWORDS and not t[0].isdigit()][:4]
    return f"Tell me about {' '.join(keywords) or passage.section.heading}"


def _counted(tokens: list[str]) -> str | None:
    """ "some 1,600 guilders" -> "guilders": what a number in the sentence counts (a plural noun)."""
    for at, token in enumerate(tokens[:-1]):
        following = tokens[at + 1]
        if (token[0].isdigit() or token.lower() in _NUMBER_WORDS) and following.lower().endswith("s"):
            if following.lower() not in STOPWORDS and following.isalpha():
                return following.lower()
    return None


def _subject(tokens: list[str]) -> str | None:
    """What the sentence is about, when it opens with it: "A drummer beats..." -> "the drummer",
    "Captain Banninck Cocq, dressed in black..." -> "Captain Banninck Cocq"."""
    if not tokens:
        return None
    if tokens[0].lower() in ("the", "a", "an") and len(tokens) > 2 and tokens[1][0].isupper():
        run = tokens[1:5]
        end = next((i for i, t in enumerate(run) if not t[0].isupper()), len(run))
        return " ".join(["the", *run[:end]])  # "The Night Watch has survived" -> "the Night Watch"
    if tokens[0].lower() in ("the", "a", "an") and len(tokens) > 2 and tokens[1].isalpha():
        noun = tokens[1]
        if tokens[2][0].islower() and tokens[2].lower() not in STOPWORDS and not _past(tokens[2].lower()):
            if not tokens[2].endswith("s") or tokens[2].endswith("ss"):
                noun = f"{tokens[1]} {tokens[2]}"  # "the small girl"; not "the drummer beats"
        return f"the {noun}" if noun.lower() not in STOPWORDS else None
    run = []
    for token in tokens:
        if not token[0].isupper() or token.lower() in STOPWORDS:
            break
        run.append(token)
    return " ".join(run) if len(run) >= 2 else None


def _when_question(tokens: list[str]) -> str | None:
    """ "The lighthouse was finished in 1810" -> "When was the lighthouse finished?"; "Rembrandt finished
    the painting in 1642" -> "When did Rembrandt finish the painting?"; None for other shapes."""
    for at, token in enumerate(tokens[:8]):
        lower = token.lower()
        if at == 0 or lower in STOPWORDS and lower not in _PAST_AUX:
            continue
        subject = tokens[:at]
        if any(t[0].isdigit() or t.lower() in _PERFECT for t in subject):
            return None  # "it has been attacked": no "when did" question without twisting it
        first = subject[0].lower() if subject[0].lower() in STOPWORDS else subject[0]  # "The" -> "the"
        subject_text = " ".join([first, *subject[1:]])
        if lower in _PAST_AUX and at + 1 < len(tokens) and _past(tokens[at + 1].lower()):
            return f"When {lower} {subject_text} {tokens[at + 1].lower()}?"
        base = _past(lower)
        if base:
            rest = []
            for t in tokens[at + 1 : at + 5]:
                if t.lower() in _PREPOSITIONS or t.lower() in _CLAUSE or t[0].isdigit():
                    break
                rest.append(t)
            return " ".join(["When did", subject_text, base, *rest]) + "?"
        if lower not in STOPWORDS and not token[0].isupper() and at >= 3:
            return None  # past the subject without finding its verb
    return None


# irregular past forms a sentence may use ("built"), from the planner's table; nouns and "-ing" forms left out
_IRREGULAR_PAST = {
    past: base
    for past, base in IRREGULAR.items()
    if past != base
    and not past.endswith(("ing", "s"))
    and past not in ("dead", "death", "men", "women", "feet")
}
# a regular verb whose stem needs its "e" back: "carved" -> "carve", "named" -> "name", "acquired" -> "acquire"
_TAKES_E = ("v", "z", "c", "ir", "ur", "at", "os", "us", "am", "id", "ad", "ik", "ok", "ag", "ng", "dg", "rg")
_NO_E = ("eat", "oat", "ook", "ing", "ong", "ung", "air", "eir", "oir", "our")


def _past(token: str) -> str | None:
    """The base form of a past-tense verb ("finished" -> "finish", "built" -> "build"), else None."""
    if token in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[token]
    if token.endswith("ied") and len(token) > 5:
        return token[:-3] + "y"
    if not token.endswith("ed") or len(token) <= 4:
        return None
    stem = token[:-2]
    if len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
        return stem[:-1]  # "stopped" -> "stop"
    if stem.endswith(_TAKES_E) and not stem.endswith(_NO_E) or token in ("created", "used"):
        return stem + "e"
    return stem


def _fact(passage: Passage, frequency: dict[str, int]) -> str:
    """What a reply must hold to have said this sentence: its year, a number, a name, or its opening."""
    text = passage.text
    if year := _YEAR.search(text):
        return rf"\b{year.group(0)}\b"
    tokens = words(text)
    for token in tokens:
        if token[0].isdigit() or token.lower() in _NUMBER_WORDS:
            return rf"\b{re.escape(token)}\b"
    named = [t for i, t in enumerate(tokens) if i and t[0].isupper() and t.lower() not in STOPWORDS]
    if named:
        return re.escape(min(named, key=lambda t: frequency.get(t.lower(), 0)))
    return re.escape(" ".join(text.split()[:6]))


def read_questions(path: Path) -> list[tuple[str, str]]:
    """A curator's questions: ``question<TAB>what a right reply holds`` a line; '#' starts a comment."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KioskError(f"exhibit check: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise KioskError(f"exhibit check: {path} is not UTF-8 text") from None
    asked = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        question, _, expect = line.partition("\t")
        try:
            re.compile(expect)
        except re.error as exc:
            raise KioskError(f"exhibit check: {path}:{number}: not a pattern: {exc}") from None
        asked.append((question.strip(), expect.strip()))
    return asked


def check_exhibit(planner: AnswerPlanner, own: list[tuple[str, str]] = ()) -> list[Probe]:
    probes: list[Probe] = []

    def ask(question: str, section: Section | None, expect: str | None) -> None:
        planner.reset()
        plan = planner.plan(question)
        probes.append(Probe(question, section, expect, plan.status, plan.topic, " ".join(plan.spoken)))

    frequency = planner.index.frequency
    for section in planner.exhibit.sections:
        passages = planner.index.in_section(section.id)
        opening = _fact(passages[0], frequency) if passages else None
        if section.question:
            ask(section.question, section, opening)
        ask(f"Tell me about {section.heading.lower()}", section, opening)
        for passage in passages:
            ask(probe_question(passage), section, _fact(passage, frequency))
    for question in EVERY_EXHIBIT:
        ask(question, None, None)
    for question, expect in own:
        ask(question, None, expect)
    return probes


_MARKS = {"right": "ok   ", "answered": "?    ", "wrong": "WRONG", "missed": "--   ", "declined": "--   "}


def report(probes: list[Probe], title: str) -> str:
    lines = [f"{title}: what visitors may ask, and whether the kiosk answers it right"]
    by_section: dict[str, list[Probe]] = {}
    for probe in probes:
        by_section.setdefault(
            probe.section.heading if probe.section else "(every exhibit, and your questions)", []
        ).append(probe)
    for heading, group in by_section.items():
        right = sum(p.verdict == "right" for p in group)
        lines.append(f"\n## {heading}: {right}/{len(group)} right")
        for p in group:
            where = f" [from {p.answered_from}]" if p.verdict == "wrong" and p.answered_from else ""
            lines.append(f"  {_MARKS[p.verdict]} {p.question!r} -> {p.status}{where}: {p.reply[:110]}")
    counts = {
        v: sum(p.verdict == v for p in probes) for v in ("right", "wrong", "missed", "declined", "answered")
    }
    lines.append(
        f"\n{counts['right']}/{len(probes)} right, {counts['wrong']} wrong, {counts['missed']} missed, "
        f"{counts['declined']} declined, {counts['answered']} answered with nothing to judge them by"
    )
    return "\n".join(lines)


def exhibit_check_command(config: Config, questions: Path | None = None) -> int:
    from kiosk.engine.answer import make_planner
    from kiosk.engine.device import resolve_device
    from kiosk.engine.retrieval import SectionRetriever
    from kiosk.exhibit import load_exhibit

    exhibit = load_exhibit(config.exhibit.path)
    own_file = questions or (exhibit.folder / QUESTIONS_FILE)  # read first: a bad file stops before any model
    own = read_questions(own_file) if questions is not None or own_file.is_file() else []
    retriever = SectionRetriever(
        exhibit,
        resolve_device(config.retrieval.device, lambda: 0),
        runtime=config.retrieval.runtime,
        cache_dir=config.cache_dir,
    )
    retriever.load()
    probes = check_exhibit(make_planner(config, exhibit, retriever), own)
    print(report(probes, exhibit.title))
    return 0
