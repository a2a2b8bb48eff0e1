"""The LLM answerer: a local chat model words a grounded answer from the retrieved notes, streamed."""

from __future__ import annotations

import copy
import inspect
import logging
import queue
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.emotion import Emotion
from kiosk.engine.answer import ANSWERERS, PlannedAnswerer, plan_info
from kiosk.engine.cancel import CancelToken
from kiosk.engine.claims import ClaimChecker
from kiosk.engine.content_filter import CALM_REPLY, ContentFilter
from kiosk.engine.device import (
    MemoryProbe,
    free_accelerator_memory,
    is_out_of_memory,
    resolve_device,
    trim_heap,
)
from kiosk.engine.language import word_count
from kiosk.engine.llm import int4
from kiosk.engine.llm.fast import FastLlama, KeyValues, unsupported
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
from kiosk.engine.llm.loading import load_model
from kiosk.engine.llm.model import (
    EMBEDDED_MODEL,
    EMBEDDED_NAME,
    offline,
    one_line,
    prepare_model,
    torch_cuda_device_count,
)
from kiosk.engine.planner import MAX_WORDS, AnswerPlan
from kiosk.engine.retrieval import Match, SectionRetriever
from kiosk.engine.stage import Answer
from kiosk.errors import ModelLoadError
from kiosk.exhibit import Exhibit

log = logging.getLogger(__name__)

# a repeated run of this many generated tokens ends the answer
REPEAT_NGRAM = 6
# how often the consumer looks at the cancel token while it waits for a sentence
POLL_SECONDS = 0.05
# a further retrieved section joins the notes when it scores within this of the best one
SECTION_MARGIN = 0.2

# a clause ends at a comma, semicolon or colon followed by a word (not "16, 1969" or "1,000")
CLAUSE_BREAK = re.compile(r"[,;:](?=\s+[A-Za-z])")
# the text so far ends a sentence after a lower-case word ("... Neil Armstrong." would wait for "2" in
# "3.2" and "U.S." for "Navy"): it is judged now rather than one token later
EAGER_END = re.compile(r"(?<=[a-z])[.!?][\"')\]]?$")
ABBREVIATIONS = frozenset("mr mrs ms dr st mt ft vs etc approx jr sr inc ltd co no e.g i.e a.m p.m".split())


@dataclass(frozen=True)
class _Warmup:
    cancel: CancelToken | None
    stop: threading.Event


@dataclass
class _Turn:
    """One answer being generated: shared between the worker thread and the consumer generator."""

    question: str
    plan: AnswerPlan
    prompt_ids: Any  # a (1, n) tensor on the device
    prefix_tokens: int  # the first tokens: the system message, whose KV cache is kept across turns
    grounding: Grounding
    claims: ClaimChecker
    answer: Answer
    cancel: CancelToken
    stop: threading.Event = field(default_factory=threading.Event)
    out: queue.Queue[str | None] = field(default_factory=queue.Queue)
    spoken: list[str] = field(default_factory=list)


@ANSWERERS.register("llm")
class LlmAnswerer(PlannedAnswerer):
    """Words a grounded answer from the retrieved notes with a local chat model, sentence by sentence.

    ``answer()`` returns at once; the returned ``Answer.sentences`` starts a worker thread on first use and
    yields each checked sentence as soon as it is complete.  ``answer.info`` and ``answer.emotion`` are
    final once ``sentences`` is exhausted: tokens, prompt_tokens, tokens_per_second, prompt_seconds,
    first_sentence_seconds, generation_seconds, fallback (1: the retrieved sentences were spoken instead),
    dropped (sentences left out as echoes), the flags oom, error, filtered_output, cancelled, canned
    (no generation: small talk, out of scope, filtered question), and stop_<reason> with reason one of
    eos, max_tokens, max_seconds, sentence_cap, repetition, ungrounded, filtered, cancelled.

    The model's own emotion tag wins; without one the best section's curated tone is used.  (SmolLM2-135M
    rarely writes the tag it is asked for, so with it the tone nearly always comes from the notes.)

    Every sentence must pass the grounding check and the claim check (one passage of the notes says it);
    when the first fails, the planner's extractive reply is spoken instead, never a whole section.
    """

    name = EMBEDDED_NAME

    def __init__(
        self,
        config: Config,
        exhibit: Exhibit,
        retriever: SectionRetriever,
        device_count: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(config, exhibit, retriever)
        # the CUDA devices torch sees (a CPU build of torch sees none, whatever the machine has)
        self._device = resolve_device(config.llm.device, device_count or torch_cuda_device_count)
        self.device = self._device.torch
        if config.llm.model.strip() != EMBEDDED_MODEL:
            self.name = Path(config.llm.model).name or config.llm.model
        self.content_filter = ContentFilter(config.answer.blocklist)
        self.model_path: Path | None = None
        self.load_seconds = 0.0
        self.dtype = ""
        self.packed_projections = 0  # projections the fast decoder multiplies as 4-bit
        self.oom_count = 0
        self.error_count = 0
        self._model: Any = None
        self._tokenizer: Any = None
        self._stop_ids: set[int] = set()
        # extra arguments of every forward call: only the last position's logits are needed
        self._forward_kwargs: dict[str, Any] = {}
        self._fast: FastLlama | None = None  # the lean decoder, when the model has one that agrees
        self._history: deque[tuple[str, str]] = deque(maxlen=max(0, config.answer.history_turns))
        self._history_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one generation at a time
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer is not safe across threads
        # system-message token ids -> their KV cache (read and written under the model lock)
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    # --- life cycle --------------------------------------------------------------------------------

    def load(self) -> None:
        started = time.monotonic()
        path = prepare_model(self.config)
        offline()
        import torch
        from transformers import AutoTokenizer

        probe = MemoryProbe(self._device)
        dtype = self._device.torch_dtype(self.config.llm.precision)
        llm = self.config.llm
        # the projections of a 4-bit GGUF, found in its float32 conversion, multiplied as 4-bit
        pack = llm.fast_decode and llm.int4 and dtype == torch.bfloat16 and not self._device.is_cuda
        pack = pack and int4.kernel_available()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model, packed = load_model(path, dtype, pack)
            model.to(self._device.torch)
        except Exception as exc:
            if is_out_of_memory(exc):
                free_accelerator_memory()
            raise ModelLoadError(f"llm: cannot load {path}: {one_line(exc)}") from None
        model.eval()
        self.dtype = str(dtype).removeprefix("torch.")
        self._tokenizer, self._model, self.model_path = tokenizer, model, path
        self._stop_ids = _stop_token_ids(tokenizer, model)
        try:
            keeps = "logits_to_keep" in inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            keeps = False
        self._forward_kwargs = {"logits_to_keep": 1} if keeps else {}
        ids = self._encode(self._prompt_text([{"role": "user", "content": "Hello"}]))
        self._fast = self._fast_decoder(model, ids, packed) if self.config.llm.fast_decode else None
        with torch.inference_mode():  # warm up: the first visitor should not pay for lazy initialisation
            warm = _Warmup(None, threading.Event())
            for _ in self._tokens(ids, 2, time.monotonic() + 30.0, warm, {}):
                pass
            if self.config.llm.warm_prefixes:
                self._warm_prefixes()
        self.memory_bytes = probe.used()
        self.load_seconds = time.monotonic() - started
        log.info("llm: %s on %s in %.2f s", self.name, self.device, self.load_seconds)

    def _fast_decoder(self, model: Any, ids: Any, packed: dict[str, int4.Int4Weight]) -> FastLlama | None:
        why = unsupported(model)
        if not why:
            try:
                fast = FastLlama(model, packed)
                why = fast.verify(model, ids.to(self._device.torch))
            except Exception as exc:  # a model that looks like Llama but is not quite: transformers decodes
                why = one_line(exc)
            if not why:
                log.info(
                    "llm: the fast decoder (%s, %d projections 4-bit) agrees with transformers; using it",
                    self.dtype,
                    len(packed),
                )
                self.packed_projections = len(packed)
                return fast
        log.info("llm: decoding with transformers (fast decoder: %s)", why)
        return None

    def _warm_prefixes(self) -> None:
        """Compute the system message of each section alone, the usual prompt, before the first visitor."""
        started = time.monotonic()
        room = self.config.llm.prefix_cache
        for section in self.exhibit.sections[:room]:
            plan = AnswerPlan("ok", section.id, section.tone, [Match(section, 1.0, ())])
            ids, prefix, _, _ = self._build_prompt(section.question or section.heading, plan, history=[])
            if prefix:
                self._prefix_past(ids[:, :prefix].to(self._device.torch), self._fast)
        log.info("llm: %d system prompts computed in %.2f s", len(self._prefixes), time.monotonic() - started)

    def close(self) -> None:
        self._prefixes = OrderedDict()
        self._fast = None
        self._model = None
        self._tokenizer = None
        free_accelerator_memory()

    def reset_session(self) -> None:
        super().reset_session()
        with self._history_lock:
            self._history.clear()

    # --- a turn ------------------------------------------------------------------------------------

    def answer(self, question: str, cancel: CancelToken) -> Answer:
        plan = self.planner.plan(question)
        info = plan_info(plan)
        if plan.status != "ok" or plan.small_talk or self._model is None or not plan.matches:
            info["canned"] = 1
            if plan.status == "ok" and not plan.small_talk:  # not loaded: the notes' own sentences
                info["fallback"] = 1
            return Answer(
                plan.status,
                plan.topic,
                plan.emotion,
                iter(plan.spoken),
                list(plan.sentences),
                info,
                offer=plan.offer,
                plan=plan,
            )
        answer = Answer(
            plan.status, plan.topic, plan.emotion, iter(()), list(plan.sentences), info, plan.offer, plan
        )
        question = plan.question.text if plan.question is not None else question
        prompt_ids, prefix, notes, system = self._build_prompt(question, plan)
        info["prompt_tokens"] = int(prompt_ids.shape[-1])
        grounding = Grounding(
            notes,
            question=question,
            scaffold=system.replace(notes, " "),
            allowed=f"{self.exhibit.title}. {self.exhibit.persona} {self.exhibit.greeting}",
            min_overlap=self.config.llm.min_note_overlap,
        )
        claims = ClaimChecker(self.planner.index.passages, allowed=f"{self.exhibit.title}. {self.exhibit.persona}")
        turn = _Turn(question, plan, prompt_ids, prefix, grounding, claims, answer, cancel)
        answer.sentences = self._consume(turn)
        return answer

    def _consume(self, turn: _Turn) -> Iterator[str]:
        worker = threading.Thread(target=self._produce, args=(turn,), name="llm-answer", daemon=True)
        worker.start()
        try:
            while True:
                try:
                    sentence = turn.out.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if turn.cancel.cancelled:
                        turn.answer.info["cancelled"] = 1
                        return
                    if not worker.is_alive() and turn.out.empty():
                        return  # the worker died without a word (a bug): end rather than hang
                    continue
                if sentence is None or turn.cancel.cancelled:
                    if turn.cancel.cancelled:
                        turn.answer.info["cancelled"] = 1
                    return
                turn.spoken.append(sentence)
                yield sentence
        finally:
            turn.stop.set()
            said = [s for s in turn.spoken if s != turn.plan.offer]  # the offer is the planner's, not the model's
            if said and not turn.answer.info.get("filtered_output"):
                with self._history_lock:
                    self._history.append((turn.question, " ".join(said)))

    def _produce(self, turn: _Turn) -> None:
        """The worker: generate, check and queue sentences; fall back to the notes when that fails.

        The first sentence's opening clause is handed out as soon as it is complete and passes the checks
        on its own (``first_clause_words``); the rest of that sentence follows only when the whole
        sentence and the rest each pass them too, so nothing unchecked is ever spoken.
        """
        import torch

        info, plan, answer, cfg = turn.answer.info, turn.plan, turn.answer, self.config
        started = time.monotonic()
        given: list[str] = []  # pieces handed to the consumer: sentences, or a first clause and its rest
        sentences: list[str] = []  # whole sentences said, for the repetition check and the cap
        tag: Emotion | None = None
        state: dict[str, Any] = {"stop": "eos"}
        tokens: list[int] = []
        clause_words = cfg.llm.first_clause_words

        def give(piece: str) -> None:
            if not given:
                info["first_sentence_seconds"] = time.monotonic() - started
                info["first_sentence_tokens"] = len(tokens)
            given.append(piece)
            turn.out.put(piece)

        def cleaned(piece: str) -> str:
            nonlocal tag
            text, emotion = strip_emotion_tags(piece)
            tag = emotion or tag
            return text.strip().lstrip("*#-• ").strip()

        def checked(text: str) -> Verdict:
            """The grounding check, then the claim check: one passage of the notes must say it."""
            verdict = turn.grounding.check(text)
            if verdict.ok and not (claim := turn.claims.check(text, turn.question)).ok:
                log.info("llm: claim not said by any one passage (%s): %r", claim.reason, text)
                return Verdict(False, claim.reason, verdict.overlap)
            return verdict

        def judge(piece: str, head: int = 0) -> str:
            """Check one sentence; '' to go on, else why the answer ends here.

            ``head``: the sentence's first characters were already spoken as a clause; the sentence, and
            the rest on its own, must pass the checks for the rest to be said.
            """
            if tag_inside(piece):
                log.info("llm: emotion tag inside a sentence: %r", piece)
                return "ungrounded"
            text = cleaned(piece)
            if not words(text) or LIST_MARKER.fullmatch(text):
                return ""
            if self.content_filter.blocks(text):
                info["filtered_output"] = 1
                give(CALM_REPLY)
                return "filtered"
            if any(normalised(text) == normalised(s) for s in sentences):
                return "repetition"
            verdict = checked(text)
            if head:
                rest = cleaned(piece[head:])
                if not verdict.ok:
                    log.info("llm: ungrounded sentence after its first clause (%s): %r", verdict.reason, text)
                    return "ungrounded"
                if words(rest):
                    after = checked(rest)
                    if after.reason not in ("ok", "echo"):  # an echo adds no claim: say it with its clause
                        log.info("llm: ungrounded rest of a sentence (%s): %r", after.reason, rest)
                        return "ungrounded"
                    give(rest)
                sentences.append(text)
                return "sentence_cap" if len(sentences) >= cfg.answer.max_sentences else ""
            if verdict.reason in ("echo", "question"):
                info["dropped"] = info.get("dropped", 0) + 1
                log.debug("llm: dropped %s sentence %r", verdict.reason, text)
                return ""
            if not verdict.ok:
                log.info(
                    "llm: ungrounded sentence (%s, overlap %.2f): %r", verdict.reason, verdict.overlap, text
                )
                return "ungrounded"
            if sentences and word_count(" ".join([*sentences, text, plan.offer])) > MAX_WORDS:
                return "sentence_cap"  # a reply stays short: the visitor can ask for more
            give(text)
            sentences.append(text)
            return "sentence_cap" if len(sentences) >= cfg.answer.max_sentences else ""

        def first_clause(text: str, start: int, tried: int) -> tuple[int, int]:
            """(where the spoken clause ends, how far breaks were tried) in the unfinished first sentence."""
            for match in CLAUSE_BREAK.finditer(text, max(start, tried)):
                end = match.end()
                tried = end
                head = text[start:end]
                if len(words(head)) < clause_words or tag_inside(head) or strip_emotion_tags(head)[1]:
                    continue
                clause = cleaned(head)
                if self.content_filter.blocks(clause) or LIST_MARKER.match(clause):
                    continue  # the whole sentence gets the filter's reply
                if checked(clause).ok:
                    give(clause)
                    info["first_clause"] = 1
                    return end - start, tried
            return 0, tried

        def doomed(text: str, start: int) -> str:
            """Why the unfinished sentence will fail the checks already (a name or number not in the notes).

            Only whole words count (those before the last space); emotion tags are left out as ``judge``
            leaves them out.  The first sentence is watched so: the notes are read out sooner.
            """
            cut = text.rfind(" ", start)
            if cut <= start:
                return ""
            beginning = text[start:cut]
            if tag_inside(beginning):
                return ""
            return turn.grounding.unsupported(strip_emotion_tags(beginning)[0].strip().lstrip("*#-• "))

        try:
            with self._model_lock, torch.inference_mode():
                if self._model is None:
                    raise RuntimeError("the model was closed")
                stop, consumed, head, tried = "", 0, 0, 0
                seen_ngrams: set[tuple[int, ...]] = set()
                deadline = started + cfg.llm.max_seconds
                for token in self._tokens(
                    turn.prompt_ids, cfg.llm.max_new_tokens, deadline, turn, state, turn.prefix_tokens
                ):
                    tokens.append(token)
                    info["tokens"] = len(tokens)
                    if _repeats(tokens, seen_ngrams):
                        stop = "repetition"
                        break
                    text = self._decode(tokens)
                    while not stop and (match := SENTENCE_BOUNDARY.search(text, consumed)) is not None:
                        piece, consumed = text[consumed : match.start()], match.end()
                        stop, head = judge(piece, head), 0
                    if not stop and _ends_sentence(text, consumed):
                        stop, head, consumed = judge(text[consumed:], head), 0, len(text)
                    if stop:
                        break
                    if clause_words and not given and not head:
                        head, tried = first_clause(text, consumed, tried)
                    if not sentences and (why := doomed(text, consumed)):
                        log.info("llm: first sentence stopped early (%s): %r", why, text[consumed:])
                        stop = "ungrounded"
                        break
                else:
                    stop = state["stop"]
                    rest = self._decode(tokens)[consumed:]
                    # an answer cut by a cap ends mid-sentence: say the rest only if it is a whole sentence
                    whole = stop == "eos" or SENTENCE_END.search(strip_emotion_tags(rest)[0])
                    if rest.strip() and stop != "cancelled" and whole:
                        stop = judge(rest, head) or stop
                info[f"stop_{stop}"] = 1
        except Exception as exc:
            if is_out_of_memory(exc):
                self.oom_count += 1
                info["oom"] = 1
                log.warning("llm: out of memory on %s; answering from the notes", self.device)
            else:
                self.error_count += 1
                info["error"] = 1
                log.exception("llm: generation failed; answering from the notes")
        if info.get("oom") or info.get("error"):
            free_accelerator_memory()  # after the except block: its traceback held the activations
        elapsed = time.monotonic() - started
        info["tokens"] = len(tokens)
        info["generation_seconds"] = elapsed
        decode_seconds = elapsed - state.get("prompt_seconds", elapsed)
        info["prompt_seconds"] = state.get("prompt_seconds", 0.0)
        info["cached_tokens"] = state.get("cached_tokens", 0)
        info["drafted_tokens"] = state.get("drafted", 0)
        if len(tokens) > 1 and decode_seconds > 0:
            info["tokens_per_second"] = (len(tokens) - 1) / decode_seconds
        info["fallback"] = 0
        if turn.cancel.cancelled or turn.stop.is_set():
            info["cancelled"] = 1
        elif not sentences and not info.get("filtered_output"):
            # nothing said, or only a first clause whose sentence then failed: the sentences that answer
            info["fallback"] = 1
            if not given:
                info["first_sentence_seconds"] = time.monotonic() - started
            for sentence in plan.sentences:
                turn.out.put(sentence)
        if plan.offer and not info.get("filtered_output") and not info.get("cancelled"):
            turn.out.put(plan.offer)
        if info.get("filtered_output"):
            answer.emotion = Emotion.NEUTRAL
        elif tag is not None and not info["fallback"]:
            answer.emotion = tag
        else:
            answer.emotion = Emotion.normalise(plan.emotion)
        # after the last sentence, a few milliseconds nobody waits for: each answer runs in a new thread
        # whose allocator arena otherwise keeps what it freed (about 100 MB over 20 turns)
        trim_heap()
        turn.out.put(None)

    def _tokens(
        self, input_ids, max_new_tokens: int, deadline: float, turn, state: dict[str, Any], prefix: int = 0
    ) -> Iterator[int]:
        """Greedy (or sampled) decoding with a KV cache; ends at a stop token, a cap or cancellation.

        Why it ended by itself is left in ``state["stop"]``; the prompt's time in ``state["prompt_seconds"]``,
        how many of its tokens came from the prefix cache in ``state["cached_tokens"]`` and how many
        answer tokens were guessed right in ``state["drafted"]``.  ``turn`` is anything with ``cancel``
        (a CancelToken or None) and ``stop`` (an Event).  The first ``prefix`` tokens (the system message)
        are taken from, or added to, the prefix cache.

        With the fast decoder and greedy decoding, the tokens that followed the answer's last few tokens
        where they occur in the prompt (the notes, mostly) are guessed and checked in one forward pass
        with the next one: the guesses the model agrees with are taken, so the answer is the one greedy
        decoding writes, in fewer passes (a small model copies its notes a lot).
        """
        import torch

        model, temperature = self._model, self.config.llm.temperature
        # a forward wrapped on the instance (instrumentation, a test double) is honoured: no fast path
        fast = self._fast if "forward" not in vars(model) else None
        started = time.monotonic()
        ids = input_ids.to(self._device.torch)
        kept = None
        if 0 < prefix < ids.shape[-1] and self.config.llm.prefix_cache > 0:
            kept, state["cached_tokens"] = self._prefix_past(ids[:, :prefix], fast)
            ids = ids[:, prefix:]
        guesses = self.config.llm.draft_tokens if fast is not None and temperature <= 0 else 0
        if fast is not None:
            kv = fast.start(int(input_ids.shape[-1]) + max_new_tokens + guesses, kept, scratch=True)

            def forward(new):
                return fast.forward(new, kv)

        else:
            past = kept

            def forward(new):
                nonlocal past
                output = model(input_ids=new, past_key_values=past, use_cache=True, **self._forward_kwargs)
                past = output.past_key_values
                return output.logits[0, -1, :]

        context = input_ids[0].tolist()  # the prompt, then the answer: where guesses are looked up
        produced = 0
        while produced < max_new_tokens:
            if (turn.cancel is not None and turn.cancel.cancelled) or turn.stop.is_set():
                state["stop"] = "cancelled"
                return
            if produced and time.monotonic() >= deadline:
                state["stop"] = "max_seconds"
                return
            guess = _lookup(context, guesses) if guesses and produced else []
            if guess:
                assert fast is not None
                picks = (
                    fast.forward(torch.tensor([[context[-1], *guess]]), kv, every=True).argmax(-1).tolist()
                )
                taken = 0
                while taken < len(guess) and picks[taken] == guess[taken]:
                    taken += 1
                kv.length -= len(guess) - taken  # the keys and values of wrong guesses are overwritten
                state["drafted"] = state.get("drafted", 0) + taken
                new = picks[: taken + 1]
            else:
                logits = forward(ids).float()
                if not produced:
                    state["prompt_seconds"] = time.monotonic() - started
                if temperature > 0:
                    new = [int(torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).item())]
                else:
                    new = [int(torch.argmax(logits).item())]
            for token in new:
                if token in self._stop_ids:
                    state["stop"] = "eos"
                    return
                yield token
                produced += 1
                context.append(token)
                if produced >= max_new_tokens:
                    break
            ids = torch.tensor([[context[-1]]], device=ids.device)
        state["stop"] = "max_tokens"

    def _prefix_past(self, prefix_ids, fast: FastLlama | None) -> tuple[Any, int]:
        """The KV cache of ``prefix_ids`` (computed and kept when new) for a turn to extend, and the tokens reused.

        Called under the model lock.  The kept cache is never extended: for transformers a turn gets a copy,
        the fast decoder copies it into the turn's own buffers.
        """
        key = (fast is not None, *(int(t) for t in prefix_ids[0].tolist()))
        kept = self._prefixes.get(key)
        reused = len(key) - 1 if kept is not None else 0
        if kept is None:
            if fast is not None:
                computed = fast.start(int(prefix_ids.shape[-1]))
                fast.forward(prefix_ids, computed)
                kept = computed.kept()
            else:
                kept = self._model(
                    input_ids=prefix_ids, use_cache=True, **self._forward_kwargs
                ).past_key_values
            self._prefixes[key] = kept
            while len(self._prefixes) > self.config.llm.prefix_cache:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(key)
        return (kept if isinstance(kept, KeyValues) else _copy_cache(kept)), reused

    # --- the prompt --------------------------------------------------------------------------------

    def _instruction(self) -> str:
        n = self.config.answer.max_sentences
        return (
            f"Answer the visitor's question in at most {n} short sentences, using only the exhibit notes above. "
            "If the notes do not say, say that you do not know. "
            "End your answer with one emotion tag such as [happy], [surprised], [sad] or [neutral]."
        )

    def _build_prompt(self, question: str, plan: AnswerPlan, history: list[tuple[str, str]] | None = None):
        """The token ids, how many of them are the system message, the notes text and the system message.

        The notes are the best section and those scoring within SECTION_MARGIN of it, best first, cut
        sentence by sentence so the whole prompt fits in ``max_prompt_tokens``; the oldest conversation
        turns are left out first when it does not fit.  The system message comes first and is encoded on
        its own, so its KV cache serves every turn that retrieves the same notes.
        """
        budget = self.config.llm.max_prompt_tokens
        if history is None:
            with self._history_lock:
                history = list(self._history)
        persona, instruction = self.exhibit.persona, self._instruction()

        def messages(notes: str, turns: list[tuple[str, str]]) -> list[dict[str, str]]:
            system = f"{persona}\n\nExhibit notes:\n{notes}\n\n{instruction}"
            chat = [{"role": "system", "content": system}]
            for asked, said in turns:
                chat += [{"role": "user", "content": asked}, {"role": "assistant", "content": said}]
            return chat + [{"role": "user", "content": question}]

        def count(text: str) -> int:
            with self._tokenizer_lock:
                return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

        while True:
            room = budget - count(self._prompt_text(messages("", history)))
            if room >= 48 or not history:
                break
            history = history[1:]
        parts: list[str] = []
        used = 0
        best = plan.matches[0].score if plan.matches else 0.0
        floor = max(self.config.retrieval.similarity_threshold, best - SECTION_MARGIN)
        for match in plan.matches:
            if match is not plan.matches[0] and match.score < floor:
                continue
            lines: list[str] = []
            for sentence in match.section.sentences:
                cost = count(sentence + " ") + (count(match.section.heading + ": ") if not lines else 0)
                if used + cost > room:
                    break
                lines.append(sentence)
                used += cost
            if lines:
                parts.append(f"{match.section.heading}: {' '.join(lines)}")
            if used >= room:
                break
        notes = "\n".join(parts)
        chat = messages(notes, history)
        text = self._prompt_text(chat)
        try:
            head = self._prompt_text(chat[:1], generation=False)
        except Exception:  # a chat template that wants a user message: no prefix to keep
            head = ""
        if head and text.startswith(head) and len(text) > len(head):
            import torch

            head_ids, tail_ids = self._encode(head), self._encode(text[len(head) :])
            ids = torch.cat([head_ids, tail_ids], dim=-1)
            return ids, int(head_ids.shape[-1]), notes, chat[0]["content"]
        return self._encode(text), 0, notes, chat[0]["content"]

    def _prompt_text(self, chat: list[dict[str, str]], generation: bool = True) -> str:
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=generation)
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in chat]  # a model with no chat template
        return "\n\n".join(lines) + ("\n\nAssistant:" if generation else "")

    def _encode(self, text: str):
        """A (1, n) tensor of token ids on the CPU (the worker moves it to the device)."""
        with self._tokenizer_lock:
            return self._tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]

    def _decode(self, tokens: list[int]) -> str:
        with self._tokenizer_lock:
            return self._tokenizer.decode(tokens, skip_special_tokens=True)


def _stop_token_ids(tokenizer: Any, model: Any) -> set[int]:
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    vocab = tokenizer.get_vocab()
    for text in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"):
        if text in vocab:
            ids.add(vocab[text])
    return ids


def _lookup(context: list[int], size: int, longest: int = 3, shortest: int = 2) -> list[int]:
    """Up to ``size`` tokens that followed the latest earlier occurrence of the context's last 3 (or 2) tokens."""
    end = len(context)
    for n in range(longest, shortest - 1, -1):
        if end <= n:
            continue
        tail = context[-n:]
        first = tail[0]
        for start in range(end - n - 1, -1, -1):
            if context[start] == first and context[start : start + n] == tail:
                return context[start + n : start + n + size]
    return []


def _ends_sentence(text: str, start: int) -> bool:
    """``text[start:]`` is a whole sentence already: it ends with . ! or ? after a word that is no abbreviation."""
    match = EAGER_END.search(text, start)
    if match is None:
        return False
    before = text[start : match.start()].split()
    return len(before) >= 2 and before[-1].lower().lstrip("(\"'") not in ABBREVIATIONS


def _copy_cache(cache: Any) -> Any:
    """A copy of a KV cache that a turn may extend: new tensors, same shapes (2 ms for 200 tokens).

    ``copy.deepcopy`` does the same for any cache but takes about a second on CPU tensors.
    """
    layers = getattr(cache, "layers", None)
    if not layers or not all(isinstance(getattr(layer, "keys", None), _tensor_type()) for layer in layers):
        return copy.deepcopy(cache)
    twin = copy.copy(cache)
    twin.layers = []
    for layer in layers:
        copied = copy.copy(layer)
        copied.keys, copied.values = layer.keys.clone(), layer.values.clone()
        twin.layers.append(copied)
    return twin


def _tensor_type() -> type:
    import torch

    return torch.Tensor


def _repeats(tokens: list[int], seen: set[tuple[int, ...]], n: int = REPEAT_NGRAM) -> bool:
    """The last ``n`` tokens already occurred earlier in the answer (a loop); ``seen`` carries the n-grams."""
    if len(tokens) < n:
        return False
    tail = tuple(tokens[-n:])
    if tail in seen:
        return True
    seen.add(tail)
    return False
