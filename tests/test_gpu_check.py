"""scripts/gpu_check.py: skips cleanly without CUDA; its random models work through the real loaders on CPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.engine.answer import ANSWERERS
from kiosk.engine.cancel import CancelToken
from kiosk.engine.device import Device
from kiosk.engine.retrieval import SectionRetriever
from kiosk.exhibit import load_exhibit

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_it_skips_cleanly_without_cuda() -> None:
    gpu_check = _module()
    if gpu_check.cuda_missing() is None:
        pytest.skip("this machine has CUDA: the check itself runs")
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.startswith("gpu check skipped: ") and len(done.stdout.splitlines()) == 1


def test_its_random_models_load_through_the_kiosks_loaders(tmp_path: Path) -> None:
    gpu_check = _module()
    exhibit = load_exhibit("apollo11-columbia")
    words = sorted({w.strip(".,;:!?()\"'") for s in exhibit.sections for w in s.text.split()} - {""})
    bert = gpu_check.save_random_bert(tmp_path / "bert", words)
    retriever = SectionRetriever(exhibit, Device("cpu"), model_path=bert, runtime="torch")
    retriever.load()
    assert retriever.search(gpu_check.QUESTION)
    llama = gpu_check.save_random_llama(tmp_path / "llama", words)
    config = load_config(env={}).replace(
        paths={"cache_dir": str(tmp_path / "cache")},
        answer={"backend": "llm"},
        llm={"model": str(llama), "device": "cpu"},
    )
    answerer = ANSWERERS.create("llm", config, exhibit, retriever, device_count=lambda: 0)
    answerer.load()
    assert list(answerer.answer(gpu_check.QUESTION, CancelToken()).sentences)


def test_the_vendored_packages_are_copied(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--make-vendor", str(tmp_path / "vendor")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-1500:]
    for name in ("psutil", "bcrypt", "bm25s"):
        assert (tmp_path / "vendor" / name / "__init__.py").is_file()
