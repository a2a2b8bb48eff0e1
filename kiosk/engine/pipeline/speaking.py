"""Speaking a turn: synthesise sentence by sentence, wait for the commit, write to the sink, and follow the
playback clock to publish each sentence as it is heard and to finish the turn when all has played.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from kiosk.engine import events as ev
from kiosk.engine import watchdog
from kiosk.engine.cancel import Cancelled
from kiosk.engine.device import is_out_of_memory
from kiosk.engine.pipeline.turns import Turn
from kiosk.engine.stage import Answer, SpeechSynthesizer
from kiosk.engine.tts import first_clause

log = logging.getLogger(__name__)


class Speaking:
    """A turn's voice and playback (a mixin of :class:`~kiosk.engine.pipeline.Pipeline`, whose state it
    shares)."""

    def _speak(self, turn: Turn, sentences, status: str, answer: Answer | None = None) -> None:
        """Synthesise sentence by sentence, wait for the commit, then play; finish the turn when played."""
        turn.status = status
        tts = self.stages.tts
        played: queue.Queue[tuple[int, int, str] | None] = queue.Queue()
        watcher = threading.Thread(
            target=self._watch_playback, args=(turn, played), name=f"captions-{turn.id}", daemon=True
        )
        offset = 0
        first_chunk = True
        tts_total = 0.0
        index = 0
        try:
            for index, sentence in enumerate(sentences):  # noqa: B007 - index is used after the loop
                if turn.cancel.cancelled:
                    break
                if tts is None:
                    self._wait_commit(turn)
                    if index == 0:
                        self._start_playback(turn, 22050)
                        watcher.start()
                    played.put((offset, index, sentence))
                    turn.spoken.append(sentence)
                    continue
                started = time.monotonic()
                first_piece = True
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
                        if turn.cancel.cancelled:
                            break
                        if first_chunk:
                            self._start_playback(turn, chunk.sample_rate)
                            watcher.start()
                        if first_piece:
                            played.put((offset, index, sentence))
                            turn.spoken.append(sentence)
                            first_piece = False
                        for listener in self.listeners:
                            listener.add_chunk(turn.id, chunk)
                        self.sink.write(chunk.audio, turn.cancel)
                    if first_chunk:
                        self._first_audio(turn)
                        first_chunk = False
                    offset += len(chunk.audio)
                    started = time.monotonic()
        except watchdog.StageTimeout as exc:  # the voice hung: what was said stays, the turn ends
            self._timed_out(turn, exc)
            turn.status = "error"
        except Exception as exc:
            if is_out_of_memory(exc) or not isinstance(exc, Cancelled):
                if isinstance(exc, OSError):  # the loudspeaker went away: one line, the next turn retries
                    log.error("turn %d: audio output failed (%s)", turn.id, exc)
                else:
                    log.exception("speaking failed in turn %d", turn.id)
                self._emit(
                    turn,
                    ev.StageFailed(turn_id=turn.id, stage="tts", kind="exception", message=str(exc)[:200]),
                )
                turn.status = "error"
        if tts is not None and tts_total:
            self._timed(turn, "tts", tts_total)
        played.put(None)
        if watcher.ident is not None:
            watcher.join()
            return
        if not turn.cancel.cancelled:  # nothing was played: close the turn once it is committed
            self._wait_commit(turn)
            self._finish(turn, turn.status)

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
        """Publish each sentence as its audio starts playing; finish the turn when all has played."""
        pending: list[tuple[int, int, str]] = []
        done = False
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
            while pending and pending[0][0] <= position:
                _, index, text = pending.pop(0)
                self._emit(turn, ev.SentenceStarted(turn_id=turn.id, index=index, text=text))
            if done and not pending and self.sink.drain(turn.cancel, timeout=0.05):
                break
            time.sleep(0.01)
        if not turn.cancel.cancelled:
            self._finish(turn, turn.status)
