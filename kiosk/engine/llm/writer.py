"""One answer being written: tokens become sentences, each checked before it is handed to the voice.

The content filter, echoes of the question or the instruction (dropped), grounding (content words must
overlap the notes; numbers and names must appear in them) and the claim check (one passage says it).  An
ungrounded sentence ends the answer; when no whole sentence was said the plan's sentences are spoken
instead.  The first sentence's opening clause is handed out as soon as it passes the checks on its own
(``first_clause_words``); the rest of that sentence follows only when the whole sentence and the rest each
pass them too, so nothing unchecked is ever spoken.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk.config import Config
from kiosk.emotion import Emotion
from kiosk.engine.cancel import CancelToken
from kiosk.engine.claims import ClaimChecker
from kiosk.engine.content_filter import CALM_REPLY, ContentFilter
from kiosk.engine.language import word_count
from kiosk.engine.llm.decoding import Decoder
from kiosk.engine.llm.grounding import (
    LIST_MARKER,
    SENTENCE_BOUNDARY,
    SENTENCE_END,
    Grounding,
    Verdict,
    normalised,
    strip_emotion_tags,
    tag_inside,
    words,
)
from kiosk.engine.llm.prompt import Prompt, PromptBuilder
from kiosk.engine.planner import MAX_WORDS, AnswerPlan
from kiosk.engine.stage import Answer

log = logging.getLogger(__name__)

# a repeated run of this many generated tokens ends the answer
REPEAT_NGRAM = 6
# a clause ends at a comma, semicolon or colon followed by a word (not "16, 1969" or "1,000")
# (nor "Washington, D.C.": the next word is lower case, or a capital and a lower-case letter)
CLAUSE_BREAK = re.compile(r"[,;:](?=\s+(?:[a-z]|[A-Z][a-z]))")
# the text so far ends a sentence after a lower-case word ("... Neil Armstrong." would wait for "2" in
# "3.2" and "U.S." for "Navy"): it is judged now rather than one token later
EAGER_END = re.compile(r"(?<=[a-z])[.!?][\"')\]]?$")
ABBREVIATIONS = frozenset("mr mrs ms dr st mt ft vs etc approx jr sr inc ltd co no e.g i.e a.m p.m".split())


@dataclass
class Turn:
    """One answer being generated: shared between the worker thread and the consumer generator."""

    question: str
    plan: AnswerPlan
    prompt: Prompt
    grounding: Grounding
    claims: ClaimChecker
    answer: Answer
    cancel: CancelToken
    # whether a sentence states what was asked ("who": a name); the first sentence must, or the notes answer
    answers: Callable[[str], bool] = lambda _: True
    stop: threading.Event = field(default_factory=threading.Event)
    out: queue.Queue[str | None] = field(default_factory=queue.Queue)
    spoken: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    # sentences of the reply said before the model goes on (the notes' first, past the budget)
    opening: tuple[str, ...] = ()
    # who says the first words, "model" or "notes" (past the first-piece budget): set once, under the lock
    first_words: str = ""
    _first_lock: threading.Lock = field(default_factory=threading.Lock)

    def claim_first_words(self, who: str) -> bool:
        """Whether ``who`` says the first words: the first to ask does, for the whole answer."""
        with self._first_lock:
            self.first_words = self.first_words or who
            return self.first_words == who

    @property
    def notes_took_over(self) -> bool:
        return self.first_words == "notes"


class SentenceWriter:
    """Writes one turn's answer into ``turn.out``: ``generate`` (under the model lock), then ``finish``."""

    def __init__(self, turn: Turn, config: Config, content_filter: ContentFilter) -> None:
        self.turn = turn
        self.config = config
        self.content_filter = content_filter
        self.info = turn.answer.info
        self.started = turn.started
        # pieces handed to the consumer: sentences, or a first clause and its rest
        self.given: list[str] = list(turn.opening)
        self.sentences: list[str] = list(turn.opening)  # whole sentences said: the repetition check, the cap
        self.tag: Emotion | None = None
        self.state: dict[str, Any] = {"stop": "eos"}
        self.tokens: list[int] = []

    # --- generating ----------------------------------------------------------------------------------

    def generate(self, decoder: Decoder, prompts: PromptBuilder) -> None:
        """Decode and judge until the answer ends; why it ended goes into ``info`` as ``stop_<reason>``."""
        cfg, turn = self.config, self.turn
        stop, consumed, head, tried = "", 0, 0, 0
        seen_ngrams: set[tuple[int, ...]] = set()
        deadline = self.started + cfg.llm.max_seconds
        prompt = turn.prompt
        for token in decoder.tokens(
            prompt.ids, cfg.llm.max_new_tokens, deadline, turn, self.state, prompt.prefix_tokens
        ):
            self.tokens.append(token)
            self.info["tokens"] = len(self.tokens)
            if _repeats(self.tokens, seen_ngrams):
                stop = "repetition"
                break
            text = prompts.decode(self.tokens)
            while not stop and (match := SENTENCE_BOUNDARY.search(text, consumed)) is not None:
                piece, consumed = text[consumed : match.start()], match.end()
                stop, head = self._judge(piece, head), 0
            if not stop and ends_sentence(text, consumed):
                stop, head, consumed = self._judge(text[consumed:], head), 0, len(text)
            if stop:
                break
            if cfg.llm.first_clause_words and not self.given and not head:
                head, tried = self._first_clause(text, consumed, tried)
            if not self.sentences and (why := self._doomed(text, consumed)):
                log.info("llm: first sentence stopped early (%s): %r", why, text[consumed:])
                stop = "ungrounded"
                break
        else:
            stop = "budget" if turn.notes_took_over else self.state["stop"]
            rest = prompts.decode(self.tokens)[consumed:]
            # an answer cut by a cap ends mid-sentence: say the rest only if it is a whole sentence
            whole = stop == "eos" or SENTENCE_END.search(strip_emotion_tags(rest)[0])
            if rest.strip() and stop != "cancelled" and whole:
                stop = self._judge(rest, head) or stop
        if not turn.notes_took_over:  # the consumer has recorded why, and may have finished already
            self.info[f"stop_{stop}"] = 1

    def finish(self) -> None:
        """The figures, the plan's sentences when nothing was said, the offer and the emotion; then the end.

        When the notes took over (the first-piece budget ran out) the answer is the consumer's: nothing is
        queued or recorded here, the turn may be over already."""
        info, plan, turn = self.info, self.turn.plan, self.turn
        if turn.notes_took_over:
            return
        elapsed = time.monotonic() - self.started
        info["tokens"] = len(self.tokens)
        info["generation_seconds"] = elapsed
        decode_seconds = elapsed - self.state.get("prompt_seconds", elapsed)
        info["prompt_seconds"] = self.state.get("prompt_seconds", 0.0)
        info["cached_tokens"] = self.state.get("cached_tokens", 0)
        info["drafted_tokens"] = self.state.get("drafted", 0)
        if len(self.tokens) > 1 and decode_seconds > 0:
            info["tokens_per_second"] = (len(self.tokens) - 1) / decode_seconds
        info["fallback"] = 1 if turn.opening else 0  # an opening is the notes' sentence
        if turn.cancel.cancelled or turn.stop.is_set():
            info["cancelled"] = 1
        elif len(self.sentences) == len(turn.opening) and not info.get("filtered_output"):
            # nothing said, or only a first clause whose sentence then failed: the sentences that answer
            # (after an opening, the notes' sentences that follow it)
            info["fallback"] = 1
            if not self.given:
                info["first_sentence_seconds"] = time.monotonic() - self.started
            for sentence in plan.sentences[len(turn.opening) :]:
                turn.out.put(sentence)
        info["model_sentences"] = len(self.sentences) - len(turn.opening)
        if plan.offer and not info.get("filtered_output") and not info.get("cancelled"):
            turn.out.put(plan.offer)
        if info.get("filtered_output"):
            turn.answer.emotion = Emotion.NEUTRAL
        elif self.tag is not None and not info["fallback"]:
            turn.answer.emotion = self.tag
        else:
            turn.answer.emotion = Emotion.normalise(plan.emotion)

    # --- judging -------------------------------------------------------------------------------------

    def _give(self, piece: str) -> None:
        if not self.given and not self.turn.claim_first_words("model"):
            return  # the budget ran out a moment ago: the notes answer, generation is being stopped
        if not self.given:
            self.info["first_sentence_seconds"] = time.monotonic() - self.started
            self.info["first_sentence_tokens"] = len(self.tokens)
        self.given.append(piece)
        self.turn.out.put(piece)

    def _cleaned(self, piece: str) -> str:
        text, emotion = strip_emotion_tags(piece)
        self.tag = emotion or self.tag
        return text.strip().lstrip("*#-• ").strip()

    def _checked(self, text: str) -> Verdict:
        """The grounding check, then the claim check: one passage of the notes must say it."""
        verdict = self.turn.grounding.check(text)
        if verdict.ok and not (claim := self.turn.claims.check(text, self.turn.question)).ok:
            log.info("llm: claim not said by any one passage (%s): %r", claim.reason, text)
            return Verdict(False, claim.reason, verdict.overlap)
        return verdict

    def _judge(self, piece: str, head: int = 0) -> str:
        """Check one sentence; '' to go on, else why the answer ends here.

        ``head``: the sentence's first characters were already spoken as a clause; the sentence, and the
        rest on its own, must pass the checks for the rest to be said.
        """
        if tag_inside(piece):
            log.info("llm: emotion tag inside a sentence: %r", piece)
            return "ungrounded"
        text = self._cleaned(piece)
        if not words(text) or LIST_MARKER.fullmatch(text):
            return ""
        if self.content_filter.blocks(text):
            self.info["filtered_output"] = 1
            self._give(CALM_REPLY)
            return "filtered"
        if any(normalised(text) == normalised(s) for s in self.sentences):
            return "repetition"
        verdict = self._checked(text)
        if verdict.ok and not self.sentences and not self.turn.answers(text):
            # "Who flew it?" -> "The Apollo 11 command module Columbia.": true, but no answer
            log.info("llm: first sentence does not state what was asked: %r", text)
            verdict = Verdict(False, "off_question", verdict.overlap)
        cap = self.config.answer.max_sentences
        if head:
            rest = self._cleaned(piece[head:])
            if not verdict.ok:
                log.info("llm: ungrounded sentence after its first clause (%s): %r", verdict.reason, text)
                return "ungrounded"
            if words(rest):
                after = self._checked(rest)
                if after.reason not in ("ok", "echo"):  # an echo adds no claim: say it with its clause
                    log.info("llm: ungrounded rest of a sentence (%s): %r", after.reason, rest)
                    return "ungrounded"
                self._give(rest)
            self.sentences.append(text)
            return "sentence_cap" if len(self.sentences) >= cap else ""
        if verdict.reason in ("echo", "question"):
            self.info["dropped"] = self.info.get("dropped", 0) + 1
            log.debug("llm: dropped %s sentence %r", verdict.reason, text)
            return ""
        if not verdict.ok:
            log.info("llm: ungrounded sentence (%s, overlap %.2f): %r", verdict.reason, verdict.overlap, text)
            return "ungrounded"
        if self.sentences and word_count(" ".join([*self.sentences, text, self.turn.plan.offer])) > MAX_WORDS:
            return "sentence_cap"  # a reply stays short: the visitor can ask for more
        self._give(text)
        self.sentences.append(text)
        return "sentence_cap" if len(self.sentences) >= cap else ""

    def _first_clause(self, text: str, start: int, tried: int) -> tuple[int, int]:
        """(where the spoken clause ends, how far breaks were tried) in the unfinished first sentence."""
        for match in CLAUSE_BREAK.finditer(text, max(start, tried)):
            end = match.end()
            tried = end
            head = text[start:end]
            if len(words(head)) < self.config.llm.first_clause_words or tag_inside(head):
                continue
            if strip_emotion_tags(head)[1]:
                continue
            clause = self._cleaned(head)
            if self.content_filter.blocks(clause) or LIST_MARKER.match(clause):
                continue  # the whole sentence gets the filter's reply
            if self._checked(clause).ok:
                self._give(clause)
                self.info["first_clause"] = 1
                return end - start, tried
        return 0, tried

    def _doomed(self, text: str, start: int) -> str:
        """Why the unfinished sentence will fail the checks already (a name or number not in the notes).

        Only whole words count (those before the last space); emotion tags are left out as ``_judge``
        leaves them out.  The first sentence is watched so: the notes are read out sooner.
        """
        cut = text.rfind(" ", start)
        if cut <= start:
            return ""
        beginning = text[start:cut]
        if tag_inside(beginning):
            return ""
        return self.turn.grounding.unsupported(strip_emotion_tags(beginning)[0].strip().lstrip("*#-• "))


def ends_sentence(text: str, start: int) -> bool:
    """``text[start:]`` is a whole sentence already: it ends with . ! or ? after a word that is no abbreviation."""
    match = EAGER_END.search(text, start)
    if match is None:
        return False
    before = text[start : match.start()].split()
    return len(before) >= 2 and before[-1].lower().lstrip("(\"'") not in ABBREVIATIONS


def _repeats(tokens: list[int], seen: set[tuple[int, ...]], n: int = REPEAT_NGRAM) -> bool:
    """The last ``n`` tokens already occurred earlier in the answer (a loop); ``seen`` carries the n-grams."""
    if len(tokens) < n:
        return False
    tail = tuple(tokens[-n:])
    if tail in seen:
        return True
    seen.add(tail)
    return False
