"""Is the installed llama.cpp runtime safe to run on this CPU? A self-test in a child process.

pip compiles llama-cpp-python on the machine that installs it; a build made with
`-march=native`, or copied from another machine, can kill the process that runs it with a
signal on the first prompt. `check()` loads a model in a throwaway child process, evaluates a
short prompt and generates a few tokens, and reports how it went with the tokens per second.
The result is cached per library build, CPU and model file, so the test runs once.

    result = check(model_path)
    if not result.ok:
        print(result.reason)  # names the signal and the reinstall command

Run as a module (`python -m askdocs.generation.runtime probe MODEL.gguf`) it is that child.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The portable build: AVX2/FMA/F16C kernels that run on every x86-64 CPU with AVX2, and on
# AVX-512/AMX CPUs, where a native build of this version crashes (docs/runtime.md).
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
)
LLAMA_CPP_VERSION = "0.3.36"
INSTALL = f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install llama-cpp-python=={LLAMA_CPP_VERSION}'
REINSTALL = (
    f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --force-reinstall --no-cache-dir '
    f"--no-deps llama-cpp-python=={LLAMA_CPP_VERSION}"
)
# CPU flags (as /proc/cpuinfo names them) that decide which llama.cpp kernels can run.
CPU_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni", "avx512f", "avx512bw",
    "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
)  # fmt: skip
PROBE_PROMPT = (
    "A short passage for the runtime self-test. The tide rises and falls twice a day; spring "
    "tides come at new and full moon, when the sun and the moon pull along one line. Neap "
    "tides come at the quarters. Question: when do spring tides come? Answer:"
)
PROBE_TOKENS = 16
PROBE_TIMEOUT = 300.0  # seconds: loading a 1 GB model from a cold disk on a slow machine


@dataclass(frozen=True, slots=True)
class Cpu:
    model: str
    flags: tuple[str, ...]  # those of CPU_FLAGS this CPU has


@dataclass(frozen=True, slots=True)
class RuntimeCheck:
    """How the runtime fared on this machine. `reason` says what went wrong and the fix."""

    ok: bool
    reason: str
    library: str  # llama-cpp-python version and a fingerprint of its native libraries
    cpu: str
    model: str
    system_info: str = ""  # llama.cpp's own list of the kernels it was built with
    prompt_tokens_per_s: float = 0.0
    generated_tokens_per_s: float = 0.0
    seconds: float = 0.0
    cached: bool = False


def cpu() -> Cpu:
    """This CPU's model name and its llama.cpp-relevant flags (Linux; elsewhere, none)."""
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
            break
    return Cpu(model, tuple(f for f in CPU_FLAGS if f in flags))


def library() -> str:
    """llama-cpp-python's version with a fingerprint of its native files, found without
    importing it: a library built for another CPU must not run in this process.
    Raises MissingDependency when it is not installed."""
    from importlib import metadata, util

    from askdocs.errors import MissingDependency

    spec = util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise MissingDependency(f"llama-cpp-python is not installed; run: {INSTALL}")
    lib_dir = Path(spec.origin).parent / "lib"
    files = sorted(p for p in lib_dir.iterdir() if p.suffix in {".so", ".dylib", ".dll"})
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    version = metadata.version("llama-cpp-python")
    return f"llama-cpp-python {version} ({digest.hexdigest()[:12]})"


def _cache_file(cache_dir: Path, library_id: str, this: Cpu, model: Path) -> Path:
    stat = model.stat()
    key = json.dumps([library_id, this.model, this.flags, str(model), stat.st_size])
    return cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("askdocs", appauthor=False)) / "runtime"


def check(
    model: Path, *, cache_dir: Path | None = None, fresh: bool = False, threads: int = 1
) -> RuntimeCheck:
    """The cached result for this library build, CPU and model, else a new self-test."""
    library_id = library()
    this = cpu()
    cache = _cache_file(cache_dir or default_cache_dir(), library_id, this, model)
    if not fresh:
        try:
            return RuntimeCheck(**{**json.loads(cache.read_text()), "cached": True})
        except (OSError, ValueError, TypeError):
            pass
    result = _probe(model, library_id, this, threads)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(asdict(result)))
    except OSError:
        pass  # a read-only or full cache dir: the test runs again next time
    return result


def probe_command(model: Path, threads: int) -> list[str]:
    """The child's arguments after the interpreter (tests replace it with one that crashes)."""
    return ["-m", "askdocs.generation.runtime", "probe", str(model), str(threads)]


def _probe(model: Path, library_id: str, this: Cpu, threads: int) -> RuntimeCheck:
    from askdocs.generation.worker import crash_message

    cpu_text = f"{this.model} [{' '.join(this.flags)}]"
    common = {"library": library_id, "cpu": cpu_text, "model": str(model)}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, *probe_command(model, threads)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        reason = f"the runtime self-test did not finish within {PROBE_TIMEOUT:.0f} s"
        return RuntimeCheck(False, reason, **common, seconds=PROBE_TIMEOUT)
    seconds = round(time.perf_counter() - started, 2)
    if done.returncode != 0:
        reason = crash_message(done.returncode, "running the self-test")
        if done.returncode > 0:  # a Python error, not a signal: show its last line
            lines = done.stderr.strip().splitlines()
            reason = f"the runtime self-test failed: {lines[-1] if lines else 'no message'}"
        return RuntimeCheck(False, reason, **common, seconds=seconds)
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return RuntimeCheck(True, "", **common, **measured, seconds=seconds)


def _run_probe(model: str, threads: int) -> dict[str, Any]:
    """In the child: load, evaluate the prompt, generate greedily; tokens per second."""
    import llama_cpp

    llama = llama_cpp.Llama(
        model_path=model, n_ctx=512, n_batch=128, n_threads=threads,
        n_threads_batch=threads, verbose=False,
    )  # fmt: skip
    try:
        ids = llama.tokenize(PROBE_PROMPT.encode(), add_bos=True, special=False)
        started = time.perf_counter()
        llama.eval(ids)
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        for n, token in enumerate(llama.generate(ids, temp=0.0), start=1):
            if n >= PROBE_TOKENS or llama_cpp.llama_vocab_is_eog(
                llama_cpp.llama_model_get_vocab(llama.model), token
            ):
                break
        generated_s = time.perf_counter() - started
        return {
            "system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "prompt_tokens_per_s": round(len(ids) / prompt_s, 1),
            "generated_tokens_per_s": round(n / generated_s, 1),
        }
    finally:
        llama.close()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "probe":
        threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
        print(json.dumps(_run_probe(sys.argv[2], threads)))
    else:
        sys.exit("usage: python -m askdocs.generation.runtime probe MODEL.gguf [THREADS]")
