"""Speaking a turn: synthesise sentence by sentence, wait for the commit, write to the sink, and follow the
playback clock to publish each sentence as it is heard and to finish the turn when all has played.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import numpy as np

from kiosk.engine import events as ev
from kiosk.engine import watchdog
from kiosk.engine.cancel import Cancelled
from kiosk.engine.device import is_out_of_memory
from kiosk.engine.pipeline.turns import Turn
from kiosk.engine.stage import Answer, SpeechSynthesizer
from kiosk.engine.tts import first_clause

log = logging.getLogger(__name__)

STALL_S = 2.5  # a loudspeaker that has taken none of the buffered audio for this long plays nothing
SILENT_PEAK = 1e-3  # a whole sentence of the voice below this (full scale 1.0) cannot be heard
SILENT_MIN_S = 0.3  # ... when it is at least this long (a lone "Oh." may be near-silent)


class Speaking:
    """A turn's voice and playback (a mixin of :class:`~kiosk.engine.pipeline.Pipeline`, whose state it
    shares).

    When the voice cannot be heard (the voice raises, hangs or gives silence; the loudspeaker cannot be
    opened, fails or plays nothing) the answer is not lost with it: what was not heard is captioned at
    once, after a :class:`~kiosk.engine.events.VoiceUnheard` that lets the screen say so in plain words.
    The turn keeps its answer's status (the visitor was answered, in writing); the failure is counted as
    the stage's.
    """

    def _speak(self, turn: Turn, sentences, status: str, answer: Answer | None = None) -> None:
        """Synthesise sentence by sentence, wait for the commit, then play; finish the turn when played."""
        turn.status = status
        tts = self.stages.tts
        played: queue.Queue[tuple[int, int, str] | None] = queue.Queue()
        watcher = threading.Thread(
            target=self._watch_playback, args=(turn, played), name=f"captions-{turn.id}", daemon=True
        )
        sentences = iter(sentences)
        offset = 0
        first_chunk = True
        tts_total = 0.0
        index = -1
        sentence = ""
        captioned = -1  # the last sentence handed to the captions
        voicing = False  # inside the voice or the sink (a failure there is the voice's, not the answer's)
        try:
            for index, sentence in enumerate(sentences):  # noqa: B007 - index is used after the loop
                if turn.cancel.cancelled or turn.unheard:
                    break
                if tts is None:
                    self._wait_commit(turn)
                    if index == 0:
                        voicing = True
                        self._start_playback(turn, 22050)
                        voicing = False
                        watcher.start()
                    played.put((offset, index, sentence))
                    turn.spoken.append(sentence)
                    captioned = index
                    continue
                started = time.monotonic()
                first_piece = True
                peak, samples, rate = 0.0, 0, 22050
                voicing = True
                for chunk in self._voice(tts, sentence, index == 0, turn):
                    now = time.monotonic()
                    if first_chunk:
                        self._timed(
                            turn,
                            "tts_first_audio",
                            now - started,
                            cache_hit=float(getattr(tts, "last_cache_hit", False)),
                        )
                    tts_total += now - started
                    self._wait_commit(turn)
                    with self._sink_lock:  # a cancel either comes before this check or stops what we wrote
                        if turn.cancel.cancelled or turn.unheard:
                            break
                        if first_chunk:
                            self._start_playback(turn, chunk.sample_rate)
                            watcher.start()
                        if first_piece:
                            played.put((offset, index, sentence))
                            turn.spoken.append(sentence)
                            captioned = index
                            first_piece = False
                        for listener in self.listeners:
                            listener.add_chunk(turn.id, chunk)
                        self.sink.write(chunk.audio, turn.cancel)
                    if first_chunk:
                        self._first_audio(turn)
                        first_chunk = False
                    offset += len(chunk.audio)
                    peak, samples = max(peak, _peak(chunk.audio)), samples + len(chunk.audio)
                    rate = chunk.sample_rate
                    started = time.monotonic()
                voicing = False
                if turn.unheard:
                    break  # this sentence, if it was not captioned, is written with the rest
                if samples >= SILENT_MIN_S * rate and peak < SILENT_PEAK:
                    self._voice_failed(turn, "tts", "exception", "the voice gave only silence")
        except watchdog.StageTimeout as exc:  # the voice hung: the rest of the answer is shown in writing
            self._timed_out(turn, exc)
            turn.status = status
            self._lose_voice(turn, str(exc))
        except Exception as exc:
            if is_out_of_memory(exc) or not isinstance(exc, Cancelled):
                # the voice or the loudspeaker: one line, the answer in writing; the next turn retries
                if voicing:
                    log.error("turn %d: the voice cannot be heard (%s)", turn.id, _one_line(exc))
                    self._voice_failed(turn, "tts", "exception", f"audio output failed ({_one_line(exc)})")
                else:
                    log.exception("speaking failed in turn %d", turn.id)
                    self._emit(
                        turn,
                        ev.StageFailed(
                            turn_id=turn.id, stage="tts", kind="exception", message=str(exc)[:200]
                        ),
                    )
                    turn.status = "error"
        if turn.unheard and not turn.cancel.cancelled:
            rest = [] if index == captioned or index < 0 else [sentence]
            self._write_instead(turn, played, watcher, index if rest else index + 1, [*rest, *sentences])
        if tts is not None and tts_total:
            self._timed(turn, "tts", tts_total)
        played.put(None)
        if watcher.ident is not None:
            watcher.join()
            return
        if not turn.cancel.cancelled:  # nothing was played: close the turn once it is committed
            self._wait_commit(turn)
            self._finish(turn, turn.status)

    def _voice_failed(self, turn: Turn, stage: str, kind: str, reason: str) -> None:
        """A counted failure of the voice, and the rest of the answer in writing."""
        self._emit(turn, ev.StageFailed(turn_id=turn.id, stage=stage, kind=kind, message=reason[:200]))
        self._lose_voice(turn, reason)

    def _lose_voice(self, turn: Turn, reason: str) -> None:
        """Once per turn: silence what was queued, and tell the screen the answer comes in writing."""
        with turn.lock:
            if turn.unheard or turn.cancel.cancelled:
                return
            turn.unheard = reason
        with self._sink_lock:
            with self._lock:
                playing = self._active is turn
            if playing:
                self.sink.stop()
        self._emit(turn, ev.VoiceUnheard(turn_id=turn.id, reason=reason[:200]))

    def _write_instead(
        self, turn: Turn, played: queue.Queue, watcher: threading.Thread, index: int, sentences
    ) -> None:
        """The sentences not yet captioned, captioned now (the watcher shows them without waiting for sound)."""
        try:
            self._wait_commit(turn)
            for number, sentence in enumerate(sentences, start=index):
                turn.cancel.raise_if_cancelled()
                played.put((0, number, sentence))
                turn.spoken.append(sentence)
        except Cancelled:
            return
        except Exception:  # the answer itself failed while being written: what was shown stays
            log.exception("turn %d: the answer failed while shown in writing", turn.id)
            turn.status = "error"
        if watcher.ident is None:
            watcher.start()

    def _voice(self, tts: SpeechSynthesizer, sentence: str, first: bool, turn: Turn):
        """The first sentence is spoken clause by clause: a short first clause is heard sooner."""
        for part in first_clause(sentence) if first else (sentence,):
            if part:
                stream = tts.stream(part, turn.emotion, turn.cancel)
                yield from watchdog.iterate("tts", self._deadline, stream, turn.cancel)

    def _wait_commit(self, turn: Turn) -> None:
        while not turn.committed.wait(0.02):
            turn.cancel.raise_if_cancelled()
        turn.cancel.raise_if_cancelled()

    def _start_playback(self, turn: Turn, sample_rate: int) -> None:
        with self._lock:
            if self._active is not turn:
                raise Cancelled("superseded")
        self.sink.start(sample_rate)
        for listener in self.listeners:
            listener.begin_answer(turn.id, turn.emotion)

    def _first_audio(self, turn: Turn) -> None:
        now = time.monotonic()
        turn.first_audio_s = now - turn.speech_end_t
        self._emit(turn, ev.FirstAudio(turn_id=turn.id, latency_seconds=turn.first_audio_s, t=now))

    def _watch_playback(self, turn: Turn, played: queue.Queue[tuple[int, int, str] | None]) -> None:
        """Publish each sentence as its audio starts playing (at once when it cannot be heard); finish the
        turn when all has played.  A loudspeaker that takes no audio for ``STALL_S`` plays nothing."""
        pending: list[tuple[int, int, str]] = []
        done = False
        moved_at, last_position = time.monotonic(), -1
        while not turn.cancel.cancelled:
            try:
                while True:
                    item = played.get_nowait()
                    if item is None:
                        done = True
                    else:
                        pending.append(item)
            except queue.Empty:
                pass
            position = self.sink.clock.played_samples
            now = time.monotonic()
            if position != last_position or self.sink.buffered_seconds <= 0:
                moved_at, last_position = now, position
            elif not turn.unheard and now - moved_at > STALL_S:
                self._voice_failed(
                    turn, "tts", "timeout", f"the loudspeaker played nothing for {STALL_S:g} s"
                )
            while pending and (turn.unheard or pending[0][0] <= position):
                _, index, text = pending.pop(0)
                self._emit(turn, ev.SentenceStarted(turn_id=turn.id, index=index, text=text))
            if done and not pending and (turn.unheard or self.sink.drain(turn.cancel, timeout=0.05)):
                break
            time.sleep(0.01)
        if not turn.cancel.cancelled:
            self._finish(turn, turn.status)


def _peak(audio: np.ndarray) -> float:
    return float(np.max(np.abs(np.nan_to_num(audio)), initial=0.0))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__
