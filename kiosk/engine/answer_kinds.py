"""What a sentence states: a date, a number with a unit, a sum of money, a colour, a person, a place.

The planner asks these of candidate sentences so that "when" is answered by a sentence with a date and
"how heavy" by one with a weight, whatever the exhibit.  Plain patterns, English only.
"""

from __future__ import annotations

import re

from kiosk.engine.language import MONTHS, NUMBER_WORDS, QUANTITY_WORDS, STOPWORDS, stem, words
from kiosk.engine.passages import Passage
from kiosk.engine.question import AnswerKind

YEAR = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\b(\d{1,4}) ?(?:BC|BCE|B\.C\.)|\b(?:AD|A\.D\.) ?(\d{1,4})\b|\b(\d{1,4}) ?(?:AD|CE)\b"
)
YEAR_TEXT = re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})\b")
# a quotation: "Armstrong said: "That's one small step...""
QUOTATION = re.compile(r"\b(?:said|says|wrote|writes|called out)\b\s*[:,]?\s*[\"“]|[\"“][^\"”]{12,}[\"”]")
_CENTURY = re.compile(
    r"\b(?:century|centuries|decade|ago|ancient|medieval|prehistoric|years? old|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|weekends?|every (?:day|week|month|year|morning|evening)|mornings?|"
    r"evenings?|nights?|noon|midnight|o'clock|daily|weekly|spring|summer|autumn|winter|dawn|dusk|period|era|"
    r"dynasty|reign)\b",
    re.I,
)
# what makes a thing famous: "the first crewed mission", "best-loved", "a record" ("first numbered" is not)
ACCLAIM = re.compile(
    r"\b(?:the|a|its) first\b(?! (?:time|years?|days?|weeks?|months?|few|part|half)\b)|\bbest\b|\bmost\b|"
    r"\bthe only\b|\brecord\b|\bfamous|\bpopular|\bgreatest|\blargest|\boldest|\bbiggest|\bgold medal|"
    r"\bin the world\b|\bworld'?s\b",
    re.I,
)
# the strongest claims to fame come before "the first ...": "the oldest ... in the world", "a record"
STRONG_ACCLAIM = re.compile(
    r"\bthe first (?:woman|man|person|people|human|american|british|european|black|female)\b|"
    r"\bin the world\b|\bworld'?s\b|\brecord\b|\bfamous|\bbest[- ](?:loved|known)\b|\bmost (?:popular|famous|"
    r"visited|loved|important)\b|\bgreatest|\boldest|\blargest|\bbiggest|\bgold medal",
    re.I,
)
# an age said outright: "67 million years ago", "about 33 years old"
AGE_STATED = re.compile(r"\b(?:years?|centuries) (?:old|ago)\b|\bmillion years\b|\bwas born\b", re.I)
# making it: "how old is it?" is answered by when it was built, painted, launched or first used
MAKING = frozenset(
    "build mak paint creat complet finish launch found design begin start open light carv cast writ inscrib "
    "compos draw sculpt invent forg weav".split()
)
_UNIT = re.compile(
    r"\b(?:met(?:re|er)s?|m|cm|mm|km|kilomet(?:re|er)s?|centimet(?:re|er)s?|millimet(?:re|er)s?|feet|foot|ft|"
    r"inch(?:es)?|miles?|mph|km/h|kilograms?|kg|grams?|g|tonnes?|tons?|pounds|lb|lbs|litres?|liters?|"
    r"per hour|per second|hours?|minutes?|seconds?|days?|weeks?|years?|degrees?|storeys?|stories|floors|"
    r"steps|wide|tall|high|long|deep|heavy|size of|the size)\b",
    re.I,
)
_CURRENCY = re.compile(r"[$£€¥]|\b(?:dollars?|euros?|guineas?|shillings?|francs?|pounds)\b", re.I)
_MONEY = re.compile(
    r"[$£€¥]|\b(?:dollars?|euros?|guineas?|shillings?|francs?|cost|costs|paid|price|bought|sold|worth|funded|"
    r"budget)\b|\d\s*(?:thousand|million|billion)?\s*pounds\b",
    re.I,
)
_MATERIAL = re.compile(
    r"\b(?:stone|wood|wooden|oak|pine|bronze|brass|copper|iron|steel|tin|lead|gold|silver|aluminium|aluminum|"
    r"titanium|marble|granite|limestone|sandstone|basalt|slate|flint|clay|terracotta|porcelain|ceramic|glass|"
    r"ivory|bone|shell|leather|silk|wool|cotton|linen|canvas|oil|tempera|watercolou?r|ink|paper|parchment|"
    r"vellum|papyrus|plaster|concrete|brick|plastic|rubber|resin|wax|jade|amber|enamel|fibreglass|carbon)\b",
    re.I,
)
MADE_OF = re.compile(r"\b(?:made|built|carved|cast|cut|woven|formed) (?:of|from|out of|in)\b", re.I)
# rock names: "granodiorite", "diorite", "quartzite" (not "white", "write", "quite")
_ROCK = re.compile(
    r"\b(?!(?:white|write|quite|site|kite|elite|invite|despite|bite|unite|polite)\b)[a-z]{2,}ite\b", re.I
)
# a colour named: "coloured balls" or "painted" alone does not say what colour
_COLOUR = re.compile(
    r"\b(?:red|orange|yellow|green|blue|purple|violet|pink|brown|black|white|grey|gray|golden|gold|silver|"
    r"scarlet|crimson|ochre|maroon|turquoise|indigo|emerald|"
    r"azure|vermilion|ultramarine|beige|khaki|striped)\b",
    re.I,
)
_PERSON_NOUNS = re.compile(
    r"\b(?:astronauts?|crew|pilots?|commander|keepers?|engineers?|masons?|workers?|painter|artist|architect|"
    r"designer|builders?|king|queen|family|people|men|women|children|scientists?|staff|owners?|founder|"
    r"company|firm|inventor|sculptor|maker)\b",
    re.I,
)
_PLACE = re.compile(
    r"\b(?:in|at|on|near|from|off|inside|outside|across|beside|above|below)\s+(?:the\s+)?([A-Z][\w'’]*)"
)
REASON = re.compile(
    r"\b(?:because|so that|in order to|after|in case|that is why|on purpose|since|to keep|to protect)\b", re.I
)
# "was named Eagle", "called the Rocket": a name given, for "what was it called?"
_NAMED_AS = re.compile(r"\b(?:named|called|name was|name is)\s+(?:the\s+)?[\"“']?[A-Z]")
WHY_NAMED = re.compile(r"\bwhy\b.*\b(?:called|named)\b|\bname come from\b|\bnamed (?:after|for)\b", re.I)
NAMED_AFTER = re.compile(r"\b(?:named|called)\b.*\b(?:after|for|because)\b|\bname comes from\b", re.I)


_UNIT_FAMILIES = (
    (re.compile(r"\b(?:heavy|weigh|weight)", re.I),
     r"kilograms?|kg|tonnes?|tons?|(?<!million )(?<!billion )(?<!thousand )pounds?(?! sterling)|lbs?|grams?"),
    (re.compile(r"\b(?:fast|speed|quick)", re.I), r"per hour|per second|mph|km/h|miles an hour"),
    (re.compile(r"\bhow far\b|\bdistance\b", re.I), r"miles?|kilomet(?:re|er)s?|km|met(?:re|er)s?"),
    (re.compile(r"\bhow long\b", re.I),  # a time or a length: "how long did they walk", "how long is it"
     r"days?|hours?|minutes?|weeks?|months?|years?|seconds?|met(?:re|er)s?|feet|foot|km|kilomet(?:re|er)s?|miles?"),
    (re.compile(r"\b(?:big|large|small|tall|high|wide|long|deep|thick|size|height|length|width)", re.I),
     r"met(?:re|er)s?|cm|mm|centimet(?:re|er)s?|feet|foot|ft|inch(?:es)?|km|kilomet(?:re|er)s?|miles?|size of|storeys?|floors"),
)  # fmt: skip


def measure_units(question: str) -> re.Pattern[str] | None:
    """The units an answer to "how heavy / fast / far / long / big" states, or None for any unit."""
    for pattern, units in _UNIT_FAMILIES:
        if pattern.search(question):
            return re.compile(rf"\b(?:{units})\b", re.I)
    return None


def states(
    kind: AnswerKind, passage: Passage, title_terms: set[str], units: re.Pattern[str] | None = None
) -> bool:
    """Whether a sentence states the kind of thing a question asks for."""
    text = passage.text
    numeric = bool(passage.numbers) or any(w.lower() in QUANTITY_WORDS for w in words(text))
    if kind in (AnswerKind.DATE, AnswerKind.AGE):
        return bool(
            YEAR.search(text) or set(w.lower() for w in words(text)) & MONTHS or _CENTURY.search(text)
        )
    if kind is AnswerKind.COUNT:
        return numeric
    if kind is AnswerKind.MEASURE:
        return numeric and bool((units or _UNIT).search(text))
    if kind is AnswerKind.MONEY:  # "£500", "2 million dollars", "paid 300 for it"; not "bought it in 1820"
        if _CURRENCY.search(text):
            return numeric
        amounts = passage.numbers - set(YEAR_TEXT.findall(text))
        return bool(_MONEY.search(text)) and bool(
            amounts or any(w.lower() in QUANTITY_WORDS for w in words(text))
        )
    if kind is AnswerKind.COLOUR:
        return bool(_COLOUR.search(text))
    if kind is AnswerKind.MATERIAL:  # "Granodiorite stele", "oil on canvas", "made of bronze"
        named = [m.group(0).lower() for m in (*_MATERIAL.finditer(text), *_ROCK.finditer(text))]
        return bool(MADE_OF.search(text)) or any(
            m not in title_terms for m in named
        )  # not "the Rosetta Stone"
    if kind is AnswerKind.NAME:  # "what were the keepers' names?": a name, not "four keepers"
        return names_someone(passage, title_terms) or bool(_NAMED_AS.search(passage.text))
    if kind is AnswerKind.PERSON:  # a name, or people as the subject ("Three astronauts flew...")
        return names_someone(passage, title_terms) or bool(_PERSON_NOUNS.search(" ".join(text.split()[:4])))
    if kind is AnswerKind.PLACE:  # "in California", "at the Smithsonian", not "inside Columbia"
        return any(m.group(1).lower() not in title_terms for m in _PLACE.finditer(text))
    return True  # why, what, how: the best sentence about it


NO_YEAR = 9999


def earliest_year(text: str) -> int:
    """The earliest year a sentence names (a year BC counts as negative), or NO_YEAR."""
    years = [int(m[0] or m[2] or m[3]) if not m[1] else -int(m[1]) for m in YEAR.findall(text)]
    return min(years) if years else NO_YEAR


def names_someone(passage: Passage, title_terms: set[str]) -> bool:
    """The sentence names someone: two capitalised words in a row, or "by" and a capitalised word."""
    tokens = words(passage.text)
    for i in range(1, len(tokens)):
        first, second = tokens[i - 1], tokens[i]
        if second[0].isupper() and second.lower() not in title_terms and not second[0].isdigit():
            if first.lower() == "by" or (
                first[0].isupper() and first.lower() not in title_terms and first.lower() not in STOPWORDS
            ):
                return True
    return False


# a capitalised run that ends in one of these is a place or a body, not a person: "the Albert Museum"
_NOT_PEOPLE = frozenset(
    "museum gallery academy centre center works station company sea ocean river street road hall church abbey "
    "castle house park island university college institute society salon railway railways rock lighthouse bay "
    "lake mountain city county war navy army council library school hospital palace bridge complex".split()
)


def names_person(passage: Passage, title_terms: set[str]) -> bool:
    """The sentence names a person: "by X", or two capitalised words that are not a place or a body."""
    tokens = words(passage.text)
    for i in range(1, len(tokens)):
        first, second = tokens[i - 1], tokens[i]
        if not second[0].isupper() or second.lower() in title_terms or second[0].isdigit():
            continue
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if following[:1].isupper() and following.lower() in _NOT_PEOPLE or second.lower() in _NOT_PEOPLE:
            continue
        if first.lower() == "by" or (
            first[0].isupper()
            and first.lower() not in title_terms
            and first.lower() not in STOPWORDS
            and first.lower() not in _NOT_PEOPLE
            and (i < 2 or tokens[i - 2].lower() not in ("the", "called", "named", "titled"))
        ):
            return True
    return False


_MADE = re.compile(
    r"\b(?:built|made|painted|designed|created|finished|completed|constructed|founded|carved|cast|wrote|written|"
    r"composed|drew|drawn|sculpted|invented|launched)\b",
    re.I,
)


def says_made(passage: Passage) -> bool:
    """The sentence says something was made ("which John Constable finished"), not "French painters"."""
    return bool(_MADE.search(passage.text))


def counts(passage: Passage, counted: str) -> bool:
    """The sentence puts a number to the counted thing: "more than 250 bones", "Four keepers"."""
    tokens = words(passage.text)
    for i, token in enumerate(tokens):
        if token[0].isdigit() or token.lower() in NUMBER_WORDS or token.lower() in QUANTITY_WORDS:
            if any(stem(t) == counted for t in tokens[i + 1 : i + 4]):
                return True
    return False


# words before a noun that do not say what kind it is: "a small dog" does not answer "what kind of dog?"
_BLAND = frozenset(
    "a an the this that its his her their one two three small big large little tiny huge young old new "
    "some many few other same whole".split()
)


def says_kind(passage: Passage, noun: str) -> bool:
    """The sentence qualifies the noun: "an oil painting", "a steam locomotive", "a dog of the spaniel kind"."""
    tokens = words(passage.text)
    for i, token in enumerate(tokens):
        if stem(token) != noun:
            continue
        before = tokens[i - 1].lower() if i else ""
        after = " ".join(t.lower() for t in tokens[i + 1 : i + 3])
        if (before and before not in _BLAND and before not in STOPWORDS) or after.startswith(
            ("of the", "called")
        ):
            return True
    return False
