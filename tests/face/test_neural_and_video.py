"""The neural lip-sync backend's loading and inference code (on a tiny ONNX model), and video output."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from kiosk.engine.face.animator import FaceAnimator
from kiosk.engine.face.backend import FACE_BACKENDS, FaceState
from kiosk.engine.face.neural import mel_window
from kiosk.engine.face.video import render_video
from kiosk.engine.face.visemes import VISEMES
from kiosk.errors import ModelLoadError


def tiny_lipsync_model(path: Path) -> Path:
    """A stand-in with Wav2Lip's inputs and output: it darkens the masked half by the speech's loudness."""
    mel = helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, 1, 80, 16])
    face = helper.make_tensor_value_info("face", TensorProto.FLOAT, [1, 6, 96, 96])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 96, 96])
    nodes = [
        helper.make_node("Slice", ["face", "starts", "ends", "axes"], ["reference"]),
        helper.make_node("ReduceMean", ["mel"], ["loudness"], keepdims=1),
        helper.make_node("Sigmoid", ["loudness"], ["gain"]),
        helper.make_node("Mul", ["reference", "gain"], ["out"]),
    ]
    initializers = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [3]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [6]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(nodes, "tiny-lipsync", [mel, face], [out], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_neural_backend_runs_a_lipsync_model_from_a_path(tmp_path: Path, portrait) -> None:
    model = tiny_lipsync_model(tmp_path / "lipsync.onnx")
    backend = FACE_BACKENDS.create("neural", portrait, 256, str(model))
    backend.load()
    quiet = backend.render(FaceState(audio=np.zeros(3200, np.float32))).copy()
    rng = np.random.default_rng(0)
    loud = backend.render(FaceState(audio=rng.normal(0, 0.5, 3200).astype(np.float32))).copy()
    assert quiet.shape == (256, 256, 3)
    x0, y0, x1, y1 = (v - backend._base.margin for v in backend._box)
    # the model's output lands in the mouth region and nowhere else
    assert np.abs(loud.astype(int) - quiet)[y0:y1, x0:x1].mean() > 1.0
    assert np.array_equal(loud[: y0 - 2], quiet[: y0 - 2])


def test_mel_window_shape_and_padding() -> None:
    assert mel_window(None).shape == (1, 1, 80, 16)
    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    mel = mel_window(tone)[0, 0]
    assert mel.argmax(axis=0).std() < 2  # one steady band lights up


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: "", "needs \\[face\\] model_path"),
        (lambda p: str(p / "missing.onnx"), "missing.onnx not found"),
        (lambda p: (p / "bad.onnx").write_bytes(b"nope") and str(p / "bad.onnx"), "cannot load"),
    ],
)
def test_neural_backend_errors_are_one_line(tmp_path: Path, portrait, setup, message: str) -> None:
    backend = FACE_BACKENDS.create("neural", portrait, 256, setup(tmp_path))
    with pytest.raises(ModelLoadError, match=message) as info:
        backend.load()
    assert "\n" not in str(info.value)


def test_render_video_has_picture_and_sound_of_the_right_length(
    tmp_path: Path, backend, spoken_answer
) -> None:
    out = render_video(
        spoken_answer,
        tmp_path / "answer.mp4",
        lambda clock, now: FaceAnimator(backend, clock, seed=1, now=now),
    )
    audio_seconds = sum(c.seconds for c in spoken_answer)
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        sound = container.streams.audio[0]
        assert video.codec_context.name in ("h264", "mpeg4") and sound.codec_context.name == "aac"
        assert float(sound.duration * sound.time_base) == pytest.approx(audio_seconds, abs=0.1)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == pytest.approx((audio_seconds + 0.5) * 30, abs=2)
    assert frames[0].shape == (512, 512, 3)
    # the mouth moves in the video: frames differ around the mouth while speaking
    assert np.abs(frames[20].astype(int) - frames[40]).mean() > 0.2
    assert VISEMES["rest"].jaw == 0.0
