"""Privacy and the visitor-audio store: nothing of a visitor is kept by default; when a museum asks for
recordings they are kept only for finished turns, only for ``store_days``, and a failing disk is a
counted error, never a dead listener."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import load_config
from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.engine.audio_in import MemorySource, load_audio
from kiosk.engine.audio_out import NullSink
from kiosk.engine.visitor_audio import DAY_S, VisitorAudioStore
from kiosk.errors import ConfigError
from kiosk.telemetry.metrics import KioskMetrics
from kiosk.telemetry.observer import TelemetryObserver
from tests.conftest import Recorder, silence
from tests.test_cli import kiosk, write_wav

FIVE_SECONDS = (0.1 * np.sin(np.arange(5 * 16000) / 10)).astype(np.float32)  # 160 kB as 16-bit PCM


def finished(turn_id: int, status: str = "ok") -> ev.TurnFinished:
    return ev.TurnFinished(
        turn_id=turn_id,
        status=status,
        topic=None,
        emotion=Emotion.NEUTRAL,
        first_audio_seconds=None,
        duration_seconds=1.0,
    )


def counted_store(
    folder: Path, days: float = 7, **clocks
) -> tuple[VisitorAudioStore, KioskMetrics, Recorder]:
    bus = ev.EventBus()
    metrics = KioskMetrics()
    bus.subscribe(TelemetryObserver(metrics))
    recorder = Recorder()
    bus.subscribe(recorder)
    return VisitorAudioStore(folder, days, bus, **clocks), metrics, recorder


def wait_for(predicate, timeout: float = 10.0) -> bool:
    """The store writes on the thread that finishes the turn, just after ``wait_idle`` returns."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def store_errors(metrics: KioskMetrics) -> float:
    return metrics.registry.get_sample_value("kiosk_audio_store_errors_total") or 0.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 kB tmpfs (a full disk after one short recording); needs root, else skipped."""
    yield from _mount(tmp_path / "small", "size=64k")


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "ro", "ro,size=64k")


def _mount(point: Path, options: str) -> Iterator[Path]:
    point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


# --- the store on a failing disk -------------------------------------------------------------------------


def test_a_full_disk_is_one_counted_line_and_leaves_no_half_written_file(small_disk: Path, caplog) -> None:
    store, metrics, recorder = counted_store(small_disk)
    store.hold(1, FIVE_SECONDS)
    with caplog.at_level(logging.WARNING, logger="kiosk.engine.visitor_audio"):
        store(finished(1))
    assert store.errors == 1 and store.stored == 0
    assert store_errors(metrics) == 1
    (failure,) = recorder.of(ev.StoreFailed)
    assert failure.store == "visitor_audio" and "No space left on device" in failure.message
    (line,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in line and "No space left" in line
    assert list(small_disk.iterdir()) == [], "a failed write left a file behind"
    # a short question still fits: the store is not broken for good
    store.hold(2, FIVE_SECONDS[:8000])
    store(finished(2))
    assert store.stored == 1 and len(list(small_disk.glob("turn-*.wav"))) == 1


FILE_SIZE_LIMIT_SCRIPT = r"""
import resource, signal, sys
import numpy as np
from kiosk.engine import events as ev
from kiosk.engine.visitor_audio import VisitorAudioStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
store = VisitorAudioStore(sys.argv[1], 7, ev.EventBus())
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
print(store.save(1, np.zeros(5 * 16000, dtype=np.float32)), store.errors)
"""


def test_a_write_cut_off_half_way_leaves_nothing_without_root(tmp_path: Path) -> None:
    """The same failure as a full disk, half-way through the file, for any user: a file size limit."""
    result = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMIT_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["None", "1"]
    assert "File too large" in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_disk_is_one_counted_error(read_only_disk: Path) -> None:
    store, metrics, _ = counted_store(read_only_disk)
    assert store.save(1, FIVE_SECONDS) is None
    assert store_errors(metrics) == 1


def test_a_folder_that_cannot_exist_is_one_counted_error(tmp_path: Path) -> None:
    """Root can write anywhere, but not below a plain file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store, metrics, _ = counted_store(blocker / "store")
    assert store_errors(metrics) == 1  # already at start: the retention pass cannot read the folder
    assert store.save(1, FIVE_SECONDS) is None
    assert store_errors(metrics) == 2


# --- what is kept, and for how long --------------------------------------------------------------------


def test_cancelled_turns_and_turns_that_never_end_are_not_stored(tmp_path: Path) -> None:
    store, _, _ = counted_store(tmp_path)
    store.hold(1, FIVE_SECONDS)
    store(finished(1, "cancelled"))
    store.hold(2, FIVE_SECONDS)
    store(finished(2, "not_understood"))
    for turn_id in range(3, 30):  # never finished: forgotten, not piled up
        store.hold(turn_id, FIVE_SECONDS)
    (stored,) = tmp_path.glob("turn-*.wav")
    assert stored.name.endswith("-2.wav")
    assert len(load_audio(stored)) == len(FIVE_SECONDS)
    assert len(store._held) <= 8


def test_recordings_older_than_store_days_are_deleted_at_start_and_daily(tmp_path: Path) -> None:
    now = time.time()
    old, fresh = tmp_path / "turn-20260101-120000-1.wav", tmp_path / "turn-20260101-120000-2.wav"
    unrelated = tmp_path / "curator-notes.wav"
    for path in (old, fresh, unrelated):
        path.write_bytes(b"RIFF")
    os.utime(old, (now - 8 * DAY_S, now - 8 * DAY_S))
    os.utime(unrelated, (now - 99 * DAY_S, now - 99 * DAY_S))
    ticks = [0.0]
    store, _, _ = counted_store(tmp_path, days=7, monotonic=lambda: ticks[0])
    assert not old.exists() and fresh.exists() and unrelated.exists()  # at start; only our own files
    os.utime(fresh, (now - 7.5 * DAY_S, now - 7.5 * DAY_S))
    store(ev.InputLevel(rms=0.0, speaking=False))
    assert fresh.exists(), "pruned again before a day went by"
    ticks[0] = DAY_S + 1
    store(ev.InputLevel(rms=0.0, speaking=False))
    assert not fresh.exists() and unrelated.exists()


def test_storing_without_a_folder_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env={"KIOSK_AUDIO__STORE_VISITOR_AUDIO": "true"})
    assert "store_dir" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="store_days"):
        load_config(env={"KIOSK_AUDIO__STORE_DAYS": "0"})


# --- the real pipeline ------------------------------------------------------------------------------------


def test_a_full_store_does_not_stop_the_kiosk_listening(
    make_pipeline, loaded_engine, speak, small_disk
) -> None:
    audio = np.concatenate(
        [
            silence(0.5),
            speak("Who was the commander of Apollo 11?"),
            silence(8.0),
            speak("Why is it called Columbia?"),
            silence(1.5),
        ]
    )
    config = loaded_engine.config.replace(
        audio={"store_dir": str(small_disk), "store_visitor_audio": True},
        answer={"max_sentences": 1},
    )
    (small_disk / "filler").write_bytes(b"\0" * 60 * 1024)  # the disk is full before the first turn
    pipeline, recorder = make_pipeline(config=config, sink=NullSink(realtime=False))
    listener = pipeline.start_listening(MemorySource(audio, realtime=False))
    listener.join(timeout=120)
    assert pipeline.wait_idle(60)
    statuses = [f.status for f in recorder.finished()]
    assert len(statuses) == 2 and statuses[-1] == "ok", statuses  # the second question was heard too
    assert wait_for(lambda: len(recorder.of(ev.StoreFailed)) == statuses.count("ok"))
    assert list(small_disk.glob("*turn*")) == []


def test_a_question_the_visitor_interrupts_is_not_stored(
    make_pipeline, loaded_engine, speak, tmp_path
) -> None:
    audio = np.concatenate(
        [
            silence(0.5),
            speak("Who was the commander of Apollo 11?"),
            silence(2.5),
            speak("Why is it called Columbia?"),
            silence(1.0),
        ]
    )
    store = tmp_path / "store"
    config = loaded_engine.config.replace(audio={"store_dir": str(store), "store_visitor_audio": True})
    pipeline, recorder = make_pipeline(config=config, sink=NullSink(realtime=True))
    listener = pipeline.start_listening(MemorySource(audio, realtime=True))
    listener.join(timeout=60)
    assert pipeline.wait_idle(60)
    statuses = [(f.turn_id, f.status) for f in recorder.finished()]
    assert [s for _, s in statuses] == ["cancelled", "ok"]
    assert wait_for(lambda: any(store.glob("turn-*.wav")))
    time.sleep(0.2)
    (stored,) = store.glob("*")
    assert stored.name.endswith(f"-{statuses[1][0]}.wav")


@pytest.mark.slow
def test_a_conversation_leaves_no_audio_or_words_behind_by_default(tmp_path: Path, cache_dir: Path, speak):
    """`kiosk listen` with the shipped defaults, as the unit runs it: its own home, temp and working
    folders, and the model cache; afterwards no new file there holds audio or the visitor's words, and
    neither does its output (the journal)."""
    question = "Who was the commander of Apollo 11?"
    marker = "commander of apollo"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    wav = write_wav(
        inputs / f"{uuid.uuid4().hex}.wav", np.concatenate([silence(0.5), speak(question), silence(1.5)])
    )
    home, work, temp = tmp_path / "home", tmp_path / "work", tmp_path / "tmp"
    for folder in (home, work, temp):
        folder.mkdir()
    watched = [home, work, temp, cache_dir]
    before = {p: mtime(p) for folder in watched for p in folder.rglob("*")}
    env = {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "TMPDIR": str(temp),
    }
    result = kiosk(
        "listen", "--input", str(wav), "--fast", "--no-metrics", cache=cache_dir, extra_env=env, cwd=work
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[turn 1] status=ok topic=crew" in result.stdout  # it was answered ...
    output = (result.stdout + result.stderr).lower()
    assert marker not in output and "armstrong" not in output  # ... and no words of it were logged
    for path in [p for folder in watched for p in folder.rglob("*")]:
        try:  # a shared test cache may have other runs' conversions come and go meanwhile
            if not path.is_file() or before.get(path) == mtime(path):
                continue
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        assert not data.startswith((b"RIFF", b"fLaC", b"OggS", b"ID3")), f"audio written to {path}"
        assert path.suffix.lower() not in (".wav", ".flac", ".ogg", ".mp3", ".opus"), path
        assert marker.encode() not in data.lower(), f"the visitor's words written to {path}"
    assert not (home / ".cache" / "Microsoft").exists(), "onnxruntime's usage telemetry wrote its files"


def test_onnxruntime_keeps_no_device_id_or_usage_queue(tmp_path: Path) -> None:
    """onnxruntime's embedded telemetry writes a device id and a queue of usage events under the home's
    cache when it is imported; importing it through the kiosk writes nothing there."""
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    env["HOME"] = str(tmp_path)
    code = "import kiosk.engine.embed_onnx, onnxruntime; onnxruntime.get_available_providers()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*")] == []
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "ORT_DISABLE_TELEMETRY" in readme  # and the data-protection officer is told
