"""Smart Turn v3.2 (pipecat-ai, BSD-2-Clause): a Whisper-tiny encoder that hears whether a turn is over.

The int8 ONNX file ships inside the ``pipecat-ai`` wheel (installed with ``--no-deps``); only the file
is used, with onnxruntime on one thread.  The file is quantized (int8 weights, uint8 activations);
onnxruntime multiplies those with VNNI where the processor has it and, on a plain AVX2 processor (the
mini PCs museums buy), with an instruction whose 16-bit sums saturate: there the same question fragment
scored 0.38 instead of 0.05 (seen under ``qemu-x86_64 -cpu Haswell`` and on an AVX2 EPYC), and a pause
mid-question ended the turn.  ``session.x64quantprecision`` makes the AVX2 path sum without saturating,
so every x86-64 processor gets the verdicts of VNNI (0.987 / 0.048 on both).  Input: ``input_features`` (1, 80, 800), the last 8 s as
Whisper log-mel features; output: the probability that the turn is complete.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from kiosk.config import TurnConfig
from kiosk.engine.turn.features import log_mel
from kiosk.engine.turn.model import TURN_MODELS, TurnModel
from kiosk.errors import ModelLoadError

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"


def bundled_model_path() -> Path:
    """The model inside the installed pipecat-ai wheel (found without importing pipecat)."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("turn: pipecat-ai is not installed (it carries the Smart Turn model)")
    path = Path(next(iter(spec.submodule_search_locations))) / "audio/turn/smart_turn/data" / MODEL_FILE
    if not path.is_file():
        raise ModelLoadError(f"turn: {path} is missing")
    return path


@TURN_MODELS.register("smart_turn")
class SmartTurn(TurnModel):
    name = "smart-turn-v3.2"

    def __init__(self, config: TurnConfig) -> None:
        self.config = config
        self._session = None

    def load(self) -> None:
        import onnxruntime

        path = Path(self.config.model_path).expanduser() if self.config.model_path else bundled_model_path()
        if not path.is_file():
            raise ModelLoadError(f"turn: {path} is missing")
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 4
        options.add_session_config_entry("session.x64quantprecision", "1")  # no saturation on AVX2
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"], sess_options=options
            )
        except Exception as exc:  # a corrupt or foreign file
            raise ModelLoadError(f"turn: cannot load {path}: {str(exc).splitlines()[0][:160]}") from None

    def probability(self, audio: np.ndarray) -> float:
        if self._session is None:
            raise ModelLoadError("turn: the model is not loaded")
        features = log_mel(audio)[None, :, :]
        (out, *_) = self._session.run(None, {"input_features": features})
        return float(np.asarray(out).reshape(-1)[0])

    def close(self) -> None:
        self._session = None


def create_turn_model(config: TurnConfig) -> TurnModel | None:
    """The configured model, loaded; None for ``backend = "none"``. Raises ModelLoadError on failure."""
    if config.backend == "none":
        return None
    model = TURN_MODELS.create(config.backend, config)
    model.load()
    return model
