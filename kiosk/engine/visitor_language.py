"""Questions the guide cannot read: another language ("this guide speaks English", in that language if
we can), or no words at all ("asdf qwer": not understood, rather than "I can only talk about ...").

The guide answers in English only.  A German or Spanish question used to be searched as English and
answered "my notes don't say" (false: the notes may well say), a French one "I can only talk about ...".
py3langid (BSD, a 4 MB model in the wheel, ~0.1 ms a question) names the language; because short English
questions are sometimes taken for Dutch or German ("Eileen Collins", "how old"), a question counts as
another language only when the identifier is sure *and* it holds no word that only English uses.
"""

from __future__ import annotations

import threading

from kiosk.engine.language import STOPWORDS, is_number, stem, words

# The languages whose visitors we can at least tell, in their own words, that the guide speaks English.
ENGLISH_ONLY_REPLIES = {
    "de": "Entschuldigung, dieser Guide spricht nur Englisch. Please ask me in English.",
    "es": "Lo siento, esta guía solo habla inglés. Please ask me in English.",
    "fr": "Désolé, ce guide ne parle qu'anglais. Please ask me in English.",
    "it": "Mi dispiace, questa guida parla solo inglese. Please ask me in English.",
    "nl": "Sorry, deze gids spreekt alleen Engels. Please ask me in English.",
    "pt": "Desculpe, este guia só fala inglês. Please ask me in English.",
}
ENGLISH_ONLY_REPLY = "Sorry, I can only answer in English. Please ask me in English."
# What the identifier chooses between: the languages above, English, and others a museum's visitors
# often speak (their questions get the English reply).
_CANDIDATES = ["en", *ENGLISH_ONLY_REPLIES, "pl", "ru", "uk", "tr", "zh", "ja", "ko", "ar", "sv", "da", "no"]
_SURE = 0.9
# Words that only English uses, among the ones every question has: one of them and it is English.
_ENGLISH_WORDS = frozenset(  # not "is", "was", "me", "do", "her": Dutch, German, French, Portuguese have them
    """the what who whom whose when where why how which did does are were this that these those it its she
    he his him they them their you your my about tell from with of and or can could would will there here
    made make old many much long big far first last""".split()
)

_identifier = None
_english: frozenset[str] | None = None
_lock = threading.Lock()


def _identify(text: str) -> tuple[str, float]:
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            _identifier.set_languages(_CANDIDATES)
        language, confidence = _identifier.classify(text)
    return str(language), float(confidence)


def load() -> None:
    """Load the identifier and the word list now (0.7 s), so the first visitor does not wait for them."""
    _identify("hello")
    _english_words()


def _english_words() -> frozenset[str]:
    """The whole words of MiniLM's WordPiece vocabulary (22,500 common English words, shipped with the
    retrieval model) and their stems: a word list with no download and no package of its own."""
    global _english
    with _lock:
        if _english is None:
            from kiosk.engine.retrieval import embedded_minilm_path

            vocab = (embedded_minilm_path() / "vocab.txt").read_text(encoding="utf-8").split()
            whole = [w for w in vocab if w.isalpha()]
            _english = frozenset(whole) | frozenset(stem(w) for w in whole)
    return _english


def no_words(question: str, notes_vocabulary: frozenset[str]) -> bool:
    """True for keyboard mashing and noise heard as letters: a question none of whose words is English,
    a number, or a word of the notes (``notes_vocabulary``: their stems)."""
    tokens = [w.lower() for w in words(question)]
    content = [w for w in tokens if w not in STOPWORDS]
    if not content:
        return False
    known = _english_words()
    return not any(
        is_number(w) or w in known or stem(w) in known or stem(w) in notes_vocabulary for w in content
    )


def other_language(question: str) -> str | None:
    """The language of a question that is not English (an ISO 639-1 code), or None."""
    tokens = [w.lower() for w in words(question)]
    if len(tokens) < 2 or _ENGLISH_WORDS.intersection(tokens):
        return None
    language, confidence = _identify(question)
    return language if language != "en" and confidence >= _SURE else None


def english_only_reply(language: str) -> str:
    """ "This guide speaks English", in the visitor's language where we know it, else in English."""
    return ENGLISH_ONLY_REPLIES.get(language, ENGLISH_ONLY_REPLY)
