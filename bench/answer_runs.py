"""The bench's question sets and how they are asked: rows, replies and their scoring, the corpus's split,
a pack's answerer, typed or spoken.  bench/answers.py prints the tables; scripts/fit_chooser.py fits on the
same rows, asked the same way.
"""

from __future__ import annotations

import codecs
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.config import Config, load_config  # noqa: E402
from kiosk.emotion import Emotion  # noqa: E402
from kiosk.engine.cancel import CancelToken  # noqa: E402
from kiosk.engine.replies import NOT_UNDERSTOOD_REPLY  # noqa: E402
from kiosk.engine.stage import Answerer, SpeechSynthesizer  # noqa: E402
from kiosk.exhibit import load_exhibit  # noqa: E402

QUESTIONS = ROOT / "bench" / "questions"
CORPUS = ROOT / "bench" / "corpus"
PACKS = ("apollo11-columbia", "bench/packs/hay-wain", "bench/packs/flying-scotsman", "bench/packs/bell-rock")
ANSWERED_KINDS = ("fact", "paraphrase", "vague", "disfluent", "followup")
DECLINED = ("out_of_scope", "filtered", "not_understood")
LONG_QUESTION = "Who flew Columbia? " + "blah " * 1000  # 5,000 characters


@dataclass(frozen=True)
class Row:
    kind: str
    question: str
    expect: str
    avoid: str

    @property
    def asked(self) -> list[str]:
        return [q.strip() for q in self.question.split(">>")]


@dataclass
class Reply:
    row: Row
    status: str
    text: str
    first_sentence_s: float
    first_audio_s: float | None
    model_words: bool = False  # some of the reply is the model's (a sentence it wrote, checked)
    heard: str = ""  # --spoken: what the recogniser made of the question
    voice: int = 0  # --spoken: which of bench/spoken.py's voices said the question (1-based)

    @property
    def right(self) -> bool:
        kind, row = self.row.kind, self.row
        if kind in ANSWERED_KINDS:
            return self.status == "ok" and bool(re.search(row.expect, self.text, re.I)) and not self.false
        if kind == "trap":
            return not self.false
        if kind == "unanswerable":
            return self.status == "unanswered"
        if kind == "offtopic":
            return self.status in DECLINED or self.status == "unanswered"
        # hostile: declined, or (with an expected answer) answered right; never a false fact
        if row.expect:
            return self.status == "ok" and bool(re.search(row.expect, self.text, re.I))
        return self.status in DECLINED or self.status == "unanswered"

    @property
    def false(self) -> bool:
        return bool(self.row.avoid) and bool(re.search(self.row.avoid, self.text, re.I))


@dataclass
class Result:
    pack: str
    backend: str
    replies: list[Reply] = field(default_factory=list)

    def share(self, *kinds: str) -> tuple[int, int]:
        chosen = [r for r in self.replies if r.row.kind in kinds]
        return sum(r.right for r in chosen), len(chosen)


def read_rows(path: Path) -> list[Row]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = (line.split("\t") + ["", "", ""])[:4]
        question = codecs.decode(parts[1], "unicode_escape") if "\\x" in parts[1] else parts[1]
        question = LONG_QUESTION if question == "{long}" else question
        rows.append(Row(parts[0].strip(), question, parts[2].strip(), parts[3].strip()))
    return rows


def questions_file(pack: str) -> Path:
    """A corpus pack's questions lie in the corpus; the older packs' in bench/questions."""
    name = Path(pack).name
    if Path(pack).parent == Path("bench/corpus/packs"):
        return CORPUS / "questions" / f"{name}.tsv"
    return QUESTIONS / f"{name}.tsv"


@dataclass(frozen=True)
class CorpusPack:
    path: str  # as --packs takes it
    style: str
    split: str  # dev | test


def corpus_packs(split: str) -> list[CorpusPack]:
    """The blind corpus's packs of ``split`` (dev, test or all), as split.tsv fixed them."""
    packs = []
    for line in (CORPUS / "split.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        pack_id, style, _subject, pack_split = line.split("\t")
        if split in ("all", pack_split):
            packs.append(CorpusPack(f"bench/corpus/packs/{pack_id}", style, pack_split))
    return packs


def pack_config(pack: str, backend: str, cache: str | None) -> Config:
    env = {
        "KIOSK_EXHIBIT__PATH": f'"{ROOT / pack if "/" in pack else pack}"',
        "KIOSK_ANSWER__BACKEND": f'"{backend.removesuffix("-shipped")}"',
    }
    if backend == "llm":  # the model's own words, on any machine: the shipped budget puts the notes first
        env["KIOSK_LLM__FIRST_PIECE_BUDGET_S"] = "0"
    if cache:
        env["KIOSK_PATHS__CACHE_DIR"] = f'"{cache}"'
    return load_config(env=env)


def ask(
    answerer: Answerer, tts: SpeechSynthesizer | None, question: str
) -> tuple[str, str, float, float | None, bool]:
    started = time.monotonic()
    answer = answerer.answer(question, CancelToken())
    sentences: list[str] = []
    first_sentence = first_audio = None
    for sentence in answer.sentences:
        if first_sentence is None:
            first_sentence = time.monotonic() - started
            if tts is not None:
                next(iter(tts.stream(sentence, Emotion.NEUTRAL, CancelToken())))
                first_audio = time.monotonic() - started
        sentences.append(sentence)
    answerer.commit(answer)
    info = answer.info
    model_words = "prompt_tokens" in info and (not info.get("fallback") or bool(info.get("model_sentences")))
    return answer.status, " ".join(sentences), first_sentence or 0.0, first_audio, model_words


# a question as the visitor's voice reaches the answerer: (transcript, understood)
Hear = Callable[[str], tuple[str, bool]]


def ask_heard(
    answerer: Answerer, hear: Hear, question: str
) -> tuple[str, str, float, float | None, bool, str]:
    """A spoken question: heard, then answered as the pipeline does (a doubtful transcript is not answered)."""
    text, understood = hear(question)
    if not understood:
        return "not_understood", NOT_UNDERSTOOD_REPLY, 0.0, None, False, text
    return (*ask(answerer, None, text), text)


def run_pack(
    pack: str, backend: str, retriever, tts, cache: str | None, limit: int, hear: Hear | None = None
) -> Result:
    import kiosk.engine.llm  # noqa: F401 - registers the "llm" answerer
    from kiosk.engine.answer import ANSWERERS

    config = pack_config(pack, backend, cache)
    exhibit = load_exhibit(config.exhibit.path)
    retriever.index(exhibit)
    answerer = ANSWERERS.create(config.answer.backend, config, exhibit, retriever)
    answerer.load()
    result = Result(Path(pack).name, backend)
    rows = read_rows(questions_file(pack))[: limit or None]
    for row in rows:
        answerer.reset_session()
        for earlier in row.asked[:-1]:
            ask(answerer, None, earlier) if hear is None else ask_heard(answerer, hear, earlier)
        asked = (
            ask(answerer, tts, row.asked[-1]) if hear is None else ask_heard(answerer, hear, row.asked[-1])
        )
        result.replies.append(Reply(row, *asked))
    answerer.close()
    return result


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part}/{whole})" if whole else "-"
