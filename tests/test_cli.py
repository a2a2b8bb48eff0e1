"""The headless commands as a technician runs them: kiosk ask and kiosk listen, in their own processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np

from tests.conftest import silence
from tests.packs import notes_only_pack


def kiosk(
    *args: str,
    cache: Path,
    timeout: float = 240,
    extra_env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KIOSK_PATHS__CACHE_DIR": f'"{cache}"', "KIOSK_ANSWER__BACKEND": '"retrieval"'}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def write_wav(path: Path, audio: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_ask_writes_the_spoken_answer_and_its_video(tmp_path: Path, cache_dir: Path) -> None:
    out, video = tmp_path / "answer.wav", tmp_path / "answer.mp4"
    result = kiosk(
        "ask",
        "Who was the commander of Apollo 11?",
        "--out",
        str(out),
        "--video",
        str(video),
        cache=cache_dir,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "status=ok topic=crew" in result.stdout
    assert "Neil Armstrong was the commander." in result.stdout
    with wave.open(str(out)) as wav:
        assert wav.getnframes() / wav.getframerate() > 2.0
    with av.open(str(video)) as container:
        assert container.streams.video and container.streams.audio


def test_a_question_at_the_very_end_of_a_file_is_still_answered(tmp_path: Path, cache_dir: Path, speak) -> None:
    """Cut after "did they", the model calls it incomplete and waits 1.5 s for more; the file ends first.
    The open question is ended at the end of the input and answered, not dropped with no turn and no
    message."""
    audio = np.concatenate([silence(0.5), speak("How much moon rock did they"), silence(0.3)])
    result = kiosk(
        "listen", "--input", str(write_wav(tmp_path / "q.wav", audio)), "--no-metrics", "--fast", cache=cache_dir
    )
    assert result.returncode == 0, result.stderr[-2000:]
    turns = [line for line in result.stdout.splitlines() if line.startswith("[turn")]
    assert len(turns) == 1, result.stdout


def test_listen_answers_every_question_in_a_file(tmp_path: Path, cache_dir: Path, speak) -> None:
    audio = np.concatenate(
        [
            silence(0.5),
            speak("When did Apollo 11 launch?"),
            silence(6.0),
            speak("How big is the command module?"),
            silence(1.5),
        ]
    )
    question = write_wav(tmp_path / "questions.wav", audio)
    answers = tmp_path / "answers.wav"
    result = kiosk(
        "listen",
        "--input",
        str(question),
        "--output",
        str(answers),
        "--no-metrics",
        "--verbose",  # the visitor's words are printed only when asked
        cache=cache_dir,
        extra_env={"KIOSK_ANSWER__MAX_SENTENCES": "1"},  # each answer ends before the next question
    )
    assert result.returncode == 0, result.stderr[-2000:]
    turns = [line for line in result.stdout.splitlines() if line.startswith("[turn")]
    assert len(turns) == 2, result.stdout
    assert "topic=launch" in turns[0] and "topic=design" in turns[1]
    assert "visitor: When did Apollo 11 launch?" in result.stdout
    assert result.stdout.count("first audio") == 2 and "asr=" in result.stdout
    with wave.open(str(answers)) as wav:
        assert wav.getnframes() / wav.getframerate() > 4.0


def test_ask_without_a_question_is_one_line(cache_dir: Path) -> None:
    result = kiosk("ask", cache=cache_dir, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "kiosk: ask: give a question as text or --wav FILE"


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"


def test_nothing_printed_carries_a_terminal_escape(tmp_path: Path, cache_dir: Path) -> None:
    """Escape sequences in a curator's notes or in a file name never reach the technician's terminal
    (they set its title and cleared its screen)."""
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "exhibit.toml").write_text('title = "The Orrery"\n')
    (pack / "notes.md").write_text(f"## Making\nIt was made in London{ESCAPES} in 1780 by a clockmaker.\n")
    checked = kiosk("exhibit", "check", str(pack), cache=cache_dir)
    missing = kiosk("ask", "--wav", str(tmp_path / f"question{ESCAPES}.wav"), cache=cache_dir)
    config = kiosk("config", "check", str(tmp_path / f"museum{ESCAPES}.toml"), cache=cache_dir)
    assert checked.returncode == 0 and "London" in checked.stdout, checked.stderr[-1500:]
    assert missing.returncode == 2 and "question" in missing.stderr and "audio file not found" in missing.stderr
    assert config.returncode == 2 and "museum" in config.stderr
    for result in (checked, missing, config):
        for text in (result.stdout, result.stderr):
            assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text


def test_prepare_tells_the_installer_how_to_set_the_technician_pin(tmp_path: Path, cache_dir: Path) -> None:
    """Without a PIN the ops panel has no exit, reload or self-test; the installer hears how to set one."""
    config = tmp_path / "kiosk.toml"
    config.write_text("[ui]\nlarge_text = false\n")
    result = kiosk("prepare", "--config", str(config), cache=cache_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    hint = [line for line in result.stdout.splitlines() if "PIN" in line]
    assert len(hint) == 1, result.stdout
    assert f'admin_pin = "2468" under [ui] in {config}' in hint[0] and "KIOSK_UI__ADMIN_PIN=2468" in hint[0]

    result = kiosk("prepare", cache=cache_dir, extra_env={"KIOSK_UI__ADMIN_PIN": "2468"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PIN" not in result.stdout


def test_exhibit_check_judges_replies_and_a_curators_own_questions(tmp_path: Path, cache_dir: Path) -> None:
    """The check asks what visitors ask and says "WRONG" where a reply lacks what the notes state (issue
    21: any reply with status ok used to count as answered); a curator's own questions are judged too."""
    pack = notes_only_pack(
        tmp_path / "orrery",
        "The Orrery",
        "## Making\nThe orrery was made in London in 1780 by a clockmaker called John Rowley.\n"
        "It shows the planets turning around the Sun.\n\n"
        "## Later life\nThe Royal Society bought the orrery in 1820.\n",
    )
    (pack / "questions.tsv").write_text(
        "# question\twhat a right reply holds\n"
        "Who made the orrery?\tRowley\n"
        "When was it made?\t1820\n"  # a wrong expectation, so the verdict must say WRONG
        "What colour is the orrery?\t\n"  # the notes do not say: right when the kiosk says so
    )
    checked = kiosk("exhibit", "check", str(pack), cache=cache_dir)
    assert checked.returncode == 0, checked.stderr[-1500:]
    lines = checked.stdout.splitlines()

    def line(question: str) -> str:
        (found,) = [x for x in lines if f"{question!r} ->" in x]
        return found

    assert line("Who made the orrery?").lstrip().startswith("ok") and "Rowley" in line("Who made the orrery?")
    assert line("When was it made?").lstrip().startswith("WRONG") and "1780" in line("When was it made?")
    assert line("What colour is the orrery?").lstrip().startswith("ok")
    assert line("When was the orrery made?").lstrip().startswith("ok")  # asked from the sentence itself
    assert re.search(r"\d+/\d+ right, [1-9]\d* wrong", lines[-1]), lines[-1]

    missing = kiosk("exhibit", "check", str(pack), "--questions", str(tmp_path / "none.tsv"), cache=cache_dir)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "none.tsv" in missing.stderr
