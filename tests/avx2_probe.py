"""Run under ``qemu-x86_64 -cpu Haswell`` by ``test_any_processor.py``: the onnxruntime models on AVX2.

onnxruntime has no switch that holds its kernels to AVX2 (torch has ``ATEN_CPU_CAPABILITY``, CTranslate2
``CT2_FORCE_CPU_ISA``): it reads the processor's CPUID.  Under qemu's Haswell model the processor has
AVX2 and no AVX-512, VNNI or AMX, as a kiosk's mini PC, so every library picks the kernels a museum's
kiosk runs.  The voice speaks the question (Piper), Smart Turn judges it whole and cut at a hesitation,
and Whisper hears it with the exhibit's names; one JSON line goes to stdout.  Slow (about two minutes):
one question only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HEARD = "When did Apollo 11 launch?"  # a name the default voice's AVX2 audio made "the power 11"
JUDGED = "How much moon rock did they bring back?"
CUT_AFTER = 6  # words: "How much moon rock did they" | "bring back?"


def main() -> int:
    import onnxruntime  # noqa: F401 - loaded first, as the kiosk does

    from kiosk.config import AsrConfig, TurnConfig
    from kiosk.engine.asr import WhisperRecognizer, exhibit_vocabulary, tiny_en_path
    from kiosk.engine.device import Device
    from kiosk.engine.turn.smart_turn import SmartTurn
    from kiosk.exhibit import load_exhibit
    from tests.conftest import steady_voice

    speak = steady_voice()
    speech, gaps = speak(JUDGED)
    turn = SmartTurn(TurnConfig())
    turn.load()
    quiet = np.zeros(8000, dtype=np.float32)
    pause = np.zeros(2400, dtype=np.float32)
    complete = turn.probability(np.concatenate([quiet, speech, pause]))
    fragment = turn.probability(np.concatenate([quiet, speech[: gaps[CUT_AFTER - 1]], pause]))
    vocabulary = exhibit_vocabulary(load_exhibit("apollo11-columbia"))
    recognizer = WhisperRecognizer(AsrConfig(model=str(tiny_en_path())), Device("cpu"), Path("."), vocabulary)
    recognizer.load()
    heard = recognizer.transcribe(speak(HEARD)[0]).text
    print(json.dumps({"complete": complete, "fragment": fragment, "heard": heard}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
