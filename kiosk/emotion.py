"""The fixed set of emotions an answer can carry (a bounded metric label too)."""

from enum import StrEnum


class Emotion(StrEnum):
    NEUTRAL = "neutral"
    HAPPY = "happy"
    SAD = "sad"
    ANGRY = "angry"
    SURPRISED = "surprised"

    @classmethod
    def normalise(cls, value: object) -> "Emotion":
        """Any value outside the set becomes neutral; a few common synonyms are mapped."""
        if isinstance(value, Emotion):
            return value
        text = str(value or "").strip().lower()
        text = _SYNONYMS.get(text, text)
        try:
            return cls(text)
        except ValueError:
            return cls.NEUTRAL


_SYNONYMS = {
    "joy": "happy",
    "joyful": "happy",
    "cheerful": "happy",
    "excited": "happy",
    "glad": "happy",
    "sorrow": "sad",
    "melancholy": "sad",
    "unhappy": "sad",
    "anger": "angry",
    "mad": "angry",
    "surprise": "surprised",
    "amazed": "surprised",
    "astonished": "surprised",
    "calm": "neutral",
    "none": "neutral",
}
