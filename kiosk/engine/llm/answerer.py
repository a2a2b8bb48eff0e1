"""The LLM answerer: a local chat model words a grounded answer from the retrieved notes, streamed."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.emotion import Emotion
from kiosk.engine.answer import ANSWERERS, AnswerPlan, plan_answer
from kiosk.engine.cancel import CancelToken
from kiosk.engine.content_filter import CALM_REPLY, ContentFilter
from kiosk.engine.device import MemoryProbe, free_accelerator_memory, is_out_of_memory, resolve_device
from kiosk.engine.llm.grounding import (
    LIST_MARKER,
    SENTENCE_BOUNDARY,
    SENTENCE_END,
    Grounding,
    normalised,
    strip_emotion_tags,
    tag_inside,
    words,
)
from kiosk.engine.llm.model import (
    EMBEDDED_MODEL,
    EMBEDDED_NAME,
    offline,
    one_line,
    prepare_model,
    torch_cuda_device_count,
)
from kiosk.engine.retrieval import SectionRetriever
from kiosk.engine.stage import Answer, Answerer
from kiosk.errors import ModelLoadError
from kiosk.exhibit import Exhibit

log = logging.getLogger(__name__)

# a repeated run of this many generated tokens ends the answer
REPEAT_NGRAM = 6
# how often the consumer looks at the cancel token while it waits for a sentence
POLL_SECONDS = 0.05
# a further retrieved section joins the notes when it scores within this of the best one
SECTION_MARGIN = 0.2


FALLBACK_LEAD = "Here is what my notes say."


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
    grounding: Grounding
    answer: Answer
    cancel: CancelToken
    stop: threading.Event = field(default_factory=threading.Event)
    out: queue.Queue[str | None] = field(default_factory=queue.Queue)
    spoken: list[str] = field(default_factory=list)


@ANSWERERS.register("llm")
class LlmAnswerer(Answerer):
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
    """

    name = EMBEDDED_NAME

    def __init__(
        self,
        config: Config,
        exhibit: Exhibit,
        retriever: SectionRetriever,
        device_count: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.exhibit = exhibit
        self.retriever = retriever
        # the CUDA devices torch sees (a CPU build of torch sees none, whatever the machine has)
        self._device = resolve_device(config.llm.device, device_count or torch_cuda_device_count)
        self.device = self._device.torch
        if config.llm.model.strip() != EMBEDDED_MODEL:
            self.name = Path(config.llm.model).name or config.llm.model
        self.content_filter = ContentFilter(config.answer.blocklist)
        self.model_path: Path | None = None
        self.load_seconds = 0.0
        self.oom_count = 0
        self.error_count = 0
        self._model: Any = None
        self._tokenizer: Any = None
        self._stop_ids: set[int] = set()
        self._history: deque[tuple[str, str]] = deque(maxlen=max(0, config.answer.history_turns))
        self._history_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one generation at a time
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer is not safe across threads

    # --- life cycle --------------------------------------------------------------------------------

    def load(self) -> None:
        started = time.monotonic()
        path = prepare_model(self.config)
        offline()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        probe = MemoryProbe(self._device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                str(path), local_files_only=True, dtype=self._device.torch_dtype()
            )
            model.to(self._device.torch)
        except Exception as exc:
            if is_out_of_memory(exc):
                free_accelerator_memory()
            raise ModelLoadError(f"llm: cannot load {path}: {one_line(exc)}") from None
        model.eval()
        self._tokenizer, self._model, self.model_path = tokenizer, model, path
        self._stop_ids = _stop_token_ids(tokenizer, model)
        with torch.inference_mode():  # warm up: the first visitor should not pay for lazy initialisation
            ids = self._encode(self._prompt_text([{"role": "user", "content": "Hello"}]))
            warm = _Warmup(None, threading.Event())
            for _ in self._tokens(ids, 2, time.monotonic() + 30.0, warm, {}):
                pass
        self.memory_bytes = probe.used()
        self.load_seconds = time.monotonic() - started
        log.info("llm: %s on %s in %.2f s", self.name, self.device, self.load_seconds)

    def close(self) -> None:
        self._model = None
        self._tokenizer = None
        free_accelerator_memory()

    def reset_session(self) -> None:
        with self._history_lock:
            self._history.clear()

    # --- a turn ------------------------------------------------------------------------------------

    def answer(self, question: str, cancel: CancelToken) -> Answer:
        plan = plan_answer(question, self.exhibit, self.retriever, self.content_filter, self.config)
        info: dict[str, float] = {
            "retrieval_seconds": plan.retrieval_seconds,
            "score": plan.matches[0].score if plan.matches else 0.0,
        }
        if plan.status != "ok" or plan.small_talk or self._model is None:
            info["canned"] = 1
            if plan.status == "ok" and not plan.small_talk:  # not loaded: the notes, read aloud
                info["fallback"] = 1
            return Answer(
                plan.status, plan.topic, plan.emotion, iter(plan.sentences), list(plan.sentences), info
            )
        answer = Answer(plan.status, plan.topic, plan.emotion, iter(()), list(plan.sentences), info)
        prompt_ids, notes, system = self._build_prompt(question, plan)
        info["prompt_tokens"] = int(prompt_ids.shape[-1])
        grounding = Grounding(
            notes,
            question=question,
            scaffold=system.replace(notes, " "),
            allowed=f"{self.exhibit.title}. {self.exhibit.persona} {self.exhibit.greeting}",
            min_overlap=self.config.llm.min_note_overlap,
        )
        turn = _Turn(question, plan, prompt_ids, grounding, answer, cancel)
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
            if turn.spoken and not turn.answer.info.get("filtered_output"):
                with self._history_lock:
                    self._history.append((turn.question, " ".join(turn.spoken)))

    def _produce(self, turn: _Turn) -> None:
        """The worker: generate, check and queue sentences; fall back to the notes when that fails."""
        import torch

        info, plan, answer, cfg = turn.answer.info, turn.plan, turn.answer, self.config
        started = time.monotonic()
        given: list[str] = []  # sentences handed to the consumer
        tag: Emotion | None = None
        state: dict[str, Any] = {"stop": "eos"}
        tokens: list[int] = []

        def give(sentence: str) -> None:
            if not given:
                info["first_sentence_seconds"] = time.monotonic() - started
            given.append(sentence)
            turn.out.put(sentence)

        def judge(piece: str) -> str:
            """Check one sentence; '' to go on, else why the answer ends here."""
            nonlocal tag
            if tag_inside(piece):
                log.info("llm: emotion tag inside a sentence: %r", piece)
                return "ungrounded"
            text, emotion = strip_emotion_tags(piece)
            tag = emotion or tag
            text = text.strip().lstrip("*#-• ").strip()
            if not words(text) or LIST_MARKER.fullmatch(text):
                return ""
            if self.content_filter.blocks(text):
                info["filtered_output"] = 1
                give(CALM_REPLY)
                return "filtered"
            if any(normalised(text) == normalised(s) for s in given):
                return "repetition"
            verdict = turn.grounding.check(text)
            if verdict.reason in ("echo", "question"):
                info["dropped"] = info.get("dropped", 0) + 1
                log.debug("llm: dropped %s sentence %r", verdict.reason, text)
                return ""
            if not verdict.ok:
                log.info(
                    "llm: ungrounded sentence (%s, overlap %.2f): %r", verdict.reason, verdict.overlap, text
                )
                return "ungrounded"
            give(text)
            return "sentence_cap" if len(given) >= cfg.answer.max_sentences else ""

        try:
            with self._model_lock, torch.inference_mode():
                if self._model is None:
                    raise RuntimeError("the model was closed")
                stop, consumed = "", 0
                seen_ngrams: set[tuple[int, ...]] = set()
                deadline = started + cfg.llm.max_seconds
                for token in self._tokens(turn.prompt_ids, cfg.llm.max_new_tokens, deadline, turn, state):
                    tokens.append(token)
                    info["tokens"] = len(tokens)
                    if _repeats(tokens, seen_ngrams):
                        stop = "repetition"
                        break
                    text = self._decode(tokens)
                    while not stop and (match := SENTENCE_BOUNDARY.search(text, consumed)) is not None:
                        piece, consumed = text[consumed : match.start()], match.end()
                        stop = judge(piece)
                    if stop:
                        break
                else:
                    stop = state["stop"]
                    rest = self._decode(tokens)[consumed:]
                    # an answer cut by a cap ends mid-sentence: say the rest only if it is a whole sentence
                    whole = stop == "eos" or SENTENCE_END.search(strip_emotion_tags(rest)[0])
                    if rest.strip() and stop != "cancelled" and whole:
                        stop = judge(rest) or stop
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
        if len(tokens) > 1 and decode_seconds > 0:
            info["tokens_per_second"] = (len(tokens) - 1) / decode_seconds
        info["fallback"] = 0
        if turn.cancel.cancelled or turn.stop.is_set():
            info["cancelled"] = 1
        elif not given:
            info["fallback"] = 1
            info["first_sentence_seconds"] = time.monotonic() - started
            # said as it is: the visitor hears that these are the notes, not an answer to the letter
            turn.out.put(FALLBACK_LEAD)
            for sentence in plan.sentences:
                turn.out.put(sentence)
        if info.get("filtered_output"):
            answer.emotion = Emotion.NEUTRAL
        elif tag is not None and not info["fallback"]:
            answer.emotion = tag
        else:
            answer.emotion = Emotion.normalise(plan.emotion)
        turn.out.put(None)

    def _tokens(
        self, input_ids, max_new_tokens: int, deadline: float, turn, state: dict[str, Any]
    ) -> Iterator[int]:
        """Greedy (or sampled) decoding with a KV cache; ends at a stop token, a cap or cancellation.

        Why it ended by itself is left in ``state["stop"]``; the prompt's time in ``state["prompt_seconds"]``.
        ``turn`` is anything with ``cancel`` (a CancelToken or None) and ``stop`` (an Event).
        """
        import torch

        model, temperature = self._model, self.config.llm.temperature
        started = time.monotonic()
        past = None
        ids = input_ids.to(self._device.torch)
        for step in range(max_new_tokens):
            if (turn.cancel is not None and turn.cancel.cancelled) or turn.stop.is_set():
                state["stop"] = "cancelled"
                return
            if step and time.monotonic() >= deadline:
                state["stop"] = "max_seconds"
                return
            output = model(input_ids=ids, past_key_values=past, use_cache=True)
            past = output.past_key_values
            logits = output.logits[0, -1, :].float()
            del output
            if step == 0:
                state["prompt_seconds"] = time.monotonic() - started
            if temperature > 0:
                token = int(torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).item())
            else:
                token = int(torch.argmax(logits).item())
            if token in self._stop_ids:
                state["stop"] = "eos"
                return
            yield token
            ids = torch.tensor([[token]], device=ids.device)
        state["stop"] = "max_tokens"

    # --- the prompt --------------------------------------------------------------------------------

    def _instruction(self) -> str:
        n = self.config.answer.max_sentences
        return (
            f"Answer the visitor's question in at most {n} short sentences, using only the exhibit notes above. "
            "If the notes do not say, say that you do not know. "
            "End your answer with one emotion tag such as [happy], [surprised], [sad] or [neutral]."
        )

    def _build_prompt(self, question: str, plan: AnswerPlan):
        """The token ids, the notes text the model was given and the system message.

        The notes are the best section and those scoring within SECTION_MARGIN of it, best first, cut
        sentence by sentence so the whole prompt fits in ``max_prompt_tokens``; the oldest conversation
        turns are left out first when it does not fit.
        """
        budget = self.config.llm.max_prompt_tokens
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
        return self._encode(self._prompt_text(chat)), notes, chat[0]["content"]

    def _prompt_text(self, chat: list[dict[str, str]]) -> str:
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in chat]  # a model with no chat template
        return "\n\n".join(lines) + "\n\nAssistant:"

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


def _repeats(tokens: list[int], seen: set[tuple[int, ...]], n: int = REPEAT_NGRAM) -> bool:
    """The last ``n`` tokens already occurred earlier in the answer (a loop); ``seen`` carries the n-grams."""
    if len(tokens) < n:
        return False
    tail = tuple(tokens[-n:])
    if tail in seen:
        return True
    seen.add(tail)
    return False
