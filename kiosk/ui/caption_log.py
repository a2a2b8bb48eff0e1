"""The conversation as captions: each turn's question and the sentences spoken so far (no Qt).

:meth:`CaptionLog.blocks` says what the captions view shows: the previous turn faded, the newest in full
(its sentences apart, so the one being spoken can stand out), or the attract line with no turn yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Caption:
    """One block of captions: ``style`` is the widget's style name; ``parts`` are the newest answer's
    sentences (all but the last drawn softer), empty for a plain block."""

    text: str
    style: str
    parts: tuple[str, ...] = ()


@dataclass
class CaptionTurn:
    turn_id: int
    question: str = ""
    sentences: dict[int, str] = field(default_factory=dict)

    @property
    def answer(self) -> list[str]:
        return [self.sentences[i] for i in sorted(self.sentences)]


class CaptionLog:
    SHOWN_TURNS = 2

    def __init__(self) -> None:
        self.turns: list[CaptionTurn] = []
        self.skipped: set[int] = set()  # turns not captioned ("Sorry, I did not catch that" has its banner)

    def clear(self) -> None:
        self.turns.clear()
        self.skipped.clear()

    def turn(self, turn_id: int) -> CaptionTurn:
        for turn in self.turns:
            if turn.turn_id == turn_id:
                return turn
        turn = CaptionTurn(turn_id)
        self.turns.append(turn)
        self.turns.sort(key=lambda t: t.turn_id)
        del self.turns[: -2 * self.SHOWN_TURNS]  # what can no longer be shown
        return turn

    def skip(self, turn_id: int) -> None:
        self.skipped.add(turn_id)
        self.turns = [t for t in self.turns if t.turn_id != turn_id]

    def blocks(self, attract: str) -> list[Caption]:
        shown = [t for t in self.turns if t.question or t.sentences][-self.SHOWN_TURNS :]
        if not shown:
            return [Caption(attract, "AttractLine")] if attract else []
        out: list[Caption] = []
        latest_skipped = max(self.skipped, default=-1)
        for n, turn in enumerate(shown):
            # a newer turn without captions ("Sorry, I did not catch that") fades the last answer too
            newest = n == len(shown) - 1 and turn.turn_id > latest_skipped
            if turn.question:
                out.append(Caption(f"\u201c{turn.question}\u201d", "VisitorCaption"))
            answer = turn.answer
            if answer and newest:
                out.append(Caption(" ".join(answer), "GuideCaption", tuple(answer)))
            elif answer:
                out.append(Caption(" ".join(answer), "GuideCaptionOld"))
        return out

    def entries(self) -> list[tuple[str, str]]:
        """Everything captioned since the last clear, in order: ("visitor", q), ("guide", sentence)..."""
        out: list[tuple[str, str]] = []
        for turn in self.turns:
            if turn.question:
                out.append(("visitor", turn.question))
            out.extend(("guide", s) for s in turn.answer)
        return out
