"""The animator: in step with the playback clock, natural blinks, drops instead of queues, screenshots."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from kiosk.emotion import Emotion
from kiosk.engine import events as ev
from kiosk.engine.audio_out import NullSink
from kiosk.engine.face.animator import BLINK_INTERVAL_S, BLINK_SECONDS, EXPRESSIONS, FaceAnimator
from kiosk.engine.face.backend import FaceBackend, FaceState
from kiosk.engine.face.pixels import mouth_opening
from kiosk.engine.face.visemes import VISEMES
from tests.conftest import Recorder
from tests.face.conftest import save


def mouth_darkness(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """How much dark cavity the mouth shows: the share of dark pixels in the mouth's box."""
    x0, y0, x1, y1 = box
    patch = image[y0:y1, x0:x1].astype(np.float32)
    return float(np.mean(patch.mean(axis=2) < 70))


def mouth_box(backend) -> tuple[int, int, int, int]:
    m = backend.margin
    inner = np.concatenate([backend.inner_upper, backend.inner_lower]) - m
    x0, y0 = inner.min(axis=0).astype(int)
    x1, y1 = inner.max(axis=0).astype(int)
    return x0 - 4, y0 - 4, x1 + 4, y1 + int(backend.jaw_travel) + 4


def test_mouth_opening_follows_the_voice(simulated, spoken_answer, backend, face_shots) -> None:
    animator, clock, now = simulated
    animator.begin_answer(1, Emotion.NEUTRAL)
    for chunk in spoken_answer:
        animator.add_chunk(1, chunk)
    audio = np.concatenate([c.audio for c in spoken_answer])
    rate = spoken_answer[0].sample_rate
    fps = 30
    box = mouth_box(backend)
    openings, energies = [], []
    for k in range(int(len(audio) / rate * fps)):
        t = k / fps
        clock.set(t)
        now["t"] = t
        image = animator.frame_at(t).image
        openings.append(mouth_opening(image, box))
        window = audio[int((t - 0.025) * rate) if t > 0.025 else 0 : int((t + 0.025) * rate)]
        energies.append(float(np.sqrt(np.mean(np.square(window)))))
        if k in (10, 45, 80):
            save(face_shots, f"speaking-{k}", image)
    r = float(np.corrcoef(openings, energies)[0, 1])
    print(f"mouth opening vs audio envelope: Pearson r = {r:.2f} over {len(openings)} frames")
    assert r > 0.4


def test_frames_follow_the_clock_through_stalls_and_jumps(simulated, spoken_answer) -> None:
    animator, clock, now = simulated
    animator.begin_answer(2, Emotion.NEUTRAL)
    for chunk in spoken_answer:
        animator.add_chunk(2, chunk)
    track = animator._track
    # the clock stalls (the sound card stopped): the mouth holds whatever wall time does
    clock.set(0.6)
    held = [animator.state_at(t)[0].mouth for t in (10.0, 10.5, 11.0)]
    assert held[0] == held[1] == held[2] == track.at(0.6)
    # it jumps (a buffer was skipped): the mouth is where the sound is, at once
    clock.set(2.2)
    state, audio_time = animator.state_at(11.1)
    assert audio_time == 2.2 and state.mouth == track.at(2.2)
    # after the last word has played, the face returns to rest and to idle
    animator.end_answer(2)
    clock.set(track.duration + 0.4)  # the mouth settles back to the portrait's over 0.3 s
    state, _ = animator.state_at(12.0)
    assert state.mouth == VISEMES["rest"] and animator.state == "idle"


def test_a_new_answer_on_a_reset_clock_is_not_confused_with_the_old_one(simulated, spoken_answer) -> None:
    animator, clock, _ = simulated
    animator.begin_answer(3, Emotion.NEUTRAL)
    clock.reset(22050)  # the sink restarted for someone else's audio: this track is stale
    _, audio_time = animator.state_at(1.0)
    assert audio_time is None


def test_blinks_are_natural_over_ten_minutes(simulated) -> None:
    animator, _, _ = simulated
    fps = 30
    closed = [animator.blinker.amount(k / fps) > 0.9 for k in range(fps * 600)]
    starts = animator.blinker.blinks
    intervals = np.diff(starts)
    assert 100 <= len(starts) <= 200  # people blink about 15 times a minute when calm
    assert intervals.min() >= BLINK_INTERVAL_S[0] + BLINK_SECONDS - 1e-6
    assert intervals.max() <= BLINK_INTERVAL_S[1] + BLINK_SECONDS + 1e-6
    assert 0.01 < np.mean(closed) < 0.05  # eyes closed about 2-4 % of the time


class SlowBackend(FaceBackend):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def load(self) -> None:
        pass

    def render(self, state: FaceState) -> np.ndarray:
        self.calls += 1
        time.sleep(self.seconds)
        return np.zeros((8, 8, 3), np.uint8)


def test_late_frames_are_dropped_and_counted_never_queued() -> None:
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    backend = SlowBackend(0.05)  # 50 ms a frame for a 33 ms slot
    animator = FaceAnimator(backend, NullSink().clock, bus, fps=30, seed=1)
    stop = threading.Event()
    delivered = []
    thread = threading.Thread(target=animator.run, args=(delivered.append, stop))
    started = time.monotonic()
    thread.start()
    time.sleep(1.0)
    stop.set()
    thread.join(2)
    elapsed = time.monotonic() - started
    slots = elapsed * 30
    assert len(recorder.of(ev.FrameDropped)) == animator.dropped > 0.2 * slots
    assert len(delivered) == animator.rendered == len(recorder.of(ev.FrameRendered))
    assert animator.rendered + animator.dropped <= slots + 2  # no backlog: every slot is one or the other
    assert backend.calls == animator.rendered


def test_live_face_stays_in_step_with_real_playback(make_pipeline, loaded_engine) -> None:
    """A real turn played into a real-time sink, the face running beside it: offsets stay tiny."""
    sink = NullSink(realtime=True)
    animator = FaceAnimator(loaded_engine.face.backend, sink.clock, fps=30, seed=3)
    pipeline, recorder = make_pipeline(sink=sink, listeners=[animator])
    animator.bus = pipeline.bus
    stop = threading.Event()
    thread = threading.Thread(target=animator.run, args=(lambda frame: None, stop), daemon=True)
    thread.start()
    pipeline.ask("Why is it called Columbia?")
    assert pipeline.wait_idle(60)
    stop.set()
    thread.join(2)
    frames = [f for f in recorder.of(ev.FrameRendered) if f.av_offset_seconds is not None]
    assert len(frames) > 60
    offsets = np.abs([f.av_offset_seconds for f in frames])
    print(
        f"A/V offset over {len(frames)} frames: median {np.median(offsets) * 1000:.1f} ms, "
        f"worst {offsets.max() * 1000:.1f} ms"
    )
    assert np.median(offsets) < 0.04
    assert {f.turn_id for f in frames} == {recorder.finished()[0].turn_id}


def teeth_share(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The share of bright pixels with little red in them (teeth, not skin or lips) in the mouth's box."""
    x0, y0, x1, y1 = box
    patch = image[y0:y1, x0:x1].astype(np.float32)
    bright = patch.mean(axis=2) > 180
    white = patch[..., 0] - patch[..., 2] < 40
    return float(np.mean(bright & white))


def eye_darkness(image: np.ndarray, backend) -> float:
    """The share of dark pixels (iris, pupil) inside the open eyes' outlines."""
    m = backend.margin
    shares = []
    for lid in backend.lids:
        patch = image[lid.y0 - m : lid.y1 - m, lid.x0 - m : lid.x1 - m].astype(np.float32)
        rows = np.arange(patch.shape[0])[:, None]
        inside = (rows > lid.top[None, :] + 1) & (rows < lid.bottom[None, :] - 1)
        shares.append(float(np.mean(patch.mean(axis=2)[inside] < 90)))
    return float(np.mean(shares))


def test_the_mouth_closes_opens_and_shows_a_mouth_not_a_hole(backend, face_shots) -> None:
    box = mouth_box(backend)
    rest = backend.render(FaceState()).copy()
    closed = backend.render(FaceState(mouth=VISEMES["closed"])).copy()
    opened = backend.render(FaceState(mouth=VISEMES["open"])).copy()
    # the portrait smiles with its teeth: p, b, m cover them with the lower lip
    assert teeth_share(rest, box) > 0.04
    assert teeth_share(closed, box) < 0.25 * teeth_share(rest, box)
    # wide open: a dark cavity appears, with the portrait's upper teeth still above it
    assert mouth_darkness(opened, box) > mouth_darkness(rest, box) + 0.05
    assert teeth_share(opened, box) > 0.5 * teeth_share(rest, box)
    # the cavity is shaded (gradient, tongue), not one flat colour
    x0, y0, x1, y1 = box
    cavity = opened[y0:y1, x0:x1][(opened[y0:y1, x0:x1].mean(axis=2) < 110)]
    assert cavity.std(axis=0).max() > 8
    # away from the mouth the face is untouched
    assert np.array_equal(opened[: box[1] - 30], rest[: box[1] - 30])


def test_a_blink_covers_the_eyes(backend, face_shots) -> None:
    open_eyes = backend.render(FaceState()).copy()
    half = backend.render(FaceState(blink=0.5)).copy()
    shut = backend.render(FaceState(blink=1.0)).copy()
    assert eye_darkness(shut, backend) < 0.3 * eye_darkness(open_eyes, backend)
    assert eye_darkness(shut, backend) < eye_darkness(half, backend) < eye_darkness(open_eyes, backend)
    save(face_shots, "blink-half", half)
    save(face_shots, "blink", shut)


def test_screenshots_of_every_emotion_and_mouth(loaded_engine, portrait, backend, face_shots) -> None:
    from kiosk.engine.face import create_backend

    tiles = []
    for name in VISEMES:
        image = backend.render(FaceState(mouth=VISEMES[name])).copy()
        save(face_shots, f"mouth-{name}", image)
        tiles.append((name, image))
    for emotion, expression in EXPRESSIONS.items():
        image = backend.render(FaceState(mouth=VISEMES["rest"], expression=expression)).copy()
        save(face_shots, f"emotion-{emotion.value}", image)
        tiles.append((emotion.value, image))
    contact_sheet(face_shots / "contact-sheet.png", tiles, backend)
    large = create_backend(loaded_engine.config, portrait, size=1080)
    save(face_shots, "speaking-1080", large.render(FaceState(mouth=VISEMES["mid"])).copy())
    neutral = backend.render(FaceState()).copy()
    for emotion in (Emotion.HAPPY, Emotion.SAD, Emotion.ANGRY, Emotion.SURPRISED):
        moved = backend.render(FaceState(expression=EXPRESSIONS[emotion]))
        assert np.abs(moved.astype(int) - neutral).mean() > 0.05, emotion


def contact_sheet(path, tiles, backend) -> None:
    """Every mouth and emotion side by side, cropped to the face, labelled."""
    import cv2

    m = backend.margin
    x0, y0, x1, y1 = (np.array(backend.portrait_box) - m).astype(int)
    cells = []
    for name, image in tiles:
        cell = cv2.resize(image[y0:y1, x0:x1], (200, 220), interpolation=cv2.INTER_AREA)
        cv2.putText(cell, name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 0), 2, cv2.LINE_AA)
        cells.append(cell)
    while len(cells) % 5:
        cells.append(np.zeros_like(cells[0]))
    rows = [np.hstack(cells[i : i + 5]) for i in range(0, len(cells), 5)]
    save(path.parent, path.stem, np.vstack(rows))


def test_expressions_ease_in_and_out(simulated) -> None:
    animator, _, _ = simulated
    animator.set_state("speaking")
    animator.set_emotion(Emotion.HAPPY)
    smiles = [animator.state_at(t)[0].expression["smile"] for t in np.arange(0, 1.5, 1 / 30)]
    assert smiles[0] < 0.2 and 0.3 < smiles[10] < 0.8 and smiles[-1] > 0.95
    assert all(b >= a for a, b in zip(smiles, smiles[1:], strict=False))
    animator.set_emotion("furious-ish")  # anything outside the set is neutral
    assert animator.state_at(3.0)[0].expression["smile"] < smiles[-1]


@pytest.mark.parametrize("size", [512, 1080])
def test_render_sizes(loaded_engine, portrait, size: int) -> None:
    from kiosk.engine.face import create_backend

    backend = create_backend(loaded_engine.config, portrait, size=size)
    image = backend.render(FaceState(mouth=VISEMES["open"], blink=0.5))
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
