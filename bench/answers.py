"""Are the answers right, short and honest?  Question sets of every kind, on several exhibit packs.

    .venv/bin/python bench/answers.py                       # retrieval and llm, the four packs
    .venv/bin/python bench/answers.py --backends retrieval --packs apollo11-columbia
    .venv/bin/python bench/answers.py --corpus test --backends retrieval --no-tts   # the blind test split

Each pack has a question set in bench/questions/<pack>.tsv (kind, question, the pattern a right reply
matches, the pattern of a false fact).  Every question starts a fresh conversation; a follow-up row
("first >> second") asks the first, lets it be played, then scores the second.  It prints, per pack and
answer backend: facts right, traps avoided, declines right, honest unknowns, false facts found, words
per reply, first sentence and first audio (the first sentence spoken by Piper, uncached) medians; then
the claim check on true sentences of the notes and on recombined false ones made from them.

``--corpus dev|test|all`` runs the blind corpus (bench/corpus: 27 packs in 9 styles, split before
anyone looked) and prints a row per pack, then the totals by split; the README reports the test split,
and ``--misses`` never prints a test pack's replies.

``--spoken`` says every question instead (bench/spoken.py: four voices the kiosk never uses, clean and in
10 dB babble), hears it with the kiosk's recogniser, answers what was heard, and scores the reply as typed
questions are scored: a row per pack and condition, the totals by split, and facts right per voice.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.answer_runs import (  # noqa: E402
    ANSWERED_KINDS,
    DECLINED,
    PACKS,
    CorpusPack,
    Result,
    corpus_packs,
    pack_config,
    pct,
    run_pack,
)
from bench.machine import describe  # noqa: E402
from kiosk.engine.claims import ClaimChecker  # noqa: E402
from kiosk.engine.language import names, numbers, word_count, words  # noqa: E402
from kiosk.exhibit import Exhibit, load_exhibit  # noqa: E402


def recombined_claims(exhibit: Exhibit) -> tuple[list[str], list[str]]:
    """True sentences (the notes' own) and false ones made by swapping a number or a name between them."""
    true = [s for section in exhibit.sections for s in section.sentences]
    false: list[str] = []
    anchors = []
    for sentence in true:
        tokens = words(sentence)
        anchors.extend(sorted(numbers(tokens)))
    names_seen = sorted({n for s in true for n in names(words(s))})
    for i, sentence in enumerate(true):
        tokens = words(sentence)
        for number in sorted(numbers(tokens)):
            if number in sentence:
                other = next(
                    (a for a in anchors[i:] + anchors[:i] if a != number and a.isdigit() == number.isdigit()),
                    None,
                )
                if other:
                    false.append(sentence.replace(number, other, 1))
                    break
        for name in sorted(names(tokens)):
            match = re.search(rf"\b{re.escape(name)}\b", sentence, re.I)
            other = next((n for n in names_seen if n != name and n not in sentence.lower()), None)
            if match and other:
                false.append(sentence[: match.start()] + other.title() + sentence[match.end() :])
                break
    return true, false


def claim_figures(exhibit: Exhibit, retriever) -> tuple[int, int, int, int, float]:
    checker = ClaimChecker(retriever.passages.passages, allowed=exhibit.title)
    true, false = recombined_claims(exhibit)
    started = time.perf_counter()
    rejected = sum(not checker.check(s).ok for s in true)
    passed = sum(checker.check(s).ok for s in false)
    per_claim_ms = (time.perf_counter() - started) / max(1, len(true) + len(false)) * 1000
    return rejected, len(true), passed, len(false), per_claim_ms


def table(results: list[Result], claims: dict[str, tuple[int, int, int, int, float]]) -> str:
    columns = [f"{r.pack}/{r.backend}" for r in results]
    rows: list[tuple[str, list[str], str]] = []

    def add(label: str, values: list[str], target: str) -> None:
        rows.append((label, values, target))

    add(
        "facts right (fact, paraphrase, vague, disfluent, follow-up)",
        [pct(*r.share(*ANSWERED_KINDS)) for r in results],
        ">= 95%",
    )
    for kind in ANSWERED_KINDS:
        add(f"  {kind}", [pct(*r.share(kind)) for r in results], "")
    add("traps avoided", [pct(*r.share("trap")) for r in results], "100%")
    add("declines right (off-topic)", [pct(*r.share("offtopic")) for r in results], ">= 95%")
    add("honest unknowns", [pct(*r.share("unanswerable")) for r in results], ">= 90%")
    add("hostile handled", [pct(*r.share("hostile")) for r in results], "100%")
    add("false facts found", [str(sum(x.false for x in r.replies)) for r in results], "0")
    answered = [[x for x in r.replies if x.row.kind in ANSWERED_KINDS and x.status == "ok"] for r in results]
    add(
        "replies with the model's words",
        [
            pct(sum(x.model_words for x in a), len(a)) if r.backend.startswith("llm") else "-"
            for r, a in zip(results, answered, strict=True)
        ],
        "",
    )
    first = [
        [word_count(x.text) for x in r.replies if x.row.kind in ANSWERED_KINDS and x.status == "ok"]
        for r in results
    ]
    add("words per reply, median", [f"{statistics.median(w):.0f}" if w else "-" for w in first], "<= 30")
    add("replies over 45 words", [str(sum(n > 45 for n in w)) for w in first], "0")
    add(
        "first sentence, median",
        [f"{statistics.median([x.first_sentence_s for x in r.replies]):.3f} s" for r in results],
        "",
    )
    audio = [[x.first_audio_s for x in r.replies if x.first_audio_s is not None] for r in results]
    add(
        "first audio (Piper, uncached), median",
        [f"{statistics.median(a):.3f} s" if a else "-" for a in audio],
        "",
    )
    add(
        "claim check: true sentences rejected",
        [pct(claims[r.pack][0], claims[r.pack][1]) for r in results],
        "low",
    )
    add(
        "claim check: recombined claims passed",
        [pct(claims[r.pack][2], claims[r.pack][3]) for r in results],
        "0%",
    )
    add("claim check: time per claim", [f"{claims[r.pack][4]:.2f} ms" for r in results], "few ms")
    width = max(len(label) for label, _, _ in rows) + 2
    col = max(18, *(len(c) + 2 for c in columns))
    lines = ["".ljust(width) + "".join(c.ljust(col) for c in columns) + "target"]
    for label, values, target in rows:
        lines.append(label.ljust(width) + "".join(v.ljust(col) for v in values) + target)
    return "\n".join(lines)


def on_topic_declined(result: Result) -> tuple[int, int]:
    """On-topic questions (the notes answer them, or are silent on them) turned away as off-topic."""
    chosen = [r for r in result.replies if r.row.kind in (*ANSWERED_KINDS, "unanswerable")]
    return sum(r.status in DECLINED for r in chosen), len(chosen)


def corpus_table(results: list[Result], packs: dict[str, CorpusPack]) -> str:
    """A row per pack and backend, then the totals by split: what the README reports (the test split)."""
    header = (
        f"{'pack':10}{'split':6}{'style':12}{'backend':11}{'facts right':>16}{'honest unknowns':>17}"
        f"{'declines right':>16}{'on-topic declined':>19}{'false':>7}{'words':>7}"
    )
    lines = [header]

    def row(label: str, split: str, style: str, backend: str, chosen: list[Result]) -> str:
        def total(share) -> tuple[int, int]:
            parts = [share(r) for r in chosen]
            return sum(p[0] for p in parts), sum(p[1] for p in parts)

        facts = total(lambda r: r.share(*ANSWERED_KINDS))
        unknowns = total(lambda r: r.share("unanswerable"))
        declines = total(lambda r: r.share("offtopic", "hostile"))
        declined = total(on_topic_declined)
        false = sum(x.false for r in chosen for x in r.replies)
        counts = [
            word_count(x.text)
            for r in chosen
            for x in r.replies
            if x.row.kind in ANSWERED_KINDS and x.status == "ok"
        ]
        words_median = f"{statistics.median(counts):.0f}" if counts else "-"
        return (
            f"{label:10}{split:6}{style:12}{backend:11}{pct(*facts):>16}{pct(*unknowns):>17}"
            f"{pct(*declines):>16}{pct(*declined):>19}{false:>7}{words_median:>7}"
        )

    for result in results:
        pack = packs[result.pack]
        lines.append(row(result.pack, pack.split, pack.style, result.backend, [result]))
    for split in ("dev", "test"):
        for backend in dict.fromkeys(r.backend for r in results):
            chosen = [r for r in results if packs[r.pack].split == split and r.backend == backend]
            if chosen:
                lines.append(row("TOTAL", split, f"{len(chosen)} packs", backend, chosen))
    lines.append(
        "targets (test split): facts right >= 90%, honest unknowns >= 90%, declines right >= 95%, "
        "on-topic declined <= 2%, false facts 0, words <= 30 (median)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packs", default=",".join(PACKS))
    parser.add_argument(
        "--backends",
        default="retrieval,llm",
        help="retrieval, llm (the model's words, no budget), llm-shipped (the shipped first-piece budget: "
        "past it the notes' first sentence, then the model goes on)",
    )
    parser.add_argument("--limit", type=int, default=0, help="questions per pack (0: all)")
    parser.add_argument("--no-tts", action="store_true", help="skip the first-audio column")
    parser.add_argument("--cache-dir", default=os.environ.get("DOCENT_TEST_CACHE"))
    parser.add_argument(
        "--misses", action="store_true", help="print every reply that was not right (never a test pack's)"
    )
    parser.add_argument(
        "--corpus",
        choices=("dev", "test", "all"),
        help="the blind corpus's packs of this split instead of --packs (bench/corpus/split.tsv)",
    )
    parser.add_argument(
        "--spoken",
        action="store_true",
        help="say each question in four voices, clean and in 10 dB babble, and answer what the recogniser heard",
    )
    args = parser.parse_args(argv)
    if args.spoken:
        from bench import spoken
    corpus = {Path(p.path).name: p for p in corpus_packs(args.corpus)} if args.corpus else {}
    if corpus:
        args.packs = ",".join(p.path for p in corpus.values())

    from kiosk.engine.device import resolve_device
    from kiosk.engine.retrieval import SectionRetriever

    packs = [p.strip() for p in args.packs.split(",") if p.strip()]
    first_config = pack_config(packs[0], "retrieval", args.cache_dir)
    first = load_exhibit(first_config.exhibit.path)
    retriever = SectionRetriever(
        first,
        resolve_device("cpu", lambda: 0),
        runtime=first_config.retrieval.runtime,
        cache_dir=first_config.cache_dir,
    )
    retriever.load()
    tts = None
    if not args.no_tts:
        from kiosk.engine.tts import PiperSynthesizer

        tts = PiperSynthesizer(cache_bytes=0)  # uncached: every first sentence is synthesised
        tts.load()
    results: list[Result] = []
    claims: dict[str, tuple[int, int, int, int, float]] = {}
    for pack in packs:
        exhibit = load_exhibit(pack_config(pack, "retrieval", args.cache_dir).exhibit.path)
        retriever.index(exhibit)
        claims[Path(pack).name] = claim_figures(exhibit, retriever)
        if args.spoken:
            results.extend(spoken.spoken_results(pack, exhibit, retriever, args.cache_dir, args.limit))
            print(f"  {pack}: spoken", file=sys.stderr)
            continue
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            results.append(run_pack(pack, backend, retriever, tts, args.cache_dir, args.limit))
            print(f"  {pack} / {backend}: {len(results[-1].replies)} questions", file=sys.stderr)
    print(corpus_table(results, corpus) if corpus else table(results, claims))
    if args.spoken:
        print(spoken.voice_table(results, corpus))
    if args.misses:
        for result in results:
            if result.pack in corpus and corpus[result.pack].split == "test":
                continue  # nothing is tuned on a test pack: its misses are not shown
            for reply in result.replies:
                if not reply.right or reply.false:
                    print(
                        f"[{result.pack}/{result.backend}] {reply.row.kind}: {reply.row.question[:80]!r}"
                        + (f" heard {reply.heard[:80]!r}" if reply.heard else "")
                        + f" -> {reply.status}: {reply.text[:160]}"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
