"""The `askdocs` command: thin wrappers over `KnowledgeBase`, each with `--json`.

The group and the options every command shares are in `common`; the commands register on
it from `documents` (ingest, search, remove, status, doctor, migrate), `answers` (ask, chat,
tokens, serve), `evaluation` (eval retrieval, eval answers), `classify` and `topics`.
"""

from askdocs.cli import answers, classify, documents, evaluation, topics
from askdocs.cli.common import main

__all__ = ["answers", "classify", "documents", "evaluation", "main", "topics"]
