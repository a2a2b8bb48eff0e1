"""Audio sources and sinks: files of any format, the microphone's recovery, the playback clock."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

from kiosk.engine.audio_in import (
    FRAME_SAMPLES,
    EndOfStream,
    FileSource,
    MemorySource,
    MicrophoneSource,
    SourceUnavailable,
    load_audio,
)
from kiosk.engine.audio_out import NullSink, PlaybackClock, WavFileSink
from kiosk.errors import KioskError


def write_wav(path: Path, audio: np.ndarray, rate: int, channels: int) -> None:
    data = np.repeat(audio[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((data * 32767).astype("<i2").tobytes())


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (44100, 2), (8000, 1), (48000, 2)])
def test_file_source_resamples_any_wav_to_16k_mono(tmp_path: Path, rate: int, channels: int) -> None:
    seconds = 1.5
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "clip.wav"
    write_wav(path, tone, rate, channels)
    audio = load_audio(path)
    assert abs(len(audio) - 16000 * seconds) <= 16
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 5
    source = FileSource(path, tail_silence_s=0.0)
    frames = []
    with pytest.raises(EndOfStream):
        while True:
            frames.append(source.read())
    assert all(len(f) == FRAME_SAMPLES and f.dtype == np.float32 for f in frames)


def test_unreadable_audio_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    with pytest.raises(KioskError, match="cannot decode audio"):
        load_audio(bad)
    with pytest.raises(KioskError, match="audio file not found"):
        load_audio(tmp_path / "missing.wav")


def test_memory_source_in_real_time_paces_frames() -> None:
    source = MemorySource(np.zeros(16000 // 2, np.float32), realtime=True, tail_silence_s=0)
    started = time.monotonic()
    with pytest.raises(EndOfStream):
        while True:
            source.read()
    assert 0.45 <= time.monotonic() - started <= 0.8


class FakeStream:
    def __init__(self, callback, finished_callback, **_: object) -> None:
        self.callback = callback
        self.finished_callback = finished_callback
        self.closed = False

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def feed(self, frame: np.ndarray) -> None:
        self.callback(frame.reshape(-1, 1), len(frame), None, None)


class FakeSoundDevice:
    """The sounddevice module as far as MicrophoneSource uses it; a USB mic that can be unplugged."""

    def __init__(self) -> None:
        self.present = True
        self.streams: list[FakeStream] = []

    def query_devices(self) -> list[dict]:
        return [
            {"name": "Built-in Output", "max_input_channels": 0},
            {"name": "USB Mic", "max_input_channels": 1},
        ]

    def InputStream(self, device=None, **kwargs) -> FakeStream:  # noqa: N802 - the real name
        if not self.present:
            raise RuntimeError("Error querying device 1")
        assert device == 1
        stream = FakeStream(**kwargs)
        self.streams.append(stream)
        return stream


def test_microphone_survives_being_unplugged_and_plugged_back() -> None:
    sd = FakeSoundDevice()
    mic = MicrophoneSource("usb mic", reconnect_interval_s=0.05, backend=sd)
    mic.open()
    frame = np.full(FRAME_SAMPLES, 0.1, np.float32)
    sd.streams[-1].feed(frame)
    assert np.allclose(mic.read(timeout=0.1), frame)

    sd.present = False
    sd.streams[-1].finished_callback()  # PortAudio closes the stream when the device goes away
    with pytest.raises(SourceUnavailable, match="USB Mic|usb mic.*retrying every 0.05 s"):
        for _ in range(20):
            mic.read(timeout=0.05)
    # reported once; then it quietly keeps trying
    for _ in range(5):
        assert mic.read(timeout=0.05) is None

    sd.present = True
    deadline = time.monotonic() + 2
    while len(sd.streams) < 2 and time.monotonic() < deadline:
        mic.read(timeout=0.05)
    assert len(sd.streams) == 2 and sd.streams[0].closed
    sd.streams[-1].feed(frame * 2)
    assert np.allclose(mic.read(timeout=0.1), frame * 2)
    mic.close()


def test_microphone_name_not_found() -> None:
    mic = MicrophoneSource("studio condenser", backend=FakeSoundDevice())
    with pytest.raises(SourceUnavailable, match="'studio condenser' not found"):
        mic.open()


def test_null_sink_plays_in_real_time_and_its_clock_follows() -> None:
    sink = NullSink(realtime=True)
    sink.start(22050)
    sink.write(np.zeros(22050 // 2, np.float32))
    time.sleep(0.25)
    position = sink.clock.position()
    assert 0.15 <= position <= 0.35
    assert sink.drain(timeout=2.0)  # everything handed to the "speaker": its last block is playing
    assert sink.clock.position() == pytest.approx(0.5, abs=0.025)
    # the clock never runs ahead of what was played
    time.sleep(0.1)
    assert sink.clock.position() == pytest.approx(0.5, abs=0.0001)
    sink.close()


def test_stop_silences_at_once() -> None:
    sink = NullSink(realtime=True)
    sink.start(22050)
    sink.write(np.zeros(22050 * 5, np.float32))
    time.sleep(0.05)
    sink.stop()
    assert sink.buffered_seconds == 0
    assert sink.drain(timeout=0.2)
    sink.close()


def test_wav_sink_writes_every_answer(tmp_path: Path) -> None:
    sink = WavFileSink(tmp_path / "out.wav")
    for _ in range(2):
        sink.start(22050)
        sink.write(np.full(2205, 0.25, np.float32))
        assert sink.drain(timeout=1)
    sink.close()
    with wave.open(str(tmp_path / "out.wav")) as wav:
        assert wav.getframerate() == 22050 and wav.getnframes() == 4410


def test_clock_interpolates_between_blocks_but_not_past_them() -> None:
    clock = PlaybackClock(1000)
    clock.reset(1000)
    clock.advance(played_until=100, pulled_until=200)
    now = time.monotonic()
    assert clock.position(now + 0.05) == pytest.approx(0.15, abs=0.01)
    assert clock.position(now + 1.0) == pytest.approx(0.2)
