"""Crash isolation: a generator whose process really dies (SIGSEGV, abort) costs one request.

`CrashingGenerator` is a fake that kills its own process with a signal, as a llama.cpp build
for another CPU does; it runs inside the real `WorkerGenerator`, so the crash is real and
the test process survives it. The server and CLI tests use the real app and command.
"""

from __future__ import annotations

import functools
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from askdocs.errors import ModelLoadError, RuntimeCrash
from askdocs.generation import Decoding, Message
from askdocs.generation.runtime import REINSTALL
from askdocs.generation.worker import WorkerGenerator, crash_message
from askdocs.testing import CrashingGenerator, FakeGenerator
from tests.test_server import MakeClient, make_client

__all__ = ["make_client"]  # the server tests' fixture, used here too

ASK = [Message("user", "When do spring tides come?")]
CRASH = [Message("user", "When do spring tides come? crash")]


@pytest.fixture
def worker() -> Iterator[WorkerGenerator]:
    generator = WorkerGenerator(functools.partial(CrashingGenerator, ["Spring tides [1]."]))
    yield generator
    generator.close()


def test_a_worker_answers_like_the_generator_in_it(worker: WorkerGenerator) -> None:
    fake = FakeGenerator(["Spring tides [1]."])
    assert "".join(worker.stream(ASK, Decoding())) == "".join(fake.stream(ASK, Decoding()))
    assert worker.last_usage == fake.last_usage
    assert worker.count_tokens("a b c") == 3 and worker.tokens("a b") == ["a", "b"]
    assert worker.prompt_tokens(ASK) == fake.prompt_tokens(ASK)
    assert (worker.id, worker.context_length) == ("fake", 2048)


@pytest.mark.parametrize(("sig", "name"), [(signal.SIGSEGV, "SIGSEGV"), (None, "SIGABRT")])
def test_a_crash_fails_the_stream_and_the_next_call_restarts(sig: int | None, name: str) -> None:
    factory = functools.partial(CrashingGenerator, ["Spring tides [1]."], signal=sig)
    with WorkerGenerator(factory) as worker:
        first_pid = worker.pid
        pieces = worker.stream(CRASH, Decoding())
        assert next(pieces) == "Spring"  # the crash comes mid-stream
        with pytest.raises(RuntimeCrash, match=name) as crash:
            list(pieces)
        assert REINSTALL in str(crash.value) and worker.pid is None
        assert "".join(worker.stream(ASK, Decoding())) == "Spring tides [1]."
        assert worker.pid not in (None, first_pid) and worker.restarts == 1


def test_a_crash_while_loading_raises_at_construction() -> None:
    with pytest.raises(RuntimeCrash, match="SIGSEGV while loading the model"):
        WorkerGenerator(functools.partial(CrashingGenerator, crash_on_load=True))


def test_an_error_in_the_worker_keeps_its_type_and_the_worker(worker: WorkerGenerator) -> None:
    pid = worker.pid
    with pytest.raises(ValueError, match="unknown worker call"):
        worker._call("close")
    assert worker.pid == pid and worker.count_tokens("a b") == 2


def test_closing_a_stream_early_keeps_the_conversation_in_step(worker: WorkerGenerator) -> None:
    pieces = worker.stream(ASK, Decoding())
    assert next(pieces) == "Spring"
    pieces.close()  # the consumer went away: the worker is told to stop, then drained
    assert worker.count_tokens("one two") == 2
    assert "".join(worker.stream(ASK, Decoding())) == "Spring tides [1]."


def test_a_second_stream_in_the_same_thread_is_refused(worker: WorkerGenerator) -> None:
    pieces = worker.stream(ASK, Decoding())
    next(pieces)
    with pytest.raises(RuntimeError, match="still open"):
        worker.count_tokens("x")
    pieces.close()


def test_crash_messages_name_the_signal_or_the_status() -> None:
    assert "SIGILL" in crash_message(-int(signal.SIGILL), "generating")
    assert "exited with status 3" in crash_message(3, "generating")


# --- the server keeps serving -------------------------------------------------------------


def test_the_server_survives_a_crash_and_restarts_the_worker(make_client: MakeClient) -> None:
    worker = WorkerGenerator(functools.partial(CrashingGenerator, ["Spring tides [1]."]))
    try:
        client = make_client(generator=worker)
        crashed = client.post("/ask", json={"question": "When do spring tides come? crash"})
        assert crashed.status_code == 503, crashed.text
        body = crashed.json()
        assert body["type"] == "RuntimeCrash" and "SIGSEGV" in body["error"]
        assert client.get("/health").status_code == 200
        search = client.post("/search", json={"query": "spring tides"})
        assert search.status_code == 200 and search.json()["hits"]
        answered = client.post("/ask", json={"question": "When do spring tides come?"})
        assert answered.status_code == 200, answered.text
        assert worker.restarts == 1
        streamed = client.post(
            "/ask", json={"question": "When do spring tides come? crash", "stream": True}
        )
        assert streamed.status_code == 200  # headers were sent; the error is an event
        assert "RuntimeCrash" in streamed.text and "SIGSEGV" in streamed.text
    finally:
        worker.close()


# --- the CLI says what happened -------------------------------------------------------------


def test_the_cli_explains_a_runtime_that_fails_its_self_test(
    docs_store: Path, askdocs_exe: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A runtime whose self-test child dies with SIGSEGV: `ask` exits 1 with the fix."""
    pytest.importorskip("llama_cpp", reason="pip install llama-cpp-python==0.3.36")
    from askdocs.generation import runtime
    from askdocs.generation.packaged import resolve_model

    try:
        model = resolve_model("smollm2-135m")
    except ModelLoadError as exc:
        pytest.skip(str(exc))
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    crashing = ["-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    monkeypatch.setattr(runtime, "probe_command", lambda model, threads: crashing)
    result = runtime.check(model, cache_dir=cache / "askdocs" / "runtime")
    assert not result.ok and "SIGSEGV" in result.reason and REINSTALL in result.reason
    assert runtime.check(model, cache_dir=cache / "askdocs" / "runtime").cached
    done = subprocess.run(
        [askdocs_exe, "ask", "When do spring tides come?", "--store", str(docs_store),
         "--model", "smollm2-135m"],
        capture_output=True, text=True, timeout=120,
        env={**_environ(), "XDG_CACHE_HOME": str(cache)},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "SIGSEGV" in done.stderr and "pip install --force-reinstall" in done.stderr


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("ASKDOCS_")}


def test_check_reports_a_healthy_runtime_with_its_speed(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="pip install llama-cpp-python==0.3.36")
    from askdocs.generation import runtime
    from askdocs.generation.packaged import resolve_model

    try:
        model = resolve_model("smollm2-135m")
    except ModelLoadError as exc:
        pytest.skip(str(exc))
    result = runtime.check(model, cache_dir=tmp_path)
    assert result.ok, result.reason
    assert result.prompt_tokens_per_s > 0 and result.generated_tokens_per_s > 0
    assert "AVX2 = 1" in result.system_info or "NEON" in result.system_info
    assert json.loads(next(tmp_path.glob("*.json")).read_text())["ok"] is True
