"""The LLM answerer: loading, streaming, caps, cancellation, grounding, emotion, OOM; then the real SmolLM2.

Most tests use a tiny Llama saved to a folder and loaded through the real local-folder path.  Its weights
are set so that it follows a script: the residual stream carries a one-hot of the current token (attention
and MLP outputs are zeroed) and ``lm_head`` maps each script word to the next, so greedy decoding writes
the script exactly, through the real KV-cache loop.  One test uses random weights.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import Config, load_config
from kiosk.emotion import Emotion
from kiosk.engine.answer import ANSWERERS, llm_wording
from kiosk.engine.cancel import CancelToken
from kiosk.engine.content_filter import CALM_REPLY
from kiosk.engine.language import stem, words
from kiosk.engine.llm import (
    EMBEDDED_CACHE_NAME,
    Grounding,
    LlmAnswerer,
    convert_gguf,
    embedded_gguf_path,
    is_converted,
    prepare_model,
    strip_emotion_tags,
)
from kiosk.engine.llm import answerer as answerer_module
from kiosk.engine.llm.decoding import lookup as _lookup
from kiosk.engine.llm.fast import FastLlama, KeyValues
from kiosk.engine.llm.model import CONVERTED_MARKER
from kiosk.engine.llm.writer import ends_sentence as _ends_sentence
from kiosk.engine.passages import PassageIndex
from kiosk.engine.retrieval import Match
from kiosk.errors import ModelLoadError
from kiosk.exhibit import Exhibit, load_exhibit

SPECIALS = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# every word once: the scripted model maps each token to the next
CREW = "Neil Armstrong was the commander. Michael Collins flew Columbia. Aldrin served as lunar module pilot. [sad]"
CREW_SENTENCES = [
    "Neil Armstrong was the commander.",
    "Michael Collins flew Columbia.",
    "Aldrin served as lunar module pilot.",
]


@pytest.fixture(scope="module")
def exhibit() -> Exhibit:
    return load_exhibit("apollo11-columbia")


class FixedRetriever:
    """Always finds one section (the tiny model's tests need no embedding model)."""

    device = "cpu"

    def __init__(self, exhibit: Exhibit, section_id: str = "crew", score: float = 0.9) -> None:
        self.exhibit, self.section_id, self.score = exhibit, section_id, score
        # the planner sees only this section, its sentences embedded as bags of hashed words
        only = dataclasses.replace(exhibit, sections=(exhibit.section(section_id),))
        self.passages = PassageIndex(only, _hashed_words)

    def index(self, exhibit: Exhibit) -> None:
        pass

    def search(self, question: str, top_k: int = 2) -> list[Match]:
        section = self.exhibit.section(self.section_id)
        ranked = tuple((s, 1.0 - 0.1 * i) for i, s in enumerate(section.sentences))
        return [Match(section, self.score, ranked)]


def _hashed_words(texts) -> np.ndarray:
    """Unit vectors of hashed word stems: texts that share words are close (no embedding model needed)."""
    vectors = np.zeros((len(texts), 512), np.float32)
    for row, text in enumerate(texts):
        for word in words(text.lower()):
            vectors[row, zlib.crc32(stem(word).encode()) % 512] += 1.0
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-9)


def words_of(answer) -> list[str]:
    """What the model said: the spoken sentences without the planner's offer after them."""
    spoken = list(answer.sentences)
    return spoken[:-1] if answer.offer and spoken and spoken[-1] == answer.offer else spoken


def fallback_spoken(answer) -> list[str]:
    """What an answer says when the model's words fail the checks: the extractive reply, then the offer."""
    return [*answer.fallback, *([answer.offer] if answer.offer else [])]


def _config(tmp_path: Path, model: str, answer: dict | None = None, **llm: object) -> Config:
    """The tests' LLM config; no first-piece budget unless a test sets one (a busy machine must not turn a
    test of the writer into a test of the clock)."""
    raw: Config = load_config(env={})
    return raw.replace(
        paths={"cache_dir": str(tmp_path / "cache")},
        answer={"backend": "llm", **(answer or {})},
        llm={"model": model, "device": "cpu", "first_piece_budget_s": 0.0, **llm},
    )


def _save_tiny_llama(
    folder: Path, script: str | None, loop: bool = False, seed: int = 0, grid: bool = False
) -> Path:
    """A tiny Llama and word-level tokenizer in ``folder``; with a script, its weights make it write it.

    ``grid``: every projection's weights put on a 4-bit grid of 32-weight groups, as a Q4_1 GGUF's are.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = script.split() if script else "Neil Armstrong was the commander. Columbia 1969 Moon".split()
    assert len(set(words)) == len(words), "a script uses every word once"
    vocab = {w: i for i, w in enumerate([*SPECIALS, "assistant", *words])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.add_special_tokens(SPECIALS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token="<unk>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
    )
    tokenizer.chat_template = CHATML
    hidden = 64
    assert len(vocab) <= hidden
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=vocab["<|im_start|>"],
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|im_end|>"],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if script:
        following = {"assistant": words[0]}
        following.update(zip(words, words[1:], strict=False))
        following[words[-1]] = words[0] if loop else "<|im_end|>"
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.model.embed_tokens.weight.zero_()
            model.lm_head.weight.zero_()
            for index in range(len(vocab)):
                model.model.embed_tokens.weight[index, index] = 1.0
            for word, nxt in following.items():
                model.lm_head.weight[vocab[nxt], vocab[word]] = 1.0
    if grid:
        with torch.no_grad():
            for name, module in model.named_modules():
                if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
                    module.weight.copy_(_on_4bit_grid(module.weight))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _on_4bit_grid(weight, group: int = 32):
    """Q4_1 quantisation: each group of ``group`` weights becomes low + step * q, q in 0..15."""
    out_features, in_features = weight.shape
    groups = weight.reshape(out_features, in_features // group, group)
    low = groups.amin(-1, keepdim=True)
    step = (groups.amax(-1, keepdim=True) - low) / 15
    q = ((groups - low) / step.clamp(min=1e-12)).round()
    return (low + step * q).reshape(out_features, in_features)


def _answerer(
    tmp_path, exhibit, script=None, loop=False, answer=None, section="crew", grid=False, **llm
) -> LlmAnswerer:
    folder = _save_tiny_llama(tmp_path / "tiny", script, loop, grid=grid)
    answerer = ANSWERERS.create(
        "llm", _config(tmp_path, str(folder), answer, **llm), exhibit, FixedRetriever(exhibit, section)
    )
    answerer.load()
    return answerer


def _slow_down(monkeypatch, answerer: LlmAnswerer, seconds: float) -> None:
    model = answerer._model
    forward = model.forward

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", slow)


def _wait_finished(answer, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while "generation_seconds" not in answer.info and time.monotonic() < deadline:
        time.sleep(0.01)


# --- model folders -------------------------------------------------------------------------------------


def test_a_missing_model_folder_is_a_one_line_error(tmp_path: Path, exhibit: Exhibit) -> None:
    config = _config(tmp_path, str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError) as caught:
        prepare_model(config)
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / "no-such-model") in message
    answerer = LlmAnswerer(config, exhibit, FixedRetriever(exhibit))
    with pytest.raises(ModelLoadError, match="no-such-model"):
        answerer.load()


def test_the_device_policy(tmp_path: Path, exhibit: Exhibit) -> None:
    from kiosk.errors import ConfigError

    config = _config(tmp_path, "smollm2").replace(llm={"device": "auto"})
    assert LlmAnswerer(config, exhibit, FixedRetriever(exhibit), device_count=lambda: 0).device == "cpu"
    # the embedded model decodes faster on the CPU (measured on an H200): "auto" keeps it there
    assert LlmAnswerer(config, exhibit, FixedRetriever(exhibit), device_count=lambda: 1).device == "cpu"
    cuda = config.replace(llm={"device": "cuda"})
    assert LlmAnswerer(cuda, exhibit, FixedRetriever(exhibit), device_count=lambda: 1).device == "cuda:0"
    folder = config.replace(llm={"model": str(tmp_path / "a-larger-model")})
    assert LlmAnswerer(folder, exhibit, FixedRetriever(exhibit), device_count=lambda: 1).device == "cuda:0"
    with pytest.raises(ConfigError, match="no such CUDA device"):
        LlmAnswerer(
            config.replace(llm={"device": "cuda:1"}), exhibit, FixedRetriever(exhibit), device_count=lambda: 1
        )


def test_a_folder_without_a_model_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json") as caught:
        prepare_model(_config(tmp_path, str(tmp_path / "empty")))
    assert "\n" not in str(caught.value)


def test_conversion_is_atomic_and_done_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted conversion leaves nothing half-written; a damaged folder is converted again."""
    import transformers

    source = _save_tiny_llama(tmp_path / "source", CREW)
    gguf = tmp_path / "pkg" / "model.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF stand-in")
    loads: list[str] = []

    def model_loader(folder, gguf_file=None, local_files_only=False, **_):
        assert local_files_only and gguf_file == "model.gguf"
        loads.append("model")
        return transformers.LlamaForCausalLM.from_pretrained(source)

    tokenizer = transformers.AutoTokenizer.from_pretrained(source)

    def tokenizer_loader(folder, gguf_file=None, local_files_only=False, **_):
        assert local_files_only and gguf_file == "model.gguf"
        return tokenizer

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model_loader)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer_loader)
    target = tmp_path / "cache" / "models" / "converted"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # a damaged earlier attempt: no weights, no marker

    assert convert_gguf(gguf, target) == target
    assert (target / "model.safetensors").is_file() and (target / CONVERTED_MARKER).is_file()
    assert convert_gguf(gguf, target) == target and loads == ["model"]  # the second start converts nothing
    assert not list(target.parent.glob("*.partial"))

    def interrupted(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(transformers.LlamaForCausalLM, "save_pretrained", interrupted)
    other = tmp_path / "cache" / "models" / "other"
    with pytest.raises(ModelLoadError, match="disk full"):
        convert_gguf(gguf, other)
    assert not other.exists() and not list(other.parent.glob(".other.*"))


# --- streaming and caps --------------------------------------------------------------------------------


def test_loads_from_a_folder_and_streams_sentences(tmp_path, exhibit, monkeypatch) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW, answer={"max_sentences": 5})
    assert answerer.name == "tiny" and answerer.device == "cpu" and answerer.memory_bytes >= 0
    _slow_down(monkeypatch, answerer, 0.05)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert answer.status == "ok" and answer.topic == "crew"
    assert isinstance(answer.sentences, Iterator) and not isinstance(answer.sentences, list)
    first = next(answer.sentences)
    assert first == CREW_SENTENCES[0]
    assert "generation_seconds" not in answer.info  # the first sentence came while the rest was written
    rest = words_of(answer)
    assert [first, *rest] == CREW_SENTENCES
    info = answer.info
    assert info["tokens"] == len(CREW.split()) and info["stop_eos"] == 1 and info["fallback"] == 0
    assert 0 < info["first_sentence_seconds"] < info["generation_seconds"] * 0.6
    assert info["tokens_per_second"] > 0 and info["prompt_tokens"] > 20
    assert answer.emotion is Emotion.SAD  # the model's tag, stripped from the spoken text


def test_sentence_cap(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW, answer={"max_sentences": 2})
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES[:2]
    assert answer.info["stop_sentence_cap"] == 1 and answer.info["tokens"] < len(CREW.split())
    assert answer.emotion is Emotion.HAPPY  # no tag reached: the section's tone


def test_max_new_tokens_drops_the_unfinished_sentence(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW, max_new_tokens=7)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES[:1]  # "Michael Collins" is not spoken
    assert answer.info["tokens"] == 7 and answer.info["stop_max_tokens"] == 1


def test_max_seconds_stops_and_falls_back_to_the_notes(tmp_path, exhibit, monkeypatch) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW, max_seconds=0.3)
    _slow_down(monkeypatch, answerer, 0.1)
    started = time.monotonic()
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    spoken = list(answer.sentences)
    assert time.monotonic() - started < 1.5
    assert answer.info["stop_max_seconds"] == 1 and answer.info["tokens"] <= 4
    assert (
        answer.info["fallback"] == 1
        and spoken == fallback_spoken(answer)
        and "Neil Armstrong was the commander." in spoken
    )


def test_no_checked_words_within_the_budget_and_the_notes_answer(tmp_path, exhibit, monkeypatch) -> None:
    """A slow model does not keep the visitor waiting: past the budget the notes' first sentence is spoken,
    then the model goes on from it (or the notes' next sentences do)."""
    answerer = _answerer(tmp_path, exhibit, CREW, first_piece_budget_s=0.25)
    _slow_down(monkeypatch, answerer, 0.1)
    started = time.monotonic()
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    first = next(answer.sentences)
    assert time.monotonic() - started < 0.6
    assert first == answer.fallback[0], (first, answer.fallback)
    rest = list(answer.sentences)  # the model goes on from the notes' sentence, slowly, its words checked
    assert rest and rest[-1] == answer.offer
    assert set(rest[:-1]) <= {*answer.fallback[1:], *CREW_SENTENCES}, rest  # the notes' next, or checked words
    assert answer.info["stop_budget"] == 1 and answer.info["fallback"] == 1 and llm_wording(answer.info) == "budget"
    # a quick model is not cut: the same answerer without the slow-down says its own words
    monkeypatch.undo()
    quick = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert list(quick.sentences)[:1] == CREW_SENTENCES[:1] and llm_wording(quick.info) == "model"


def test_the_budget_counts_from_the_question_even_before_the_first_token(tmp_path, exhibit, monkeypatch) -> None:
    """A prompt whose first token comes late (a long uncached prompt on a busy CPU) cannot hold the visitor:
    the notes start when the budget runs out, not when the model's first token arrives."""
    answerer = _answerer(tmp_path, exhibit, CREW, first_piece_budget_s=0.25)
    _slow_down(monkeypatch, answerer, 1.5)
    started = time.monotonic()
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    first = next(answer.sentences)
    waited = time.monotonic() - started
    assert waited < 0.6, f"the first words came {waited:.2f} s after the question"
    spoken = [first, *answer.sentences]
    assert spoken == fallback_spoken(answer) and "Neil Armstrong was the commander." in spoken
    time.sleep(1.8)  # the worker's forward pass ends; what it finds must not change the answer's record
    assert answer.info["stop_budget"] == 1 and llm_wording(answer.info) == "budget", answer.info
    assert "cancelled" not in answer.info
    monkeypatch.undo()
    quick = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert list(quick.sentences)[:1] == CREW_SENTENCES[:1] and llm_wording(quick.info) == "model"


def test_cancellation_stops_promptly(tmp_path, exhibit, monkeypatch) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW)
    _slow_down(monkeypatch, answerer, 0.05)
    cancel = CancelToken()
    answer = answerer.answer("Who flew on Apollo 11?", cancel)
    assert next(answer.sentences) == CREW_SENTENCES[0]
    cancel.cancel("visitor spoke")
    started = time.monotonic()
    assert list(answer.sentences) == []
    assert time.monotonic() - started < 0.5
    _wait_finished(answer)
    assert answer.info["cancelled"] == 1 and answer.info["tokens"] < len(CREW.split())
    assert answer.info["fallback"] == 0

    cancel = CancelToken()
    cancel.cancel()
    answer = answerer.answer("Who flew on Apollo 11?", cancel)
    assert list(answer.sentences) == []  # cancelled before it began: nothing, not even the fallback


def test_a_repeating_model_is_stopped(tmp_path, exhibit) -> None:
    answerer = _answerer(
        tmp_path,
        exhibit,
        CREW.replace(" [sad]", ""),
        loop=True,
        answer={"max_sentences": 6},
        max_new_tokens=300,
    )
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES
    assert answer.info["stop_repetition"] == 1 and answer.info["tokens"] < 30


# --- grounding, the output filter and emotion ----------------------------------------------------------


def test_an_invented_fact_ends_the_answer(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, "Neil Armstrong was the commander. He ate 12 pancakes.")
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES[:1]
    assert answer.info["stop_ungrounded"] == 1 and answer.info["fallback"] == 0


def test_an_invented_first_sentence_falls_back_to_the_notes(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, "Columbia cost 25 million dollars to build.")
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    spoken = list(answer.sentences)
    assert answer.info["fallback"] == 1 and spoken == fallback_spoken(answer)
    assert llm_wording(answer.info) == "checks"
    assert not any("25" in s or "million" in s for s in spoken)
    assert answer.emotion is Emotion.HAPPY  # the crew section's tone


def test_echoes_of_the_question_and_instruction_are_dropped(tmp_path, exhibit) -> None:
    script = (
        "Who flew on Apollo 11? You are Nova, a warm concise museum guide. Neil Armstrong was the commander."
    )
    answerer = _answerer(tmp_path, exhibit, script)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES[:1]
    assert answer.info["dropped"] == 2


def test_the_output_filter_speaks_the_calm_reply(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW, answer={"blocklist": ["commander"]})
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert list(answer.sentences) == [CALM_REPLY]
    assert answer.info["filtered_output"] == 1 and answer.emotion is Emotion.NEUTRAL


def test_random_weights_never_speak_unchecked_text(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, None, max_new_tokens=40)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    spoken = list(answer.sentences)
    assert spoken and answer.emotion in set(Emotion)
    notes = exhibit.section("crew").text
    assert all(s in notes or s in (CALM_REPLY, answer.offer) or Grounding(notes).check(s).ok for s in spoken)


def test_grounding_checks() -> None:
    notes = "Neil Armstrong was the commander. Apollo 11 launched on 16 July 1969. It landed at 40,000 km/h."
    check = Grounding(
        notes, question="Who was the commander?", scaffold="You are Nova, a museum guide."
    ).check
    assert check("The commander was Neil Armstrong.").ok
    assert check("Apollo 11 launched on July 16, 1969.").ok
    assert check("It came back at 40000 km/h.").reason != "unsupported_number"
    assert check("It launched in 1970.").reason == "unsupported_number"
    assert check("The commander was Yuri Gagarin.").reason == "unsupported_name"
    assert check("It cost twenty million dollars.").reason == "unsupported_name"
    assert check("Who was the commander?").reason == "echo"
    assert check("I am Nova, a museum guide.").reason == "echo"
    assert check("The astronauts ate eggs for breakfast.").reason == "low_overlap"
    assert check("I don't know what the commander ate.").ok


@pytest.mark.parametrize(
    ("text", "spoken", "emotion"),
    [
        ("Columbia came home. [happy]", "Columbia came home.", Emotion.HAPPY),
        ("Columbia came home (Surprised)", "Columbia came home", Emotion.SURPRISED),
        ("Columbia came home. Emotion: excited", "Columbia came home.", Emotion.HAPPY),
        ("Columbia came home. [smiles]", "Columbia came home.", None),
        ("Columbia (the capsule) came home.", "Columbia (the capsule) came home.", None),
    ],
)
def test_emotion_tags(text: str, spoken: str, emotion: Emotion | None) -> None:
    assert strip_emotion_tags(text) == (spoken, emotion)


def test_no_valid_tag_uses_the_sections_tone(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW.replace("[sad]", "[banana]"))
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES and answer.emotion is Emotion.HAPPY


def test_small_talk_and_out_of_scope_are_canned(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW)
    hello = answerer.answer("Hello", CancelToken())
    assert list(hello.sentences) == [exhibit.greeting] and hello.info["canned"] == 1
    away = answerer.answer("What is the capital of France?", CancelToken())
    assert away.status == "out_of_scope" and away.info["canned"] == 1 and "Apollo" in next(away.sentences)
    unknown = answerer.answer("How much did Columbia cost?", CancelToken())  # on topic, but not in the notes
    assert unknown.status == "unanswered" and unknown.info["canned"] == 1
    assert next(unknown.sentences).startswith("I'm sorry, my notes don't say.")


# --- the conversation ----------------------------------------------------------------------------------


def test_history_is_in_the_prompt_until_reset(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW)
    first = answerer.answer("Who flew on Apollo 11?", CancelToken())
    list(first.sentences)
    second = answerer.answer("Who flew on Apollo 11?", CancelToken())
    list(second.sentences)
    assert second.info["prompt_tokens"] > first.info["prompt_tokens"]
    answerer.reset_session()
    third = answerer.answer("Who flew on Apollo 11?", CancelToken())
    list(third.sentences)
    assert third.info["prompt_tokens"] == first.info["prompt_tokens"]


def test_the_prompt_is_bounded(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW, section="landing", max_prompt_tokens=130)
    answer = answerer.answer("Where did they land on the Moon?", CancelToken())
    list(answer.sentences)
    assert answer.info["prompt_tokens"] <= 130


# --- failures ------------------------------------------------------------------------------------------


def test_out_of_memory_answers_from_the_notes_and_the_next_turn_works(tmp_path, exhibit, monkeypatch) -> None:
    import torch

    answerer = _answerer(tmp_path, exhibit, CREW)
    model = answerer._model
    forward = model.forward
    freed: list[int] = []
    monkeypatch.setattr(answerer_module, "free_accelerator_memory", lambda: freed.append(1))

    def out_of_memory(*args, **kwargs):
        monkeypatch.setattr(model, "forward", forward)  # only this turn runs out
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(model, "forward", out_of_memory)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    spoken = list(answer.sentences)
    assert (
        spoken == fallback_spoken(answer)
        and spoken
        and answer.info["oom"] == 1
        and answer.info["fallback"] == 1
    )
    assert answerer.oom_count == 1 and freed
    assert answer.emotion is Emotion.HAPPY

    again = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(again) == CREW_SENTENCES and "oom" not in again.info


def test_other_generation_errors_answer_from_the_notes(tmp_path, exhibit, monkeypatch) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW)

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(answerer._model, "forward", broken)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert list(answer.sentences) == fallback_spoken(answer) and answer.info["error"] == 1
    assert answerer.error_count == 1 and answerer.oom_count == 0


def test_one_generation_at_a_time(tmp_path, exhibit, monkeypatch) -> None:
    """A second turn while an abandoned first one still runs waits for the model, then answers whole."""
    answerer = _answerer(tmp_path, exhibit, CREW)
    _slow_down(monkeypatch, answerer, 0.02)
    first = answerer.answer("Who flew on Apollo 11?", CancelToken())
    next(first.sentences)
    results: list[list[str]] = []
    thread = threading.Thread(
        target=lambda: results.append(
            [s for s in answerer.answer("Who flew on Apollo 11?", CancelToken()).sentences if not s.startswith("Would you")]
        )
    )
    thread.start()
    first.sentences.close()  # type: ignore[attr-defined]
    thread.join(10)
    assert results == [CREW_SENTENCES]


# --- latency: first clause, prefix cache, fast decoder, guessed tokens --------------------------------

CLAUSE = "Neil Armstrong was the commander, and Collins flew Columbia."


def test_the_first_clause_is_handed_out_before_its_sentence_ends(tmp_path, exhibit, monkeypatch) -> None:
    answerer = _answerer(tmp_path, exhibit, CLAUSE)
    _slow_down(monkeypatch, answerer, 0.05)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert next(answer.sentences) == "Neil Armstrong was the commander,"
    assert "generation_seconds" not in answer.info  # the rest of the sentence was still being written
    assert words_of(answer) == ["and Collins flew Columbia."]
    info = answer.info
    assert info["first_clause"] == 1 and info["first_sentence_tokens"] == 6 and info["fallback"] == 0
    second = answerer.answer("And then?", CancelToken())
    list(second.sentences)
    assert answerer._history[0][1] == CLAUSE  # the clause and its rest are one sentence again


def test_without_first_clauses_the_whole_sentence_is_waited_for(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, CLAUSE, first_clause_words=0)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == [CLAUSE] and "first_clause" not in answer.info


def test_a_clause_whose_sentence_then_fails_is_followed_by_the_notes(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, "Neil Armstrong was the commander, and he ate 12 pancakes.")
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    spoken = list(answer.sentences)
    assert spoken == ["Neil Armstrong was the commander,", *fallback_spoken(answer)]
    assert answer.info["stop_ungrounded"] == 1 and answer.info["fallback"] == 1
    assert not any("12" in s or "pancakes" in s for s in spoken)


def test_an_ungrounded_clause_is_not_spoken_early(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, "Yuri Gagarin was the commander, and Collins flew Columbia.")
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    spoken = list(answer.sentences)
    assert "first_clause" not in answer.info and answer.info["fallback"] == 1
    assert not any("Gagarin" in s for s in spoken)


def test_a_first_sentence_with_an_invented_name_is_given_up_early(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, "Columbia is shown in the Space Race Museum today.", section="overview")
    answer = answerer.answer("Where is Columbia displayed?", CancelToken())
    assert list(answer.sentences) == fallback_spoken(answer)
    assert answer.info["stop_ungrounded"] == 1 and answer.info["tokens"] == 8  # "... Space Race" and one more
    check = Grounding("Neil Armstrong was the commander.").unsupported
    assert (
        check("Neil Armstrong met Yuri") == "unsupported_name" and check("It took 12") == "unsupported_number"
    )
    assert check("Neil Armstrong was the") == ""


def test_a_sentence_is_judged_at_its_full_stop(tmp_path, exhibit) -> None:
    """ "commander." ends the first sentence: it is handed out without waiting for the next token."""
    answerer = _answerer(tmp_path, exhibit, CREW)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES and answer.info["first_sentence_tokens"] == 5
    assert _ends_sentence("Neil Armstrong was the commander.", 0)
    assert _ends_sentence('He said "we came in peace."', 0)
    for unfinished in (
        "It was 3.",
        "It sailed to the U.S.",
        "Ask Dr.",
        "Hi.",
        "It weighed approx.",
        "one e.g.",
    ):
        assert not _ends_sentence(unfinished, 0), unfinished


def test_system_prompts_are_computed_once(tmp_path, exhibit) -> None:
    """Each section's system prompt is computed at load; a turn extends a copy and leaves it intact."""
    for fast in (True, False):
        answerer = _answerer(tmp_path / str(fast), exhibit, CREW, fast_decode=fast)
        assert (answerer._fast is not None) is fast
        assert len(answerer._prefixes) == len(exhibit.sections)
        kept = {key: _kept_length(entry) for key, entry in answerer._prefixes.items()}
        first = answerer.answer("Who flew on Apollo 11?", CancelToken())
        spoken = words_of(first)
        assert spoken == CREW_SENTENCES
        assert 0 < first.info["cached_tokens"] < first.info["prompt_tokens"]
        assert {key: _kept_length(entry) for key, entry in answerer._prefixes.items()} == kept
        answerer.reset_session()
        again = answerer.answer("Who flew on Apollo 11?", CancelToken())
        assert words_of(again) == spoken and again.info["cached_tokens"] == first.info["cached_tokens"]


def _kept_length(entry: object) -> int:
    import torch

    if isinstance(entry, KeyValues):
        assert all(
            k.shape[2] == entry.length and k.dtype in (torch.float16, torch.bfloat16) for k in entry.keys
        )
        return entry.length
    return int(entry.get_seq_length())  # a transformers cache


def test_the_prefix_cache_is_bounded_and_can_be_off(tmp_path, exhibit) -> None:
    bounded = _answerer(tmp_path / "bounded", exhibit, CREW, prefix_cache=2)
    assert len(bounded._prefixes) == 2
    for question in ("Who flew on Apollo 11?", "Who was the commander?", "Who flew Columbia?"):
        bounded.retriever = FixedRetriever(exhibit, ["crew", "launch", "landing"][len(question) % 3])
        list(bounded.answer(question, CancelToken()).sentences)
        assert len(bounded._prefixes) <= 2
    off = _answerer(tmp_path / "off", exhibit, CREW, prefix_cache=0)
    answer = off.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES and answer.info["cached_tokens"] == 0
    assert not off._prefixes


def test_a_system_message_that_begins_as_a_kept_one_computes_only_the_rest(tmp_path, exhibit) -> None:
    """Notes of two sections begin with the best one's, warmed alone: that beginning is reused, and the
    keys and values come out as computed whole."""
    import torch

    answerer = _answerer(tmp_path, exhibit, CREW, warm_prefixes=False, precision="float32")
    decoder = answerer.decoder
    assert decoder is not None and decoder.fast is not None
    vocab = int(decoder.model.config.vocab_size)
    first = (torch.arange(40) % vocab).unsqueeze(0)
    second = torch.cat([first[:, :30], ((torch.arange(10) * 7 + 3) % vocab).unsqueeze(0)], dim=-1)
    assert int(second[0, 30]) != int(first[0, 30])
    with _inference():
        _, reused = decoder.prefix_past(first, decoder.fast)
        assert reused == 0
        shared, reused = decoder.prefix_past(second, decoder.fast)
        assert reused == 30 and shared.length == 40
        whole = decoder.fast.start(40)
        decoder.fast.forward(second, whole)
    for mine, theirs in zip(shared.keys + shared.values, whole.keys + whole.values, strict=True):
        assert torch.allclose(mine.float(), theirs[:, :, :40].float(), atol=1e-2)
    assert len(decoder.prefixes) == 2
    with _inference():  # fewer tokens in common than MIN_SHARED_TOKENS: computed whole
        _, reused = decoder.prefix_past((first + 1) % vocab, decoder.fast)
    assert reused == 0


def test_the_models_thread_count_is_set_at_load(tmp_path, exhibit) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        answerer = _answerer(tmp_path, exhibit, CREW, threads=1)
        assert torch.get_num_threads() == 1
        assert words_of(answerer.answer("Who flew on Apollo 11?", CancelToken())) == CREW_SENTENCES
    finally:
        torch.set_num_threads(before)


def test_the_fast_decoder_writes_what_transformers_writes(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, None, max_new_tokens=40)
    assert answerer._fast is not None
    question = "Who flew on Apollo 11?"
    plan = answerer.planner.plan(question)
    built = answerer._build_prompt(question, plan)
    prompt, prefix = built.ids, built.prefix_tokens
    decoder = answerer.decoder
    assert decoder is not None
    runs = {}
    for name, fast, guesses in (
        ("transformers", None, 0),
        ("fast", answerer._fast, 0),
        ("guessed", answerer._fast, 4),
    ):
        decoder.fast = fast
        decoder.config = dataclasses.replace(decoder.config, draft_tokens=guesses)
        state: dict = {}
        with _inference():
            runs[name] = list(decoder.tokens(prompt, 40, time.monotonic() + 30, _NoCancel(), state, prefix))
    assert len(runs["transformers"]) > 5
    assert runs["fast"] == runs["transformers"] and runs["guessed"] == runs["transformers"]


def test_guessed_tokens_come_from_the_notes(tmp_path, exhibit) -> None:
    answerer = _answerer(tmp_path, exhibit, CREW)
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES
    assert answer.info["drafted_tokens"] >= 3  # "Armstrong was the commander." follows "Neil" in the notes
    assert _lookup([1, 2, 3, 4, 5, 9, 2, 3], 2) == [4, 5]  # after the latest earlier "2 3"
    assert _lookup([1, 2, 3, 4, 5, 9, 2, 3], 9) == [4, 5, 9, 2, 3]
    assert _lookup([1, 2, 3, 7], 4) == []


def test_a_fast_decoder_that_disagrees_is_not_used(tmp_path, exhibit, monkeypatch) -> None:
    monkeypatch.setattr(
        FastLlama, "verify", lambda self, model, ids, steps=3: "logits differ by 0.5 at step 1"
    )
    answerer = _answerer(tmp_path, exhibit, CREW)
    assert answerer._fast is None
    answer = answerer.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES and answer.info["drafted_tokens"] == 0


def test_a_4bit_model_is_decoded_with_its_4bit_weights(tmp_path, exhibit) -> None:
    """A model on a 4-bit grid (as the embedded Q4_1 GGUF is) is multiplied as 4-bit in bfloat16, and writes
    what it writes unpacked; a model that is not 4-bit, or float32, is left dense."""
    packed = _answerer(tmp_path / "grid", exhibit, CREW, grid=True, precision="bfloat16")
    assert packed.dtype == "bfloat16" and packed._fast is not None
    assert packed.packed_projections == 7  # q, k, v, o, gate, up, down of the one layer
    assert packed._fast.packed_bytes > 0
    answer = packed.answer("Who flew on Apollo 11?", CancelToken())
    assert words_of(answer) == CREW_SENTENCES and answer.info["fallback"] == 0
    dense = _answerer(tmp_path / "dense", exhibit, CREW, precision="bfloat16")
    assert dense._fast is not None and dense.packed_projections == 2  # only o and down: all zeros
    wide = _answerer(tmp_path / "wide", exhibit, CREW, grid=True, precision="float32")
    assert wide.dtype == "float32" and wide.packed_projections == 0
    off = _answerer(tmp_path / "off", exhibit, CREW, grid=True, precision="bfloat16", int4=False)
    assert off.packed_projections == 0


def test_int4_packing_is_exact_or_refused() -> None:
    import torch

    from kiosk.engine.llm import int4

    weight = _on_4bit_grid(torch.randn(64, 96, generator=torch.Generator().manual_seed(1)))
    packed = int4.pack(weight, torch.bfloat16)
    assert packed is not None and packed.shape == (64, 96)
    assert packed.nbytes < weight.numel()  # under a byte a weight, scales included
    x = torch.randn(3, 96, generator=torch.Generator().manual_seed(2))
    expected = x @ weight.t()
    got = int4.linear(x.to(torch.bfloat16), packed).float()
    assert float((got - expected).abs().max()) < 0.02 * float(expected.abs().max())
    assert int4.pack(torch.randn(64, 96), torch.bfloat16) is None  # not 4-bit: stays dense
    assert int4.pack(weight.to(torch.bfloat16), torch.bfloat16) is None  # only found in float32
    assert int4.pack(weight[:, :80], torch.bfloat16) is None  # not whole groups


class _NoCancel:
    cancel = None
    stop = threading.Event()


def _inference():
    import torch

    return torch.inference_mode()


# --- the real SmolLM2 ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2(cache_dir: Path, exhibit: Exhibit):
    """SmolLM2 converted once (the user's ~/.cache/docent is reused when it holds a conversion)."""
    from kiosk.engine.device import resolve_device
    from kiosk.engine.retrieval import SectionRetriever

    home = Path("~/.cache/docent").expanduser()
    cache = home if is_converted(home / "models" / EMBEDDED_CACHE_NAME, embedded_gguf_path()) else cache_dir
    config = load_config(env={}).replace(
        paths={"cache_dir": str(cache)},
        answer={"backend": "llm"},
        llm={"device": "cpu", "first_piece_budget_s": 0.0},  # the model's own words, however slow CI is
    )
    retriever = SectionRetriever(exhibit, resolve_device("cpu"))
    retriever.load()
    answerer = ANSWERERS.create("llm", config, exhibit, retriever)
    answerer.load()
    yield answerer
    answerer.close()


def _ask(answerer: LlmAnswerer, question: str) -> tuple[str, object]:
    answerer.reset_session()
    answer = answerer.answer(question, CancelToken())
    text = " ".join(answer.sentences)
    assert answer.emotion in set(Emotion)
    return text, answer


@pytest.mark.slow
def test_smollm2_names_the_commander(smollm2: LlmAnswerer) -> None:
    text, answer = _ask(smollm2, "Who was the commander of Apollo 11?")
    assert "Armstrong" in text, text


@pytest.mark.slow
@pytest.mark.parametrize(
    "question", ["How much did Columbia cost to build?", "What did the astronauts eat for breakfast?"]
)
def test_smollm2_invents_no_facts(smollm2: LlmAnswerer, exhibit: Exhibit, question: str) -> None:
    text, _ = _ask(smollm2, question)
    known = " ".join([exhibit.title, exhibit.greeting, *(f"{s.heading}. {s.text}" for s in exhibit.sections)])
    known_numbers = {n.replace(",", "") for n in re.findall(r"\d+(?:[.,]\d+)*", known)}
    for number in re.findall(r"\d+(?:[.,]\d+)*", text):
        assert number.replace(",", "") in known_numbers, text
    known_words = {w.lower() for w in re.findall(r"[A-Za-z]+", known)}
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        names = [w for w in re.findall(r"[A-Za-z]+", sentence)[1:] if w[0].isupper() and w != "I"]
        assert all(n.lower() in known_words for n in names), text


@pytest.mark.slow
def test_smollm2_fast_decoding_says_what_transformers_says(smollm2: LlmAnswerer, exhibit: Exhibit) -> None:
    """In float32 the fast decoder, guessed tokens, the prefix cache and early clauses change when, not what.

    (In bfloat16 two orders of rounding may pick different words at a near tie: not compared here.)
    """

    def load(**llm: object) -> LlmAnswerer:
        config = smollm2.config.replace(llm={"precision": "float32", **llm})
        answerer = ANSWERERS.create("llm", config, exhibit, smollm2.retriever)
        answerer.load()
        return answerer

    fast = load()
    plain = load(fast_decode=False, prefix_cache=0, warm_prefixes=False, first_clause_words=0)
    try:
        assert fast._fast is not None and fast._prefixes and fast.packed_projections == 0
        for question in ("When did Apollo 11 launch?", "Why is the outside of the capsule scorched?"):
            fast_text, answer = _ask(fast, question)
            plain_text, _ = _ask(plain, question)
            assert fast_text == plain_text, (fast_text, plain_text)
            assert answer.info["cached_tokens"] > 0 and answer.info["drafted_tokens"] > 0
    finally:
        fast.close()
        plain.close()


@pytest.mark.slow
def test_smollm2_runs_its_4bit_weights_on_any_processor(smollm2: LlmAnswerer) -> None:
    """bfloat16 activations for torch's 4-bit kernel whether or not the processor computes bfloat16 (on
    AVX2 it is lighter than dense float32 and no slower): ``.ci/run`` runs this with kernels held to AVX2."""
    assert smollm2.dtype == "bfloat16" and smollm2._fast is not None
    assert (
        smollm2.packed_projections == 30 * 7
    )  # every projection of the Q4_1 GGUF; the Q8_0 head stays dense
    text, answer = _ask(smollm2, "When did Apollo 11 launch?")
    assert "1969" in text and answer.info["drafted_tokens"] > 0, text


def test_loading_tensor_by_tensor_gives_transformers_model(tmp_path) -> None:
    """The lean loader's model computes what ``from_pretrained``'s does; a folder it does not understand
    (here: weights in a PyTorch pickle, not safetensors) is left to ``from_pretrained``."""
    import torch
    from transformers import AutoModelForCausalLM

    from kiosk.engine.llm.loading import load_model, safetensors_files

    folder = _save_tiny_llama(tmp_path / "tiny", CREW)
    assert safetensors_files(folder)
    lean, packed = load_model(folder, torch.bfloat16, pack=True)
    reference = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16)
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.inference_mode():
        assert torch.equal(lean(input_ids=ids).logits, reference(input_ids=ids).logits)
    assert lean.dtype == torch.bfloat16 and not lean.training
    assert lean.generation_config.eos_token_id == reference.generation_config.eos_token_id
    assert set(packed) == {"model.layers.0.self_attn.o_proj", "model.layers.0.mlp.down_proj"}  # all zeros

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for item in folder.iterdir():
        if item.suffix != ".safetensors":
            (pickled / item.name).write_bytes(item.read_bytes())
    torch.save(reference.float().state_dict(), pickled / "pytorch_model.bin")
    model, packed = load_model(pickled, torch.float32, pack=True)
    assert not safetensors_files(pickled) and packed == {}
    with torch.inference_mode():
        assert torch.allclose(model(input_ids=ids).logits, reference(input_ids=ids).logits)
