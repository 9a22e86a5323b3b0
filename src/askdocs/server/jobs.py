"""Uploads: saved under `<store>/uploads/<uuid>/<safe name>`, ingested by one background thread.

An upload that does not end up stored (unreadable, no text, or its job failed) is deleted
when its job ends, so every file kept under uploads/ is listed by GET /documents and can be
deleted through the API; the job's report still names it and says why. Leftovers of a
server that stopped mid-job are deleted when the next one starts (`sweep_uploads`).

A client's file name is never used as a path: `safe_name` keeps only its last component,
without control characters, leading dots or `..`, so nothing can be written outside the
upload's own fresh directory.

    >>> safe_name("../../etc/passwd.txt"), safe_name("..\\.env.md")
    ('passwd.txt', 'env.md')
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import threading
import unicodedata
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from askdocs.config import Settings, data_dir
from askdocs.errors import AskdocsError
from askdocs.ingest import Progress
from askdocs.kb import KnowledgeBase
from askdocs.server.tasks import forget_finished
from askdocs.store import is_url

log = logging.getLogger("askdocs.server")
UPLOADS = "uploads"
MAX_NAME = 120
KEEP_FINISHED = 200  # finished jobs remembered for GET /jobs/{id}


def safe_name(filename: str) -> str:
    """The file name's last component, printable, without leading dots; never empty."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    name = name.replace("..", "").strip().lstrip(". ")
    stem, dot, suffix = name.rpartition(".")
    if len(name) > MAX_NAME:
        name = (stem[: MAX_NAME - len(suffix) - 1] + dot + suffix) if dot else name[:MAX_NAME]
    return name or "upload"


def suffix_kind(filename: str) -> str:
    """`report.PDF` -> `pdf`; empty when there is no suffix."""
    name = safe_name(filename)
    return name.rpartition(".")[2].lower() if "." in name else ""


def save_upload(uploads: Path, filename: str, data: BinaryIO) -> Path:
    """Copy one uploaded file into a new directory of its own; returns where it is."""
    folder = uploads / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / safe_name(filename)
    try:
        with target.open("xb") as out:
            shutil.copyfileobj(data, out, 1 << 20)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target


def is_upload(path: str, uploads: Path) -> bool:
    return Path(path).parent.parent == uploads


def discard_unstored(files: Iterable[Path], kb: KnowledgeBase) -> None:
    """Delete the upload folder of each of a job's files that the store does not hold."""
    for file in files:
        if not kb.holds(os.path.abspath(file)):  # ingest's key for a file
            shutil.rmtree(file.parent, ignore_errors=True)


def uploads_dir(settings: Settings) -> Path:
    """Where uploaded files are kept: in the store's directory, or for a database store in
    the user's data directory, one folder per database."""
    if is_url(settings.store):
        digest = hashlib.sha256(str(settings.store).encode()).hexdigest()[:16]
        return data_dir() / UPLOADS / digest
    return Path(settings.store) / UPLOADS


def sweep_uploads(uploads: Path, kb: KnowledgeBase) -> None:
    """Delete every upload folder whose file the store does not hold: left by a server that
    stopped with jobs queued or running. Compared by real path: the store's folder may have
    been reached through another path when the file was stored."""
    if not uploads.is_dir():
        return
    stored = {
        os.path.realpath(d.path)
        for d in kb.documents()
        if Path(d.path).parent.parent.name == uploads.name
    }
    folders = [f for f in uploads.iterdir() if f.is_dir() and not f.is_symlink()]
    for folder in folders:
        if not any(os.path.realpath(file) in stored for file in folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Job:
    id: str
    files: int
    state: str = "queued"  # queued | running | done | failed
    done_files: int = 0
    chunks: int = 0
    report: dict[str, Any] | None = None
    error: str | None = None
    paths: list[Path] = field(default_factory=list, repr=False)


class Jobs:
    """Ingest jobs run one at a time, in submission order, off the request threads."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._kb = kb
        sweep_uploads(uploads_dir(kb.settings), kb)  # before any job can run
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="askdocs-ingest")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, paths: list[Path]) -> str:
        job = Job(uuid.uuid4().hex, files=len(paths), paths=paths)
        with self._lock:
            forget_finished(self._jobs, KEEP_FINISHED)
            self._jobs[job.id] = job
        self._executor.submit(self._run, job)
        return job.id

    def get(self, job_id: str) -> dict[str, Any] | None:
        """A snapshot of the job as the API shows it, or None."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            shown = dataclasses.asdict(job)
        del shown["paths"]
        return shown

    def _run(self, job: Job) -> None:
        def progress(p: Progress) -> None:
            with self._lock:
                job.done_files, job.chunks = p.files_done, p.chunks

        with self._lock:
            job.state = "running"
        report: dict[str, Any] | None = None
        error: str | None = None
        try:
            report = dataclasses.asdict(self._kb.ingest(job.paths, progress=progress))
        except AskdocsError as exc:
            error = str(exc)
        except Exception as exc:  # a bug: keep the worker alive, say what kind
            error = f"ingest failed: {type(exc).__name__}"
        try:  # before the job shows as finished: a client may look right after
            discard_unstored(job.paths, self._kb)
        except Exception as exc:
            log.warning("could not delete unstored uploads: %s", type(exc).__name__)
        self._finish(job, report, error)

    def _finish(self, job: Job, report: dict[str, Any] | None, error: str | None) -> None:
        with self._lock:
            job.report, job.error = report, error
            job.state = "failed" if error else "done"
            if report is not None:
                job.done_files, job.chunks = job.files, report["chunks"]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
