"""`askdocs doctor`: check everything askdocs needs on this machine, each with its fix.

    for check in run(config.load()):
        print(check.status, check.name, check.detail, check.fix)

A check is "ok", "problem" (something needs fixing: the command exits 1) or "skipped"
(an optional part that is not installed, with how to add it). No check changes anything
except the runtime self-test's cache and, for a packaged model whose parts are installed but
not yet assembled, the assembled copy that the first `ask` would make anyway.
"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from askdocs.config import Settings
from askdocs.errors import AskdocsError

OK, PROBLEM, SKIPPED = "ok", "problem", "skipped"
REQUIRED = (
    "numpy",
    "onnxruntime",
    "tokenizers",
    "faiss-cpu",
    "tantivy",
    "pypdfium2",
    "python-docx",
)
OPTIONAL = {
    "llama-cpp-python": "pip install 'askdocs[llm]' (see the README for the build flags)",
    "fastapi": "pip install 'askdocs[server]'",
}
MIN_FREE_BYTES = 1 << 30  # below this an ingest may fill the disk


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok | problem | skipped
    detail: str
    fix: str = ""


def run(settings: Settings, *, fresh: bool = False) -> list[Check]:
    """Every check, in the order a person would fix things. `fresh` re-runs the runtime
    self-test instead of using its cached result."""
    checks: list[Check] = []
    for step in _steps(settings, fresh):
        try:
            checks.extend(step())
        except Exception as exc:  # a check that breaks is itself a finding, not a crash
            checks.append(Check(step.__name__.strip("_"), PROBLEM, f"{type(exc).__name__}: {exc}"))
    return checks


def _steps(settings: Settings, fresh: bool) -> list[Callable[[], Iterator[Check]]]:
    def runtime() -> Iterator[Check]:
        return _runtime(settings, fresh)

    def store() -> Iterator[Check]:
        return _store(settings)

    def server() -> Iterator[Check]:
        return _server(settings)

    return [_python, _packages, _cpu, _embedder, _llms, runtime, store, server]


def _python() -> Iterator[Check]:
    version = platform.python_version()
    ok = sys.version_info >= (3, 11)
    yield Check("python", OK if ok else PROBLEM, f"{version} at {sys.executable}",
                "" if ok else "askdocs needs Python 3.11 or newer")  # fmt: skip


def _packages() -> Iterator[Check]:
    versions = {"askdocs": _version("askdocs")}
    missing = []
    for name in REQUIRED:
        versions[name] = _version(name)
        if not versions[name]:
            missing.append(name)
    detail = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    if missing:
        yield Check("packages", PROBLEM, f"missing: {', '.join(missing)}; {detail}",
                    "pip install --force-reinstall askdocs")  # fmt: skip
    else:
        yield Check("packages", OK, detail)
    for name, hint in OPTIONAL.items():
        found = _version(name)
        yield Check(name, OK if found else SKIPPED, found or "not installed (optional)",
                    "" if found else hint)  # fmt: skip


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _cpu() -> Iterator[Check]:
    from askdocs.generation.runtime import cpu

    this = cpu()
    detail = f"{this.model}, {platform.machine()}: {' '.join(this.flags) or 'no flags read'}"
    if platform.machine() in {"x86_64", "AMD64"} and "avx2" not in this.flags:
        yield Check("cpu", PROBLEM, detail, "the portable llama.cpp build needs AVX2; "
                    "use --extractive or a remote model (generation.backend = openai)")  # fmt: skip
        return
    yield Check("cpu", OK, detail)


def _embedder() -> Iterator[Check]:
    from askdocs.models import MINILM_TOKENIZER, MINILM_WEIGHTS, verified

    try:
        paths = [verified(file) for file in (MINILM_WEIGHTS, MINILM_TOKENIZER)]
    except AskdocsError as exc:
        yield Check("embedding model", PROBLEM, str(exc), MINILM_WEIGHTS.install_hint)
        return
    yield Check("embedding model", OK,
                f"all-MiniLM-L6-v2, sha256 {MINILM_WEIGHTS.sha256[:12]}... verified "
                f"({paths[0].parent})")  # fmt: skip


def _llms() -> Iterator[Check]:
    from askdocs.config import GenerationSettings
    from askdocs.generation.packaged import PACKAGED_MODELS, packaged_path

    default = GenerationSettings().model
    for name, model in PACKAGED_MODELS.items():
        try:
            path = packaged_path(model)
        except AskdocsError as exc:
            missing_is_problem = name == default and _version("llama-cpp-python")
            yield Check(f"model {name}", PROBLEM if missing_is_problem else SKIPPED,
                        str(exc).split(";")[0], model.install_hint)  # fmt: skip
            continue
        yield Check(f"model {name}", OK,
                    f"{model.title}, {model.size / 1e9:.2f} GB, sha256 {model.sha256[:12]}... "
                    f"verified ({path})")  # fmt: skip


def _runtime(settings: Settings, fresh: bool) -> Iterator[Check]:
    from askdocs.generation import runtime
    from askdocs.generation.packaged import resolve_model

    g = settings.generation
    if g.backend != "llama":
        yield Check("llama.cpp runtime", SKIPPED, f"generation.backend is {g.backend!r}")
        return
    if not _version("llama-cpp-python"):
        yield Check("llama.cpp runtime", SKIPPED, "llama-cpp-python is not installed",
                    runtime.INSTALL)  # fmt: skip
        return
    try:
        model = resolve_model(g.model)
    except AskdocsError:
        model = resolve_model("smollm2-135m")  # any installed model tests the runtime
    result = runtime.check(model, fresh=fresh, threads=g.n_threads)
    if not result.ok:
        yield Check("llama.cpp runtime", PROBLEM, f"{result.library}: {result.reason}",
                    runtime.REINSTALL)  # fmt: skip
        return
    cached = ", cached result: --fresh runs it again" if result.cached else ""
    yield Check("llama.cpp runtime", OK,
                f"{result.library} on {model.name}: prompt {result.prompt_tokens_per_s} "
                f"tokens/s, generation {result.generated_tokens_per_s} tokens/s with "
                f"{g.n_threads} thread(s){cached}; kernels: {result.system_info}")  # fmt: skip


def _store(settings: Settings) -> Iterator[Check]:
    from askdocs.errors import NotFound
    from askdocs.kb import KnowledgeBase
    from askdocs.store import is_url

    location = settings.store
    try:
        with KnowledgeBase.open(settings, create=False) as kb:
            status = kb.status()
    except NotFound:
        yield Check("store", SKIPPED, f"no store at {location} yet",
                    f"askdocs ingest FOLDER --store {location}")  # fmt: skip
        return
    except AskdocsError as exc:
        yield Check("store", PROBLEM, str(exc), "see the message; `askdocs status` shows more")
        return
    summary = (
        f"{status.location}: {status.documents} documents, {status.chunks} chunks, "
        f"embedder {status.embedder}, vectors {status.vector_index}"
    )
    if status.in_sync:
        yield Check("store", OK, summary + ", indexes in sync")
    else:
        problems = "; ".join(status.problems)
        fix = "run `askdocs ingest` on the store: it rebuilds the derived indexes"
        yield Check("store", PROBLEM, f"{summary}; out of sync: {problems}", fix)
    if is_url(location):
        return  # the database server's disk is its administrator's to watch
    free = shutil.disk_usage(location).free
    detail = f"{free / 1e9:.1f} GB free where the store is"
    if free >= MIN_FREE_BYTES:
        yield Check("disk space", OK, detail)
    else:
        yield Check("disk space", PROBLEM, detail, "free some space before the next ingest")


def _server(settings: Settings) -> Iterator[Check]:
    from askdocs.server import is_loopback

    s = settings.server
    if is_loopback(s.host):
        how = "a token is set" if s.token else "no token: only this machine can reach it"
        yield Check("server", OK, f"serves on {s.host}:{s.port}, {how}")
    elif s.token:
        yield Check("server", OK, f"serves on {s.host}:{s.port} with a token")
    else:
        yield Check("server", PROBLEM, f"server.host is {s.host} and no token is set: "
                    "`askdocs serve` will refuse to start",
                    "set ASKDOCS_API_TOKEN (or server.token), or serve on 127.0.0.1")  # fmt: skip
