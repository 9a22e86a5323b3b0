"""The web page in a real browser against a real `askdocs serve` (real models, no fakes).

Chromium is Debian's (`apt-get install chromium`), driven by Playwright for Python; no browser
is downloaded. The server runs as a subprocess with a token, so the page's token prompt is
exercised too. One module-scoped server and browser; the first page uploads the document
through the Documents tab and every later test asks, searches or resizes over it.
Screenshots go to `test-artifacts/web/` at the repository root.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port, stop_process, wait_until_up

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    pytest.fail("Playwright is not installed: pip install -e '.[test]'", pytrace=False)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "web"
TOKEN = "web-test-token"
MODEL = "smollm2-135m"  # the small packaged model the CI installs (see test_ask_llm.py)
FACT = "every four hours"
LIGHTHOUSE = """\
# The Quillon lighthouse

The Quillon lighthouse keeper winds the clockwork lens every four hours. The lamp burns
whale oil and can be seen from twenty-two nautical miles.

## History

The tower was painted with red and white bands in 1871 after a schooner ran aground.
"""
QUESTION = "How often does the keeper wind the clockwork lens?"


@dataclass
class Server:
    url: str
    log: Path

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


@pytest.fixture(scope="module")
def server(askdocs_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("web")
    # The autouse isolation fixture is per function; this module-scoped server gets its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASKDOCS_")}
    env.update(XDG_DATA_HOME=str(root / "data"), XDG_CONFIG_HOME=str(root / "config"))
    url = f"http://127.0.0.1:{(port := free_port())}"
    log = root / "serve.log"
    command = [
        askdocs_exe, "serve", "--host", "127.0.0.1", "--port", str(port),
        "--store", str(root / "store"), "--model", MODEL, "--token", TOKEN,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_up(f"{url}/health", process, log=log)
        yield Server(url, log)
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install chromium); Playwright's own browsers are not used.",
            pytrace=False,
        )
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        yield launched
        launched.close()


@dataclass
class Session:
    """The browser context shared by the module, and the uncaught page errors seen in it."""

    context: BrowserContext
    errors: list[str] = field(default_factory=list)

    def open(self, url: str) -> Page:
        page = self.context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.goto(url)
        return page


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


@pytest.fixture(scope="module")
def uploaded(
    server: Server, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Session, Page]]:
    """A page that was given the token after a 401 and uploaded two files, one unreadable."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.set_default_timeout(30_000)
    session = Session(context)
    folder = tmp_path_factory.mktemp("upload")
    (folder / "lighthouse.md").write_text(LIGHTHOUSE, encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"this is not a PDF at all")

    page = session.open(server.url)
    expect(page.locator("#health")).to_contain_text("0 document(s)")
    page.get_by_role("tab", name="Documents").click()
    # The server has a token: the listing answers 401 and the page asks for the token.
    token = page.get_by_label("API token")
    expect(token).to_be_focused()
    token.fill(TOKEN)
    page.get_by_role("button", name="Save token").click()
    expect(page.locator("#documents-summary")).to_have_text("No documents yet: upload some above.")
    context.add_init_script(f"sessionStorage.setItem('askdocs.token', '{TOKEN}')")

    page.get_by_label(re.compile("Add documents")).set_input_files(
        [folder / "lighthouse.md", folder / "broken.pdf"]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#job-state")).to_have_text("Ingest finished.", timeout=60_000)
    yield session, page
    context.close()


@pytest.fixture
def page(server: Server, uploaded: tuple[Session, Page]) -> Iterator[Page]:
    """A fresh tab of the shared context, already holding the token (sessionStorage is per tab)."""
    session, _ = uploaded
    opened = session.open(server.url)
    yield opened
    opened.close()
    print(f"screenshots: {ARTIFACTS}\nserver log (end):\n{server.tail()}")  # shown on failure
    assert not session.errors, f"uncaught errors in the page: {session.errors}"


def test_upload_reports_progress_failures_and_lists_documents(
    uploaded: tuple[Session, Page],
) -> None:
    _, page = uploaded
    assert page.locator("#upload-progress").evaluate("bar => bar.value") == 100
    expect(page.locator("#report-summary")).to_have_text(
        "Added 1, updated 0, unchanged 0, removed 0, failed 1."
    )
    failed = page.locator("#report .failed li")
    expect(failed).to_have_count(1)
    expect(failed).to_have_text(re.compile(r"broken\.pdf: \S.*"))  # the path and the reason
    documents = page.locator("#documents li")
    expect(documents).to_have_count(1)
    expect(documents).to_contain_text("The Quillon lighthouse")
    expect(
        documents.get_by_role("button", name=re.compile("^Delete .*lighthouse.md"))
    ).to_be_visible()
    expect(page.locator("#health")).to_contain_text("1 document(s)")
    expect(page.locator("#status")).to_have_text(
        "Ingest finished; 1 file(s) could not be read (see the report)."
    )
    shot(page, "documents")


def test_delete_removes_only_that_document(page: Page, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch.txt"
    scratch.write_text("A scratch note about nothing in particular.\n", encoding="utf-8")
    page.get_by_role("tab", name="Documents").click()
    page.get_by_label(re.compile("Add documents")).set_input_files(scratch)
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#job-state")).to_have_text("Ingest finished.", timeout=60_000)
    documents = page.locator("#documents li")
    expect(documents).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())  # the "Remove ...?" confirmation
    documents.get_by_role("button", name=re.compile(r"^Delete .*scratch\.txt$")).click()
    expect(documents).to_have_count(1)
    expect(documents).to_contain_text("The Quillon lighthouse")
    expect(page.locator("#status")).to_contain_text("Removed 1 document(s)")


def ask(page: Page, *, extractive: bool, question: str = QUESTION) -> None:
    if not page.locator("#ask-form details.options").evaluate("details => details.open"):
        page.get_by_text("Answer options").click()
    page.get_by_label("Extractive (no LLM)").set_checked(extractive)
    page.get_by_label("Max tokens").fill("48")
    page.get_by_label("Question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()


def test_extractive_answer_cites_the_passage_with_the_fact_highlighted(page: Page) -> None:
    ask(page, extractive=True)
    final = page.locator("#final-answer")
    expect(final).to_contain_text(FACT)
    expect(page.locator("#answer")).to_have_attribute("data-state", "answered")
    expect(page.locator("#answer-facts")).to_contain_text("every sentence is supported")
    expect(page.locator("#sources-list li")).not_to_have_count(0)
    shot(page, "answer-extractive")
    copy = page.locator("#answer button.copy")
    expect(copy).to_have_text("Copy answer")
    copy.click()
    expect(copy).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert FACT in copied and "[1] The Quillon lighthouse" in copied

    final.get_by_role("button", name=re.compile(r"^Source 1: The Quillon lighthouse")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("mark")).to_contain_text(FACT)
    expect(dialog).to_contain_text("lighthouse.md")
    expect(dialog).to_contain_text("twenty-two nautical miles")  # context around the cited span
    shot(page, "citation-passage", full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_question_outside_the_documents_is_refused_with_closest_passages(page: Page) -> None:
    ask(page, extractive=True, question="What is the boiling point of liquid nitrogen?")
    answer = page.locator("#answer")
    expect(answer).to_have_attribute("data-state", "refused")
    expect(answer.locator(".refusal")).to_contain_text("Not in the documents.")
    expect(page.locator("#sources-title")).to_have_text("Closest passages")
    expect(page.locator("#sources-list li")).to_contain_text(["The Quillon lighthouse"])
    shot(page, "answer-refused")


def test_generated_answer_streams_then_is_checked(page: Page) -> None:
    ask(page, extractive=False)
    answer = page.locator("#answer")
    # A 135M model may or may not be supported by the passages; either way the page ends with
    # the checked final answer (or a plain refusal) after tokens were streamed in.
    expect(answer).to_have_attribute(
        "data-state", re.compile("^(answered|refused)$"), timeout=60_000
    )
    assert int(answer.get_attribute("data-tokens") or 0) > 0, "no token was streamed"
    if answer.get_attribute("data-state") == "refused":
        expect(answer.locator(".refusal")).to_contain_text("Not in the documents.")
        expect(page.locator("#sources-title")).to_have_text("Closest passages")
    else:
        expect(page.locator("#final-answer")).not_to_be_empty()
    # every unsupported sentence carries a visible flag
    flagged = page.locator("#final-answer .sentence.unsupported")
    expect(flagged.locator(".flag")).to_have_count(flagged.count())
    expect(page.locator("#sources-list li")).not_to_have_count(0)
    shot(page, "answer-generated")


def test_search_tab_with_keyboard_tabs(page: Page) -> None:
    page.get_by_role("tab", name="Ask").focus()
    page.keyboard.press("ArrowRight")
    search_tab = page.get_by_role("tab", name="Search")
    expect(search_tab).to_be_focused()
    expect(search_tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel", name="Search")).to_be_visible()

    page.get_by_label("Search query").fill("red and white bands")
    page.get_by_label("Mode", exact=True).select_option("keyword")
    page.get_by_role("button", name="Search", exact=True).click()
    hit = page.locator("#results li").first
    expect(hit).to_contain_text("The Quillon lighthouse")
    expect(hit).to_contain_text("1871")
    expect(hit.locator(".meta")).to_contain_text(re.compile(r"lighthouse\.md · score \d"))
    shot(page, "search")


def test_event_parser_reassembles_events_split_anywhere(page: Page) -> None:
    """sse.js over a body cut every 5 bytes (inside CRLFs and a 2-byte character)."""
    stream = (
        'event: token\r\ndata: {"text": "caf\u00e9"}\r\n\r\n: keep-alive\n\n'
        'event: final\ndata: {"answered":\ndata: true}\n\ndata: {"last": 1}'
    )
    seen = page.evaluate(
        """async (stream) => {
            const { readEvents } = await import("/static/sse.js");
            const bytes = new TextEncoder().encode(stream);
            const body = new ReadableStream({
                start(controller) {
                    for (let i = 0; i < bytes.length; i += 5) {
                        controller.enqueue(bytes.slice(i, i + 5));
                    }
                    controller.close();
                },
            });
            const seen = [];
            await readEvents(body, (name, data) => seen.push([name, data]));
            return seen;
        }""",
        stream,
    )
    assert seen == [
        ["token", {"text": "caf\u00e9"}],
        ["final", {"answered": True}],
        ["message", {"last": 1}],
    ]


def test_every_control_is_labelled(page: Page) -> None:
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
              .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
                           && !c.textContent.trim())
              .map(c => c.id || c.outerHTML)"""
    )
    assert unlabelled == []


def test_narrow_screen_has_no_horizontal_overflow(page: Page) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    ask(page, extractive=True)
    expect(page.locator("#final-answer")).to_contain_text(FACT)
    widths = "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    for tab in ("Ask", "Search", "Documents", "Topics", "Classify"):
        page.get_by_role("tab", name=tab).click()
        if tab == "Search":
            page.get_by_label("Search query").fill("lighthouse lamp oil")
            page.get_by_role("button", name="Search", exact=True).click()
            expect(page.locator("#results li")).not_to_have_count(0)
        if tab == "Documents":
            expect(page.locator("#documents li")).to_have_count(1)
        scroll, client = page.evaluate(widths)
        assert scroll <= client, f"{tab} tab is {scroll} px wide in a {client} px viewport"
        shot(page, f"narrow-{tab.lower()}")
    page.get_by_role("tab", name="Ask").click()
    page.locator("#final-answer button.cite").first.click()
    expect(page.get_by_role("dialog").locator("mark")).to_contain_text(FACT)
    scroll, client = page.evaluate(widths)
    assert scroll <= client, f"the passage dialog is {scroll} px wide in a {client} px viewport"
    shot(page, "narrow-passage", full_page=False)


def test_follow_ups_keep_a_conversation_thread(page: Page) -> None:
    ask(page, extractive=True)
    answer = page.locator("#answer")
    expect(answer).to_have_attribute("data-state", "answered")
    ask(page, extractive=True, question="And what does it burn?")
    expect(answer).to_have_attribute("data-state", "answered")
    thread = page.locator("#thread li")
    expect(thread).to_have_count(1)  # the first answer moved up into the thread
    expect(thread.first).to_contain_text(QUESTION)
    expect(thread.first).to_contain_text(FACT)
    # The follow-up was searched for with the first question's key terms
    expect(answer.locator(".searched")).to_contain_text("keeper")
    page.get_by_role("button", name="New conversation").click()
    expect(thread).to_have_count(0)


def test_topics_tab_maps_the_documents_and_lists_a_topic(page: Page, tmp_path: Path) -> None:
    """Near the end of this module: it adds 40 notes on four themes to the shared store (the
    Classify tab's test reads them too). A topic's documents can then be searched alone."""
    from tests.test_topics import THEMES

    files = []
    for theme, texts in THEMES.items():
        for i, text in enumerate(texts):
            files.append(tmp_path / f"{theme}-{i:02d}.txt")
            files[-1].write_text(text, encoding="utf-8")
    page.get_by_role("tab", name="Documents").click()
    for batch in (files[:20], files[20:]):  # the server takes 20 files per upload
        page.get_by_label(re.compile("Add documents")).set_input_files(batch)
        page.get_by_role("button", name="Upload", exact=True).click()
        expect(page.locator("#job-state")).to_have_text("Ingest finished.", timeout=120_000)
    page.get_by_role("tab", name="Topics").click()
    expect(page.locator("#topics-summary")).to_contain_text("No topics yet")
    page.get_by_role("button", name="Find topics").click()
    expect(page.locator("#status")).to_have_text(
        "Topics found and saved: searches can now filter by topic.", timeout=180_000
    )
    rows = page.locator("#topics-table tr")
    expect(rows.first).to_be_visible()
    assert 2 <= rows.count() <= 6
    expect(page.locator("#topic-map circle")).to_have_count(41)  # 40 notes + the lighthouse
    first = rows.first.get_by_role("button")
    first.click()
    expect(first).to_have_attribute("aria-pressed", "true")
    listed = page.locator("#topic-documents li")
    size = int(re.search(r"\((\d+)\)$", first.inner_text()).group(1))  # type: ignore[union-attr]
    expect(listed).to_have_count(size)
    assert page.locator("#topic-map circle.faded").count() == 41 - size
    shot(page, "topics")

    topic = first.get_attribute("data-topic")
    listed_paths = set(page.locator("#topic-documents li .meta").all_inner_texts())
    page.get_by_role("button", name="Search in this topic").click()
    expect(page.get_by_role("tab", name="Search")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label(re.compile("Only documents tagged"))).to_have_value(f"topic={topic}")
    page.get_by_label("Search query").fill("a short note")
    page.get_by_label("Search query").press("Enter")
    expect(page.locator("#search-summary")).to_contain_text(f"in documents tagged topic={topic}")
    hits = page.locator("#results .hit .meta").all_inner_texts()
    assert hits and all(meta.split(" · ")[0] in listed_paths for meta in hits), hits


def label_themes(page: Page, tag: str, *, learn: bool = False) -> dict[str, str | None]:
    """Label the stored documents by the four themes in the Classify tab, kept as `tag`
    (`learn`: self-training first, its progress shown); at least 36 of the 40 themed notes
    must get their theme. The label of each document, by path."""
    page.get_by_role("tab", name="Classify").click()
    page.get_by_label("Labels, one per line").fill("astronomy\nbaking\nfootball\ngardening")
    page.get_by_label(re.compile("Save as the tag")).fill(tag)
    if learn:
        page.get_by_label(re.compile("Learn from the documents first")).check()
    page.get_by_role("button", name="Label documents").click()
    summary = page.locator("#classify-summary")
    if learn:
        expect(page.locator("#classify-progress-row")).to_be_visible()
        expect(summary).to_contain_text("self-training:")
    expect(summary).to_contain_text("41 document(s) labelled", timeout=600_000 if learn else 60_000)
    expect(summary).to_contain_text(f"Saved as the tag “{tag}” on 41 document(s).")
    rows = page.locator("#classify-table tr")
    expect(rows).to_have_count(41)
    label_of = {r.locator(".meta").inner_text(): r.get_attribute("data-label") for r in rows.all()}
    right = sum(Path(path).name.split("-")[0] == label for path, label in label_of.items())
    assert right >= 36, f"{right} of 40 themed notes labelled with their theme: {label_of}"
    return label_of


def test_classify_tab_labels_the_documents_and_tags_them(page: Page) -> None:
    """Over the lighthouse and the 40 themed notes of the topics test."""
    label_of = label_themes(page, "theme")
    shot(page, "classify")

    page.get_by_role("tab", name="Search").click()
    page.get_by_label(re.compile("Only documents tagged")).fill("theme=baking")
    page.get_by_label("Search query").fill("stars in the galaxy")
    page.get_by_label("Search query").press("Enter")
    expect(page.locator("#search-summary")).to_contain_text("in documents tagged theme=baking")
    tagged = page.locator("#results .hit .meta").all_inner_texts()
    assert tagged and all(label_of[meta.split(" · ")[0]] == "baking" for meta in tagged), tagged

    page.get_by_role("tab", name="Classify").click()
    page.get_by_label("Labels, one per line").fill("only one label")
    page.get_by_role("button", name="Label documents").click()
    expect(page.locator("#classify-summary")).to_have_text("Name two labels or more, one per line.")
    page.get_by_role("tab", name="Search").click()
    page.get_by_label(re.compile("Only documents tagged")).fill("no equals sign")
    page.get_by_label("Search query").press("Enter")
    expect(page.locator("#search-summary")).to_contain_text("Write the tag as name=value")


def test_classify_tab_learns_from_the_documents_first(page: Page) -> None:
    """Self-training in the background (real PyTorch), with its progress shown."""
    label_themes(page, "learnt", learn=True)
    expect(page.locator("#classify-progress-row")).to_be_hidden()
