"""`askdocs doctor`: real checks of this install, the sample store and the settings.

The runtime self-test runs the real llama.cpp in a child process; the failing runtime is a
child that really dies with SIGSEGV (`runtime.probe_command` replaced), as a build for
another CPU does.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from askdocs.cli import main
from askdocs.generation import runtime


def doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    result = CliRunner().invoke(main, ["doctor", "--json", *args], env=env)
    return result.exit_code, json.loads(result.output)


def by_name(checks: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in checks}


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache for this module's tests: the first runs the real self-test, the rest reuse it."""
    shared = tmp_path_factory.getbasetemp() / "doctor-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    return shared


def test_a_healthy_install_passes_every_check(docs_store: Path, cache: Path) -> None:
    code, checks = doctor("--store", str(docs_store))
    found = by_name(checks)
    problems = [c for c in checks if c["status"] == "problem"]
    assert code == 0 and not problems, problems
    assert found["embedding model"]["status"] == "ok"
    assert "in sync" in found["store"]["detail"]
    assert found["disk space"]["status"] == "ok" and found["python"]["status"] == "ok"
    assert "no token" in found["server"]["detail"]
    if found["llama.cpp runtime"]["status"] == "ok":  # llama-cpp-python installed
        assert "tokens/s" in found["llama.cpp runtime"]["detail"]
        again = by_name(doctor("--store", str(docs_store))[1])["llama.cpp runtime"]
        assert "cached result" in again["detail"]  # the self-test ran once


def test_a_crashing_runtime_is_a_problem_with_the_reinstall_fix(
    docs_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("llama_cpp", reason="pip install llama-cpp-python==0.3.36")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # its own: a failed result
    crash = f"import os; os.kill(os.getpid(), {int(signal.SIGSEGV)})"
    monkeypatch.setattr(runtime, "probe_command", lambda model, threads: ["-c", crash])
    code, checks = doctor("--store", str(docs_store), "--fresh")
    check = by_name(checks)["llama.cpp runtime"]
    assert code == 1 and check["status"] == "problem"
    assert "SIGSEGV" in check["detail"] and check["fix"] == runtime.REINSTALL


def test_an_exposed_server_without_token_is_a_problem(docs_store: Path, cache: Path) -> None:
    code, checks = doctor("--store", str(docs_store), env={"ASKDOCS_SERVER__HOST": "0.0.0.0"})
    server = by_name(checks)["server"]
    assert code == 1 and server["status"] == "problem" and "ASKDOCS_API_TOKEN" in server["fix"]


def test_a_missing_store_is_skipped_with_how_to_make_one(tmp_path: Path, cache: Path) -> None:
    _, checks = doctor("--store", str(tmp_path / "none"))
    store = by_name(checks)["store"]
    assert store["status"] == "skipped" and "askdocs ingest" in store["fix"]


def test_the_text_report_marks_problems_and_fixes(docs_store: Path, cache: Path) -> None:
    result = CliRunner().invoke(
        main, ["doctor", "--store", str(docs_store)], env={"ASKDOCS_SERVER__HOST": "0.0.0.0"}
    )
    assert result.exit_code == 1
    assert "PROBLEM  server:" in result.output and "fix: set ASKDOCS_API_TOKEN" in result.output
