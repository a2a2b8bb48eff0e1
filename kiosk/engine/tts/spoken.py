"""What the voice is given to read: a sentence with its symbols, units and codes written out as said.

The notes are written for the eye ("£250", "12 kg", "STS-114", "1969–1972"); the voice's phonemiser
(espeak-ng, under Piper and as the fallback) reads numbers well but these badly: "£250" came out as
"pound two hundred fifty", "12 kg" as "twelve K G", "1969–1972" with no word between the years and "the
1960s" as "nineteen hundred sixty z".  Only the voice gets this form; the captions, the cache key and the
events keep the sentence as written.  Numbers stay digits: the phonemiser says them better than a table
here would.  (No number-wording library is installed; this is the little the kiosk needs, for English.)
"""

from __future__ import annotations

import re

_NUMBER = r"\d[\d,]*(?:\.\d+)?"

_CURRENCY = {"£": ("pound", "pounds"), "$": ("dollar", "dollars"), "€": ("euro", "euros")}
_SCALE = {"m": "million", "mn": "million", "bn": "billion", "k": "thousand"}
_MONEY = re.compile(
    rf"(?P<sign>[£$€])\s?(?P<amount>{_NUMBER})"
    r"(?:\s?(?P<scale>million|billion|trillion|thousand|mn|bn|m|k)\b)?",
)

# a unit after a number: singular and plural (case matters: "m" is metres, "M" is not a unit here)
_UNITS = {
    "kg": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "t": ("tonne", "tonnes"),
    "km": ("kilometre", "kilometres"),
    "m": ("metre", "metres"),
    "cm": ("centimetre", "centimetres"),
    "mm": ("millimetre", "millimetres"),
    "km/h": ("kilometre per hour", "kilometres per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "ft": ("foot", "feet"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "kW": ("kilowatt", "kilowatts"),
    "MW": ("megawatt", "megawatts"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
}
_UNIT = re.compile(
    rf"(?P<amount>{_NUMBER})\s?(?P<unit>"
    + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?![\w/])"
)

# "1969–1972", "1939-45": years joined by a dash are a span; "5–10" too when it is an en dash
_YEAR_SPAN = re.compile(r"\b(1\d{3}|20\d{2})\s?[–—-]\s?(1\d{3}|20\d{2}|\d{2})\b")
_NUMBER_SPAN = re.compile(rf"(?<![\w.])({_NUMBER})\s?[–—]\s?({_NUMBER})(?![\w.])")

# "STS-114", "AS-506", "H-4": a code of capitals and a number is read letter by letter, then the number
_CODE = re.compile(r"\b([A-Z]{1,5})-(\d+)\b")

# "the 1960s", "the 1800s"
_DECADE = re.compile(r"\b(1[1-9]|20)(\d)0s\b")
_CENTURY_WORDS = {
    "11": "eleven", "12": "twelve", "13": "thirteen", "14": "fourteen", "15": "fifteen",
    "16": "sixteen", "17": "seventeen", "18": "eighteen", "19": "nineteen", "20": "twenty",
}  # fmt: skip
_DECADE_WORDS = {
    "0": "hundreds", "1": "tens", "2": "twenties", "3": "thirties", "4": "forties",
    "5": "fifties", "6": "sixties", "7": "seventies", "8": "eighties", "9": "nineties",
}  # fmt: skip


def spoken_form(text: str) -> str:
    """``text`` as the voice should read it: "It cost £250." -> "It cost 250 pounds."."""
    text = _MONEY.sub(_money, text)
    text = _UNIT.sub(_unit, text)
    text = _YEAR_SPAN.sub(r"\1 to \2", text)
    text = _NUMBER_SPAN.sub(r"\1 to \2", text)
    text = _CODE.sub(lambda m: f"{' '.join(m[1])} {m[2]}", text)
    text = _DECADE.sub(lambda m: f"{_CENTURY_WORDS[m[1]]} {_DECADE_WORDS[m[2]]}", text)
    return text


def _one(amount: str) -> bool:
    return amount.replace(",", "") in ("1", "1.0")


def _money(m: re.Match[str]) -> str:
    sign, amount, scale = m["sign"], m["amount"], m["scale"]
    singular, plural = _CURRENCY[sign]
    if scale:
        return f"{amount} {_SCALE.get(scale, scale)} {plural}"
    whole, _, cents = amount.partition(".")
    if len(cents) == 2:  # "£2.50": two pounds fifty, not "two point five zero"
        unit = singular if _one(whole) else plural
        return f"{whole} {unit} {int(cents)}" if int(cents) else f"{whole} {unit}"
    return f"{amount} {singular if _one(amount) else plural}"


def _unit(m: re.Match[str]) -> str:
    singular, plural = _UNITS[m["unit"]]
    return f"{m['amount']} {singular if _one(m['amount']) else plural}"
