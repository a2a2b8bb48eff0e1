"""The ``kiosk`` command: the full-screen app, and headless commands for technicians and tests."""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from kiosk import __version__
from kiosk.config import Config, load_config
from kiosk.engine.language import printable
from kiosk.errors import KioskError

log = logging.getLogger("kiosk")

HEADLESS_HINT = (
    "headless commands: 'kiosk listen' (microphone or --input FILE.wav), 'kiosk ask \"question\"', "
    "'kiosk render --text ... --out answer.mp4'"
)


def pin_hint(config: Config, config_file: str | None) -> str:
    """The installer's one line when no technician PIN is set ("" when one is): without it the ops panel
    only shows figures, so nobody, technician included, can exit, reload or run the self-test."""
    if config.ui.admin_pin:
        return ""
    where = config_file or "the file given with --config"
    return (
        "kiosk: no technician PIN, so the ops panel shows figures only (no exit, reload or self-test); "
        f'set one (4-12 digits) with admin_pin = "2468" under [ui] in {where}, or KIOSK_UI__ADMIN_PIN=2468'
    )


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML file over the shipped defaults")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Docent: a talking exhibit guide.")
    parser.add_argument("--version", action="version", version=f"docent-kiosk {__version__}")
    _add_config(parser)
    parser.add_argument(
        "--windowed", action="store_true", help="a window instead of full screen (development)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command")

    listen = commands.add_parser("listen", help="answer questions headless, from the microphone or a file")
    _add_config(listen)
    listen.add_argument(
        "--input", metavar="WAV", help="read questions from this audio file instead of the mic"
    )
    listen.add_argument(
        "--output", metavar="WAV", help="write the spoken answers here instead of the speaker"
    )
    listen.add_argument("--fast", action="store_true", help="read --input faster than real time")
    listen.add_argument(
        "--keep-running", action="store_true", help="stay up after --input ends (serve metrics)"
    )
    listen.add_argument("--no-metrics", action="store_true", help="do not start the /metrics endpoint")
    listen.add_argument(
        "--face", action="store_true", help="animate the face too (frames are counted, not shown)"
    )
    listen.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # keeps a `kiosk -v listen` given before the command
        help="also print what the visitor said and the guide answered (off: no visitor's words in logs)",
    )

    ask = commands.add_parser("ask", help="answer one question and write the spoken answer")
    _add_config(ask)
    ask.add_argument("question", nargs="?", help="the question as text")
    ask.add_argument("--wav", metavar="FILE", help="the question as recorded speech")
    ask.add_argument("--out", metavar="WAV", default="answer.wav", help="where the spoken answer goes")
    ask.add_argument("--video", metavar="MP4", help="also write the talking face with the answer")

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a config file and its exhibit pack")
    check.add_argument("path")

    exhibit = commands.add_parser("exhibit", help="exhibit pack tools")
    exhibit_commands = exhibit.add_subparsers(dest="exhibit_command", required=True)
    exhibit_check = exhibit_commands.add_parser(
        "check", help="ask a pack what visitors would and show which questions its notes answer"
    )
    _add_config(exhibit_check)
    exhibit_check.add_argument("pack", help="an exhibit folder, or the name of a shipped pack")
    exhibit_check.add_argument(
        "--questions",
        type=Path,
        help="your own questions, 'question<TAB>what a right reply holds' a line (default: the pack's "
        "questions.tsv, if it has one)",
    )

    portrait = commands.add_parser("portrait", help="portrait tools")
    portrait_commands = portrait.add_subparsers(dest="portrait_command", required=True)
    portrait_check = portrait_commands.add_parser("check", help="find the face and cache its landmarks")
    portrait_check.add_argument("path")

    render = commands.add_parser("render", help="write a spoken answer as a talking-face video")
    _add_config(render)
    render.add_argument("--text", required=True)
    render.add_argument("--out", required=True, metavar="MP4")
    render.add_argument("--emotion", default="neutral")

    metrics = commands.add_parser("metrics", help="telemetry tools")
    metrics_commands = metrics.add_subparsers(dest="metrics_command", required=True)
    dump = metrics_commands.add_parser("dump", help="print one metrics exposition")
    _add_config(dump)

    prepare = commands.add_parser("prepare", help="convert and cache the models now (done at install)")
    _add_config(prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    # everything the kiosk prints (notes, file names, errors, the log) passes through one filter: no
    # terminal escape reaches the technician's terminal
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableStream(sys.stdout), PrintableStream(sys.stderr)
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = streams


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    handlers = {
        None: cmd_app,
        "listen": cmd_listen,
        "ask": cmd_ask,
        "config": cmd_config_check,
        "exhibit": cmd_exhibit_check,
        "portrait": cmd_portrait_check,
        "render": cmd_render,
        "metrics": cmd_metrics_dump,
        "prepare": cmd_prepare,
    }
    try:
        return handlers[args.command](args)
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class PrintableStream(io.TextIOBase):
    """A text stream that writes ``printable`` text to the stream it wraps."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream.stream if isinstance(stream, PrintableStream) else stream

    def write(self, text: str) -> int:
        self.stream.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding

    def __getattr__(self, name: str) -> object:  # buffer, errors, reconfigure ...: the wrapped stream's
        return getattr(self.stream, name)


# --- the app ------------------------------------------------------------------------------------------


def has_display() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "eglfs", "linuxfb", "vnc")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_app(args: argparse.Namespace) -> int:
    config = _config(args)
    if not has_display():
        print(f"kiosk: no display available (DISPLAY and WAYLAND_DISPLAY are unset); {HEADLESS_HINT}")
        return 1
    try:
        from kiosk.ui.app import run_app
    except ImportError as exc:
        print(f"kiosk: the screen app is not available ({exc}); {HEADLESS_HINT}")
        return 1
    hint = pin_hint(config, args.config)
    if hint:
        log.warning("%s", hint)  # the journal: a fleet's installer may never see run.sh's terminal
    return run_app(config, windowed=args.windowed or config.ui.windowed)


# --- headless -----------------------------------------------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    from kiosk.config_check import config_check_command

    return config_check_command(args.path)


def cmd_exhibit_check(args: argparse.Namespace) -> int:
    from kiosk.exhibit import resolve_exhibit_path
    from kiosk.exhibit_check import exhibit_check_command

    config = _config(args).replace(exhibit={"path": str(resolve_exhibit_path(args.pack, Path.cwd()))})
    return exhibit_check_command(config, args.questions)


def cmd_portrait_check(args: argparse.Namespace) -> int:
    from kiosk.engine.face.portrait import portrait_check_command

    return portrait_check_command(args.path)


def cmd_render(args: argparse.Namespace) -> int:
    from kiosk.engine.face.video import render_command

    config = _config(args)
    return render_command(args.text, args.out, config, args.emotion)


def cmd_metrics_dump(args: argparse.Namespace) -> int:
    from kiosk.telemetry.dump import dump_metrics

    sys.stdout.write(dump_metrics(_config(args)))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from kiosk.engine.asr import base_path

    config = _config(args)
    if config.asr.model == "base":
        print(f"asr: whisper base ready in {base_path(config.cache_dir)}")
    if config.retrieval.runtime != "torch":
        from kiosk.engine.embed_onnx import ensure_onnx
        from kiosk.engine.retrieval import embedded_minilm_path

        print(f"retrieval: ONNX ready in {ensure_onnx(embedded_minilm_path(), config.cache_dir)}")
    if config.answer.backend == "llm":
        from kiosk.engine.llm import prepare_model

        print(f"llm: ready in {prepare_model(config)}")
    hint = pin_hint(config, args.config)
    if hint:
        print(hint)
    return 0


class TurnPrinter:
    """Prints each finished turn: topic, emotion and per-stage timings; with ``words`` also what the
    visitor said and the guide answered (a kiosk's output goes to its journal: no visitor's words there
    unless a technician asks with --verbose)."""

    def __init__(self, stream=sys.stdout, words: bool = True) -> None:
        self._stream = stream
        self.words = words
        self.finished = 0

    def __call__(self, event) -> None:
        from kiosk.engine import events as ev
        from kiosk.engine.language import clean_text

        if isinstance(event, ev.ModelFailed):
            print(f"[load] {event.message}", file=self._stream, flush=True)
        elif isinstance(event, ev.BackendFallback):
            print(f"[fallback] {event.stage}: {event.reason}", file=self._stream, flush=True)
        elif isinstance(event, ev.InputProblem):
            print(f"[input] {event.message}", file=self._stream, flush=True)
        elif isinstance(event, ev.TurnFinished):
            self.finished += 1
            timings = " ".join(f"{stage}={seconds * 1000:.0f}ms" for stage, seconds in event.timings.items())
            first = (
                f"{event.first_audio_seconds * 1000:.0f}ms" if event.first_audio_seconds is not None else "-"
            )
            # control characters and terminal escapes in what a visitor typed are never printed raw
            question, answer = clean_text(event.question, 300), clean_text(event.answer)
            words = f"  visitor: {question or '-'}\n  guide:   {answer or '-'}\n" if self.words else ""
            print(
                f"[turn {event.turn_id}] status={event.status} topic={event.topic or '-'} emotion={event.emotion}\n"
                f"{words}  first audio {first}; {timings}",
                file=self._stream,
                flush=True,
            )


def _compose(config: Config, sink, metrics: bool, words: bool = True):
    """The kiosk from the one composition root, with a printer of finished turns on its bus."""
    from kiosk.compose import compose

    kiosk = compose(config, sink=sink, metrics=metrics)
    kiosk.start()
    kiosk.engine.bus.subscribe(TurnPrinter(words=words))
    if metrics and config.metrics.enabled:
        server = getattr(kiosk.telemetry, "server", None)
        if server is not None and server.running:
            print(f"metrics: {server.url}/metrics", flush=True)
        else:
            reason = getattr(kiosk.telemetry, "server_error", None) if kiosk.telemetry else "unavailable"
            print(f"metrics: not served ({reason or 'disabled'})", flush=True)
    return kiosk


def cmd_listen(args: argparse.Namespace) -> int:
    from kiosk.engine.audio_in import FileSource, make_source
    from kiosk.engine.audio_out import NullSink, WavFileSink, make_sink

    config = _config(args)
    if args.output:
        sink = WavFileSink(args.output, realtime=not args.fast)
    elif args.input:
        sink = NullSink(realtime=not args.fast)
    else:
        sink = make_sink(config)
    kiosk = _compose(config, sink, metrics=not args.no_metrics, words=args.verbose)
    engine, telemetry = kiosk.engine, kiosk.telemetry
    stop = threading.Event()
    stopped_by: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        # SIGHUP (the technician's terminal closed, or 'systemctl kill -s HUP') stops as SIGTERM does:
        # the turn being answered ends counted, and the unit's Restart=always starts it again on the
        # pack as it now is. Unhandled, it killed the process mid-answer (exit 129, the turn lost)
        stopped_by.append(signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        engine.load()
        if telemetry is not None:
            telemetry.set_build_info(engine)
        source = FileSource(args.input, realtime=not args.fast) if args.input else make_source(config)
        if source is None:
            raise KioskError("[audio] input is 'none': nothing to listen to (use --input FILE.wav)")
        if args.face and engine.face is not None:
            face_thread = threading.Thread(
                target=engine.face.run, args=(lambda frame: None, stop), name="face", daemon=True
            )
            face_thread.start()
        listener = engine.start_listening(source)
        print(f"listening on {source.name}: {engine.exhibit.title}", flush=True)
        while listener.is_alive() and not stop.is_set():
            listener.join(timeout=0.2)
        if stop.is_set():  # SIGTERM, SIGHUP: the answer being spoken stops now, and the kiosk closes cleanly
            print(f"kiosk: stopping ({stopped_by[0] if stopped_by else 'SIGTERM'})", file=sys.stderr, flush=True)
            engine.stop()
        elif engine.pipeline is not None:
            engine.pipeline.wait_idle(timeout=120)
        while args.keep_running and not stop.is_set():
            stop.wait(0.5)
    except KeyboardInterrupt:  # SIGINT (Ctrl+C): the answer being spoken stops now, as for SIGTERM; exit 130
        engine.stop()
        raise
    finally:
        stop.set()
        kiosk.close()
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from kiosk.engine import events as ev
    from kiosk.engine.audio_in import load_audio
    from kiosk.engine.audio_out import WavFileSink

    if not args.question and not args.wav:
        raise KioskError("ask: give a question as text or --wav FILE")
    config = _config(args)
    question_audio = load_audio(args.wav) if args.wav else None  # a bad file fails before any model loads
    if question_audio is not None and len(question_audio) == 0:
        raise KioskError(f"{args.wav}: no audio in the file")
    sink = WavFileSink(args.out, realtime=False)
    kiosk = _compose(config, sink, metrics=False)
    engine = kiosk.engine
    chunks = []
    engine.add_speech_listener(_ChunkCollector(chunks))
    try:
        engine.load()
        finished = threading.Event()
        engine.bus.subscribe(lambda e: finished.set() if isinstance(e, ev.TurnFinished) else None)
        if question_audio is not None:
            engine.answer_audio(question_audio, time.monotonic())
        else:
            engine.ask(args.question)
        if not finished.wait(timeout=300):
            raise KioskError("ask: no answer within 300 s")
    finally:
        kiosk.close()
    print(f"answer audio: {args.out}")
    if args.video:
        from kiosk.engine.face.video import render_chunks_command

        return render_chunks_command(chunks, args.video, engine.exhibit, config)
    return 0


class _ChunkCollector:
    def __init__(self, chunks: list) -> None:
        self.chunks = chunks

    def begin_answer(self, turn_id, emotion) -> None:
        self.chunks.clear()

    def add_chunk(self, turn_id, chunk) -> None:
        self.chunks.append(chunk)

    def end_answer(self, turn_id) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
