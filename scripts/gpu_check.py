"""One short run of what a GPU kiosk uses, on a real CUDA device; prints one table, skips without CUDA.

Checks: device selection (``auto`` finds CUDA), half precision (the dtype the device policy picks, a matmul
in it), the LLM answerer on CUDA with a small random Llama (built here: no weights to carry), retrieval on
CUDA (sentence-transformers in half precision; with a random BERT when the carried MiniLM package is
absent; the ONNX embedder on CUDA where onnxruntime has the CUDA provider), a real CUDA out-of-memory during
an answer (the process's memory capped just above what it holds) answered from the notes and the next turn
working, and NVML's per-process and the engine's per-model GPU memory appearing in /metrics.

Needs torch (CUDA), transformers, tokenizers, numpy, scipy, prometheus-client and nvidia-ml-py; no
faster-whisper, Piper or package registry.  The project's modules come from this working tree.  The small
packages the kiosk's modules also import (psutil, bcrypt: abi3 wheels; bm25s and the pinned
sentence-transformers: pure Python) are copied from this venv into a folder that travels with the tree and is
searched before the machine's own packages, beside a half-precision copy of the shipped MiniLM (44 MB: the
float32 original does not fit the 64 MiB a call may carry), so that retrieval runs the real model:

    python scripts/gpu_check.py --make-vendor build/gpu-vendor     # here, once
    python scripts/gpu_check.py --vendor build/gpu-vendor          # on the GPU machine
    # exit 0: all passed or skipped (no CUDA); 1: a check failed
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SPECIALS = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QUESTION = "Who was the commander of Apollo 11?"


VENDORED = ("psutil", "bcrypt", "bm25s", "sentence_transformers", "gguf")
MINILM_COPY = "minilm-fp16"


def make_vendor(folder: Path) -> None:
    """Copy the vendored packages and a half-precision MiniLM from this interpreter into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in VENDORED:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"{name} is not installed here")
        source = Path(next(iter(spec.submodule_search_locations)))
        shutil.rmtree(folder / name, ignore_errors=True)
        shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        # its metadata too: transformers asks gguf's version before reading a GGUF
        for dist in importlib.metadata.packages_distributions().get(name, []):
            info = Path(str(importlib.metadata.distribution(dist)._path))  # type: ignore[attr-defined]
            shutil.rmtree(folder / info.name, ignore_errors=True)
            shutil.copytree(info, folder / info.name)
    save_half_minilm(folder / MINILM_COPY)
    print(f"vendored {', '.join(VENDORED)} and {MINILM_COPY} into {folder}")


def save_half_minilm(target: Path) -> Path:
    """The shipped MiniLM folder with its weights in float16 (the kiosk halves it on CUDA anyway)."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from kiosk.engine.retrieval import embedded_minilm_path

    source = embedded_minilm_path()
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors", "*.md", ".git*"))
    weights = load_file(source / "model.safetensors")
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in weights.items()}
    save_file(half, target / "model.safetensors", metadata={"format": "pt"})
    return target


def cuda_missing() -> str | None:
    """Why this machine cannot run the check, or None."""
    try:
        import torch
    except Exception as exc:  # no torch at all
        return f"torch is not importable ({type(exc).__name__})"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device"
    return None


def save_random_llama(folder: Path, words: list[str]) -> Path:
    """A small random Llama with a word-level tokenizer over ``words`` (about 2 M parameters)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys([*SPECIALS, "assistant", *words]))}
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
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=vocab["<|im_start|>"],
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|im_end|>"],
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_random_bert(folder: Path, words: list[str]) -> Path:
    """A small random BERT folder that sentence-transformers loads (mean pooling by default)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys([*specials, *words]))}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.normalizer = normalizers.Lowercase()
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=192,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def real_llm_table(gguf: Path, devices: list[str], retriever_device: str = "cpu") -> str:
    """The shipped SmolLM2 answering the Apollo pack's questions on each device, in this process: median
    first sentence, how many openings are the model's own checked words, and its decoding rate."""
    import numpy as np

    import kiosk.engine.llm  # noqa: F401 - registers the "llm" answerer
    from kiosk.config import load_config
    from kiosk.engine.answer import ANSWERERS
    from kiosk.engine.cancel import CancelToken
    from kiosk.engine.device import cuda_device_count, resolve_device
    from kiosk.engine.llm.model import convert_gguf
    from kiosk.engine.retrieval import SectionRetriever
    from kiosk.exhibit import load_exhibit

    exhibit = load_exhibit("apollo11-columbia")
    work = Path(tempfile.mkdtemp(prefix="docent-gpu-llm-"))
    started = time.monotonic()
    folder = convert_gguf(gguf, work / "smollm2")
    lines = [f"converted {gguf.name} in {time.monotonic() - started:.1f} s"]
    model_path = None
    carried = Path(__file__).resolve().parent.parent / "build" / "gpu-vendor" / MINILM_COPY
    if carried.is_dir():
        model_path = carried
    device_for = resolve_device(retriever_device, cuda_device_count)
    retriever = SectionRetriever(exhibit, device_for, model_path=model_path, runtime="torch")
    retriever.load()
    questions = [s.question for s in exhibit.sections if s.question]
    questions += ["How much did Columbia weigh?", "Who was the commander?", "Where is it now?", "Why is it burnt?"]
    lines.append(
        f"{'device':<8} {'budget s':>8} {'first sentence s':>16} {'P90':>6} {'model opens':>11} "
        f"{'model sentences':>15} {'tok/s':>7}"
    )
    # the shipped first-piece budget, and none (the model always opens: its own first sentence and rate)
    for device, budget in [(d, b) for d in devices for b in (None, 10.0)]:
        llm = {"model": str(folder), "device": device}
        if budget is not None:
            llm["first_piece_budget_s"] = budget
        config = load_config(env={}).replace(
            paths={"cache_dir": str(work / "cache")}, answer={"backend": "llm"}, llm=llm
        )
        answerer = ANSWERERS.create("llm", config, exhibit, retriever, device_count=cuda_device_count)
        answerer.load()
        answerer.answer(questions[0], CancelToken())  # warm
        firsts, opens, sentences, rates = [], 0, [], []
        for question in questions:
            answerer.reset_session()  # type: ignore[attr-defined]
            answer = answerer.answer(question, CancelToken())  # type: ignore[attr-defined]
            list(answer.sentences)
            info = answer.info
            firsts.append(float(info.get("first_sentence_seconds", float("nan"))))
            opens += int(not info.get("fallback"))
            sentences.append(int(info.get("model_sentences", 0)))
            if "tokens_per_second" in info:  # (not recorded when the notes took over)
                rates.append(float(info["tokens_per_second"]))
        shown = "shipped" if budget is None else f"{budget:.0f}"
        rate = f"{np.median(rates):>7.0f}" if rates else f"{'-':>7}"
        lines.append(
            f"{device:<8} {shown:>8} {np.nanmedian(firsts):>16.3f} {np.nanpercentile(firsts, 90):>6.3f} "
            f"{opens:>5}/{len(questions):<5} {sum(s > 0 for s in sentences):>9}/{len(questions):<5} {rate}"
        )
        del answerer
    return "\n".join(lines)


class Checks:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, str]] = []

    def run(self, name: str, check: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            detail, status = check(), "pass"
        except Skip as skip:
            detail, status = str(skip), "skip"
        except Exception as exc:
            detail, status = f"{type(exc).__name__}: {exc}".splitlines()[0][:150], "FAIL"
            traceback.print_exc(file=sys.stderr)
        self.rows.append((name, status, time.monotonic() - started, detail))

    def table(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        lines = [f"{'check':<{width}}  {'result':<6} {'seconds':>7}  detail"]
        lines += [f"{n:<{width}}  {s:<6} {t:>7.2f}  {d}" for n, s, t, d in self.rows]
        return "\n".join(lines)

    @property
    def failed(self) -> bool:
        return any(r[1] == "FAIL" for r in self.rows)


class Skip(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", type=Path, help="a folder of vendored packages, searched last")
    parser.add_argument(
        "--make-vendor", type=Path, help="copy the vendored packages into this folder, then exit"
    )
    parser.add_argument(
        "--llm-gguf", type=Path, help="the shipped SmolLM2 GGUF: answer with the real model on CUDA and CPU"
    )
    parser.add_argument("--llm-on-cpu-only", action="store_true", help=argparse.SUPPRESS)  # to try it here
    args = parser.parse_args()
    if args.llm_on_cpu_only and args.llm_gguf:
        print(real_llm_table(args.llm_gguf, ["cpu"]))
        return 0
    if args.make_vendor:
        make_vendor(args.make_vendor)
        return 0
    if args.vendor:
        sys.path.insert(1, str(args.vendor.resolve()))
    why = cuda_missing()
    if why:
        print(f"gpu check skipped: {why}")
        return 0
    import numpy as np
    import torch

    import kiosk.engine.llm  # noqa: F401 - registers the "llm" answerer, as the engine's import does
    from kiosk.config import load_config
    from kiosk.engine import events as ev
    from kiosk.engine.answer import ANSWERERS
    from kiosk.engine.cancel import CancelToken
    from kiosk.engine.device import Device, MemoryProbe, resolve_device
    from kiosk.engine.retrieval import SectionRetriever
    from kiosk.exhibit import load_exhibit

    exhibit = load_exhibit("apollo11-columbia")
    words = sorted({w.strip(".,;:!?()\"'") for s in exhibit.sections for w in s.text.split()} - {""})
    work = Path(tempfile.mkdtemp(prefix="docent-gpu-check-"))
    checks = Checks()
    state: dict[str, object] = {}
    count = torch.cuda.device_count

    def device_selection() -> str:
        device = resolve_device("auto", count)
        assert device == Device("cuda", 0), device
        assert resolve_device(f"cuda:{count() - 1}", count).index == count() - 1
        state["device"] = device
        return f"auto -> {device}; {count()} device(s): {torch.cuda.get_device_name(0)}"

    def half_precision() -> str:
        device: Device = state["device"]  # type: ignore[assignment]
        dtype = device.torch_dtype("auto")
        assert dtype in (torch.bfloat16, torch.float16), dtype
        a = torch.randn(512, 512, device=device.torch)
        exact = (a @ a).float()
        half = (a.to(dtype) @ a.to(dtype)).float()
        error = float((half - exact).abs().max() / exact.abs().max())
        assert error < 0.02, error
        return f"policy dtype {str(dtype).removeprefix('torch.')}; matmul relative error {error:.4f}"

    def minilm() -> tuple[Path, str]:
        from kiosk.engine.retrieval import embedded_minilm_path

        try:
            return embedded_minilm_path(), "all-MiniLM-L6-v2"
        except Exception:
            carried = args.vendor / MINILM_COPY if args.vendor else None
            if carried is not None and carried.is_dir():
                return carried, "all-MiniLM-L6-v2 (carried float16 copy)"
            return save_random_bert(work / "bert", words), "random BERT (MiniLM absent)"

    def cpu_retriever() -> SectionRetriever:
        if "cpu_retriever" not in state:
            retriever = SectionRetriever(exhibit, Device("cpu"), model_path=minilm()[0], runtime="torch")
            retriever.load()
            retriever._model.float()  # type: ignore[union-attr]  # a float16 copy computes in float32 on CPU
            state["cpu_retriever"] = retriever
        return state["cpu_retriever"]  # type: ignore[return-value]

    def retrieval_cuda() -> str:
        device: Device = state["device"]  # type: ignore[assignment]
        path, what = minilm()
        state["retrieval_path"] = path
        probe = MemoryProbe(device)
        retriever = SectionRetriever(exhibit, device, model_path=path, cache_dir=work / "cache")
        assert retriever.runtime == "torch", retriever.runtime
        retriever.load()
        param = next(retriever._model.parameters())  # type: ignore[union-attr]
        assert param.is_cuda and param.dtype == torch.float16, (param.device, param.dtype)
        matches = retriever.search(QUESTION)
        assert matches and np.isfinite(matches[0].score)
        state["retriever"] = retriever
        state["retrieval_bytes"] = probe.used()
        top = matches[0].section.id
        return f"{what} on {param.device} float16; top section '{top}'; {probe.used() / 2**20:.1f} MiB"

    def retrieval_speed() -> str:
        """The median search on CUDA against the CPU, same questions, same process; both find the same."""
        retriever = state.get("retriever")
        if retriever is None:
            raise Skip("retrieval on CUDA failed first")
        cpu = cpu_retriever()
        questions = [s.question for s in exhibit.sections if s.question] * 3
        medians = []
        for engine in (retriever, cpu):
            for question in questions[:3]:  # warm
                engine.search(question)
            times = []
            for question in questions:
                started = time.perf_counter()
                engine.search(question)
                times.append(time.perf_counter() - started)
            medians.append(float(np.median(times)))
        same = sum(
            retriever.search(q)[0].section.id == cpu.search(q)[0].section.id  # type: ignore[attr-defined]
            for q in questions
        )
        assert same >= 0.9 * len(questions), f"top sections agree on {same} of {len(questions)}"
        return (
            f"median search {medians[0] * 1000:.1f} ms on CUDA, {medians[1] * 1000:.1f} ms on CPU "
            f"(x{medians[1] / medians[0]:.1f}); same top section {same}/{len(questions)}"
        )

    def retrieval_onnx_cuda() -> str:
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise Skip(f"onnxruntime {onnxruntime.__version__} has no CUDA provider")
        from kiosk.engine.embed_onnx import OnnxEmbedder, ensure_onnx
        from kiosk.engine.retrieval import embedded_minilm_path

        try:
            path = embedded_minilm_path()
        except Exception:
            raise Skip("the MiniLM package is absent (the export needs its weights)") from None
        device: Device = state["device"]  # type: ignore[assignment]
        embed = OnnxEmbedder(ensure_onnx(path, work / "cache"), device.onnx_providers)
        providers = embed._session.get_providers()
        vectors = embed([QUESTION, exhibit.sections[0].text])
        assert providers[0] == "CUDAExecutionProvider" and np.isfinite(vectors).all(), providers
        return f"providers {providers}"

    def llm_answerer(retriever: object) -> object:
        folder = work / "llama"
        if not folder.is_dir():
            save_random_llama(folder, words)
        config = load_config(env={}).replace(
            paths={"cache_dir": str(work / "cache")},
            answer={"backend": "llm"},
            llm={"model": str(folder), "device": "auto"},
        )
        answerer = ANSWERERS.create("llm", config, exhibit, retriever, device_count=count)
        answerer.load()
        return answerer

    def llm_cuda() -> str:
        retriever = state.get("retriever")
        if retriever is None:
            raise Skip("retrieval on CUDA failed first")
        answerer = llm_answerer(retriever)
        param = next(answerer._model.parameters())  # type: ignore[attr-defined]
        assert param.is_cuda and param.dtype in (torch.bfloat16, torch.float16), (param.device, param.dtype)
        started = time.monotonic()
        answer = answerer.answer(QUESTION, CancelToken())  # type: ignore[attr-defined]
        spoken = list(answer.sentences)
        assert spoken, "no sentence"
        first = time.monotonic() - started
        state["answerer"] = answerer
        tokens = answer.info.get("tokens", 0)
        again = []  # warm turns: the first one pays CUDA's lazy start
        for _ in range(3):
            started = time.monotonic()
            assert list(answerer.answer(QUESTION, CancelToken()).sentences)  # type: ignore[attr-defined]
            again.append(time.monotonic() - started)
        return (
            f"{answerer.name} on {param.device} {str(param.dtype).removeprefix('torch.')}; {tokens} tokens, "
            f"{len(spoken)} sentence(s) in {first:.2f} s, warm {float(np.median(again)):.2f} s "
            "(random weights: notes expected)"
        )

    def fill_gpu() -> list[object]:
        """Every free byte of GPU 0 taken, down to the allocator's smallest block: the next allocation fails."""
        ballast: list[object] = []
        for size in (2**30, 2**26, 2**22, 2**20, 2**16, 2**12, 2**9):
            while True:
                try:
                    ballast.append(torch.empty(size, dtype=torch.uint8, device="cuda:0"))
                except torch.cuda.OutOfMemoryError:
                    break
        return ballast

    def out_of_memory() -> str:
        if state.get("answerer") is None:
            raise Skip("the LLM on CUDA failed first")
        # the LLM on the GPU with its retriever on the CPU, so that the out-of-memory is the LLM's
        answerer = llm_answerer(cpu_retriever())
        ballast = fill_gpu()
        filled = sum(t.numel() for t in ballast) / 2**30  # type: ignore[attr-defined]
        try:
            answer = answerer.answer(QUESTION, CancelToken())  # type: ignore[attr-defined]
            spoken = list(answer.sentences)
        finally:
            ballast.clear()
            torch.cuda.empty_cache()
        assert answer.info.get("oom") == 1, f"no out-of-memory: {answer.info}"
        assert spoken and answer.info.get("fallback") == 1, answer.info
        again = answerer.answer(QUESTION, CancelToken())  # type: ignore[attr-defined]
        assert list(again.sentences) and "oom" not in again.info, again.info
        return (
            f"GPU filled ({filled:.1f} GiB ballast): answered from the notes ({len(spoken)} sentences), "
            f"oom_count {answerer.oom_count}; next turn ok"  # type: ignore[attr-defined]
        )

    def metrics() -> str:
        from kiosk.telemetry import Telemetry

        config = load_config(env={"KIOSK_METRICS__PORT": "0", "KIOSK_SAMPLER__INTERVAL_S": "0.1"})
        bus = ev.EventBus()
        telemetry = Telemetry(config, bus, exhibit.topic_ids, lambda: {"answer": True, "retrieval": True})
        for stage, key, name in (("retrieval", "retrieval_bytes", "MiniLM"), ("answer", "answerer", "llm")):
            value = state.get(key)
            memory = getattr(value, "memory_bytes", value) if value is not None else None
            if memory is not None:
                bus.publish(
                    ev.ModelLoaded(
                        stage=stage, name=name, device="cuda:0", load_seconds=0.1, memory_bytes=int(memory)
                    )
                )  # type: ignore[arg-type]
        telemetry.start()
        try:
            server = telemetry.server
            assert server is not None and server.port > 0, telemetry.server_error
            body = ""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                body = (
                    urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
                    .read()
                    .decode()
                )
                if "kiosk_gpu_process_memory_bytes{" in body:
                    break
                time.sleep(0.2)
        finally:
            telemetry.stop()
        lines = [line for line in body.splitlines() if not line.startswith("#")]
        process = [line for line in lines if line.startswith("kiosk_gpu_process_memory_bytes{")]
        models = [line for line in lines if line.startswith("kiosk_model_memory_bytes{") and "cuda" in line]
        used = [line for line in lines if line.startswith("kiosk_gpu_memory_used_bytes{")]
        assert process and float(process[0].rsplit(" ", 1)[1]) > 0, "no per-process GPU memory from NVML"
        assert len(models) >= 1 and used, "no per-model GPU memory"
        mib = float(process[0].rsplit(" ", 1)[1]) / 2**20
        reserved = torch.cuda.memory_reserved(0) / 2**20
        # what torch reserves plus a CUDA context: anything far above is another runtime's (jax once took 108 GB)
        assert mib < reserved + 2048, f"the process holds {mib:.0f} MiB, torch reserves {reserved:.0f}"
        return (
            f"process {mib:.0f} MiB (NVML; torch reserves {reserved:.0f} MiB); {len(models)} model series "
            f"on cuda; {len(used)} GPU(s) used; {nvml_processes()}"
        )

    def nvml_processes() -> str:
        """What NVML lists for GPU 0, raw: this process's pid beside each entry's (for the table's reader)."""
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            entries = []
            for kind, lister in (
                ("C", pynvml.nvmlDeviceGetComputeRunningProcesses),
                ("G", pynvml.nvmlDeviceGetGraphicsRunningProcesses),
            ):
                for entry in lister(handle):
                    used = entry.usedGpuMemory
                    entries.append(f"{kind} pid {entry.pid} {used / 2**20 if used else used:.0f} MiB")
            return f"our pid {os.getpid()}: " + ", ".join(entries)
        finally:
            pynvml.nvmlShutdown()

    checks.run("device selection", device_selection)
    checks.run("half precision", half_precision)
    checks.run("retrieval on CUDA (torch)", retrieval_cuda)
    checks.run("retrieval speed, CUDA vs CPU", retrieval_speed)
    checks.run("retrieval on CUDA (onnx)", retrieval_onnx_cuda)
    checks.run("LLM answerer on CUDA", llm_cuda)
    checks.run("CUDA out of memory", out_of_memory)
    checks.run("GPU memory in /metrics", metrics)
    print(checks.table())
    if args.llm_gguf:
        print(real_llm_table(args.llm_gguf, ["cuda", "cpu"], retriever_device="cuda"))
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
