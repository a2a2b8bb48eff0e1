"""A deadline on each stage's work: a stage that hangs ends the turn, not the kiosk.

``[session] stage_deadline_s`` bounds one call into a stage (recognising a question, planning an answer)
and each step of a stream (the answer's next sentence, the voice's next chunk).  The work runs on a
helper thread; the turn waits for it at most the deadline and then raises :class:`StageTimeout`.  Python
cannot stop a thread, so a hung call is left to finish on its own (its turn's token is cancelled, so a
stage that checks it stops at its next check) and its result, if any, is dropped; the pipeline then
"restarts" the stage (:func:`restart`): its conversation state is reset, so nothing half-done leaks into
the next visitor's question.  A deadline of 0 calls straight through, on the caller's thread.

Given the turn's token, the wait also ends at its cancel (raising :class:`Cancelled`): a model run that
cannot stop at once (a voice's vocoder, a recogniser's decode) no longer holds the turn past a "stop".
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from kiosk.engine.cancel import Cancelled, CancelToken

log = logging.getLogger(__name__)

T = TypeVar("T")
_END = object()
TIMEOUT_REPLY = "Sorry, that took me too long. Please ask me again."


class StageTimeout(Exception):
    """A stage took longer than its deadline; ``stage`` names it (asr, retrieval, llm, tts)."""

    def __init__(self, stage: str, deadline_s: float) -> None:
        super().__init__(f"{stage} gave nothing for {deadline_s:g} s ([session] stage_deadline_s)")
        self.stage = stage
        self.deadline_s = deadline_s


def call(stage: str, deadline_s: float, fn: Callable[[], T], cancel: CancelToken | None = None) -> T:
    """``fn()``, or StageTimeout when it has not returned within ``deadline_s`` (0: no deadline)."""
    if deadline_s <= 0:
        return fn()
    box: queue.Queue[tuple[bool, object]] = queue.Queue()

    def run() -> None:
        try:
            box.put((True, fn()))
        except BaseException as exc:  # handed to the caller, raised there
            box.put((False, exc))

    threading.Thread(target=run, name=f"stage-{stage}", daemon=True).start()
    forget = _wake_on_cancel(box, cancel)
    try:
        ok, value = box.get(timeout=deadline_s)
    except queue.Empty:
        raise StageTimeout(stage, deadline_s) from None
    finally:
        forget()
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


def iterate(
    stage: str, deadline_s: float, items: Iterable[T], cancel: CancelToken | None = None
) -> Iterator[T]:
    """The items of ``items``, each one due within ``deadline_s`` of the one before (0: no deadline).

    The iterable runs on one helper thread for the whole stream; leaving the loop early leaves that thread
    to finish the stream on its own (a cancelled token ends it at the stage's next check).
    """
    if deadline_s <= 0:
        yield from items
        return
    box: queue.Queue[tuple[bool, object]] = queue.Queue()

    def run() -> None:
        try:
            for item in items:
                box.put((True, item))
            box.put((True, _END))
        except BaseException as exc:
            box.put((False, exc))

    threading.Thread(target=run, name=f"stage-{stage}", daemon=True).start()
    forget = _wake_on_cancel(box, cancel)
    try:
        while True:
            try:
                ok, value = box.get(timeout=deadline_s)
            except queue.Empty:
                raise StageTimeout(stage, deadline_s) from None
            if not ok:
                assert isinstance(value, BaseException)
                raise value
            if value is _END:
                return
            yield value  # type: ignore[misc]
    finally:
        forget()


def _wake_on_cancel(box: queue.Queue, cancel: CancelToken | None) -> Callable[[], None]:
    """Put Cancelled in the box when ``cancel`` fires; returns the function that stops that."""
    if cancel is None:
        return lambda: None
    return cancel.on_cancel(lambda: box.put((False, Cancelled(cancel.reason))))


def restart(stage: str, instance: object) -> None:
    """After a timeout: drop what the stage kept between turns (a conversation), so the next turn starts
    clean.  The loaded model stays: reloading it would take the kiosk away for longer than the hang.
    Done on its own thread: a hung call may still hold the stage's lock, and the turn must not wait."""
    reset = getattr(instance, "reset_session", None)
    if not callable(reset):
        return

    def run() -> None:
        try:
            reset()
        except Exception as exc:  # the stage is already in trouble: say so once, keep serving
            log.error("%s: reset after a timeout failed (%s)", stage, exc)

    threading.Thread(target=run, name=f"restart-{stage}", daemon=True).start()
