"""One frozen Settings object. Defaults live here and nowhere else.

Precedence: defaults < config file < ASKDOCS_* environment < explicit overrides (CLI flags).
The config file is TOML: `$ASKDOCS_CONFIG`, else `config.toml` in the user config directory.
Its tables mirror the sub-settings (`[chunking] size = 200`, `[search] mode = "keyword"`).
This is the only module that reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from askdocs.errors import ConfigError

DEFAULT_STORE_NAME = "default"


@dataclass(frozen=True, slots=True)
class ChunkingSettings:
    size: int = 200  # content tokens per chunk, special tokens and title prefix excluded
    overlap: int = 32
    title_in_embedding: bool = True  # embed "title\ntext" so short chunks keep their topic


@dataclass(frozen=True, slots=True)
class EmbeddingSettings:
    """The embedder: the packaged MiniLM in this process (`backend = "local"`), or any server
    answering OpenAI's `POST /v1/embeddings` (`"remote"`, askdocs.remote_embedder): TEI,
    vLLM, Infinity, llama.cpp's server or another `askdocs serve`."""

    backend: str = "local"  # local | remote
    # local: the packaged model (minilm); remote: the model name sent, empty for none
    model: str = "minilm"
    # Tokens per text, special tokens included: chunks are sized to fit. Remote texts are
    # counted with `tokenizer`, so set the served model's limit here.
    max_tokens: int = 256  # sentence-transformers' limit for all-MiniLM-L6-v2
    threads: int = 0  # texts embedded at once, one core each; 0: all cores
    # The int8 encoder for new stores (askdocs.onnx_bert): embeds 1.5x faster, SciFact train
    # nDCG@10 dense 0.6899 against 0.6899 for float, hybrid 0.7328 against 0.7315.
    int8: bool = True
    # remote: base URLs (http://host:8080 or http://host:8080/v1), requests spread over all
    urls: tuple[str, ...] = ()
    api_key: str = field(default="", repr=False)
    api_key_env: str = ""  # name of a variable holding the key, as for generation
    batch: int = 32  # texts per request
    concurrency: int = 4  # requests in flight at once, over all the URLs
    timeout: float = 30.0  # seconds per request
    retries: int = 4  # attempts per batch on 429, 5xx and connection errors
    backoff: float = 0.5  # seconds before the second attempt, doubled each time, jittered
    tokenizer: str = ""  # remote: a tokenizer.json to count with; empty: the packaged MiniLM's


@dataclass(frozen=True, slots=True)
class IngestSettings:
    max_file_mb: float = 20.0
    batch_chunks: int = 256  # chunks embedded and committed together
    follow_hidden: bool = False


@dataclass(frozen=True, slots=True)
class IndexSettings:
    hnsw_threshold: int = 20_000
    hnsw_m: int = 48
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 192
    title_in_keywords: bool = True
    # PostgreSQL stores only: "bm25" (computed in SQL, the embedded store's ranking) or
    # PostgreSQL's "ts_rank_cd" (docs/benchmarks.md, "PostgreSQL").
    keyword_ranking: str = "bm25"


@dataclass(frozen=True, slots=True)
class SearchSettings:
    mode: str = "hybrid"  # dense | keyword | hybrid
    k: int = 10
    fusion: str = "rrf"  # rrf | convex
    rrf_k: int = 60
    convex_weight: float = 0.5  # weight of the dense score; keyword gets 1 - weight
    depth: int = 100  # candidates each retriever contributes to fusion


@dataclass(frozen=True, slots=True)
class RerankSettings:
    """The stage between retrieval and answering (askdocs.rerank, `open_reranker`).

    Off by default: on 2 CPU cores the local reranker over 20 candidates added 0.006 nDCG@10
    on SciFact test (p=0.35) and 0.021 recall@4 of supporting paragraphs on 2WikiMultihopQA
    (p=0.001), for 90-460 ms per query on top of a 5 ms search (docs/benchmarks.md,
    "Reranking"; benchmarks/bench_rerank.py).
    """

    backend: str = "none"  # none | local (MiniLM sentence similarity) | remote (a rerank API)
    candidates: int = 20  # hits retrieved and reordered; the best `k` are kept
    base_url: str = ""  # remote: the server, e.g. http://127.0.0.1:8080 (TEI), https://api.jina.ai
    # remote: "tei" (POST {base_url}/rerank) or "cohere" (POST {base_url}/v1/rerank, Jina's too;
    # a base_url ending in /v1 or /v2 is used as is)
    api: str = "cohere"
    model: str = ""  # remote: the model name sent (Cohere-style APIs)
    api_key: str = field(default="", repr=False)
    timeout: float = 30.0
    retries: int = 3  # attempts on 429 and 5xx, with exponential backoff


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    backend: str = "llama"  # llama (in-process GGUF) | openai (any OpenAI-compatible server)
    # A packaged model name or the path of a .gguf file. Qwen2.5-Coder-1.5B: XQuAD token F1
    # 60.9 against 34.0 for the 0.5B on the same 40 questions, time to first token 4.3 s with
    # one thread (docs/benchmarks.md, "Grounded answers").
    model: str = "qwen2.5-coder-1.5b"
    n_threads: int = 1  # generation: 2 threads collapse when another process is busy
    # Prompt evaluation, where the time to first token goes; 0: every core. Two threads on 2
    # cores: 300 prompt tokens in 4.2 s against 8.1 s with one, and 7.9 s against 8.0 s while
    # another process keeps a core busy (docs/benchmarks.md, "Threads for the prompt").
    n_threads_batch: int = 0
    n_batch: int = 512
    n_ctx: int = 4096  # also the context assumed for a remote model
    # Run the llama model in a worker process: a native crash then fails one request with
    # RuntimeCrash instead of killing the program. Off only to measure the IPC overhead.
    isolate: bool = True
    # Self-test the llama.cpp runtime in a child process before the first load on a new
    # library build, CPU or model (cached); a build that crashes is reported with its fix.
    runtime_check: bool = True
    base_url: str = "http://127.0.0.1:8080/v1"
    api_model: str = ""  # model name sent to the server; empty: the server's first model
    api_key: str = field(default="", repr=False)
    api_key_env: str = ""  # name of a variable holding the key, e.g. OPENAI_API_KEY
    timeout: float = 120.0  # seconds to wait for a remote server
    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    repeat_penalty: float = 1.1
    seed: int = 0
    max_tokens: int = 256


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"  # any other address needs a token
    port: int = 8000
    token: str = field(default="", repr=False)  # also $ASKDOCS_API_TOKEN
    max_upload_mb: float = 20.0  # per file
    max_request_mb: float = 100.0  # per upload request, all files together
    max_files: int = 20  # per upload request
    max_json_kb: int = 1024  # body of every other request
    kinds: tuple[str, ...] = ("txt", "md", "html", "htm", "pdf", "docx")  # upload suffixes
    cors_origins: tuple[str, ...] = ()  # none: no CORS headers at all
    # Host names the server answers to besides loopback and its own address (a reverse
    # proxy's); any other Host header gets 421 (askdocs.server.guard)
    allowed_hosts: tuple[str, ...] = ()


def api_key(
    settings: GenerationSettings | EmbeddingSettings, environ: Mapping[str, str] | None = None
) -> str:
    """The remote server's key: `api_key` if set, else the variable `api_key_env` names.

    The key is read here, not in the backend, so that nothing else reads the environment.
    """
    if settings.api_key:
        return settings.api_key
    environ = os.environ if environ is None else environ
    return environ.get(settings.api_key_env, "") if settings.api_key_env else ""


@dataclass(frozen=True, slots=True)
class Settings:
    # A directory (the embedded store), or a `postgresql://` URL (askdocs.store.postgres).
    store: Path | str = field(default_factory=lambda: named_store(DEFAULT_STORE_NAME))
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    rerank: RerankSettings = field(default_factory=RerankSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    def replace(self, **changes: Any) -> Settings:
        """A copy with fields changed; dotted names reach sub-settings: `{"search.k": 5}`."""
        return _apply(self, changes, source="override")


def data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("askdocs", appauthor=False))


def named_store(name: str) -> Path:
    """A store by name lives in the per-user data directory; several can coexist."""
    return data_dir() / "stores" / name


def resolve_store(value: str | os.PathLike[str]) -> Path | str:
    """`--store` takes a directory, a bare name (no slash) for a store in the data directory,
    or a PostgreSQL URL.

    `./kb` or `/data/kb` is a directory; `papers` is the named store `papers`; an existing
    directory always wins; `postgresql://user@host/db` is kept as it is.
    """
    text = os.fspath(value)
    if text.startswith(("postgresql://", "postgres://")):
        return text
    path = Path(text).expanduser()
    if path.is_dir() or os.sep in text or "/" in text or text.startswith("."):
        return path.resolve()
    return named_store(text)


def load(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from defaults, config file, `ASKDOCS_*` variables, then `overrides`.

    `environ` stands for the whole process environment: given one, the config file is only
    the one its `ASKDOCS_CONFIG` names, never the user's (so `environ={}` is defaults only).
    """
    user = environ is None
    environ = os.environ if environ is None else environ
    settings = Settings()
    config_path = environ.get("ASKDOCS_CONFIG")
    path = Path(config_path) if config_path else _user_config() if user else None
    if path is not None and path.is_file():
        settings = _apply(settings, _read_toml(path), source=str(path))
    elif config_path:
        raise ConfigError(f"ASKDOCS_CONFIG points at {path}, which does not exist")
    settings = _apply(settings, _from_env(environ), source="environment")
    return _apply(settings, dict(overrides or {}), source="override")


def _user_config() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("askdocs", appauthor=False)) / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """`ASKDOCS_STORE=dir`, `ASKDOCS_SEARCH__MODE=keyword` (double underscore: a dot);
    `ASKDOCS_API_TOKEN` is `server.token`. A tuple setting takes a comma-separated list."""
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if key.startswith("ASKDOCS_") and key not in ("ASKDOCS_CONFIG", "ASKDOCS_API_TOKEN"):
            out[key.removeprefix("ASKDOCS_").lower().replace("__", ".")] = value
    if environ.get("ASKDOCS_API_TOKEN"):
        out["server.token"] = environ["ASKDOCS_API_TOKEN"]
    return out


def _apply(settings: Settings, changes: Mapping[str, Any], *, source: str) -> Settings:
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        if value is None:
            continue
        section, _, name = key.partition(".")
        if not name:
            top[section] = value
        else:
            nested.setdefault(section, {})[name] = value
    for section, fields in nested.items():
        current = getattr(settings, section, None)
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"{source}: unknown settings section '{section}'")
        top[section] = dataclasses.replace(current, **_coerce(current, fields, source))
    if "store" in top and not isinstance(top["store"], Path):
        top["store"] = resolve_store(top["store"])
    unknown = set(top) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(sorted(unknown))}")
    return dataclasses.replace(settings, **top)


def _coerce(current: Any, fields: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Convert strings from the environment to each field's type, with a clear error."""
    known = {f.name: type(getattr(current, f.name)) for f in dataclasses.fields(current)}
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in known:
            raise ConfigError(f"{source}: unknown setting '{name}' in {type(current).__name__}")
        kind = known[name]
        try:
            if kind is tuple:
                items = value.split(",") if isinstance(value, str) else value
                out[name] = tuple(str(v).strip() for v in items if str(v).strip())
            elif kind is bool and isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                out[name] = value.lower() in ("1", "true", "yes", "on")
            else:
                out[name] = kind(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {name}={value!r} is not a valid {kind.__name__}") from exc
    return out
