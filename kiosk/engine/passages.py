"""The exhibit's notes as sentences, found by their words (BM25) and their meaning (MiniLM) together.

A rare word ("automated") finds its sentence through BM25 even when the embedding prefers a sentence
about the same topic; a paraphrase ("who piloted it") finds its sentence through the embedding.  Each
sentence knows its section and position, so an answer can add the next sentence or offer the rest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kiosk.engine.language import content_list, content_stems, names, numbers, stem, words
from kiosk.exhibit import Exhibit, Section

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index it builds at DEBUG


def _bm25s() -> Any:
    """bm25s, with jax (which it imports where installed, for top-k) kept off the GPU.

    At import bm25s runs a top-k through jax when jax is installed; on a CUDA machine jax then reserves 75 %
    of the GPU's memory (108 GB of an H200, seen by scripts/gpu_check.py). The kiosk only scores with
    bm25s, so jax is kept on the CPU unless the environment says otherwise.
    """
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import bm25s

    return bm25s

# how much the lexical score (0..1, relative to the best sentence) weighs beside the cosine (-1..1)
LEXICAL_WEIGHT = 0.5
# a section's heading counts as this many extra mentions of its words in each of its sentences
HEADING_WEIGHT = 1

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, d) unit vectors


@dataclass(frozen=True)
class Passage:
    """One sentence of the notes."""

    section: Section
    index: int  # its position in the section
    text: str
    stems: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]

    @classmethod
    def of(cls, section: Section, index: int, text: str) -> Passage:
        tokens = words(text)
        return cls(
            section,
            index,
            text,
            frozenset(content_stems(tokens)) | _naming(tokens),
            frozenset(numbers(tokens)),
            frozenset(names(tokens)),
        )

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class Scored:
    passage: Passage
    dense: float  # cosine with the question
    lexical: float  # BM25, divided by the best sentence's
    score: float  # the two together


class PassageIndex:
    """Every sentence of an exhibit's notes, with BM25 over stems and unit vectors from ``embed``."""

    def __init__(self, exhibit: Exhibit, embed: Embed) -> None:
        self.exhibit = exhibit
        self._embed = embed
        self.passages: list[Passage] = []
        for section in exhibit.sections:
            for index, sentence in enumerate(section.sentences):
                self.passages.append(Passage.of(section, index, sentence))
        corpus = []
        for passage in self.passages:
            heading = content_list(words(passage.section.heading)) * HEADING_WEIGHT
            corpus.append(content_list(words(passage.text)) + heading or ["_"])
        self._bm25 = _bm25s().BM25(k1=1.2, b=0.5)
        self._bm25.index(corpus, show_progress=False)
        self.vocabulary: frozenset[str] = frozenset(t for doc in corpus for t in doc)
        texts = [p.text for p in self.passages]
        self._vectors = embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        self._heading_vectors = embed([s.heading for s in exhibit.sections]) if exhibit.sections else None
        self._title_vector = embed([exhibit.title])[0]
        # how often each stem occurs in the notes: a stem in one sentence only is a strong clue
        self.frequency: dict[str, int] = {}
        for passage in self.passages:
            for term in passage.stems:
                self.frequency[term] = self.frequency.get(term, 0) + 1

    def embed(self, text: str) -> np.ndarray:
        return self._embed([text])[0]

    def search(self, vector: np.ndarray, terms: Sequence[str], limit: int = 8) -> list[Scored]:
        """The sentences that best fit a question's vector and its (expanded) stems, best first."""
        if not self.passages:
            return []
        dense = self._vectors @ vector
        known = [t for t in terms if t in self.vocabulary]
        lexical = np.zeros(len(self.passages), dtype=np.float32)
        if known:
            raw = np.asarray(self._bm25.get_scores(known), dtype=np.float32)
            top = float(raw.max())
            if top > 0:
                lexical = raw / top
        combined = dense + LEXICAL_WEIGHT * lexical
        order = np.argsort(-combined)[:limit]
        return [
            Scored(self.passages[i], float(dense[i]), float(lexical[i]), float(combined[i])) for i in order
        ]

    def topic_similarity(self, vector: np.ndarray) -> float:
        """How close a question is to the exhibit as a whole: its title, headings and best sentence."""
        scores = [float(self._title_vector @ vector)]
        if self._heading_vectors is not None:
            scores.append(float((self._heading_vectors @ vector).max()))
        if len(self._vectors):
            scores.append(float((self._vectors @ vector).max()))
        return max(scores)

    def heading_scores(self, vector: np.ndarray) -> np.ndarray:
        assert self._heading_vectors is not None
        return self._heading_vectors @ vector

    def in_section(self, section_id: str) -> list[Passage]:
        return [p for p in self.passages if p.section.id == section_id]


def _naming(tokens: list[str]) -> frozenset[str]:
    """ "named" and "called" are too common to index, but a sentence with them gives a name: "name" is asked
    of it ("what was it named after?")."""
    return (
        _NAME_STEMS if any(t.lower() in ("named", "called", "name", "names") for t in tokens) else frozenset()
    )


_NAME_STEMS = frozenset({stem("name"), stem("call")})
