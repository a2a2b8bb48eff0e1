"""A curator's notes.md as the guide reads it: Markdown whose markup is never spoken.

Sections are the ``## Heading`` lines; a list item is a sentence of its own.  What a curator hides or
lays out is read as a visitor would see it rendered, not as typed: HTML comments ("curator comment: do
not say this") and raw HTML tags (``<div style="color:red">``) are dropped, emphasis, code and link
markup lose their symbols (``[the museum](https://...)`` is "the museum", an image is nothing; a bold line
alone names what the lines under it describe: "King: Walrus ivory."), and a table becomes a sentence per row ("Height: 40 cm; Weight: 3 kg.").  The red team heard
"style equals color colon red ... curator comment. Do not say this." before.
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_CODE = re.compile(r"`([^`\n]*)`")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_BOLD_LINE = re.compile(r"^\s*(\*\*|__)(.+)\1\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)])\s+")


def parse_notes(notes: str) -> dict[str, str]:
    """Each ``## Heading``'s text, markup removed (text before the first heading is ignored)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    lines = _tables_as_sentences(_COMMENT.sub("", notes).splitlines())
    for line in lines:
        if line.startswith("## "):
            current = found.setdefault(_inline(line[3:]).strip(), [])
        elif current is not None and not line.startswith("#"):
            label = _BOLD_LINE.match(line)
            if label and not label.group(2).rstrip().endswith((".", "!", "?", ":")):
                line = f"{label.group(2).strip()}:"  # "**King**" over a label's lines: "King: Walrus ivory."
            line = _inline(line)
            if _LIST_ITEM.match(line):  # a list item is a sentence of its own
                item = _LIST_ITEM.sub("", line).strip()
                line = item if item.endswith((".", "!", "?")) or not item else f"{item}."
            current.append(line)
    return {heading: "\n".join(lines).strip() for heading, lines in found.items()}


def _inline(text: str) -> str:
    """A line as it reads rendered: no tags, images, link targets, emphasis or code marks."""
    text = _TAG.sub("", text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(lambda m: m.group(2) or m.group(3), text)
    return _CODE.sub(r"\1", text)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _tables_as_sentences(lines: list[str]) -> list[str]:
    """A Markdown table (a header row, a ``|---|`` rule, rows) becomes one sentence a row: "Height: 40 cm;
    Weight: 3 kg." (a one-column table: its cells as sentences)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "|" in line and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            header = [_inline(cell) for cell in _cells(line)]
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                row = [_inline(cell) for cell in _cells(lines[i])]
                pairs = [
                    f"{name}: {value}" if name else value
                    for name, value in zip(header, row, strict=False)
                    if value
                ]
                if pairs:
                    sentence = "; ".join(pairs)
                    out.append(sentence if sentence.endswith((".", "!", "?")) else f"{sentence}.")
                i += 1
            continue
        out.append(line)
        i += 1
    return out
