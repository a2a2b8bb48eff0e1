"""The LLM answerer's time to its first spoken piece, baseline against tuned, interleaved in one process.

Loads the retriever once and one LLM answerer per variant, then asks each question of every variant in
turn (alternating the order), so that load from other processes falls on all variants alike.  For each
answer it prints the prompt tokens (and how many came from the prefix cache), the prompt's seconds, the
seconds from the question to the first piece handed to the voice (what the pipeline times as
``llm_first_sentence``), the decoding speed and the first piece; then medians and the tuned/baseline
ratio.

Variants: ``baseline`` turns off the latency features that have a switch (no prefix cache, the whole
first sentence, transformers' decoding); those without one stay on in every variant (logits for the last
position only, judging a sentence at its full stop, giving up early on a first sentence with an invented
name or number).  ``prefix`` adds the prefix cache, ``no-fast`` the first clause too, ``no-draft`` the
fast decoder too; ``float32`` everything but bfloat16; ``tuned`` is the shipped configuration (also tokens
guessed from the notes, and bfloat16 where the processor computes it); ``plan`` is
``[llm] notes = "plan"`` on top of it.  The fallbacks line counts the
answers whose first piece is the planner's sentence (the model's failed the checks): its time is the time
the model took to fail.

    KIOSK_PATHS__CACHE_DIR='"/tmp/docent-measure"' .venv/bin/python bench/llm_first_sentence.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KIOSK_EXHIBIT__PATH", '"apollo11-columbia"')  # its questions are about Apollo 11
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from kiosk.config import load_config  # noqa: E402
from kiosk.engine.answer import ANSWERERS  # noqa: E402
from kiosk.engine.cancel import CancelToken  # noqa: E402
from kiosk.engine.device import resolve_device  # noqa: E402
from kiosk.engine.llm import LlmAnswerer  # noqa: E402
from kiosk.engine.retrieval import SectionRetriever  # noqa: E402
from kiosk.exhibit import load_exhibit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turn_latency import QUESTIONS as SPOKEN_QUESTIONS  # noqa: E402

from bench.machine import describe  # noqa: E402

QUESTIONS = SPOKEN_QUESTIONS[:8]  # the first eight of the end-to-end benchmark

VARIANTS = {
    "baseline": {
        "prefix_cache": 0,
        "warm_prefixes": False,
        "first_clause_words": 0,
        "fast_decode": False,
        "draft_tokens": 0,
    },
    "prefix": {"first_clause_words": 0, "fast_decode": False},
    "no-fast": {"fast_decode": False},
    "no-draft": {"draft_tokens": 0},
    "float32": {"precision": "float32"},
    "tuned": {},
    # the prompt's notes: only the planned sentences (a shorter prompt)
    "plan": {"notes": "plan"},
}


def ask(answerer: LlmAnswerer, question: str) -> dict[str, object]:
    answerer.reset_session()
    started = time.monotonic()
    answer = answerer.answer(question, CancelToken())
    pieces: list[str] = []
    first = float("nan")
    for piece in answer.sentences:
        if not pieces:
            first = time.monotonic() - started
        pieces.append(piece)
    info = answer.info
    return {
        "first_s": first,
        "prompt_tokens": int(info.get("prompt_tokens", 0)),
        "cached_tokens": int(info.get("cached_tokens", 0)),
        "prompt_s": float(info.get("prompt_seconds", float("nan"))),
        "tokens_per_s": float(info.get("tokens_per_second", float("nan"))),
        "total_s": float(info.get("generation_seconds", float("nan"))),
        "fallback": int(info.get("fallback", 0)),
        "clause": int(info.get("first_clause", 0)),
        "tokens": int(info.get("tokens", 0)),
        "first_tokens": float(info.get("first_sentence_tokens", float("nan"))),  # none when it fell back
        "drafted": int(info.get("drafted_tokens", 0)),
        "first": pieces[0] if pieces else "",
        "text": " | ".join(pieces),
    }


def median(rows: list[dict[str, object]], key: str) -> float:
    values = [float(r[key]) for r in rows if r[key] == r[key]]  # not NaN
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="times each question is asked of each variant")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--variants", default="baseline,tuned")
    parser.add_argument("--verbose", action="store_true", help="print every answer's whole text")
    args = parser.parse_args()
    print(describe(), flush=True)
    logging.basicConfig(level=logging.WARNING)
    names = args.variants.split(",")
    base = load_config()  # the exhibit: KIOSK_EXHIBIT__PATH, Apollo 11 unless set
    base = base.replace(answer={"backend": "llm"}, llm={"device": "cpu"})
    exhibit = load_exhibit(base.exhibit.path)
    retriever = SectionRetriever(exhibit, resolve_device("cpu"))
    retriever.load()
    answerers: dict[str, LlmAnswerer] = {}
    for name in names:
        config = base.replace(llm=VARIANTS[name])
        answerer = ANSWERERS.create("llm", config, exhibit, retriever)
        answerer.load()
        answerers[name] = answerer
        print(f"{name}: loaded in {answerer.load_seconds:.2f} s")
    questions = QUESTIONS[: args.questions]
    results: dict[str, list[dict[str, object]]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for index, question in enumerate(questions):
            order = names if (round_ + index) % 2 == 0 else names[::-1]
            for name in order:
                row = ask(answerers[name], question)
                row["question"] = question
                results[name].append(row)
    for question in questions:
        print(f"\n{question}")
        for name in names:
            rows = [r for r in results[name] if r["question"] == question]
            r = rows[-1]
            first = statistics.median(float(x["first_s"]) for x in rows)
            print(
                f"  {name:9} prompt {r['prompt_tokens']:3d} tok ({r['cached_tokens']:3d} cached)"
                f" {median(rows, 'prompt_s'):5.2f} s | first {first:5.2f} s | {median(rows, 'tokens_per_s'):4.1f} tok/s"
                f"{' | fallback' if r['fallback'] else ''} | {r['first']!r}"
            )
            if args.verbose:
                print(f"  {'':9} {r['text']}")
    print(f"\nMedians over {len(questions)} questions x {args.rounds} rounds, {os.cpu_count()} CPUs")
    keys = [
        ("prompt tokens", "prompt_tokens", "{:.0f}"),
        ("prompt tokens computed", None, "{:.0f}"),
        ("prompt seconds", "prompt_s", "{:.3f}"),
        ("first piece seconds", "first_s", "{:.3f}"),
        ("tokens per second", "tokens_per_s", "{:.1f}"),
        ("tokens to the first piece", "first_tokens", "{:.0f}"),
        ("whole answer seconds", "total_s", "{:.3f}"),
    ]
    print(f"{'':26}" + "".join(f"{n:>12}" for n in names) + (f"{'ratio':>10}" if len(names) > 1 else ""))
    for label, key, fmt in keys:
        values = []
        for name in names:
            rows = results[name]
            if key is None:
                values.append(
                    statistics.median(float(r["prompt_tokens"]) - float(r["cached_tokens"]) for r in rows)
                )
            else:
                values.append(median(rows, key))
        ratio = f"{values[-1] / values[0]:10.2f}" if len(names) > 1 and values[0] else ""
        print(f"{label:26}" + "".join(f"{fmt.format(v):>12}" for v in values) + ratio)
    for name in names:
        firsts = sorted(float(r["first_s"]) for r in results[name])
        p95 = firsts[min(len(firsts) - 1, round(0.95 * (len(firsts) - 1)))]
        clauses = sum(int(r["clause"]) for r in results[name])
        fallbacks = sum(int(r["fallback"]) for r in results[name])
        tokens = sum(int(r["tokens"]) for r in results[name])
        drafted = sum(int(r["drafted"]) for r in results[name]) / max(1, tokens)
        print(
            f"{name}: first piece P95 {p95:.3f} s; first clauses {clauses}, fallbacks {fallbacks} of {len(firsts)};"
            f" {drafted:.0%} of tokens guessed right"
        )
    for answerer in answerers.values():
        answerer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
