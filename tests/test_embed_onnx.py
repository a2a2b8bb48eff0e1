"""Retrieval without torch: the ONNX export of all-MiniLM-L6-v2 gives sentence-transformers' vectors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kiosk.engine import model_cache
from kiosk.engine.device import resolve_device
from kiosk.engine.embed_onnx import ONNX_FILE, OnnxEmbedder, ensure_onnx, onnx_folder
from kiosk.engine.retrieval import SectionRetriever, embedded_minilm_path
from kiosk.exhibit import load_exhibit

ROOT = Path(__file__).resolve().parent.parent
PACKS = ("apollo11-columbia",)


def _sentences() -> list[str]:
    texts: list[str] = []
    for pack in PACKS:
        exhibit = load_exhibit(pack)
        for section in exhibit.sections:
            texts.append(f"{section.heading}. {section.text}")  # a long key, as the retriever embeds it
            texts.extend(section.sentences)
    return texts + ["how heavy is it?", "", "a"]


def test_onnx_vectors_equal_sentence_transformers(cache_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    path = embedded_minilm_path()
    texts = _sentences()
    embed = OnnxEmbedder(ensure_onnx(path, cache_dir))
    onnx = embed(texts)
    reference = SentenceTransformer(str(path), device="cpu", local_files_only=True).encode(
        texts, convert_to_numpy=True, normalize_embeddings=True, batch_size=32
    )
    assert onnx.shape == reference.shape and onnx.dtype == np.float32
    cosines = (onnx * reference).sum(axis=1)
    assert cosines.min() >= 0.999, (cosines.min(), texts[int(cosines.argmin())])
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    assert embed([]).shape == (0, 384)


def test_damaged_export_is_converted_again(tmp_path: Path) -> None:
    path = embedded_minilm_path()
    folder = ensure_onnx(path, tmp_path)
    assert folder == onnx_folder(path, tmp_path) and model_cache.mismatch(folder) is None
    model_cache.take_rebuilds()
    with (folder / ONNX_FILE).open("r+b") as handle:  # a disk error in the middle of the weights
        handle.seek(1_000_000)
        handle.write(b"\0" * 64)
    assert model_cache.mismatch(folder) == f"{ONNX_FILE} does not match its checksum"
    assert ensure_onnx(path, tmp_path) == folder
    assert model_cache.mismatch(folder) is None
    assert [r.stage for r in model_cache.take_rebuilds()] == ["retrieval"]
    recorded = json.loads((folder / model_cache.CHECKSUMS).read_text())["sha256"]
    assert set(recorded) == {ONNX_FILE, "tokenizer.json"}


def test_two_kiosks_converting_into_one_fresh_cache_both_get_a_whole_export(tmp_path: Path) -> None:
    """Two processes start on one empty cache and both convert: each writes a folder of its own and
    renames it into place (a fixed ".partial" name made the second fail, then apologise for every answer)."""
    convert = (
        "import sys; from pathlib import Path; from kiosk.engine.embed_onnx import ensure_onnx, OnnxEmbedder; "
        "from kiosk.engine.retrieval import embedded_minilm_path; "
        "e = OnnxEmbedder(ensure_onnx(embedded_minilm_path(), Path(sys.argv[1]))); print(e(['hello']).shape)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    both = [
        subprocess.Popen(
            [sys.executable, "-c", convert, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    for process in both:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0 and "(1, 384)" in out, err[-1500:]
    folder = onnx_folder(embedded_minilm_path(), tmp_path)
    assert model_cache.mismatch(folder) is None
    assert not list(folder.parent.glob("*.partial")), "a temporary folder was left behind"


def test_torch_runtime_is_still_chosen_on_request(cache_dir: Path) -> None:
    exhibit = load_exhibit("apollo11-columbia")
    cpu = resolve_device("cpu", lambda: 0)
    assert SectionRetriever(exhibit, cpu, cache_dir=cache_dir).runtime == "onnx"
    assert SectionRetriever(exhibit, cpu, runtime="torch", cache_dir=cache_dir).runtime == "torch"


_NO_TORCH = """
import json, sys
import psutil
from kiosk.config import load_config
from kiosk.engine.audio_out import NullSink
from kiosk.engine.engine import Engine
env = {"KIOSK_AUDIO__INPUT": '"none"', "KIOSK_AUDIO__OUTPUT": '"none"', "KIOSK_METRICS__PORT": "0",
       "KIOSK_PATHS__CACHE_DIR": json.dumps(sys.argv[1]), "KIOSK_ANSWER__BACKEND": '"retrieval"',
       "KIOSK_TTS__PREWARM": "false"}
engine = Engine(load_config(env=env), sink=NullSink(realtime=True))
engine.load()
turn = engine.ask("How heavy is the command module?")
turn.done.wait(60)
print(json.dumps({"failures": engine.failures, "torch": "torch" in sys.modules,
                  "sentence_transformers": "sentence_transformers" in sys.modules,
                  "reply": " ".join(turn.spoken), "rss": psutil.Process().memory_info().rss}))
engine.close()
"""


def test_a_retrieval_kiosk_never_imports_torch(cache_dir: Path) -> None:
    ensure_onnx(embedded_minilm_path(), cache_dir)  # the one conversion (torch) happens in this process
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failures"] == {}
    assert result["reply"]
    assert not result["torch"] and not result["sentence_transformers"]
    print(f"retrieval kiosk RSS {result['rss'] / 2**20:.0f} MiB")


@pytest.mark.parametrize("bad", ["", "a" * 5000])
def test_odd_input_embeds(cache_dir: Path, bad: str) -> None:
    embed = OnnxEmbedder(ensure_onnx(embedded_minilm_path(), cache_dir))
    vectors = embed([bad, "the command module"])
    assert vectors.shape == (2, 384) and np.isfinite(vectors).all()
