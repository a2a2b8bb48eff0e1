"""An exhibit pack: ``exhibit.toml`` (who the guide is), ``notes.md`` (what it knows) and a portrait.

``notes.md`` is plain Markdown a curator edits: one ``## Heading`` per topic, in prose or as a list (each
``- item`` is a sentence).  Text before the first heading is ignored.  ``exhibit.toml`` needs only a title:
the topics default to the notes' headings, in their order (an optional ``[[topics]]`` table still names
them, sets a tone or a suggested question).  A pack without a portrait is presented by the kiosk's drawn
host (``kiosk/engine/face/host.py``), never by another pack's photograph: a real person's face stands
only for its own pack.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.emotion import Emotion
from kiosk.errors import ExhibitError
from kiosk.headings import indirect_question, is_question
from kiosk.notes import parse_notes

EXHIBITS_DIR = Path(__file__).resolve().parent.parent / "assets" / "exhibits"
TOPIC_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
MAX_TOPICS = 40
TOPIC_KEYS = ("id", "heading", "tone", "question")
# The notes are read, embedded sentence by sentence, prompted and spoken at every start: 5 MB of them
# took 107 s and 2.5 GB. 64 kB is 20 times the shipped pack, about 850 sentences: some 10 s of indexing
# on the 2-core reference machine (127 kB, 1,708 sentences, took 176 s there under a load of 21).
MAX_NOTES_BYTES = 64 * 1024
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


@dataclass(frozen=True)
class Section:
    id: str
    heading: str
    text: str
    tone: Emotion = Emotion.NEUTRAL
    question: str = ""

    @property
    def sentences(self) -> list[str]:
        return split_sentences(self.text)

    @property
    def suggested(self) -> str:
        """The question a chip offers: the curator's, a heading that asks one, or "Tell me about <heading>"
        (a pack of notes alone still gets chips); "" for a heading that reads as no topic ("Saved from scrap")."""
        if self.question:
            return self.question
        if self.heading.strip().endswith("?"):
            return self.heading.strip()
        name = topic_name(self.heading)
        return f"Tell me about {_with_article(as_phrase(name))}" if name else ""


@dataclass(frozen=True)
class Exhibit:
    id: str
    folder: Path
    title: str
    greeting: str
    persona: str
    language: str
    voice: str
    portrait: Path | None  # None: no portrait, the drawn host presents the pack
    sections: tuple[Section, ...] = field(default_factory=tuple)

    @property
    def topic_ids(self) -> list[str]:
        return [s.id for s in self.sections]

    def section(self, topic_id: str) -> Section:
        for section in self.sections:
            if section.id == topic_id:
                return section
        raise KeyError(topic_id)

    def section_titled(self, name: str) -> Section | None:
        """The section whose heading is ``name`` ("the keepers" for "The keepers"), or None."""
        wanted = _plain(name)
        for section in self.sections:
            if wanted and wanted in (_plain(section.heading), _plain(topic_name(section.heading) or "")):
                return section
        return None

    def topics_phrase(self, limit: int = 2) -> str:
        """'the crew and the launch' for the polite out-of-scope reply: two are an example, a list of
        four or more was recited to every visitor whose question missed (about 25 words)."""
        named = [n for n in (topic_name(s.heading) for s in self.sections[1:]) if n]
        names = [as_phrase(n) for n in named[:limit]] or [self.title]
        if len(names) <= 1:
            return "".join(names)
        return ", ".join(names[:-1]) + " and " + names[-1]


# a heading that asks yes or no ("Is it complete?") or starts with a participle ("Saved from scrap") does not
# follow "about" in a sentence
_NOT_A_TOPIC = re.compile(
    r"^(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would|should|may|might|at|in|on|from|to|"
    r"for|with|by|under|after|before|during|since|inside|outside|beyond)\b|^\w+ed\b",
    re.I,
)


def topic_name(heading: str) -> str | None:
    """A heading as it can stand in the guide's sentence: "Early life" -> "Early life", "How does it work?"
    -> "how it works", "Is it real?" -> "whether it is real" (a question turned round, kiosk.headings), or
    None where it cannot be said."""
    bare = re.sub(r"\s*\([^)]*\)", "", heading)  # "Discovery (1799)" -> "Discovery"
    if is_question(heading):
        return indirect_question(bare)
    name = bare.strip().rstrip("?!.:;").strip()
    if not name or _NOT_A_TOPIC.match(name):
        return None
    return name


_NO_ARTICLE = frozenset("a an the this that these those its his her their our my your some any".split())


def _with_article(phrase: str) -> str:
    """A label-copy heading as a thing to ask about: "builder" -> "the builder", "top speed" -> "the top
    speed"; names, longer phrases, numbers and "-ing" words stay ("Apollo 11", "cracking the code")."""
    words = phrase.split()
    if not phrase[:1].islower() or not 1 <= len(words) <= 2 or not all(w.isalpha() for w in words):
        return phrase
    if words[0] in _NO_ARTICLE or words[0].endswith("ing"):
        return phrase
    return f"the {phrase}"


def _plain(text: str) -> str:
    """A heading compared as words: lower case, no punctuation, no leading article."""
    return re.sub(r"^(?:the|a|an) ", "", " ".join(re.findall(r"\w+", text.lower())))


# words that open a heading without being part of a name: "The Moon landing", "What Columbia is"
_FUNCTION_WORDS = frozenset(
    "the a an what who whom whose how why where when which this that these those its his her their our my "
    "your is are was were in on at from of to for with by about".split()
)


def as_phrase(name: str) -> str:
    """A heading inside a sentence: "Early life" -> "early life"; "Air Force pilot", "SUE", "McAdam's road"
    and "Apollo 11" stay."""
    first, _, rest = name.partition(" ")
    proper_run = (rest[:1].isupper() or rest[:1].isdigit()) and first.lower() not in _FUNCTION_WORDS
    if first[1:] != first[1:].lower() or proper_run or any(c.isdigit() for c in first):
        return name
    return name[:1].lower() + name[1:]


# a full stop, "!" or "?", perhaps a closing quote, then space: a sentence may end here
_SENTENCE_GAP = re.compile(r"(?<=[.!?])[\"'”’»]?\s+")
_OPENERS = "\"'(“‘«"
# a full stop after these is an abbreviation, not a sentence's end: "Engine No. 4", "St. Ives", "Mr. Smith"
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st no nos mt ft jr sr prof capt col gen lt sgt rev hon vs c ca approx fig vol".split()
)


def split_sentences(text: str) -> list[str]:
    """The notes' sentences: a break after ".", "!" or "?" where the next sentence starts with a capital in
    any alphabet, a digit or an opening quote, except after a title or an abbreviation."""
    text = " ".join(text.split())
    sentences, start = [], 0
    for gap in _SENTENCE_GAP.finditer(text):
        after = text[gap.end() : gap.end() + 1]
        if not (after.isupper() or after.isdigit() or (after and after in _OPENERS)):
            continue
        before = text[start : gap.start()].rstrip(".")
        last_word = before.rsplit(" ", 1)[-1].lower()
        # "J. R. Smith"; not a Roman numeral: "...the young king Ptolemy V. The same text..."
        initial = len(last_word) == 1 and before[-1:].isupper() and before[-1:] not in "IVXLCDM"
        if text[gap.start() - 1] == "." and (last_word in _ABBREVIATIONS or initial) and not gap.group().strip():
            continue
        sentences.append(text[start : gap.end()].strip())
        start = gap.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def resolve_exhibit_path(path: str, base: Path | None = None) -> Path:
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and base is not None and (base / candidate).is_dir():
        return (base / candidate).resolve()
    if candidate.is_dir():
        return candidate.resolve()
    named = EXHIBITS_DIR / path
    if named.is_dir():
        return named
    available = ", ".join(sorted(p.name for p in EXHIBITS_DIR.iterdir() if p.is_dir())) or "none"
    raise ExhibitError(
        f"exhibit {path!r}: no such folder and no shipped pack of that name (shipped: {available})"
    )


def pack_file(folder: Path, name: str, where: str, max_bytes: int | None = None) -> Path:
    """``name`` inside the pack ``folder``: refused when it (through '..', an absolute path or a symlink)
    leads outside the pack, or is larger than ``max_bytes``; a missing file is the caller's to report."""
    try:
        root = folder.resolve()
        path = (root / name).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop, a name too long
        raise ExhibitError(f"{where}: {name!r} is not a usable file name ({_shown(exc)})") from None
    if not path.is_relative_to(root):
        raise ExhibitError(
            f"{where}: {name!r} leads outside the exhibit folder {_shown(root)}; keep the pack's files in it"
        )
    if max_bytes is not None:
        try:
            size = path.stat().st_size
        except OSError:
            return path
        if size > max_bytes:
            raise ExhibitError(
                f"{_shown(path)}: {size / 1024:.0f} kB is over the {max_bytes // 1024} kB limit for this file"
            )
    return path


def _check_image(path: Path, where: str) -> None:
    """A PNG or JPEG by its first bytes (the face stage decodes it fully later)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ExhibitError(f"{where}: cannot read {_shown(path)} ({exc.strerror})") from None
    if not head.startswith(IMAGE_MAGIC):
        raise ExhibitError(f"{where}: {_shown(path)} is not a PNG or JPEG image")


def _shown(value: object) -> str:
    """A path or message for a one-line error: as it is when printable, else quoted with escapes."""
    text = str(value)
    return text if text.isprintable() else repr(text)


def load_exhibit(path: str | Path) -> Exhibit:
    folder = resolve_exhibit_path(str(path))
    manifest_path = pack_file(folder, "exhibit.toml", str(folder), max_bytes=MAX_NOTES_BYTES)
    try:
        manifest = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExhibitError(f"{manifest_path}: missing (an exhibit pack needs exhibit.toml)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ExhibitError(f"{manifest_path}: not valid TOML ({exc})") from None

    def text(key: str, default: str | None = None) -> str:
        value = manifest.get(key, default)
        if not isinstance(value, str) or (default is None and not value.strip()):
            raise ExhibitError(f"{manifest_path}: {key}: expected a non-empty string")
        return value.strip()

    known = {"title", "greeting", "persona", "language", "voice", "portrait", "topics"}
    for key in manifest:
        if key not in known:
            raise ExhibitError(
                f"{manifest_path}: {key}: unknown key (expected one of {', '.join(sorted(known))})"
            )

    portrait: Path | None = pack_file(folder, text("portrait", "portrait.png"), f"{manifest_path}: portrait")
    if "portrait" not in manifest and not portrait.is_file():
        portrait = None  # notes alone: the drawn host presents them, not somebody else's face
    elif not portrait.is_file():
        raise ExhibitError(f"{manifest_path}: portrait: file {_shown(portrait)} not found")
    else:
        _check_image(portrait, f"{manifest_path}: portrait")

    notes_path = pack_file(folder, "notes.md", str(folder), max_bytes=MAX_NOTES_BYTES)
    try:
        notes = notes_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExhibitError(f"{notes_path}: missing (an exhibit pack needs notes.md)") from None
    except UnicodeDecodeError:
        raise ExhibitError(f"{notes_path}: not UTF-8 text") from None

    parsed = parse_notes(notes)
    topics = manifest.get("topics")
    if topics is None:  # the curator's headings are the topics
        if not parsed:  # not exhibit.toml's [[topics]], which this pack does not have: the notes lack headings
            raise ExhibitError(
                f"{notes_path}: no '## ' heading: put each topic of the notes under a line such as '## The keepers'"
            )
        topics = _heading_topics(list(parsed))
    sections = _sections(manifest_path, topics, parsed, notes_path)
    title = text("title")
    return Exhibit(
        id=folder.name,
        folder=folder,
        title=title,
        # not the title again: it stands above the greeting on the screen
        greeting=text("greeting", "Hello! I'm your guide to this exhibit. Ask me anything about it."),
        persona=text(
            "persona",
            f"You are a warm and concise museum guide beside {title}. You answer visitors' questions in "
            "one to three short sentences, using only the exhibit notes you are given.",
        ),
        language=_served_language(text("language", "en"), manifest_path),
        voice=text("voice", ""),
        portrait=portrait,
        sections=tuple(sections),
    )


# the languages a pack may be in: the recogniser (tiny.en), the voice and the answer rules are English
SERVED_LANGUAGES = ("en",)


def _served_language(language: str, manifest_path: Path) -> str:
    """A pack in a language the kiosk does not serve is refused: 'zh' was accepted and ignored, and the
    English voice read the Chinese notes for 43 s."""
    if language.lower().split("-")[0] not in SERVED_LANGUAGES:
        raise ExhibitError(
            f"{manifest_path}: language: {language!r} is not served (this guide speaks English: "
            f"{', '.join(SERVED_LANGUAGES)})"
        )
    return language


def _heading_topics(headings: list[str]) -> list[dict[str, str]]:
    """Topics from the notes' headings; two headings that make the same id ("Early life", "Early Life!")
    get -2, -3 ... (a curator never sees the ids; a clash blamed exhibit.toml's [[topics]])."""
    topics, used = [], set()
    for index, heading in enumerate(headings, 1):
        base = topic_id = _topic_id(heading, index)
        number = 2
        while topic_id in used:
            topic_id = f"{base[:36]}-{number}"
            number += 1
        used.add(topic_id)
        topics.append({"id": topic_id, "heading": heading})
    return topics


def _topic_id(heading: str, index: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")[:40].strip("-")
    return slug if TOPIC_ID.match(slug) else f"topic-{index}"


def _sections(manifest_path: Path, topics: object, notes: dict[str, str], notes_path: Path) -> list[Section]:
    if not isinstance(topics, list) or not topics:
        raise ExhibitError(f"{manifest_path}: topics: expected a list of [[topics]] tables")
    if len(topics) > MAX_TOPICS:
        raise ExhibitError(f"{manifest_path}: topics: at most {MAX_TOPICS} topics, got {len(topics)}")
    sections: list[Section] = []
    seen: set[str] = set()
    for index, topic in enumerate(topics, 1):
        where = f"{manifest_path}: topics[{index}]"
        if not isinstance(topic, dict):
            raise ExhibitError(f"{where}: expected a table with id and heading")
        for key in topic:
            if key not in TOPIC_KEYS:
                raise ExhibitError(f"{where}: {key}: unknown key (expected one of {', '.join(TOPIC_KEYS)})")
        topic_id, heading = topic.get("id"), topic.get("heading")
        if not isinstance(topic_id, str) or not TOPIC_ID.match(topic_id):
            raise ExhibitError(f"{where}: id: expected a short lowercase name like 'crew', got {topic_id!r}")
        if topic_id in seen:
            raise ExhibitError(f"{where}: id: {topic_id!r} is used twice")
        seen.add(topic_id)
        if not isinstance(heading, str) or heading not in notes:
            raise ExhibitError(f"{where}: heading: {notes_path} has no '## {heading}' section")
        if not notes[heading]:
            raise ExhibitError(f"{notes_path}: section '## {heading}' is empty")
        tone = topic.get("tone", "neutral")
        if tone not in set(Emotion):
            raise ExhibitError(f"{where}: tone: expected one of {', '.join(Emotion)}, got {tone!r}")
        sections.append(
            Section(topic_id, heading, notes[heading], Emotion(tone), str(topic.get("question", "")))
        )
    unused = set(notes) - {s.heading for s in sections}
    if unused:
        raise ExhibitError(f"{notes_path}: section '## {sorted(unused)[0]}' has no topic in exhibit.toml")
    return sections
