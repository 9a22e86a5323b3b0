"""askdocs: a private, offline knowledge base over your own documents.

from askdocs import KnowledgeBase, config
with KnowledgeBase.open(config.load({"store": "./kb"})) as kb:
    kb.ingest(["~/notes"])
    hits = kb.search("how do I descale the coffee maker")
    answer = kb.ask("How do I descale the coffee maker?")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from askdocs import config
from askdocs.errors import AskdocsError

if TYPE_CHECKING:
    from askdocs.answer import AskOptions
    from askdocs.kb import KnowledgeBase
    from askdocs.retrieval import Filters

__all__ = ["AskOptions", "AskdocsError", "Filters", "KnowledgeBase", "config"]


def __getattr__(name: str) -> Any:
    # Importing the package stays cheap; the pipeline (numpy, ONNX Runtime) loads on first use.
    if name == "KnowledgeBase":
        from askdocs.kb import KnowledgeBase

        return KnowledgeBase
    if name == "AskOptions":
        from askdocs.answer import AskOptions

        return AskOptions
    if name == "Filters":
        from askdocs.retrieval import Filters

        return Filters
    raise AttributeError(f"module 'askdocs' has no attribute {name!r}")
