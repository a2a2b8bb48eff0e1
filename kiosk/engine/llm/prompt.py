"""The LLM's prompt: persona, the retrieved notes and an instruction, then the conversation and the question.

The system message comes first and is encoded on its own, so that its KV cache (``decoding.Decoder``)
serves every turn that retrieves the same notes.  The tokenizer lives here, behind one lock: a fast
tokenizer is not safe across threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

from kiosk.config import Config
from kiosk.engine.planner import AnswerPlan
from kiosk.exhibit import Exhibit

# a further retrieved section joins the notes when it scores within this of the best one
SECTION_MARGIN = 0.2
# the conversation's oldest turns are left out until at least this many tokens are left for the notes
MIN_NOTES_TOKENS = 48


@dataclass(frozen=True)
class Prompt:
    """A turn's token ids (a (1, n) CPU tensor), how many of them are the system message, the notes, the
    system message's text."""

    ids: Any
    prefix_tokens: int
    notes: str
    system: str


class PromptBuilder:
    """Builds and encodes prompts with one model's tokenizer and chat template."""

    def __init__(self, tokenizer: Any, config: Config) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self._lock = threading.Lock()

    def instruction(self) -> str:
        n = self.config.answer.max_sentences
        return (
            f"Answer the visitor's question in at most {n} short sentences, using only the exhibit notes above. "
            "If the notes do not say, say that you do not know. "
            "End your answer with one emotion tag such as [happy], [surprised], [sad] or [neutral]."
        )

    def build(
        self, exhibit: Exhibit, question: str, plan: AnswerPlan, history: list[tuple[str, str]]
    ) -> Prompt:
        """The prompt of one turn.

        The notes are the best section and those scoring within SECTION_MARGIN of it, best first, cut
        sentence by sentence so the whole prompt fits in ``max_prompt_tokens``; the oldest conversation
        turns are left out first when it does not fit.
        """
        budget = self.config.llm.max_prompt_tokens
        persona, instruction = exhibit.persona, self.instruction()

        def messages(notes: str, turns: list[tuple[str, str]]) -> list[dict[str, str]]:
            system = f"{persona}\n\nExhibit notes:\n{notes}\n\n{instruction}"
            chat = [{"role": "system", "content": system}]
            for asked, said in turns:
                chat += [{"role": "user", "content": asked}, {"role": "assistant", "content": said}]
            return chat + [{"role": "user", "content": question}]

        while True:
            room = budget - self.count(self.text(messages("", history)))
            if room >= MIN_NOTES_TOKENS or not history:
                break
            history = history[1:]
        notes = self._notes(plan, room)
        chat = messages(notes, history)
        text = self.text(chat)
        try:
            head = self.text(chat[:1], generation=False)
        except Exception:  # a chat template that wants a user message: no prefix to keep
            head = ""
        if head and text.startswith(head) and len(text) > len(head):
            import torch

            head_ids, tail_ids = self.encode(head), self.encode(text[len(head) :])
            ids = torch.cat([head_ids, tail_ids], dim=-1)
            return Prompt(ids, int(head_ids.shape[-1]), notes, chat[0]["content"])
        return Prompt(self.encode(text), 0, notes, chat[0]["content"])

    def continued(self, prompt: Prompt, said: str) -> Prompt:
        """The same prompt with the answer begun: ``said`` is the reply's opening, the model goes on."""
        import torch

        return replace(prompt, ids=torch.cat([prompt.ids, self.encode(said)], dim=-1))

    def _notes(self, plan: AnswerPlan, room: int) -> str:
        if self.config.llm.notes == "plan" and plan.sentences and plan.matches:
            # only what the planner chose to answer with: a short prompt, the same facts
            lines = []
            used = self.count(plan.matches[0].section.heading + ": ")
            for sentence in plan.sentences:
                used += self.count(sentence + " ")
                if lines and used > room:
                    break
                lines.append(sentence)
            return f"{plan.matches[0].section.heading}: {' '.join(lines)}"
        parts: list[str] = []
        used = 0
        best = plan.matches[0].score if plan.matches else 0.0
        floor = max(self.config.retrieval.similarity_threshold, best - SECTION_MARGIN)
        for match in plan.matches:
            if match is not plan.matches[0] and match.score < floor:
                continue
            lines: list[str] = []
            for sentence in match.section.sentences:
                cost = self.count(sentence + " ") + (self.count(match.section.heading + ": ") if not lines else 0)
                if used + cost > room:
                    break
                lines.append(sentence)
                used += cost
            if lines:
                parts.append(f"{match.section.heading}: {' '.join(lines)}")
            if used >= room:
                break
        return "\n".join(parts)

    def text(self, chat: list[dict[str, str]], generation: bool = True) -> str:
        tokenizer = self.tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=generation)
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in chat]  # a model with no chat template
        return "\n\n".join(lines) + ("\n\nAssistant:" if generation else "")

    def count(self, text: str) -> int:
        with self._lock:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, text: str) -> Any:
        """A (1, n) tensor of token ids on the CPU (the worker moves it to the device)."""
        with self._lock:
            return self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]

    def decode(self, tokens: list[int]) -> str:
        with self._lock:
            return self.tokenizer.decode(tokens, skip_special_tokens=True)
