"""Reading a visitor's question: fillers out, "it" and "this" resolved, and what kind of answer it wants.

Visitors say "um so who like flew it?", "how old is it?" and "what did he do then?".  ``read_question``
turns such text into a :class:`Question`: the words that matter (content stems), whether it points at
the exhibit ("it", "this", "here"), whether it leans on the previous turn ("he", "they", "and then?"),
and the :class:`AnswerKind` a reply must state (a date, a number, a person...).  No model: rules that
take microseconds, tested on three exhibit packs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from kiosk.engine.language import NUMBER_WORDS, clean_text, content_list, stem, words

# longer questions are cut (a visitor does not speak 5,000 characters; a typed paste is not a question)
MAX_QUESTION_CHARS = 300

_FILLERS = frozenset("um umm uh uhh er erm ah hmm mm hm".split())
_LEADING = re.compile(r"^(?:(?:so|well|okay|ok|right|and|but|hey|oh|like|also|now)\b[\s,]*)+", re.I)
_HEDGES = re.compile(
    r"\b(?:you know|i mean|kind of|sort of|i guess|i wonder|can you tell me|could you tell me|do you know|"
    r"i want to know|i'd like to know|i would like to know|any idea|tell me)\b,?",
    re.I,
)
_WH = frozenset("who whom whose what when where why how which".split())
# pointing at the exhibit itself
_DEICTIC = re.compile(
    r"\b(?:it|its|it's|this|this one|this thing|that thing|here|the exhibit|the object|the thing)\b", re.I
)
# leaning on the previous turn: a person or group mentioned before, or an elliptical question
_ANAPHORA = re.compile(r"\b(?:he|she|they|him|her|them|his|their|hers|theirs)\b", re.I)
_ELLIPSIS = re.compile(
    r"^(?:and|what about|how about|then|after that|and then|what else)\b|"
    r"^(?:when|where|why|how|who|by whom|since when|how come|where from|who by)\W*$|"  # "When?" after an answer
    r"^(?:when|where|why|how|who) (?:was|is|did) that\W*$",  # "When was that?"
    re.I,
)
_AFFIRMATIVE = re.compile(
    r"^(?:yes|yeah|yep|yup|sure|ok|okay|please|go on|go ahead|tell me more|more|continue|of course|"
    r"why not|i'd like that|i would like that|alright|all right)(?:[\s,!.]+(?:please|thanks|thank you|"
    r"yes|sure|go on|tell me more|more))*[\s!.]*$",
    re.I,
)
_NEGATIVE = re.compile(r"^(?:no|nope|nah|no thanks|no thank you|not now|that's all|i'm good)[\s,!.]*$", re.I)
_COUNTED = re.compile(r"\bhow many\s+(?:of\s+(?:the|its|their)\s+)?([a-z]+)", re.I)
_WORDS_SAID = re.compile(
    r"\bwhat did\b.*\b(?:say|said|write|wrote)\b|\bwhat (?:were|was|are|is) (?:his|her|their|the) (?:first |last |famous )?"
    r"(?:words|quote|message|motto)\b",
    re.I,
)
_YEAR_OFFSET = re.compile(
    r"\b(?:the |a |(\w+) )?years? (before|after|earlier|later)\b|\bthe (previous|next|following) year\b", re.I
)
# read before the hedges go ("kind of" is one): "what kind of dog", "which type of paint"
_KIND_OF = re.compile(r"\b(?:what|which) (?:kind|type|sort|breed|species|make|model|style) of ([a-z]+)", re.I)
_LATEST = re.compile(r"\b(?:now|today|these days|nowadays|currently|at the moment)\b", re.I)
# "Tell me about the keepers", "could you tell me more about early life?": a topic asked for by its name
_ABOUT = re.compile(
    r"^\s*(?:(?:can|could|would) you\s+)?(?:please\s+)?tell me (?:(?:a bit |a little )?more )?about\s+(.+?)[\s?.!]*$",
    re.I,
)
_MORE = re.compile(r"\b(?:tell me more|more about|go on|what else|anything else about|keep going)\b", re.I)


class AnswerKind(StrEnum):
    """What a reply must state to answer the question."""

    DATE = "date"  # when, what year
    AGE = "age"  # how old
    COUNT = "count"  # how many
    MEASURE = "measure"  # how big, tall, long, heavy, fast, far
    MONEY = "money"  # how much did it cost
    COLOUR = "colour"
    PERSON = "person"  # who
    NAME = "name"  # what were their names, what is it called
    MATERIAL = "material"  # what is it made of
    PLACE = "place"  # where
    REASON = "reason"  # why
    ANY = "any"  # what, how: a sentence that is about it


_MATTER = r"(?:material|materials|stone|rock|metal|wood|timber)"
# "what rock is it?": the word says what kind of answer is wanted, not what it is about
MATTER = frozenset(stem(w) for w in "material stone rock metal wood timber".split())
_KIND_RULES: tuple[tuple[re.Pattern[str], AnswerKind], ...] = (
    (re.compile(r"\bhow much\b.*\b(?:cost|pay|paid|price|worth|spend|spent|sell|sold|buy|bought)\b|\b(?:cost|price|worth)\b", re.I), AnswerKind.MONEY),
    (re.compile(r"\bhow old\b|\bage\b", re.I), AnswerKind.AGE),
    (re.compile(rf"\bmade (?:of|from|out of)\b|\bwhat (?:(?:kind|type|sort) of )?{_MATTER}\b", re.I), AnswerKind.MATERIAL),
    (re.compile(r"\bhow (?:big|large|small|tall|high|long|wide|thick|heavy|fast|far|deep|hot|cold)\b|\bwhat size\b|\bhow much (?:do|does|did) (?:it|they|the \w+) weigh\b|\bweigh\b|\bspeed\b", re.I), AnswerKind.MEASURE),
    (re.compile(r"\bhow many\b|\bnumber of\b|\bhow much\b", re.I), AnswerKind.COUNT),
    (re.compile(r"^when\b|,\s*when\b|\bwhat (?:year|date|day|month|century|time)\b|\bwhich (?:year|date|day|century)\b|\bhow long ago\b", re.I), AnswerKind.DATE),
    (re.compile(r"\bwhat colou?r\b|\bcolou?rs?\b", re.I), AnswerKind.COLOUR),
    (re.compile(r"^(?:who|whose)\b|\bby whom\b|,\s*who\b|\bwhat (?:was|is) (?:his|her|their) name\b|\b(?:which|what) (?:company|firm|person|man|woman|artist|painter|engineer|architect)\b", re.I), AnswerKind.PERSON),
    (re.compile(r"\bname come from\b|\bcalled that\b|\bnamed (?:after|for)\b", re.I), AnswerKind.REASON),
    (re.compile(r"^what (?:is|was|are|were|'s)\b.*\bnames?\b|\bnames? of\b", re.I), AnswerKind.NAME),
    (re.compile(r"^where\b|,\s*where\b|\bwhich (?:city|country|town|place|museum)\b", re.I), AnswerKind.PLACE),
    (re.compile(r"\bwhy\b|\bwhat for\b|\bhow come\b|\bfor what reason\b", re.I), AnswerKind.REASON),
)  # fmt: skip

# a few question words and their usual wording in notes, so "who made it" meets "built by"
_SYNONYM_WORDS: dict[str, str] = {
    "make": "build construct design paint create found finish complete",
    "build": "construct make design",
    "create": "build make paint design",
    "design": "build make plan",
    "old": "build make paint create complete launch found",
    "age": "old year century",
    "big": "size tall wide long metre foot height",
    "large": "size tall wide long",
    "small": "size",
    "tall": "high height metre foot",
    "high": "tall height",
    "heavy": "weigh tonne kilogram ton",
    "weigh": "tonne kilogram ton heavy",
    "fast": "speed hour kilometre mile",
    "cost": "price pay pound dollar buy sell",
    "price": "cost pay",
    "die": "kill lose",
    "kill": "die",
    "fly": "pilot",
    "pilot": "fly",
    "paint": "painter artist canvas",
    "painter": "paint artist",
    "artist": "paint painter",
    "live": "home",
    "start": "begin first open",
    "end": "last close finish",
    "name": "call",
    "call": "name",
    "write": "inscription message",
    "now": "display show today hang since",
    "see": "display show view hang",
    "sea": "ocean water",
    "ocean": "sea water",
    "famous": "first best known record popular most only",
    "special": "first only best record popular most",
    "important": "first only best record",
    "work": "operate job",
    "charge": "command lead head chief captain",
    "command": "charge lead",
    "pick": "recover collect rescue",
    "recover": "pick rescue",
    "isolate": "quarantine",
    "own": "belong buy",
    "belong": "own",
    "from": "build make origin born home",
    "company": "firm build",
    "pay": "buy cost price",
    "final": "finish last complete",
    "architect": "design engineer build plan",
    "engineer": "design build",
    "stay": "live spend",
    "help": "assist",
    "land": "splash touch",
    "thick": "thickness",
    "deep": "depth",
    "wide": "width",
    "get": "receive acquire pass take obtain gain",
    "arrive": "reach come",
    "reach": "arrive",
    "decipher": "read crack decode code understand",
    "decode": "read crack decipher code",
    "translate": "read decipher",
    "show": "display exhibit view hang",
    "display": "show exhibit",
    "britain": "british english",
    "british": "britain",
    "france": "french",
    "french": "france",
    "england": "english",
    "america": "american",
    "american": "america",
    "egypt": "egyptian",
    "egyptian": "egypt",
    "scotland": "scottish",
    "germany": "german",
    "italy": "italian",
    "spain": "spanish",
    "greece": "greek",
    "rome": "roman",
    "inventor": "invent design",
    "invent": "design create",
}
# phrases whose words alone mislead: "take off" is a launch, "in charge" a command
_PHRASES = (
    (re.compile(r"\b(?:take|took|taken|taking|lift|lifted|blast|blasted) off\b", re.I), "launch"),
    (re.compile(r"\b(?:come|came|coming) down\b", re.I), "land splash"),
    (re.compile(r"\bin charge\b", re.I), "command"),
    (re.compile(r"\b(?:pick|picked|picks)\b(?:\s+\w+){0,3}\s+up\b", re.I), "recover"),
    (re.compile(r"\b(?:grow|grew|grown|growing) up\b", re.I), "childhood"),
    (re.compile(r"\b(?:does|did) (?:it|this|the \w+) say\b", re.I), "inscription text write"),
)


def _stemmed_synonyms(table: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """The table by stem; two words with one stem ("design", "designer") share their synonyms."""
    out: dict[str, tuple[str, ...]] = {}
    for key, value in table.items():
        out[stem(key)] = tuple(dict.fromkeys((*out.get(stem(key), ()), *(stem(w) for w in value.split()))))
    return out


SYNONYMS = _stemmed_synonyms(_SYNONYM_WORDS)
# question words that are stopwords elsewhere but say what is asked ("why is it called X", "where is it now")
_ASKED = {"called": "name", "named": "name", "name": "name", "now": "now", "today": "now", "made": "make"}


@dataclass(frozen=True)
class Question:
    raw: str  # as heard or typed, cleaned of control characters
    text: str  # without fillers, for matching
    kind: AnswerKind
    terms: tuple[str, ...]  # content stems, in order
    deictic: bool  # points at the exhibit ("it", "this", "here")
    anaphoric: bool  # leans on the previous turn ("he", "they", "and where from?")
    affirmative: bool = False  # "yes", "tell me more": accepts an offer
    negative: bool = False  # "no thanks"
    wants_more: bool = False  # "tell me more about the launch"
    elliptical: bool = (
        False  # "and where from?", "what about during the war?": the last question's words go on
    )
    counted: str = ""  # "how many bones": the stem of what is counted
    wants_words: bool = False  # "what did Armstrong say?": a quotation answers it
    year_offset: int = 0  # "what happened the year before?": -1, "the year after": 1
    wants_latest: bool = False  # "who owns it now?": the latest of what the notes tell
    kind_of: str = ""  # "what kind of dog": the stem of the thing whose kind is asked
    about: str = ""  # "tell me about the keepers": "the keepers" (a topic asked for by its name)

    @property
    def vague(self) -> bool:
        """Points at the exhibit but names nothing in it: "what is this?", "tell me about it"."""
        specific = [t for t in self.terms if t not in VAGUE_TERMS]
        return self.deictic and not specific and not set(self.terms) & _ACCLAIM

    @property
    def names(self) -> set[str]:
        """Words the visitor capitalised in mid-question (what the ASR writes as names): 'Mars', 'Paris'."""
        tokens = words(self.text)
        return {stem(t) for i, t in enumerate(tokens) if i and t[0].isupper() and t != "I"}

    def expanded_terms(self) -> list[str]:
        """The terms and the usual wording of the question words among them."""
        out = list(self.terms)
        for term in self.terms:
            out.extend(SYNONYMS.get(term, ()))
        return out


VAGUE_TERMS = frozenset(
    stem(w)
    for w in "special famous important interesting about tell know thing object exhibit story see look "
    "show interest significant matter notable remarkable other others".split()
)


# nouns a visitor uses for the exhibit itself ("how big is the spacecraft?"); the planner treats one as
# "it" when the notes use it too, else as a sign the visitor means something else ("this painting")
OBJECT_NOUNS = frozenset(
    stem(w)
    for w in "spacecraft capsule module ship craft vessel boat plane aircraft picture canvas artwork "
    "piece locomotive engine train statue sculpture building tower lighthouse machine car "
    "vehicle object item exhibit mission dinosaur skeleton fossil animal creature painting portrait drawing "
    "photograph photo monument".split()
)
# "why is it famous?" is answered by what the notes call first, best or a record, not by the overview
_ACCLAIM = frozenset(stem(w) for w in "famous special important significant notable remarkable".split())


def read_question(raw: str) -> Question:
    text = clean_text(raw, MAX_QUESTION_CHARS)
    spoken = _strip_fillers(text)
    tokens = words(spoken)
    affirmative = bool(_AFFIRMATIVE.match(spoken)) and len(tokens) <= 6
    negative = bool(_NEGATIVE.match(spoken))
    kind = AnswerKind.ANY
    for pattern, candidate in _KIND_RULES:
        if pattern.search(spoken):
            kind = candidate
            break
    phrased = spoken
    for pattern, meaning in _PHRASES:
        phrased = pattern.sub(f" {meaning} ", phrased)
    terms = tuple(t for t in content_list(words(phrased)) if t not in _QUESTION_WORDS)
    asked = tuple(stem(_ASKED[t.lower()]) for t in tokens if t.lower() in _ASKED)
    terms = tuple(dict.fromkeys((*terms, *asked)))
    if not terms and tokens and tokens[-1].lower() == "from":  # "where is it from?": where it was made
        terms = ("from",)
    return Question(
        raw=text,
        text=spoken,
        kind=kind,
        terms=terms,
        deictic=bool(_DEICTIC.search(spoken)),
        anaphoric=bool(
            _ANAPHORA.search(spoken)
            or _ELLIPSIS.match(spoken)
            or _ELLIPSIS.match(text)
            or _YEAR_OFFSET.search(spoken)
        ),
        affirmative=affirmative,
        negative=negative,
        wants_more=bool(_MORE.search(spoken)),
        elliptical=bool(_ELLIPSIS.match(spoken) or _ELLIPSIS.match(text)) and len(terms) <= 2,
        counted=stem(counted.group(1)) if (counted := _COUNTED.search(spoken)) else "",
        wants_words=bool(_WORDS_SAID.search(spoken)),
        year_offset=_year_offset(spoken),
        wants_latest=bool(_LATEST.search(spoken)),
        kind_of=stem(kind_of.group(1))
        if (kind_of := _KIND_OF.search(text)) and kind is not AnswerKind.MATERIAL
        else "",
        about=about.group(1) if (about := _ABOUT.match(text)) else "",
    )


def _year_offset(text: str) -> int:
    """ "the year before": -1, "two years later": 2, "the next year": 1."""
    found = _YEAR_OFFSET.search(text)
    if not found:
        return 0
    count, direction = found.group(1), (found.group(2) or found.group(3)).lower()
    size = 1
    if count:
        size = int(count) if count.isdigit() else NUMBER_WORDS.get(count.lower(), 0)
        if not size:
            return 0  # "many years later" names no year
    return -size if direction in ("before", "previous", "earlier") else size


# words every question has that say nothing about the subject
_QUESTION_WORDS = frozenset(
    stem(w)
    for w in "tell know please want wonder question ask say said explain guide nova hear learn "
    "think anyth something everyth happen happened kind sort".split()
)


def _strip_fillers(text: str) -> str:
    text = _HEDGES.sub(" ", text)
    tokens = text.split()
    kept: list[str] = []
    for index, token in enumerate(tokens):
        bare = token.lower().strip(",.!?;:")
        if bare in _FILLERS:
            continue
        if bare == "like":  # "who like flew it": a filler between a question word and what follows
            previous = kept[-1].lower().strip(",.!?;:") if kept else ""
            following = tokens[index + 1].lower().strip(",.!?") if index + 1 < len(tokens) else ""
            if not previous or previous in _WH or previous in ("so", "and", "is", "was") or following in _WH:
                if not (previous in ("is", "was") and not following):  # "what is it like?" keeps it
                    continue
        kept.append(token)
    text = " ".join(kept)
    text = _LEADING.sub("", text).strip(" ,")
    return text[:1].upper() + text[1:] if text else text


ACCLAIM_TERMS = frozenset(stem(w) for w in "famous special important significant notable remarkable".split())
# question words that the notes need not contain for the question to be answerable from them
GENERIC_TERMS = frozenset(
    stem(w)
    for w in "company firm person people day date place city country town number kind type say tell speak old cost price big large small tall high long wide heavy weigh fast far colour color size age "
    "year years date time day made make build built happen happened first last mean means name named "
    "famous special important start started end ended begin began use used work worked look looks "
    "go went come came get got take took today now still ever thick deep width height length weight become "
    "became".split()
)
