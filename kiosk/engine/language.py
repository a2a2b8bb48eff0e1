"""Word tools shared by the question reader, the passage index and the claim check (English, no model).

Everything here is deterministic and fast (microseconds a sentence): tokens, a crude stem, stopwords,
numbers written in digits or words, and the names a sentence states.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
    during each even ever every few for from further get got had hadn't has hasn't have haven't having he
    he'd he'll he's her here here's hers herself him himself his how how's however i i'd i'll i'm i've if
    in into is isn't it it's its itself just let's like made make many may me might more most much must
    mustn't my myself no nor not now of off often on once only or other ought our ours ourselves out over
    own quite really same shan't she she'd she'll she's should shouldn't so some such than that that's the
    their theirs them themselves then there there's these they they'd they'll they're they've this those
    through to too under until up upon us very was wasn't we we'd we'll we're we've were weren't what
    what's when when's where where's whether which while who who's whom whose why why's will with won't
    would wouldn't yes yeah you you'd you'll you're you've your yours yourself yourselves well still yet
    oh ah sure okay ok great good nice called named known one
    """.split()
)
NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
    "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12,
}  # fmt: skip
# words that state a quantity without being a number ("half", "dozens")
QUANTITY_WORDS = frozenset("half quarter third hundreds thousands millions billions dozens".split())
MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)
# letters of any alphabet: "Pierre-François", "Eugène" are one word each
TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_][^\W\d_'’-]*(?:['’-][^\W_]+)*['’]?")  # "STS-63", "X-ray" whole
# C0/C1 control characters and terminal escape sequences: never printed, logged or answered
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` safe for a terminal: escape sequences, control characters (but line breaks and tabs) and
    invisible format characters removed.  A curator's notes or a file name with ESC ] 0 ; ... BEL set the
    technician's terminal title, and ESC [ 2 J cleared the screen."""
    text = _CONTROL.sub("?", _ESCAPE.sub("", text))
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cs", "Co"))


def clean_text(text: str, limit: int = 0) -> str:
    """``text`` without escape sequences, control or format characters, on one line, cut to ``limit`` characters."""
    text = _ESCAPE.sub(" ", text)
    text = _CONTROL.sub(" ", text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cs", "Co"))
    text = " ".join(text.split())
    if limit and len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > limit // 2 else limit]
    return text


def words(text: str) -> list[str]:
    return TOKEN.findall(text.replace("’", "'"))


def is_number(token: str) -> bool:
    return token[0].isdigit()


# irregular past forms visitors and curators use, so "who wrote it" meets "the writing" and "built" meets "build"
IRREGULAR = {
    "wrote": "write", "written": "write", "flew": "fly", "flown": "fly", "flies": "fly", "built": "build",
    "made": "make", "ran": "run", "began": "begin", "begun": "begin", "came": "come", "went": "go",
    "gone": "go", "going": "go", "goes": "go", "coming": "come", "saw": "see", "seen": "see", "took": "take", "taken": "take", "gave": "give",
    "given": "give", "found": "find", "brought": "bring", "bought": "buy", "sold": "sell", "told": "tell",
    "died": "die", "dead": "die", "death": "die", "left": "leave", "kept": "keep", "held": "hold",
    "stood": "stand", "sank": "sink", "sunk": "sink", "fell": "fall", "fallen": "fall", "grew": "grow",
    "grown": "grow", "drew": "draw", "drawn": "draw", "wore": "wear", "worn": "wear", "lit": "light",
    "paid": "pay", "spent": "spend", "won": "win", "lost": "lose", "meant": "mean", "sent": "send",
    "thought": "think", "taught": "teach", "caught": "catch", "fought": "fight", "hung": "hang",
    "children": "child", "men": "man", "women": "woman", "people": "person", "feet": "foot",
    "colours": "colour", "colors": "colour", "color": "colour", "metres": "metre", "meters": "metre",
    "meter": "metre",
}  # fmt: skip


def stem(word: str) -> str:
    """A crude stem, so 'landed', 'lands' and 'landing' meet 'land' in the notes."""
    w = word.lower().strip("'-")
    if w.endswith("'s"):
        w = w[:-2]
    w = IRREGULAR.get(w, w)
    for suffix in ("ing", "ed", "ers", "er", "ly", "es", "s"):
        if suffix in ("er", "ers") and (len(w) - len(suffix) < 4 or w[-len(suffix) - 1] in "aeiou"):
            continue  # "designer" -> "design", "painters" -> "paint"; "water", "tower", "owner" stay
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "es" and not w.endswith(("ches", "shes", "sses", "xes", "zes")):
                continue  # "homes" -> "home" by the "s" rule below
            w = w[: -len(suffix)]
            # "recovered" -> "recover" -> "recov", as "recover" itself: one stem for both
            if (
                suffix in ("ing", "ed", "es", "s")
                and w.endswith("er")
                and len(w) >= 6
                and w[-3] not in "aeiou"
            ):
                w = w[:-2]
            break
    if len(w) > 3 and w[-1] == "e":
        w = w[:-1]
    elif len(w) > 3 and w[-1] == "y":
        w = w[:-1] + "i"
    return w


def content_stems(tokens: Iterable[str]) -> set[str]:
    return {stem(t) for t in tokens if not is_number(t) and t.lower() not in STOPWORDS and len(t) > 1}


def content_list(tokens: Iterable[str]) -> list[str]:
    """Content stems in order, repeats kept (for lexical scoring)."""
    return [stem(t) for t in tokens if not is_number(t) and t.lower() not in STOPWORDS and len(t) > 1]


def numbers(tokens: Iterable[str]) -> set[str]:
    """The numbers stated, as digit strings: '1,969' and '1969' agree, 'three' is '3'."""
    found: set[str] = set()
    for token in tokens:
        lower = token.lower()
        if is_number(token):
            value = token.replace(",", "")
            found.add(value.rstrip("0").rstrip(".") if "." in value else value)
        elif lower in NUMBER_WORDS and lower not in ("one", "zero"):
            found.add(str(NUMBER_WORDS[lower]))
    return found


def names(tokens: list[str]) -> set[str]:
    """Lower-cased capitalised words that are not the sentence's first word: the names a sentence states."""
    found: set[str] = set()
    for index, token in enumerate(tokens):
        if index and token[0].isupper() and token != "I" and token.lower() not in STOPWORDS:
            found.add(token.lower())
    return found


def word_count(text: str) -> int:
    return len(text.split())
