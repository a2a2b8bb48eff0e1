"""Exhibit packs: the shipped default, and broken packs refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.emotion import Emotion
from kiosk.errors import ExhibitError
from kiosk.exhibit import EXHIBITS_DIR, as_phrase, load_exhibit, split_sentences
from tests.packs import pack_with_portrait

DEFAULT = EXHIBITS_DIR / "apollo11-columbia"


def test_the_default_exhibit_is_presented_by_its_guide_not_by_her_photograph() -> None:
    """Eileen Collins' own face spoke of her in the third person, with a man's voice: the default pack
    names no portrait (the drawn host presents it), and the guide greets in the first person as the
    guide, speaking of her in the third."""
    exhibit = load_exhibit(load_config(env={}).exhibit.path)
    assert exhibit.title == "Eileen Collins" and exhibit.portrait is None
    assert not list(exhibit.folder.glob("*.png")) and not list(exhibit.folder.glob("*.jp*g"))
    greeting = exhibit.greeting
    assert greeting.startswith("Hello! I'm your guide to") and "This is Eileen Collins" not in greeting
    assert "her life" in greeting  # she is spoken of, not speaking
    portrait = exhibit.section("portrait")
    assert "Space Shuttle" in portrait.text and all(s.question.endswith("?") for s in exhibit.sections)
    # the notes speak of the portrait in the hall, not of a picture on the kiosk's screen
    assert "The portrait in this hall is NASA's official portrait" in portrait.text
    assert not any(s.startswith(("This is", "Behind her")) for s in portrait.sentences)


def test_the_apollo_pack() -> None:
    exhibit = load_exhibit("apollo11-columbia")
    assert exhibit.title == "Apollo 11 Command Module Columbia"
    assert 8 <= len(exhibit.sections) <= 15
    assert exhibit.portrait is None  # Nova is the drawn host, not NASA's photograph of Eileen Collins
    assert not (DEFAULT / "portrait.png").exists()
    crew = exhibit.section("crew")
    assert "Neil Armstrong was the commander." in crew.sentences
    assert crew.tone is Emotion.HAPPY
    assert all(s.question.endswith("?") for s in exhibit.sections)
    attribution = (DEFAULT / "ATTRIBUTION.md").read_text()
    assert "drawn host" in attribution and "This pack has no portrait" in attribution


def copy_pack(tmp_path: Path) -> Path:
    return pack_with_portrait(tmp_path / "pack")


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda p: (p / "notes.md").unlink(), "notes.md: missing"),
        (lambda p: (p / "exhibit.toml").unlink(), "exhibit.toml: missing"),
        (lambda p: (p / "portrait.png").unlink(), "portrait: file"),
        (
            lambda p: (p / "notes.md").write_text(
                (p / "notes.md").read_text().replace("## The crew", "## Crew")
            ),
            "has no '## The crew' section",
        ),
        (
            lambda p: (p / "exhibit.toml").write_text(
                (p / "exhibit.toml").read_text().replace('tone = "happy"', 'tone = "ecstatic"', 1)
            ),
            "tone: expected one of neutral, happy, sad, angry, surprised",
        ),
        (
            lambda p: (p / "exhibit.toml").write_text(
                (p / "exhibit.toml").read_text() + "\ncolour = 'red'\n"
            ),
            "colour: unknown key",
        ),
        (lambda p: (p / "exhibit.toml").write_text("title = \n"), "not valid TOML"),
        (
            lambda p: (p / "exhibit.toml").write_text(
                (p / "exhibit.toml").read_text().replace('language = "en"', 'language = "zh"')
            ),
            "language: 'zh' is not served (this guide speaks English",
        ),
        (
            lambda p: (p / "notes.md").write_text((p / "notes.md").read_text() + "\n## Gift shop\nMugs.\n"),
            "'## Gift shop' has no topic",
        ),
    ],
)
def test_broken_pack_is_refused_in_one_line(tmp_path: Path, breakage, expected: str) -> None:
    pack = copy_pack(tmp_path)
    breakage(pack)
    with pytest.raises(ExhibitError) as info:
        load_exhibit(pack)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_sentence_splitting_keeps_abbreviations_and_quotes() -> None:
    text = 'It is displayed in Washington, D.C. today. Armstrong said: "That\'s one small step." It ended.'
    assert split_sentences(text) == [
        "It is displayed in Washington, D.C. today.",
        'Armstrong said: "That\'s one small step."',
        "It ended.",
    ]


def test_sentence_splitting_knows_titles_initials_other_alphabets_and_curly_quotes() -> None:
    text = (
        "Engine No. 4 was built in 1899 by J. R. Smith. Σπύρος Λούης drove it. It ran to St. Ives, "
        "c. 1900. “Fast,” said Mr. Jones. Dr. Ng agreed! It was a gift to King George V. It stayed."
    )
    assert split_sentences(text) == [
        "Engine No. 4 was built in 1899 by J. R. Smith.",
        "Σπύρος Λούης drove it.",
        "It ran to St. Ives, c. 1900.",
        "“Fast,” said Mr. Jones.",
        "Dr. Ng agreed!",
        "It was a gift to King George V.",
        "It stayed.",
    ]


def test_a_heading_inside_a_sentence_keeps_its_names() -> None:
    """Offers and chips read "more about the Moon landing" and "about Space Shuttle missions"."""
    cases = {
        "The Moon landing": "the Moon landing",
        "What Columbia is": "what Columbia is",
        "Early life": "early life",
        "Space Shuttle missions": "Space Shuttle missions",
        "Air Force pilot": "Air Force pilot",
        "Apollo 11 facts": "Apollo 11 facts",
        "SUE": "SUE",
        "McAdam's road": "McAdam's road",
    }
    assert {heading: as_phrase(heading) for heading in cases} == cases


def _title_only_pack(tmp_path: Path, notes: str) -> Path:
    pack = tmp_path / "curated"
    pack.mkdir()
    (pack / "exhibit.toml").write_text('title = "The Brass Orrery"\n')
    (pack / "notes.md").write_text(notes)
    return pack


def test_notes_without_headings_blame_the_notes_not_a_topics_table_the_pack_lacks(tmp_path: Path) -> None:
    pack = _title_only_pack(tmp_path, "# The Brass Orrery\n\nMade in London in 1780 by a clockmaker.\n")
    with pytest.raises(ExhibitError) as info:
        load_exhibit(pack)
    message = str(info.value)
    assert message.startswith(str(pack / "notes.md")) and "no '## ' heading" in message
    assert "exhibit.toml" not in message and "[[topics]]" not in message and "\n" not in message


def test_two_headings_that_make_the_same_topic_id_both_load(tmp_path: Path) -> None:
    notes = "## Early life\nBorn in 1780.\n\n## Early Life!\nShe grew up by the sea.\n"
    exhibit = load_exhibit(_title_only_pack(tmp_path, notes))
    assert exhibit.topic_ids == ["early-life", "early-life-2"]
    assert [s.heading for s in exhibit.sections] == ["Early life", "Early Life!"]


def test_notes_are_read_as_rendered_markdown_hidden_text_and_markup_never_spoken(tmp_path: Path) -> None:
    notes = (
        "## The vase\n"
        "<!-- curator comment. Do not say this.\n   Nor this. -->\n"
        '<div style="color:red">The vase is **blue** and *old*; see [the catalogue](https://example.org/c).</div>\n'
        "![a photo of the vase](vase.jpg)\n\n"
        "**Lid**\nSilver, 1790.\n\n"
        "| Part | Material |\n|------|----------|\n| Base | `Bronze` |\n"
    )
    exhibit = load_exhibit(_title_only_pack(tmp_path, notes))
    spoken = " ".join(exhibit.sections[0].sentences)
    assert spoken == (
        "The vase is blue and old; see the catalogue. Lid: Silver, 1790. Part: Base; Material: Bronze."
    )
    for leak in ("curator", "Do not", "style", "color", "div", "http", "*", "`", "|", "photo", "---"):
        assert leak not in spoken
