"""The kiosk's one validated configuration, loaded from TOML with ``KIOSK_*`` environment overrides.

Every section is a frozen dataclass; the loader refuses unknown keys, wrong types and out-of-range values
with a single line that names the file, the key and what was expected.  Environment overrides use
``KIOSK_<SECTION>__<KEY>`` (for example ``KIOSK_VAD__TRAILING_SILENCE_MS=300``); their values are parsed
as TOML scalars, so ``true``, ``300`` and ``"text"`` work, and bare words are taken as strings.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kiosk.cache_folder import usable_cache_dir
from kiosk.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default.toml")
ENV_PREFIX = "KIOSK_"
DEVICE_HELP = "'auto', 'cpu', 'cuda' or 'cuda:N'"


@dataclass(frozen=True)
class ExhibitConfig:
    # a folder, or the name of a pack under assets/exhibits; the default is about the person in the default
    # portrait, so that the face and the subject agree
    path: str = "eileen-collins"


@dataclass(frozen=True)
class AudioConfig:
    input: Literal["microphone", "none"] = "microphone"
    input_device: str = ""  # name (substring) or index; empty = system default
    output: Literal["speaker", "none"] = "speaker"
    output_device: str = ""
    # a visitor's audio is never written to disk unless this is set
    store_visitor_audio: bool = False
    store_dir: str = ""
    # stored recordings are deleted after this many days (at start and daily)
    store_days: int = 7
    reconnect_interval_s: float = 2.0

    def validate(self) -> None:
        _check_range("store_days", self.store_days, 1, 365)
        _check_range("reconnect_interval_s", self.reconnect_interval_s, 0.01, 600.0)
        if self.store_visitor_audio and not self.store_dir.strip():
            raise _InvalidValue(
                "store_dir: store_visitor_audio = true needs a folder to store into",
                "store_dir",
                "store_visitor_audio",
            )


@dataclass(frozen=True)
class VadConfig:
    webrtc_mode: int = 2
    silero_threshold: float = 0.5
    pre_roll_ms: int = 500  # kept before the first voiced frame: a soft first sound is not lost
    min_speech_ms: int = 200
    # a burst shorter than min_speech_ms this soon before speech is kept with it ("Who... built it?")
    word_lookback_ms: int = 1500
    speculative_pause_ms: int = 150
    trailing_silence_ms: int = 400
    max_utterance_s: float = 20.0
    barge_in: bool = True

    def validate(self) -> None:
        _check_range("webrtc_mode", self.webrtc_mode, 0, 3)
        _check_range("silero_threshold", self.silero_threshold, 0.05, 0.99)
        _check_range("trailing_silence_ms", self.trailing_silence_ms, 90, 3000)
        _check_range(
            "speculative_pause_ms",
            self.speculative_pause_ms,
            0,
            self.trailing_silence_ms,
            "trailing_silence_ms",
        )
        _check_range("max_utterance_s", self.max_utterance_s, 1.0, 600.0)
        _check_range("pre_roll_ms", self.pre_roll_ms, 0, 2000)
        _check_range("min_speech_ms", self.min_speech_ms, 30, 3000)
        _check_range("word_lookback_ms", self.word_lookback_ms, 0, 5000)


@dataclass(frozen=True)
class TurnConfig:
    """The end-of-turn stage: at the speculative pause a model says whether the question is complete."""

    backend: Literal["smart_turn", "none"] = "smart_turn"  # none: the silence rule of [vad] alone
    model_path: str = ""  # a Smart Turn v3 ONNX file; empty = the one inside the pipecat-ai wheel
    threshold: float = 0.5  # probability of "complete" that ends the turn
    max_wait_ms: int = 1500  # after an "incomplete" verdict: silence (since the last word) that ends it anyway
    # ... or this much, when the speculative transcript reads as a whole question (turn/heard.py); 0 = off
    question_wait_ms: int = 800
    merge_window_ms: int = 1500  # speech this soon after a turn ended continues it; 0 = never merge
    merge_max_played_ms: int = 1000  # ... unless this much of the answer has already been heard

    def validate(self) -> None:
        _check_range("threshold", self.threshold, 0.01, 0.99)
        _check_range("max_wait_ms", self.max_wait_ms, 200, 10000)
        _check_range("question_wait_ms", self.question_wait_ms, 0, 10000)  # past max_wait_ms it never acts
        _check_range("merge_window_ms", self.merge_window_ms, 0, 10000)
        _check_range("merge_max_played_ms", self.merge_max_played_ms, 0, 10000)


@dataclass(frozen=True)
class AsrConfig:
    # 'tiny.en' (embedded), 'base' (embedded, joined once into the cache) or a CTranslate2 folder
    model: str = "tiny.en"
    device: str = "auto"
    beam_size: int = 1
    language: str = "en"
    min_avg_logprob: float = -1.0
    max_no_speech_prob: float = 0.6
    min_characters: int = 2
    cpu_threads: int = 0
    # Whisper's encoder window: 30 = Whisper's own (pads every input to 30 s); 0 = fitted to the question
    # (its length + 1 s, rounded up); N = N seconds for questions that fit, 30 for longer ones
    window_s: float = 6.0

    def validate(self) -> None:
        _check_device("device", self.device)
        _check_range("window_s", self.window_s, 0.0, 30.0)
        _check_range("beam_size", self.beam_size, 1, 10)
        _check_range("min_avg_logprob", self.min_avg_logprob, -20.0, 0.0)
        _check_range("max_no_speech_prob", self.max_no_speech_prob, 0.0, 1.0)
        _check_range("min_characters", self.min_characters, 0, 100)
        # 0: the kiosk's default (up to 4); a negative count left the recogniser unloaded
        _check_range("cpu_threads", self.cpu_threads, 0, 256)


@dataclass(frozen=True)
class RetrievalConfig:
    device: str = "auto"
    similarity_threshold: float = 0.3
    top_k: int = 2
    # 'auto' (onnxruntime on the CPU, no torch; torch on CUDA) | 'onnx' | 'torch' (sentence-transformers)
    runtime: str = "auto"

    def validate(self) -> None:
        _check_device("device", self.device)
        if self.runtime not in ("auto", "onnx", "torch"):
            raise ConfigError(f"retrieval.runtime {self.runtime!r}: expected auto, onnx or torch")
        _check_range("similarity_threshold", self.similarity_threshold, -1.0, 1.0)
        _check_range("top_k", self.top_k, 1, 10)


@dataclass(frozen=True)
class AnswerConfig:
    # retrieval: the notes' own sentences that answer the question (right, short, fast: the default);
    # llm: a local chat model words the reply, every sentence checked against one passage of the notes
    backend: Literal["retrieval", "llm"] = "retrieval"
    max_sentences: int = 3
    history_turns: int = 3
    # words that make a visitor's question or the guide's answer be refused with a calm reply
    blocklist: list[str] = field(default_factory=list)
    log_filtered_text: bool = False

    def validate(self) -> None:
        _check_range("max_sentences", self.max_sentences, 1, 20)
        _check_range("history_turns", self.history_turns, 0, 50)


@dataclass(frozen=True)
class LlmConfig:
    # 'smollm2' (embedded) or a local Hugging Face model folder
    model: str = "smollm2"
    # auto: CUDA when there is a GPU, except for the embedded model, which decodes faster on the CPU
    # (measured on an H200: 14 against 39 tokens a second); 'cuda' puts it there anyway
    device: str = "auto"
    # auto: on the CPU the embedded 4-bit model multiplies its 4-bit weights with bfloat16 activations on any
    # processor; another model runs bfloat16 where the CPU computes it natively, else float32; on CUDA
    # bfloat16 or float16
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_new_tokens: int = 80
    max_seconds: float = 10.0
    max_prompt_tokens: int = 700
    temperature: float = 0.0
    # a generated sentence is spoken only when this share of its content words is in the retrieved notes
    min_note_overlap: float = 0.5
    # system prompts (persona, notes, instruction) whose KV cache is kept for later turns; 0 = none
    prefix_cache: int = 16
    # compute the system prompt of every single section at load, so a first question pays no prompt
    warm_prefixes: bool = True
    # the first sentence's opening clause is spoken as soon as it has this many words and is checked;
    # 0 waits for the whole first sentence
    first_clause_words: int = 4
    # a leaner decoder for Llama-architecture models on the CPU, checked against transformers at load
    fast_decode: bool = True
    # with it, on a CPU in bfloat16, the projections of a 4-bit GGUF model (the embedded one) are
    # multiplied as 4-bit again: the same weights, a quarter of the bytes read per token
    int4: bool = True
    # with int4: the 16-bit copies of the 4-bit projections, kept for prompts (read 4x faster: 93 ms, not
    # 370, for 200 tokens) at 210 MB; dropped, once the system prompts are computed, the LLM kiosk is that
    # much lighter, and its words come after the notes' first sentence (first_piece_budget_s) either way
    keep_dense_weights: bool = False
    # with it, up to this many tokens are guessed from the prompt and checked in one pass; 0 = none
    draft_tokens: int = 4
    # the notes in the prompt: 'sections' (the best retrieved sections, cut to fit) or 'plan' (only the
    # sentences the planner chose to answer with: a shorter prompt)
    notes: Literal["sections", "plan"] = "sections"
    # torch's CPU threads for the model (process-wide; only the LLM computes with torch); 0 = torch's default.
    # On 2 cores 1 gave the first sentence sooner (0.53 s against 0.62 s median): ASR and the voice run
    # beside it, and a 135M model's products are too small to gain from a second thread
    threads: int = 1
    # at a kiosk's start (the screen's background load), questions are answered from the notes as
    # written while the model loads behind them, then in its words; off: the start waits for the model
    background_load: bool = True
    # the longest a visitor waits, from the question, for the model's first checked words: past it the notes
    # answer as written
    # (the model's sentence was going to fail its checks in most such answers); 0 = wait for the model
    first_piece_budget_s: float = 0.3

    def validate(self) -> None:
        _check_device("device", self.device)
        _check_range("max_new_tokens", self.max_new_tokens, 1, 2048)
        _check_range("first_piece_budget_s", self.first_piece_budget_s, 0.0, 60.0)
        _check_range("max_seconds", self.max_seconds, 0.01, 3600.0)
        _check_range("max_prompt_tokens", self.max_prompt_tokens, 64, 32768)
        _check_range("temperature", self.temperature, 0.0, 2.0)
        _check_range("min_note_overlap", self.min_note_overlap, 0.0, 1.0)
        _check_range("prefix_cache", self.prefix_cache, 0, 4096)
        _check_range("first_clause_words", self.first_clause_words, 0, 64)
        _check_range("draft_tokens", self.draft_tokens, 0, 32)
        _check_range("threads", self.threads, 0, 256)


@dataclass(frozen=True)
class TtsConfig:
    backend: Literal["piper", "espeak"] = "piper"
    fallback: Literal["espeak", "none"] = "espeak"
    # a Piper .onnx voice file; empty = the exhibit's voice, else the embedded en_US-joe-medium
    voice_path: str = ""
    device: str = "auto"
    cache_bytes: int = 32 * 1024 * 1024
    # after loading, speak the exhibit's notes into the cache so that answers start at once
    prewarm: bool = True

    def validate(self) -> None:
        _check_device("device", self.device)
        _check_range("cache_bytes", self.cache_bytes, 0, 4 * 1024**3)


@dataclass(frozen=True)
class FaceConfig:
    backend: str = "procedural"
    # a Wav2Lip-class ONNX model for the 'neural' backend
    model_path: str = ""
    size: int = 512
    fps: int = 30

    def validate(self) -> None:
        _check_range("size", self.size, 64, 4096)
        _check_range("fps", self.fps, 1, 120)


@dataclass(frozen=True)
class UiConfig:
    mode: Literal["hands_free", "push_to_talk"] = "hands_free"
    windowed: bool = False
    idle_reset_s: float = 60.0
    still_there_s: float = 10.0
    attract_interval_s: float = 45.0
    # the suggested questions change (the answered one leaves, the attract loop rotates) only after the
    # screen has been left alone this long: a finger on its way to a chip finds it where it was
    chips_settle_s: float = 8.0
    # the technician PIN (4 to 12 digits); empty: the ops panel shows figures only, no action
    admin_pin: str = ""
    # the ops panel closes (and locks) after this long untouched, so no visitor finds it open
    panel_lock_s: float = 60.0
    large_text: bool = False
    # white-on-black colours and stronger outlines (a visitor can also switch it on the screen)
    high_contrast: bool = False
    # hide the mouse pointer: auto hides it full screen when a touch screen is attached
    cursor: Literal["auto", "hide", "show"] = "auto"

    def validate(self) -> None:
        _check_range("idle_reset_s", self.idle_reset_s, 0.1, 86400.0)
        _check_range("still_there_s", self.still_there_s, 0.1, 3600.0)
        _check_range("attract_interval_s", self.attract_interval_s, 0.1, 3600.0)
        _check_range("panel_lock_s", self.panel_lock_s, 0.5, 3600.0)
        pin = self.admin_pin
        digits = pin.isascii() and pin.isdigit()
        if pin and not (digits and 4 <= len(pin) <= 12):
            # the PIN itself is not echoed: the error may reach a journal others read
            what = f"{len(pin)} characters" + ("" if digits else ", not all digits")
            raise _InvalidValue(f'admin_pin: expected 4 to 12 digits, e.g. "2468" (got {what})', "admin_pin")
        _check_range("chips_settle_s", self.chips_settle_s, 0.0, 3600.0)


@dataclass(frozen=True)
class SessionConfig:
    idle_timeout_s: float = 90.0
    # the longest one stage (recognition, the answer's next sentence, the voice's next chunk) may take:
    # past it the turn ends with a short apology, the failure is counted and the stage restarted (0: none)
    stage_deadline_s: float = 20.0

    def validate(self) -> None:
        _check_range("idle_timeout_s", self.idle_timeout_s, 0.5, 86400.0)
        if self.stage_deadline_s != 0:
            _check_range("stage_deadline_s", self.stage_deadline_s, 0.5, 600.0)


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    listen_address: str = "127.0.0.1"
    port: int = 9464
    # a Prometheus exporter-toolkit web-config.yml (TLS, client certificates, basic auth, rate_limit)
    web_config: str = ""
    # peers that may connect ("10.20.1.2/32", "192.168.5.0/24", "::1"); empty: anyone. Checked when a
    # connection is accepted, before TLS; others are closed and counted.
    allow: list[str] = field(default_factory=list)
    # the whole request head, TLS handshake included, must arrive within this
    request_timeout_s: float = 5.0
    # connections whose request is still arriving; past this the oldest is dropped for the newest
    max_connections: int = 256
    # how often web_config and its certificate files are checked for changes (0: never re-read)
    reload_interval_s: float = 2.0
    # the port could not be opened at start (taken, address not up yet): try again this often, counted
    listen_retry_s: float = 5.0

    def validate(self) -> None:
        _check_range("port", self.port, 0, 65535)
        _check_range("listen_retry_s", self.listen_retry_s, 0.05, 3600.0)
        _check_range("request_timeout_s", self.request_timeout_s, 0.1, 60.0)
        _check_range("max_connections", self.max_connections, 1, 4096)
        _check_range("reload_interval_s", self.reload_interval_s, 0.0, 3600.0)
        for entry in self.allow:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise _InvalidValue(
                    f"allow: {entry!r} is not an IP address or network such as 10.20.1.2/32", "allow"
                ) from None


@dataclass(frozen=True)
class SamplerConfig:
    interval_s: float = 1.0
    history: int = 300

    def validate(self) -> None:
        _check_range("interval_s", self.interval_s, 0.05, 60.0)
        _check_range("history", self.history, 1, 100000)


@dataclass(frozen=True)
class PathsConfig:
    # where converted models and portrait landmarks are kept
    cache_dir: str = "~/.cache/docent"


@dataclass(frozen=True)
class Config:
    exhibit: ExhibitConfig = field(default_factory=ExhibitConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    turn: TurnConfig = field(default_factory=TurnConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    # where this configuration came from, for error messages and relative paths
    source: str = field(default="<defaults>", compare=False)

    @property
    def cache_dir(self) -> Path:
        """Where models are cached: ``[paths] cache_dir``, or a temporary folder if that is not writable."""
        return usable_cache_dir(self.paths.cache_dir)

    def replace(self, **sections: Any) -> Config:
        """A copy with some keys changed: ``cfg.replace(vad={"trailing_silence_ms": 300})``."""
        raw = dataclasses.asdict(self)
        raw.pop("source")
        for name, values in sections.items():
            raw[name].update(values)
        return build_config(raw, self.source)


class _InvalidValue(Exception):
    """A value that does not fit its key; the loader adds where it came from (file or variable)."""

    def __init__(self, message: str, *keys: str) -> None:
        super().__init__(message)
        self.keys = keys  # the keys whose values clash: an error names the variable that set one


def _check_range(key: str, value: float, low: float, high: float, *bounded_by: str) -> None:
    """``bounded_by``: the keys whose values set ``low`` or ``high``."""
    if not low <= value <= high:
        raise _InvalidValue(f"{key}: expected a value from {low} to {high}, got {value!r}", key, *bounded_by)


def _check_device(key: str, value: str) -> None:
    if value in ("auto", "cpu", "cuda"):
        return
    if value.startswith("cuda:") and value[5:].isdigit():
        return
    raise _InvalidValue(f"{key}: expected {DEVICE_HELP}, got {value!r}", key)


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the shipped defaults, then ``path`` over them, then environment overrides."""
    env = os.environ if env is None else env
    raw = _read_toml(DEFAULT_CONFIG_PATH)
    source = str(DEFAULT_CONFIG_PATH)
    if path is not None:
        user = _read_toml(Path(path))
        source = str(path)
        for name, values in user.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{name}] must be a table of keys, got {type(values).__name__}")
            raw.setdefault(name, {}).update(values)
    origins: dict[tuple[str, str], str] = {}
    for name, values in _env_overrides(env, origins).items():
        raw.setdefault(name, {}).update(values)
    return build_config(raw, source, origins)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def _env_overrides(
    env: Mapping[str, str], origins: dict[tuple[str, str], str] | None = None
) -> dict[str, dict[str, Any]]:
    """``{section: {key: value}}`` from ``KIOSK_*`` variables; ``origins`` learns each key's variable."""
    found: dict[str, dict[str, Any]] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        found.setdefault(section, {})[key] = _parse_env_value(text)
        if origins is not None:
            origins[(section, key)] = name
            origins.setdefault((section, ""), name)
    return found


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def build_config(
    raw: Mapping[str, Any], source: str = "<defaults>", origins: Mapping[tuple[str, str], str] | None = None
) -> Config:
    """A validated Config; ``origins`` maps (section, key) to the environment variable that set it, so
    an error names that variable instead of the file."""
    sections: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(Config) if f.name != "source"}
    origins = origins or {}
    for name, values in raw.items():
        if name not in known:
            where = origins.get((name, ""), source)
            raise ConfigError(f"{where}: [{name}]: unknown section (expected one of {', '.join(known)})")
        section_type = typing.get_type_hints(Config)[name]
        sections[name] = _build_section(section_type, name, values, source, origins)
    return Config(**sections, source=source)


def _build_section(
    section_type: type, name: str, values: Any, source: str, origins: Mapping[tuple[str, str], str]
) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: [{name}] must be a table of keys")
    hints = typing.get_type_hints(section_type)
    fields = {f.name for f in dataclasses.fields(section_type)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        where = origins.get((name, key), source)
        if key not in fields:
            raise ConfigError(
                f"{where}: [{name}] {key}: unknown key (expected one of {', '.join(sorted(fields))})"
            )
        try:
            kwargs[key] = _coerce(hints[key], value)
        except _InvalidValue as exc:
            raise ConfigError(f"{where}: [{name}] {key}: {exc}") from None
    section = section_type(**kwargs)
    validate = getattr(section, "validate", None)
    if validate is not None:
        try:
            validate()
        except _InvalidValue as exc:
            blamed = [origins[(name, key)] for key in exc.keys if (name, key) in origins]
            where = blamed[0] if blamed else source
            raise ConfigError(f"{where}: [{name}] {exc}") from None
    return section


def _coerce(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise _InvalidValue(f"expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise _InvalidValue(f"expected a list, got {type(value).__name__}")
        return [_coerce(item, v) for v in value]
    if origin in (types.UnionType, typing.Union):
        raise _InvalidValue("unsupported type")  # no optional keys: every key has a default
    if hint is bool:
        if not isinstance(value, bool):
            raise _InvalidValue(f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _InvalidValue(f"expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _InvalidValue(f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # a device index given as a number
        if not isinstance(value, str):
            raise _InvalidValue(f"expected a string, got {value!r}")
        return value
    raise _InvalidValue(f"unsupported type {hint!r}")
