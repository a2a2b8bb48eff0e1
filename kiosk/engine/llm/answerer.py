"""The LLM answerer: a local chat model words a grounded answer from the planned notes, streamed.

Its life cycle: ``prepare()`` indexes the notes (cheap); from then on every question is answered, from
the notes as written (the retrieval answerer's reply) until ``load()`` has loaded and warmed the model,
then in the model's words.  The engine calls ``prepare()`` and runs ``load()`` in the background at a
kiosk's start, so the first visitor need not wait for the model (``[llm] background_load``).
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.emotion import Emotion
from kiosk.engine.answer import ANSWERERS, PlannedAnswerer, plan_info
from kiosk.engine.cancel import CancelToken
from kiosk.engine.claims import ClaimChecker
from kiosk.engine.content_filter import ContentFilter
from kiosk.engine.device import (
    MemoryProbe,
    free_accelerator_memory,
    is_out_of_memory,
    resolve_device,
    trim_heap,
)
from kiosk.engine.llm import int4
from kiosk.engine.llm.decoding import Decoder, stop_token_ids
from kiosk.engine.llm.fast import FastLlama, unsupported
from kiosk.engine.llm.grounding import Grounding
from kiosk.engine.llm.loading import load_model
from kiosk.engine.llm.model import (
    CONVERTED_MARKER,
    EMBEDDED_MODEL,
    EMBEDDED_NAME,
    offline,
    one_line,
    prepare_model,
    torch_cuda_device_count,
)
from kiosk.engine.llm.prompt import Prompt, PromptBuilder
from kiosk.engine.llm.writer import SentenceWriter, Turn
from kiosk.engine.planner import AnswerPlan
from kiosk.engine.retrieval import Match, SectionRetriever
from kiosk.engine.stage import Answer
from kiosk.errors import ModelLoadError
from kiosk.exhibit import Exhibit

log = logging.getLogger(__name__)

# how often the consumer looks at the cancel token while it waits for a sentence
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class _Warmup:
    cancel: CancelToken | None
    stop: threading.Event


@ANSWERERS.register("llm")
class LlmAnswerer(PlannedAnswerer):
    """Words a grounded answer from the retrieved notes with a local chat model, sentence by sentence.

    ``answer()`` returns at once; the returned ``Answer.sentences`` starts a worker thread on first use and
    yields each checked sentence as soon as it is complete.  ``answer.info`` and ``answer.emotion`` are
    final once ``sentences`` is exhausted: tokens, prompt_tokens, tokens_per_second, prompt_seconds,
    first_sentence_seconds, generation_seconds, fallback (1: the retrieved sentences were spoken instead,
    or opened the reply), model_sentences (the model's checked sentences), dropped (sentences left out as
    echoes), the flags oom, error, filtered_output, cancelled, canned
    (no generation: small talk, out of scope, filtered question, or ``llm_loading``: the model is not
    loaded yet), and stop_<reason> with reason one of eos, max_tokens, max_seconds, sentence_cap,
    repetition, ungrounded, filtered, cancelled, budget (no checked words within ``first_piece_budget_s``:
    the notes' first sentence opens the reply and the model goes on from it, see ``_notes_first``).

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
        # the CUDA devices torch sees (a CPU build of torch sees none, whatever the machine has); "auto"
        # keeps the embedded 135M model on the CPU, where it decodes faster (an H200 through transformers:
        # 14 tokens/s and a first sentence in 1.32 s; its host's CPU, one thread: 39 and 0.72 s)
        embedded = config.llm.model.strip() == EMBEDDED_MODEL
        wanted = "cpu" if embedded and config.llm.device == "auto" else config.llm.device
        self._device = resolve_device(wanted, device_count or torch_cuda_device_count)
        self.device = self._device.torch
        if config.llm.model.strip() != EMBEDDED_MODEL:
            self.name = Path(config.llm.model).name or config.llm.model
        self.content_filter = ContentFilter(config.answer.blocklist)
        self.model_path: Path | None = None
        self.load_seconds = 0.0
        self.memory_bytes = 0
        self.dtype = ""
        self.packed_projections = 0  # projections the fast decoder multiplies as 4-bit
        self.oom_count = 0
        self.error_count = 0
        self.loaded = threading.Event()  # set once the model answers; until then the notes do
        self._model: Any = None
        self.decoder: Decoder | None = None
        self.prompts: PromptBuilder | None = None
        self._history: deque[tuple[str, str]] = deque(maxlen=max(0, config.answer.history_turns))
        self._history_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one generation at a time
        self._closed = False

    # --- life cycle --------------------------------------------------------------------------------

    def prepare(self) -> None:
        """The cheap part of loading: index the notes, so that questions are answered from them at once."""
        self.planner  # noqa: B018 - builds the planner over the retriever's index

    def load(self) -> None:
        """Load and warm the model (seconds to a minute); questions asked meanwhile get the notes' reply."""
        started = time.monotonic()
        self.prepare()
        path = prepare_model(self.config)
        offline()
        import torch
        from transformers import AutoTokenizer

        probe = MemoryProbe(self._device)
        llm = self.config.llm
        dtype = self._device.torch_dtype(llm.precision)
        if llm.threads:
            torch.set_num_threads(llm.threads)
        # the projections of a 4-bit GGUF, found in its float32 conversion, multiplied as 4-bit
        on_cpu_4bit = llm.fast_decode and llm.int4 and not self._device.is_cuda and int4.kernel_available()
        if on_cpu_4bit and llm.precision == "auto" and (path / CONVERTED_MARKER).is_file():
            # torch's 4-bit kernel takes bfloat16 activations on any processor. On an AVX2 one (no bfloat16
            # arithmetic), against dense float32: peak RSS 1,417 MB, not 1,641; load 28 s, not 51; 13
            # tokens/s, not 12; first audio the same (bench/turn_latency.py, kernels held to AVX2)
            dtype = torch.bfloat16
        pack = on_cpu_4bit and dtype == torch.bfloat16
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
        try:
            keeps = "logits_to_keep" in inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            keeps = False
        prompts = PromptBuilder(tokenizer, self.config)
        decoder = Decoder(
            model,
            self.config.llm,
            self._device.torch,
            stop_token_ids(tokenizer, model),
            {"logits_to_keep": 1} if keeps else {},
        )
        ids = prompts.encode(prompts.text([{"role": "user", "content": "Hello"}]))
        decoder.fast = self._fast_decoder(model, ids, packed) if llm.fast_decode else None
        with torch.inference_mode():  # warm up: the first visitor should not pay for lazy initialisation
            warm = _Warmup(None, threading.Event())
            for _ in decoder.tokens(ids, 2, time.monotonic() + 30.0, warm, {}):
                pass
            if llm.warm_prefixes:
                self._warm_prefixes(decoder, prompts)
        if decoder.fast is not None and packed and not llm.keep_dense_weights:
            freed = decoder.fast.drop_dense(model, packed)
            if freed:
                trim_heap()
                log.info("llm: the 16-bit copies of the 4-bit projections dropped (%d MB)", freed >> 20)
        with self._model_lock:
            if self._closed:
                return
            self._model, self.decoder, self.prompts, self.model_path = model, decoder, prompts, path
        self.memory_bytes = probe.used()
        self.load_seconds = time.monotonic() - started
        self.loaded.set()
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

    def _warm_prefixes(self, decoder: Decoder, prompts: PromptBuilder) -> None:
        """Compute the system message of each section alone, the usual prompt, before the first visitor."""
        started = time.monotonic()
        room = self.config.llm.prefix_cache
        for section in self.exhibit.sections[:room]:
            plan = AnswerPlan("ok", section.id, section.tone, [Match(section, 1.0, ())])
            prompt = prompts.build(self.exhibit, section.question or section.heading, plan, [])
            if prompt.prefix_tokens:
                decoder.prefix_past(prompt.ids[:, : prompt.prefix_tokens].to(self._device.torch), decoder.fast)
        log.info("llm: %d system prompts computed in %.2f s", len(decoder.prefixes), time.monotonic() - started)

    def close(self) -> None:
        self._closed = True  # a load still under way drops what it loaded
        self.loaded.clear()
        self._model = self.decoder = self.prompts = None  # a turn under way keeps its own references
        free_accelerator_memory()

    def reset_session(self) -> None:
        super().reset_session()
        with self._history_lock:
            self._history.clear()

    # --- a turn ------------------------------------------------------------------------------------

    def answer(self, question: str, cancel: CancelToken) -> Answer:
        started = time.monotonic()  # the first-piece budget counts from here
        plan = self.planner.plan(question)
        info = plan_info(plan)
        prompts = self.prompts
        if plan.status != "ok" or plan.small_talk or prompts is None or not plan.matches:
            info["canned"] = 1
            if plan.status == "ok" and not plan.small_talk:  # not loaded: the notes' own sentences
                info["fallback"] = 1
                if prompts is None:
                    info["llm_loading"] = 1
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
        prompt = self._build_prompt(question, plan, prompts=prompts)
        info["prompt_tokens"] = int(prompt.ids.shape[-1])
        grounding = Grounding(
            prompt.notes,
            question=question,
            scaffold=prompt.system.replace(prompt.notes, " "),
            allowed=f"{self.exhibit.title}. {self.exhibit.persona} {self.exhibit.greeting}",
            min_overlap=self.config.llm.min_note_overlap,
        )
        claims = ClaimChecker(self.planner.index.passages, allowed=f"{self.exhibit.title}. {self.exhibit.persona}")
        section = plan.matches[0].section
        turn = Turn(
            question,
            plan,
            prompt,
            grounding,
            claims,
            answer,
            cancel,
            answers=lambda text: self.planner.chooser.answers(plan.question, text, section),
            started=started,
        )
        answer.sentences = self._consume(turn)
        return answer

    def _build_prompt(
        self,
        question: str,
        plan: AnswerPlan,
        history: list[tuple[str, str]] | None = None,
        prompts: PromptBuilder | None = None,
    ) -> Prompt:
        prompts = prompts or self.prompts
        if prompts is None:
            raise RuntimeError("the model is not loaded")
        if history is None:
            with self._history_lock:
                history = list(self._history)
        return prompts.build(self.exhibit, question, plan, history)

    def _consume(self, turn: Turn) -> Iterator[str]:
        worker = self._start(turn)
        try:
            for sentence in self._queued(turn, worker, self.config.llm.first_piece_budget_s):
                if sentence is None:  # the budget ran out before the model's first checked words
                    yield from self._notes_first(turn)
                    return
                turn.spoken.append(sentence)
                yield sentence
        finally:
            turn.stop.set()
            said = [s for s in turn.spoken if s != turn.plan.offer]  # the offer is the planner's, not the model's
            if said and not turn.answer.info.get("filtered_output"):
                with self._history_lock:
                    self._history.append((turn.question, " ".join(said)))

    def _start(self, turn: Turn) -> threading.Thread:
        worker = threading.Thread(target=self._produce, args=(turn,), name="llm-answer", daemon=True)
        worker.start()
        return worker

    def _queued(self, turn: Turn, worker: threading.Thread, budget: float = 0.0) -> Iterator[str | None]:
        """The worker's sentences as they come; None (then the end) when ``budget`` seconds from the
        question pass with nothing from the model and the notes claim the first words."""
        while True:
            wait = POLL_SECONDS
            if budget and not turn.spoken:
                left = turn.started + budget - time.monotonic()
                if left <= 0 and turn.claim_first_words("notes"):
                    yield None
                    return
                wait = min(wait, max(left, 0.001))
            try:
                sentence = turn.out.get(timeout=wait)
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
            yield sentence

    def _notes_first(self, turn: Turn) -> Iterator[str]:
        """No checked words from the model within the budget: the notes' first sentence at once, then the
        model goes on from it (its sentences checked as ever; the notes' next ones if they fail).

        The clock runs from the question, not from the model's tokens: a long prompt whose first token
        comes late cannot hold the visitor past the budget.  The first worker stops at its next token;
        the second starts from the same prompt with the notes' sentence as the reply's opening, and has
        the time that sentence takes to speak to write the next."""
        turn.stop.set()
        info, plan = turn.answer.info, turn.plan
        log.info("llm: no checked words within %.2f s: the notes begin", self.config.llm.first_piece_budget_s)
        info.update(stop_budget=1, fallback=1, first_sentence_seconds=time.monotonic() - turn.started)
        turn.answer.emotion = Emotion.normalise(plan.emotion)
        prompts = self.prompts
        if not plan.sentences or prompts is None:
            rest = [*plan.sentences, *([plan.offer] if plan.offer else [])]
            turn.spoken.extend(rest)
            yield from rest
            return
        opening = plan.sentences[0]
        turn.spoken.append(opening)
        yield opening
        if turn.cancel.cancelled:
            info["cancelled"] = 1
            return
        after = Turn(
            turn.question,
            plan,
            prompts.continued(turn.prompt, opening),
            turn.grounding,
            turn.claims,
            turn.answer,
            turn.cancel,
            started=turn.started,
            opening=(opening,),
        )
        after.claim_first_words("model")
        try:
            for sentence in self._queued(after, self._start(after)):
                turn.spoken.append(sentence)
                yield sentence
        finally:
            after.stop.set()

    def _produce(self, turn: Turn) -> None:
        """The worker: generate, check and queue sentences; fall back to the notes when that fails."""
        import torch

        info = turn.answer.info
        writer = SentenceWriter(turn, self.config, self.content_filter)
        try:
            with self._model_lock, torch.inference_mode():
                decoder, prompts = self.decoder, self.prompts
                if decoder is None or prompts is None:
                    raise RuntimeError("the model was closed")
                writer.generate(decoder, prompts)
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
        writer.finish()
        # after the last sentence, a few milliseconds nobody waits for: each answer runs in a new thread
        # whose allocator arena otherwise keeps what it freed (about 100 MB over 20 turns)
        trim_heap()
        turn.out.put(None)

    # --- what tests and benchmarks look at ------------------------------------------------------------

    @property
    def _fast(self) -> FastLlama | None:
        return self.decoder.fast if self.decoder is not None else None

    @property
    def _prefixes(self) -> OrderedDict[tuple[int, ...], Any]:
        return self.decoder.prefixes if self.decoder is not None else OrderedDict()
