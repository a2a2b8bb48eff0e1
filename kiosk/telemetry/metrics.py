"""The kiosk's metric catalogue: every Prometheus series it exports, declared once, top to bottom.

Rules and dashboards are written against these names, so rename nothing lightly.  Everything lives in
one :class:`KioskMetrics` object with its own ``CollectorRegistry`` (never the global one): tests and
benchmarks can build several kiosks in one process and assert on exact values.

Cardinality is bounded by construction.  Every label takes its values from a fixed set (the engine's
stages and turn statuses, the emotions, at most 40 exhibit topics, five error kinds), and every
combination is created up front at zero, so the number of series does not grow with traffic and
``rate()``/``increase()`` see the first event of each kind.  No visitor text ever becomes a label.

Bucket choices come from the turn budget measured on the 2-core reference machine (the
project's component facts): retrieval 12-18 ms, a procedural face frame about 2 ms (its budget at 30 fps
is 33 ms), Piper's first chunk 0.13-0.31 s, ASR 0.38-0.54 s, end of speech to first audio about 1.05 s
done naively and the goal under 1 s, a whole turn (listening, answering, three spoken sentences) 5-20 s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from kiosk.emotion import Emotion
from kiosk.engine.events import END_OF_TURN_OUTCOMES, LLM_WORDINGS, STAGES, TURN_STATUSES
from kiosk.engine.stage import MODEL_STAGES as stage_names

if TYPE_CHECKING:
    from kiosk.telemetry.sampler import ResourceSampler

# No ``*_created`` series (what PROMETHEUS_DISABLE_CREATED_SERIES=True does): they double the exposition
# and no rule of ours reads them.  The environment variable is read once, when prometheus_client is first
# imported, which may be before us; this function flips the same process-wide switch, read at collection
# time, so calling it here (and again in every KioskMetrics) works in tests whatever imported what first.
disable_created_metrics()

# --- label value sets ------------------------------------------------------------------------------------

# Stages that load a model (ModelLoading/ModelLoaded/ModelFailed/BackendFallback carry these; the engine
# loads the answerer, retrieval or LLM, as "answer").
MODEL_STAGES = tuple(stage_names)  # kiosk.engine.stage.MODEL_STAGES: the one list
# Stages whose model is converted once into the cache (kiosk_model_cache_rebuilds_total{stage}).
CACHED_MODEL_STAGES = ("asr", "llm")
BUILD_LABELS = ("version", "exhibit", "asr_model", "llm_model", "tts_voice", "device")
# StageFailed.kind is mapped into this set; anything else becomes "other".
ERROR_KINDS = ("oom", "timeout", "exception", "load", "other")
EMOTIONS = tuple(e.value for e in Emotion)
MAX_TOPICS = 40
TOPIC_OTHER = "other"  # an answer whose topic is unknown or missing
TOPIC_NONE = "none"  # an out-of-scope answer (the polite "I only know about ...")
OTHER = "other"  # a stage name outside the fixed sets
MAX_LABEL_CHARS = 64

# --- buckets (seconds) -----------------------------------------------------------------------------------

# Stages span 2 ms (a face frame) to several seconds (an LLM answer on CPU): fine steps below 0.1 s
# separate retrieval (~15 ms) from a frame over its 33 ms budget, steps of 0.25 s split ASR (~0.45 s)
# from Piper's first chunk (~0.2 s), and 10 s is the LLM's max_seconds.
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
# End of speech to first answer audio: about 1.05 s naively, the goal is under 1 s, so the steps are
# finest around 1 s; 10 s catches a stalled pipeline.  The first face frame uses the same scale.
FIRST_AUDIO_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
# End of speech to the end-of-turn verdict: the speculative pause (0.15 s) plus the model (0.06-0.14 s) is
# the goal (<= 0.3 s median), the silence rule sits at 0.4 s, a wait after "incomplete" at 1.5 s.
END_OF_TURN_BUCKETS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
# A whole turn, from its start to the last spoken sample: 3 short sentences take 5-20 s; 60 s is the
# longest a turn can reasonably run (max_utterance_s 20 s plus a long answer).
TURN_BUCKETS = (1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
# A visitor's session: from a single question (~20 s) to a long conversation; idle_timeout_s is 90 s.
SESSION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)

# The HTTP codes the metrics endpoint answers (kiosk_metrics_scrapes_total{code}).
SCRAPE_CODES = ("200", "401", "404", "405", "429", "500", "503")
# Why the endpoint closed a connection without serving it (kiosk_metrics_connections_refused_total).
REFUSAL_REASONS = ("not_allowed", "rate_limited", "overloaded", "timeout", "tls_handshake")


def short_name(value: object) -> str:
    """A label-safe short model name: the basename of a path, never the path itself."""
    text = str(value or "").strip().rstrip("/\\")
    if not text:
        return "none"
    name = PureWindowsPath(text).name if "\\" in text else PurePosixPath(text).name
    name = re.sub(r"\s+", "_", name or text)
    return name[:MAX_LABEL_CHARS]


def topic_labels(topics: Iterable[object]) -> tuple[str, ...]:
    """The exhibit's topic ids as label values: distinct, at most MAX_TOPICS, plus 'other' and 'none'."""
    found: list[str] = []
    for topic in topics:
        if not isinstance(topic, str) or not topic or topic in (TOPIC_OTHER, TOPIC_NONE) or topic in found:
            continue
        found.append(topic[:MAX_LABEL_CHARS])
        if len(found) == MAX_TOPICS:
            break
    return (*found, TOPIC_OTHER, TOPIC_NONE)


class KioskMetrics:
    """Every metric of one kiosk, in its own registry (``registry=None`` makes a fresh one)."""

    def __init__(self, registry: CollectorRegistry | None = None, topics: Iterable[str] = ()) -> None:
        disable_created_metrics()
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.topics = topic_labels(topics)
        r = self.registry

        # --- turns -----------------------------------------------------------------------------------
        self.turns = Counter("kiosk_turns_total", "Visitor turns, by how they ended.", ["status"], registry=r)
        self.turn_first_audio = Histogram(
            "kiosk_turn_first_audio_seconds",
            "End of the visitor's speech (or the tap) to the first audio of the answer.",
            buckets=FIRST_AUDIO_BUCKETS,
            registry=r,
        )
        self.turn_first_frame = Histogram(
            "kiosk_turn_first_frame_seconds",
            "End of the visitor's speech (or the tap) to the first rendered face frame of the answer.",
            buckets=FIRST_AUDIO_BUCKETS,
            registry=r,
        )
        self.turn_duration = Histogram(
            "kiosk_turn_duration_seconds",
            "Whole turns, from their start to the end of the answer.",
            buckets=TURN_BUCKETS,
            registry=r,
        )
        self.stage_duration = Histogram(
            "kiosk_stage_duration_seconds",
            "Time each pipeline stage took in a turn.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.end_of_turn_decisions = Counter(
            "kiosk_end_of_turn_decisions_total",
            "End-of-turn verdicts at the visitor's pauses: complete, incomplete (wait for more), question "
            "(a whole question was heard after incomplete: a shorter wait), timeout (the wait ran out), silence (the silence rule: no model, or it failed), merged (a fragment "
            "joined to its continuation).",
            ["outcome"],
            registry=r,
        )
        self.llm_answers = Counter(
            "kiosk_llm_answers_total",
            "Answers the LLM answerer was asked to word, by who worded them: model, or the notes as written "
            "because the model was loading, gave no checked words within its budget, failed the checks, "
            "or failed (error).",
            ["wording"],
            registry=r,
        )
        self.end_of_turn_seconds = Histogram(
            "kiosk_end_of_turn_decision_seconds",
            "End of the visitor's speech to the end-of-turn verdict, by outcome.",
            ["outcome"],
            buckets=END_OF_TURN_BUCKETS,
            registry=r,
        )
        self.stage_errors = Counter(
            "kiosk_stage_errors_total",
            "Pipeline stage failures, by stage and kind (oom, timeout, exception, load, other).",
            ["stage", "kind"],
            registry=r,
        )

        # --- answering ---------------------------------------------------------------------------------
        self.llm_tokens = Counter(
            "kiosk_llm_tokens_total", "Tokens the language model generated.", registry=r
        )
        self.llm_tokens_per_second = Gauge(
            "kiosk_llm_tokens_per_second", "Generation speed of the last language-model answer.", registry=r
        )
        self.asr_audio_seconds = Counter(
            "kiosk_asr_audio_seconds_total", "Seconds of visitor speech transcribed.", registry=r
        )
        self.tts_cache_hits = Counter(
            "kiosk_tts_cache_hits_total", "Answers whose speech came from the speech cache.", registry=r
        )
        self.tts_cache_misses = Counter(
            "kiosk_tts_cache_misses_total", "Answers whose speech was synthesised afresh.", registry=r
        )
        self.answers = Counter(
            "kiosk_answers_total",
            "Answers spoken, by emotion and exhibit topic ('none': out of scope, 'other': unknown topic).",
            ["emotion", "topic"],
            registry=r,
        )

        # --- face --------------------------------------------------------------------------------------
        self.face_frames_rendered = Counter(
            "kiosk_face_frames_rendered_total", "Face frames rendered.", registry=r
        )
        self.face_frames_dropped = Counter(
            "kiosk_face_frames_dropped_total", "Face frames dropped to keep up with the audio.", registry=r
        )
        self.face_av_offset = Gauge(
            "kiosk_face_av_offset_seconds",
            "Last measured distance between the face and the audio (absolute, seconds).",
            registry=r,
        )

        # --- visitors ----------------------------------------------------------------------------------
        self.visitors_active = Gauge(
            "kiosk_visitors_active", "1 while a visitor's session is open, else 0.", registry=r
        )
        self.sessions = Counter("kiosk_sessions_total", "Visitor sessions started.", registry=r)
        self.session_duration = Histogram(
            "kiosk_session_duration_seconds",
            "Length of finished visitor sessions.",
            buckets=SESSION_BUCKETS,
            registry=r,
        )

        # --- models and identity -------------------------------------------------------------------------
        self.model_memory = Gauge(
            "kiosk_model_memory_bytes",
            "Memory a loaded model took (torch allocation on CUDA, RSS growth on CPU).",
            ["stage", "model", "device"],
            registry=r,
        )
        self.stage_up = Gauge(
            "kiosk_stage_up",
            "1 when the stage's model is loaded, 0 while loading or after a failure.",
            ["stage"],
            registry=r,
        )
        self.backend_fallback = Gauge(
            "kiosk_backend_fallback", "1 when the stage runs on its fallback backend.", ["stage"], registry=r
        )
        self.build_info = Gauge(
            "kiosk_build_info",
            "Always 1; the labels say what this kiosk runs.",
            BUILD_LABELS,
            registry=r,
        )

        # --- storage ---------------------------------------------------------------------------------------
        self.audio_store_errors = Counter(
            "kiosk_audio_store_errors_total",
            "Visitor-audio store writes or deletions that failed (disk full, read-only, missing folder).",
            registry=r,
        )
        self.cache_fallbacks = Counter(
            "kiosk_cache_fallbacks_total",
            "Starts whose [paths] cache_dir was not writable, so models were converted into a temporary folder.",
            registry=r,
        )
        self.model_cache_rebuilds = Counter(
            "kiosk_model_cache_rebuilds_total",
            "Cached models converted again because their checksum was missing or did not match.",
            ["stage"],
            registry=r,
        )

        # --- the endpoint itself -------------------------------------------------------------------------
        self.scrapes = Counter(
            "kiosk_metrics_scrapes_total", "Requests for /metrics, by HTTP status code.", ["code"], registry=r
        )
        self.auth_failures = Counter(
            "kiosk_metrics_auth_failures_total",
            "Requests refused for missing or wrong credentials.",
            registry=r,
        )
        self.connections_refused = Counter(
            "kiosk_metrics_connections_refused_total",
            "Connections closed unserved: peer not in [metrics] allow, login rate limit spent (429), "
            "too many at once, request head too slow, failed TLS handshake.",
            ["reason"],
            registry=r,
        )
        self.listen_failures = Counter(
            "kiosk_metrics_listen_failures_total",
            "Attempts to open the metrics port that failed (port taken, address gone); retried in the "
            "background every [metrics] listen_retry_s.",
            registry=r,
        )
        self.web_config_reloads = Counter(
            "kiosk_metrics_web_config_reloads_total",
            "Re-reads of the changed web-config.yml; result=error kept the previous configuration.",
            ["result"],
            registry=r,
        )

        # --- resources: read from the sampler's latest snapshot at collection time --------------------------
        self.resources = ResourceCollector()
        r.register(self.resources)

        self._preinitialise()

    # Children for every bounded label combination, created once; the observer keeps these dicts.
    def _preinitialise(self) -> None:
        self.turns_by_status = {s: self.turns.labels(s) for s in TURN_STATUSES}
        self.stage_hist = {s: self.stage_duration.labels(s) for s in STAGES}
        self.end_of_turn_children = {o: self.end_of_turn_decisions.labels(o) for o in END_OF_TURN_OUTCOMES}
        self.llm_answer_children = {w: self.llm_answers.labels(w) for w in LLM_WORDINGS}
        self.end_of_turn_hist = {
            o: self.end_of_turn_seconds.labels(o) for o in END_OF_TURN_OUTCOMES if o != "merged"
        }
        self.stage_error_children = {
            (s, k): self.stage_errors.labels(s, k) for s in (*STAGES, OTHER) for k in ERROR_KINDS
        }
        self.answer_children = {(e, t): self.answers.labels(e, t) for e in EMOTIONS for t in self.topics}
        self.stage_up_children: dict[str, Gauge] = {}
        self.fallback_children = {s: self.backend_fallback.labels(s) for s in MODEL_STAGES}
        self.scrape_children = {c: self.scrapes.labels(c) for c in ("200",)}
        self.refused_children = {r: self.connections_refused.labels(r) for r in REFUSAL_REASONS}
        self.reload_children = {r: self.web_config_reloads.labels(r) for r in ("ok", "error")}
        self.cache_rebuild_children = {s: self.model_cache_rebuilds.labels(s) for s in CACHED_MODEL_STAGES}
        self._model_memory_labels: dict[str, tuple[str, str, str]] = {}
        self._build_info_labels: tuple[str, ...] | None = None

    # --- small helpers for the observer and the server ---------------------------------------------------

    def stage_error(self, stage: str, kind: str):
        """The error counter child for a StageFailed (unknown stages and kinds become 'other')."""
        child = self.stage_error_children.get((stage, kind))
        if child is None:
            stage = stage if stage in STAGES else OTHER
            child = self.stage_error_children[(stage, kind if kind in ERROR_KINDS else OTHER)]
        return child

    def set_model(self, stage: str, model: str, device: str, memory_bytes: float) -> None:
        """One memory series per model stage: a reload under another name replaces the old series."""
        stage = stage if stage in MODEL_STAGES else OTHER
        labels = (stage, short_name(model), short_name(device))
        old = self._model_memory_labels.get(stage)
        if old is not None and old != labels:
            self.model_memory.remove(*old)
        self._model_memory_labels[stage] = labels
        self.model_memory.labels(*labels).set(max(0.0, float(memory_bytes)))

    def clear_model(self, stage: str) -> None:
        stage = stage if stage in MODEL_STAGES else OTHER
        old = self._model_memory_labels.pop(stage, None)
        if old is not None:
            self.model_memory.remove(*old)

    def set_stage_up(self, stage: str, up: bool) -> None:
        stage = stage if stage in MODEL_STAGES else OTHER
        child = self.stage_up_children.get(stage)
        if child is None:
            child = self.stage_up_children[stage] = self.stage_up.labels(stage)
        child.set(1 if up else 0)

    def set_backend_fallback(self, stage: str, on: bool = True) -> None:
        stage = stage if stage in MODEL_STAGES else OTHER
        child = self.fallback_children.get(stage)
        if child is None:
            child = self.fallback_children[stage] = self.backend_fallback.labels(stage)
        child.set(1 if on else 0)

    def set_build_info(
        self,
        version: str,
        exhibit: str,
        asr_model: str,
        llm_model: str,
        tts_voice: str,
        device: str,
    ) -> None:
        """Replace the single ``kiosk_build_info`` series (model names are shortened to basenames)."""
        labels = tuple(short_name(v) for v in (version, exhibit, asr_model, llm_model, tts_voice, device))
        if self._build_info_labels is not None and self._build_info_labels != labels:
            self.build_info.remove(*self._build_info_labels)
        self._build_info_labels = labels
        self.build_info.labels(*labels).set(1)

    def update_build_info(self, **changes: str) -> None:
        """Change some ``kiosk_build_info`` labels, e.g. ``device="cuda:0"`` once devices are resolved."""
        if self._build_info_labels is None:
            raise RuntimeError("set_build_info() first")
        current = dict(zip(BUILD_LABELS, self._build_info_labels, strict=True))
        unknown = set(changes) - set(BUILD_LABELS)
        if unknown:
            raise TypeError(f"unknown build_info labels: {', '.join(sorted(unknown))}")
        self.set_build_info(**{**current, **changes})

    def count_scrape(self, code: int | str) -> None:
        code = str(code)
        child = self.scrape_children.get(code)
        if child is None:
            if code not in SCRAPE_CODES:
                code = "500"
            child = self.scrape_children.get(code)
            if child is None:
                child = self.scrape_children[code] = self.scrapes.labels(code)
        child.inc()

    def count_refused(self, reason: str) -> None:
        """One connection closed unserved; ``reason`` is one of REFUSAL_REASONS."""
        self.refused_children[reason].inc()

    def count_listen_failure(self) -> None:
        self.listen_failures.inc()

    def count_web_config_reload(self, ok: bool) -> None:
        self.reload_children["ok" if ok else "error"].inc()

    def attach_sampler(self, sampler: ResourceSampler | None) -> None:
        """Serve the resource series from this sampler's latest snapshot."""
        self.resources.sampler = sampler

    def render(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4) of every series."""
        return generate_latest(self.registry)


class ResourceCollector:
    """GPU, process and host memory series, read from the sampler's latest snapshot when scraped.

    The ops panel reads the same snapshot, so the screen and the scrape never disagree, and a scrape
    never waits on NVML.
    """

    def __init__(self, sampler: ResourceSampler | None = None) -> None:
        self.sampler = sampler

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        snapshot = self.sampler.latest() if self.sampler is not None else None
        families = self._families()
        (util, mem_used, mem_total, temp, proc_mem, available, cpu, rss, sys_avail) = families
        if snapshot is not None:
            for gpu in snapshot.gpus:
                index = str(gpu.index)
                if gpu.utilization_ratio is not None:
                    util.add_metric([index], gpu.utilization_ratio)
                if gpu.memory_used_bytes is not None:
                    mem_used.add_metric([index], gpu.memory_used_bytes)
                if gpu.memory_total_bytes is not None:
                    mem_total.add_metric([index], gpu.memory_total_bytes)
                if gpu.temperature_c is not None:
                    temp.add_metric([index], gpu.temperature_c)
                if gpu.process_memory_bytes is not None:
                    proc_mem.add_metric([index], gpu.process_memory_bytes)
            available.add_metric([], 1 if snapshot.gpus else 0)
            cpu.add_metric([], snapshot.process_cpu_seconds)
            rss.add_metric([], snapshot.rss_bytes)
            sys_avail.add_metric([], snapshot.system_available_bytes)
        else:
            available.add_metric([], 0)
        yield from families

    @staticmethod
    def _families() -> list[Metric]:
        return [
            GaugeMetricFamily(
                "kiosk_gpu_utilization_ratio",
                "Share of the last sample period the GPU was busy (0..1).",
                labels=["gpu"],
            ),
            GaugeMetricFamily(
                "kiosk_gpu_memory_used_bytes", "GPU memory in use (all processes).", labels=["gpu"]
            ),
            GaugeMetricFamily("kiosk_gpu_memory_total_bytes", "GPU memory installed.", labels=["gpu"]),
            GaugeMetricFamily("kiosk_gpu_temperature_celsius", "GPU core temperature.", labels=["gpu"]),
            GaugeMetricFamily(
                "kiosk_gpu_process_memory_bytes", "GPU memory used by the kiosk process.", labels=["gpu"]
            ),
            GaugeMetricFamily("kiosk_gpu_available", "1 when NVML reports at least one GPU, else 0."),
            CounterMetricFamily(
                "kiosk_process_cpu_seconds", "CPU time (user + system) of the kiosk process."
            ),
            GaugeMetricFamily("kiosk_process_resident_memory_bytes", "Resident memory of the kiosk process."),
            GaugeMetricFamily("kiosk_system_memory_available_bytes", "Memory the system can still give out."),
        ]
