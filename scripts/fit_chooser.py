"""Can a chooser fitted on labelled questions beat the hand-written rules?  Figures, never a test pack.

    .venv/bin/python scripts/fit_chooser.py --cache-dir .venv/test-cache

Every dev question (the blind corpus's dev packs and the seven older packs) is asked as bench/answers.py
asks it; where the planner comes to choose a sentence, each candidate's feature row
(kiosk/engine/choice_features.py) is kept with its label: the sentence matches the pattern a right reply
matches.  A question the notes do not answer labels every candidate wrong.  A logistic regression
(scikit-learn, at fit time only) weighs the features; each pack is judged by a model fitted without it,
at the threshold (below it no sentence answers) that gets most questions right across the dev packs.
It prints those figures beside the rules' own on the same questions, for the older packs and the corpus's
dev packs apart.  The kiosk ships no fitted weights until a fitted chooser wins on dev and then on the test
split (issue 21); until then this is how a new feature is tried.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import answer_runs as bench  # noqa: E402  (the same packs, rows and asking as bench/answers.py)
from kiosk.engine import choosing  # noqa: E402
from kiosk.engine.choice_features import FEATURES, candidate_features  # noqa: E402

OLDER_PACKS = (
    "apollo11-columbia",
    "eileen-collins",
    "bench/packs/hay-wain",
    "bench/packs/flying-scotsman",
    "bench/packs/bell-rock",
    "bench/packs/rosetta-stone",
    "bench/packs/sue-t-rex",
)
ANSWERED = bench.ANSWERED_KINDS


@dataclass
class Asked:
    pack: str
    kind: str  # the row's kind: fact, paraphrase, ..., unanswerable
    features: np.ndarray  # (candidates, FEATURES)
    right: np.ndarray  # (candidates,) bool: the sentence matches the right reply's pattern
    avoid: np.ndarray  # (candidates,) bool: the sentence holds the false fact's pattern
    rules: int  # the candidate the hand-written rules chose, or -1 (the notes do not say)
    question: str
    texts: list[str]  # the candidate sentences


def dev_packs() -> list[str]:
    return [*OLDER_PACKS, *(p.path for p in bench.corpus_packs("dev"))]


def collect(cache: str | None) -> list[Asked]:
    """Ask every dev question; keep the candidates of the one that is scored (a follow-up's second)."""
    from kiosk.engine.answer import ANSWERERS
    from kiosk.engine.device import resolve_device
    from kiosk.engine.retrieval import SectionRetriever
    from kiosk.exhibit import load_exhibit

    packs = dev_packs()
    first = bench.pack_config(packs[0], "retrieval", cache)
    retriever = SectionRetriever(
        load_exhibit(first.exhibit.path),
        resolve_device("cpu", lambda: 0),
        runtime=first.retrieval.runtime,
        cache_dir=first.cache_dir,
    )
    retriever.load()
    captured: list[tuple] = []
    original = choosing.SentenceChooser.choose

    def capture(self, question, scored, unknown, topic=None):
        chosen = original(self, question, scored, unknown, topic)
        rules = next((i for i, c in enumerate(scored) if c is chosen), -1)
        vector = self.index.embed(question.text)
        captured.append((candidate_features(self, question, scored, unknown, topic, vector), scored, rules))
        return chosen

    choosing.SentenceChooser.choose = capture  # type: ignore[method-assign]
    asked: list[Asked] = []
    try:
        for pack in packs:
            config = bench.pack_config(pack, "retrieval", cache)
            exhibit = load_exhibit(config.exhibit.path)
            retriever.index(exhibit)
            answerer = ANSWERERS.create("retrieval", config, exhibit, retriever)
            answerer.load()
            for row in bench.read_rows(bench.questions_file(pack)):
                if row.kind not in (*ANSWERED, "unanswerable"):
                    continue
                answerer.reset_session()
                for earlier in row.asked[:-1]:
                    bench.ask(answerer, None, earlier)
                captured.clear()
                bench.ask(answerer, None, row.asked[-1])
                if not captured:
                    continue  # answered before any sentence was chosen (declined, a vague question...)
                features, scored, rules = captured[-1]
                texts = [c.passage.text for c in scored]
                right = np.array(
                    [row.kind in ANSWERED and bool(re.search(row.expect, t, re.I)) for t in texts], dtype=bool
                )
                avoid = np.array([bool(row.avoid) and bool(re.search(row.avoid, t, re.I)) for t in texts])
                asked.append(
                    Asked(Path(pack).name, row.kind, features, right, avoid, rules, row.question, texts)
                )
            answerer.close()
    finally:
        choosing.SentenceChooser.choose = original  # type: ignore[method-assign]
    return asked


def fit(asked: list[Asked]):
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([a.features for a in asked])
    y = np.concatenate([a.right for a in asked])
    model = LogisticRegression(C=1.0, max_iter=3000)
    model.fit(x, y)
    return model


def outcomes(model, asked: list[Asked]) -> list[tuple[float, bool, bool]]:
    """Per question: the best sentence's probability, whether it is right, whether it is false."""
    out = []
    for a in asked:
        p = model.predict_proba(a.features)[:, 1]
        best = int(np.argmax(p))
        out.append((float(p[best]), bool(a.right[best]), bool(a.avoid[best])))
    return out


def figures(
    asked: list[Asked], outs: list[tuple[float, bool, bool]], threshold: float
) -> tuple[int, int, int, int]:
    """Facts right, answered questions, honest unknowns, unanswerable questions (among those chosen for)."""
    facts = unknowns = n_facts = n_unknown = 0
    for a, (p, right, _false) in zip(asked, outs, strict=True):
        if a.kind == "unanswerable":
            n_unknown += 1
            unknowns += p < threshold
        else:
            n_facts += 1
            facts += p >= threshold and right
    return facts, n_facts, unknowns, n_unknown


def best_threshold(asked: list[Asked], outs: list[tuple[float, bool, bool]]) -> float:
    candidates = np.linspace(0.05, 0.95, 91)

    def score(t: float) -> float:
        facts, n_facts, unknowns, n_unknown = figures(asked, outs, t)
        return facts / max(1, n_facts) + unknowns / max(1, n_unknown)

    return float(max(candidates, key=score))


def rules_figures(asked: list[Asked]) -> tuple[int, int, int, int]:
    facts = sum(a.rules >= 0 and bool(a.right[a.rules]) for a in asked if a.kind != "unanswerable")
    unknowns = sum(a.rules < 0 for a in asked if a.kind == "unanswerable")
    return (
        facts,
        sum(a.kind != "unanswerable" for a in asked),
        unknowns,
        sum(a.kind == "unanswerable" for a in asked),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    asked = collect(args.cache_dir)
    packs = sorted({a.pack for a in asked})
    held_out: list[tuple[float, bool, bool]] = [(0.0, False, False)] * len(asked)
    for pack in packs:  # leave one pack out: each pack judged by a model that never saw it
        model = fit([a for a in asked if a.pack != pack])
        for i, a in enumerate(asked):
            if a.pack == pack:
                held_out[i] = outcomes(model, [a])[0]
    threshold = best_threshold(asked, held_out)
    older = {Path(p).name for p in OLDER_PACKS}
    print(f"questions that reach the chooser: {len(asked)}; threshold {threshold:.2f} (leave one pack out)")
    print(
        f"{'packs':22}{'chooser':9}{'top sentence right':>20}{'facts right':>14}{'honest unknowns':>17}{'false':>7}"
    )
    for label, chosen in (
        ("older seven", lambda a: a.pack in older),
        ("corpus dev", lambda a: a.pack not in older),
    ):
        idx = [i for i, a in enumerate(asked) if chosen(a)]
        group, outs = [asked[i] for i in idx], [held_out[i] for i in idx]
        top = sum(o[1] for a, o in zip(group, outs, strict=True) if a.kind != "unanswerable")
        rules_top = sum(a.rules >= 0 and bool(a.right[a.rules]) for a in group if a.kind != "unanswerable")
        for name, (facts, n_facts, unknowns, n_unknown), best, false in (
            (
                "rules",
                rules_figures(group),
                rules_top,
                sum(a.rules >= 0 and bool(a.avoid[a.rules]) for a in group),
            ),
            ("fitted", figures(group, outs, threshold), top, sum(o[2] and o[0] >= threshold for o in outs)),
        ):
            print(
                f"{label:22}{name:9}{f'{best}/{n_facts}':>20}{f'{facts}/{n_facts}':>14}"
                f"{f'{unknowns}/{n_unknown}':>17}{false:>7}"
            )
    model = fit(asked)
    print("weights fitted on every dev pack:")
    for name, w in sorted(zip(FEATURES, model.coef_[0], strict=True), key=lambda p: -abs(p[1])):
        print(f"  {name:20} {w:+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
