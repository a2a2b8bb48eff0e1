"""A neural lip-sync backend: a Wav2Lip-class ONNX model from a local path replaces the mouth region.

Contract of the model (Wav2Lip's, exported to ONNX):
  inputs  ``mel``  float32 [1, 1, 80, 16]: log-mel spectrogram of the 0.2 s of speech around the frame
          ``face`` float32 [1, 6, 96, 96]: the lower-half-masked face crop and the reference crop, RGB 0..1
  output  float32 [1, 3, 96, 96]: the face crop with the mouth for that speech, RGB 0..1
The procedural face renders everything else (eyes, brows, sway); the model's crop is pasted back with a
feathered mask over the lower half of the face.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kiosk.engine.device import Device
from kiosk.engine.face.backend import FACE_BACKENDS, FaceBackend, FaceState
from kiosk.engine.face.portrait import PortraitInfo
from kiosk.engine.face.procedural import ProceduralFace
from kiosk.engine.face.visemes import REST
from kiosk.errors import ModelLoadError

CROP = 96
MEL_BANDS = 80
MEL_STEPS = 16
SAMPLE_RATE = 16000
HOP = 200  # 12.5 ms: 16 steps span 0.2 s
WINDOW = 800


def _mel_filterbank(n_fft: int = WINDOW, bands: int = MEL_BANDS, rate: int = SAMPLE_RATE) -> np.ndarray:
    def hz_to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel):
        return 700.0 * (10 ** (mel / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(55.0), hz_to_mel(7600.0), bands + 2))
    bins = np.floor((n_fft + 1) * edges / rate).astype(int)
    bank = np.zeros((bands, n_fft // 2 + 1), np.float32)
    for i in range(bands):
        lo, mid, hi = bins[i], bins[i + 1], bins[i + 2]
        if mid > lo:
            bank[i, lo:mid] = (np.arange(lo, mid) - lo) / (mid - lo)
        if hi > mid:
            bank[i, mid:hi] = (hi - np.arange(mid, hi)) / (hi - mid)
    return bank


_BANK = _mel_filterbank()


def mel_window(audio: np.ndarray | None) -> np.ndarray:
    """[1, 1, 80, 16] log-mel of 16 kHz audio (padded or cut to the 0.2 s the model expects)."""
    needed = HOP * (MEL_STEPS - 1) + WINDOW
    samples = np.zeros(needed, np.float32)
    if audio is not None and len(audio):
        tail = np.asarray(audio, np.float32)[-needed:]
        samples[needed - len(tail) :] = tail
    frames = np.lib.stride_tricks.sliding_window_view(samples, WINDOW)[::HOP][:MEL_STEPS]
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(WINDOW).astype(np.float32), axis=1)) ** 2
    mel = np.log10(np.maximum(spectrum @ _BANK.T, 1e-5)).T  # (80, 16)
    return mel[None, None].astype(np.float32)


class NeuralLipSync(FaceBackend):
    name = "neural"

    def __init__(
        self, portrait: PortraitInfo, size: int, model_path: str, device: Device | None = None
    ) -> None:
        self.portrait = portrait
        self.size = size
        self.model_path = Path(model_path).expanduser() if model_path else None
        self._device = device or Device("cpu")
        self._base = ProceduralFace(portrait, size)
        self._session = None

    def load(self) -> None:
        import onnxruntime

        if self.model_path is None:
            raise ModelLoadError(
                "face: backend 'neural' needs [face] model_path (a Wav2Lip-class .onnx file)"
            )
        if not self.model_path.is_file():
            raise ModelLoadError(f"face: model {self.model_path} not found")
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.model_path), providers=self._device.onnx_providers
            )
        except Exception as exc:
            raise ModelLoadError(f"face: cannot load {self.model_path}: {str(exc).splitlines()[0]}") from None
        names = {i.name: i.shape for i in self._session.get_inputs()}
        if set(names) != {"mel", "face"}:
            raise ModelLoadError(
                f"face: {self.model_path} has inputs {sorted(names)}; a lip-sync model needs 'mel' and 'face'"
            )
        self.device = (
            self._device.torch if "CUDAExecutionProvider" in self._session.get_providers() else "cpu"
        )
        self._base.load()
        mouth = self._base.mouth
        self._box = (mouth.x0, mouth.y0, mouth.x1, mouth.y1)
        x0, y0, x1, y1 = self._box
        reference = cv2.resize(self._base.base[y0:y1, x0:x1], (CROP, CROP), interpolation=cv2.INTER_AREA)
        self._reference = reference.astype(np.float32).transpose(2, 0, 1) / 255.0
        feather = np.zeros((y1 - y0, x1 - x0), np.float32)
        border = max(2, (x1 - x0) // 10)
        feather[border:-border, border:-border] = 1.0
        self._feather = cv2.GaussianBlur(feather, (0, 0), border / 2)[..., None]

    def render(self, state: FaceState) -> np.ndarray:
        assert self._session is not None, "load() first"
        # eyes, brows and sway from the procedural face, with a still mouth the model replaces
        frame = self._base.render(FaceState(REST, state.blink, state.expression, (0.0, 0.0)))
        x0, y0, x1, y1 = self._box
        m = self._base.margin
        crop = frame[y0 - m : y1 - m, x0 - m : x1 - m]
        masked = self._reference.copy()
        masked[:, CROP // 2 :, :] = 0.0  # the lower half is what the model fills in
        face = np.concatenate([masked, self._reference])[None]
        (out,) = self._session.run(None, {"mel": mel_window(state.audio), "face": face.astype(np.float32)})
        mouth = (np.clip(out[0].transpose(1, 2, 0), 0.0, 1.0) * 255.0).astype(np.float32)
        mouth = cv2.resize(mouth, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        crop[:] = (crop * (1 - self._feather) + mouth * self._feather).astype(np.uint8)
        return frame

    def close(self) -> None:
        self._session = None


@FACE_BACKENDS.register("neural")
def _neural(
    portrait: PortraitInfo, size: int, model_path: str = "", device: Device | None = None
) -> FaceBackend:
    return NeuralLipSync(portrait, size, model_path, device)
