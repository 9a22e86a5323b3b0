"""A generator in a worker process, so that a native crash costs one request, not the program.

llama.cpp is native code: a build for the wrong CPU, a bad GGUF file or a bug ends the whole
process with a signal (SIGSEGV, SIGILL, SIGABRT) that Python cannot catch. `WorkerGenerator`
keeps the model in a child process and speaks to it over a pipe. When the child dies the
call in progress raises `RuntimeCrash`, naming the signal and the fix; the next call starts a
new child. The parent (the CLI, the server, the test run) never executes model code.

    generator = WorkerGenerator(functools.partial(LlamaGenerator.from_settings, settings))
    for piece in generator.stream(messages, decoding):
        print(piece, end="")

The child is a fresh interpreter (`python -m askdocs.generation.worker FD`), never a fork:
the parent may hold threads (the server's) and native state (ONNX Runtime's) that a forked
child would inherit half-initialised, and it does not re-import the parent's main module as
multiprocessing's `spawn` does. The two ends speak `multiprocessing.connection` over a socket
pair: the factory first, then requests and replies.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

from askdocs.errors import RuntimeCrash
from askdocs.generation import Decoding, Generator, Message, Usage, take_turn

# Methods the parent may call on the child's generator besides `stream`; those past the
# `Generator` protocol exist on `LlamaGenerator` (for measurements and tests).
_CALLS = frozenset(
    {
        "count_tokens",
        "tokens",
        "prompt_tokens",
        "prompt_ids",
        "shared_length",
        "render",
        "reset_cache",
    }
)
_EXIT_WAIT = 10.0  # seconds to let a child exit after its pipe closes


def _reply_error(conn: Connection, exc: BaseException) -> None:
    """Send an exception; one that does not pickle goes as a RuntimeError with its text."""
    try:
        conn.send(("err", exc))
    except Exception:
        conn.send(("err", RuntimeError(f"{type(exc).__name__}: {exc}")))


def _serve(conn: Connection, factory: Callable[[], Generator]) -> None:
    """The child: build the generator, then answer requests until the pipe closes."""
    try:
        generator = factory()
    except BaseException as exc:
        _reply_error(conn, exc)
        return
    conn.send(("ready", generator.id, generator.context_length))
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return
            op, args, kwargs = request
            if op == "cancel":  # arrived after the stream it meant had ended: nothing to do
                continue
            if op == "stream":
                _serve_stream(conn, generator, args, kwargs)
            elif op in _CALLS:
                try:
                    conn.send(("ok", getattr(generator, op)(*args, **kwargs)))
                except Exception as exc:
                    _reply_error(conn, exc)
            else:
                _reply_error(conn, ValueError(f"unknown worker call {op!r}"))
    finally:
        generator.close()


def _serve_stream(
    conn: Connection, generator: Generator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Stream pieces until done, or until the parent sends "cancel" between two pieces."""
    try:
        pieces = generator.stream(*args, **kwargs)
    except Exception as exc:  # raised at the call: e.g. ContextTooLong, a bad grammar
        _reply_error(conn, exc)
        return
    conn.send(("started",))
    cancelled = False
    try:
        for piece in pieces:
            conn.send(("piece", piece))
            if conn.poll() and conn.recv()[0] == "cancel":
                cancelled = True
                break
    except Exception as exc:
        _reply_error(conn, exc)
        return
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
    conn.send(("done", generator.last_usage, cancelled))


def crash_message(exitcode: int | None, doing: str) -> str:
    """What to tell the user when the worker died with `exitcode` (negative: a signal).

    >>> crash_message(-11, "generating").split(";")[0]
    'the model runtime crashed with SIGSEGV while generating'
    """
    from askdocs.generation.runtime import REINSTALL

    if exitcode is not None and exitcode < 0:
        try:
            how = f"with {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"with signal {-exitcode}"
    elif exitcode is None:
        how = "(its process stopped answering)"
    else:
        how = f"(its process exited with status {exitcode})"
    return (
        f"the model runtime crashed {how} while {doing}; it ran in a worker process, so "
        "nothing else was affected and the next request starts a new one. If this happens "
        "on every request, llama.cpp was probably compiled for another CPU: reinstall it "
        f"with `{REINSTALL}`, and run `askdocs doctor` to check the runtime"
    )


class WorkerGenerator:
    """The `Generator` protocol, served by a child process. See the module docstring.

    `factory` builds the real generator in the child; it must pickle (a class, or a
    `functools.partial` of one, importable by module path). The child starts here, so
    a model that cannot load raises at construction, as an in-process one would.
    """

    def __init__(self, factory: Callable[[], Generator], *, start_timeout: float = 600.0) -> None:
        self._factory = factory
        self._start_timeout = start_timeout
        self._lock = threading.Lock()  # one conversation with the child at a time
        self._owner: int | None = None  # thread holding an open stream
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._usage = Usage()
        self.id = ""
        self.context_length = 0
        self.restarts = -1  # workers started after the first
        with self._lock:
            self._start()

    # --- the child's life -------------------------------------------------------------

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", "askdocs.generation.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
            conn = Connection(ours.detach())
        # `theirs` is closed here: the child's copy is the only one, so its death is EOF.
        self._process, self._conn = process, conn
        self.restarts += 1
        with contextlib.suppress(OSError):  # the child died at once: _receive reports how
            conn.send(self._factory)
        if not conn.poll(self._start_timeout):
            self._stop()
            raise RuntimeCrash(f"the model worker did not start within {self._start_timeout} s")
        reply = self._receive("loading the model")
        if reply[0] == "err":
            self._stop()
            raise reply[1]
        _, self.id, self.context_length = reply

    def _receive(self, doing: str) -> tuple[Any, ...]:
        assert self._conn is not None
        try:
            return self._conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            exitcode = self._stop()
            raise RuntimeCrash(crash_message(exitcode, doing)) from None

    def _stop(self) -> int | None:
        """End the child (it is dead already after a crash); return its exit code."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()  # a healthy child sees EOF and closes its generator
        if process is None:
            return None
        try:
            process.wait(_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return process.returncode

    def _connection(self) -> Connection:
        if self._conn is None:
            self._start()
        assert self._conn is not None
        return self._conn

    @property
    def pid(self) -> int | None:
        """The worker's process id (None between a crash and the next request)."""
        return self._process.pid if self._process is not None else None

    # --- calls ------------------------------------------------------------------------

    def _enter(self) -> None:
        take_turn(self._lock, self._owner)

    def _call(self, op: str, *args: Any) -> Any:
        self._enter()
        try:
            self._connection().send((op, args, {}))
            reply = self._receive("working on a request")
        finally:
            self._lock.release()
        if reply[0] == "err":
            raise reply[1]
        return reply[1]

    def count_tokens(self, text: str) -> int:
        return int(self._call("count_tokens", text))

    def tokens(self, text: str) -> list[str]:
        return list(self._call("tokens", text))

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return int(self._call("prompt_tokens", list(messages)))

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        return list(self._call("prompt_ids", list(messages)))

    def shared_length(self, messages: Sequence[Message]) -> int:
        return int(self._call("shared_length", list(messages)))

    def render(self, messages: Sequence[Message]) -> str:
        return str(self._call("render", list(messages)))

    def reset_cache(self) -> None:
        self._call("reset_cache")

    def stream(
        self,
        messages: Sequence[Message],
        decoding: Decoding,
        *,
        json_schema: dict[str, Any] | None = None,
        grammar: str | None = None,
    ) -> Iterator[str]:
        """As `Generator.stream`: errors about the request (ContextTooLong, a bad grammar)
        raise here, at the call; a crash raises `RuntimeCrash` from the iteration."""
        self._enter()
        try:
            conn = self._connection()
            kwargs = {"json_schema": json_schema, "grammar": grammar}
            conn.send(("stream", (list(messages), decoding), kwargs))
            reply = self._receive("reading the prompt")
        except BaseException:
            self._lock.release()
            raise
        if reply[0] == "err":
            self._lock.release()
            raise reply[1]
        self._owner = threading.get_ident()
        return self._pieces(conn)

    def _pieces(self, conn: Connection) -> Iterator[str]:
        finished = False
        try:
            while True:
                reply = self._receive("generating")
                if reply[0] == "piece":
                    yield reply[1]
                elif reply[0] == "done":
                    self._usage = reply[1]
                    finished = True
                    return
                else:
                    finished = True
                    raise reply[1]
        finally:
            try:
                if not finished and self._conn is conn:
                    self._cancel(conn)
            finally:
                self._owner = None
                self._lock.release()

    def _cancel(self, conn: Connection) -> None:
        """The consumer stopped early: tell the child, then drain to its "done"."""
        try:
            conn.send(("cancel", (), {}))
            while True:
                reply = self._receive("stopping a generation")
                if reply[0] == "done":
                    self._usage = reply[1]
                    return
                if reply[0] == "err":
                    return
        except (RuntimeCrash, OSError):
            return

    @property
    def last_usage(self) -> Usage:
        return self._usage

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __enter__(self) -> WorkerGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(fd: int) -> None:
    """The child's entry point: the parent passes its end of the socket pair as `fd`."""
    conn = Connection(fd)
    try:
        factory = conn.recv()
    except EOFError:
        return
    _serve(conn, factory)


if __name__ == "__main__":
    main(int(sys.argv[1]))
