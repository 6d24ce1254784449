"""The web console at /ui/ through Envoy on the whole mesh, in a real browser (Debian's
chromium driven by Playwright): a wrong key shows the server's refusal, a question typed
with the keyboard streams an answer whose [1] opens its source, a PDF dropped on Upload is
indexed and can be deleted with confirmation, and the reports pages draw their data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.browser import CHROMIUM, FLAGS, SKIP_REASON, have_chromium, screenshot_dir
from tests.support.documents import pdf
from tests.support.mesh_cli import UpProcess
from tests.support.tenant_mesh import COLLECTION, READER, WRITER

if not have_chromium():
    pytest.skip(SKIP_REASON, allow_module_level=True)

from playwright.async_api import Browser, Page, async_playwright, expect

pytestmark = pytest.mark.integration
#: Bound of each wait for the page (a streamed answer on 2 shared cores included), in ms.
WAIT_MS = 180_000
expect.set_options(timeout=WAIT_MS)


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield launched
        await launched.close()


@pytest_asyncio.fixture
async def page(browser: Browser, tenant_mesh: UpProcess) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=f"http://{tenant_mesh.address}", viewport={"width": 1200, "height": 860}
    )
    opened = await context.new_page()
    opened.set_default_timeout(WAIT_MS)
    yield opened
    await context.close()


async def _shot(page: Page, name: str) -> None:
    where = screenshot_dir()
    if where is not None:
        where.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(where / f"console-{name}.png"), full_page=True)


async def _sign_in(page: Page, key: str, fragment: str = "#ask") -> None:
    await page.goto(f"/ui/{fragment}")
    await expect(page.get_by_role("alert")).to_contain_text("missing API key")  # auth is on: asked for a key
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Use key").click()
    await expect(page.get_by_role("alert")).to_be_hidden()


async def test_a_wrong_key_shows_the_servers_refusal_and_what_to_do(page: Page) -> None:
    await page.goto("/ui/")
    await page.get_by_label("API key").fill("rmk_not_a_key")
    await page.get_by_role("button", name="Use key").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("401: invalid API key")
    await expect(alert).to_contain_text("Type a valid API key")
    await _shot(page, "refused")


async def test_a_question_by_keyboard_streams_an_answer_whose_citation_opens_its_source(page: Page) -> None:
    await _sign_in(page, READER)
    await page.get_by_role("region", name="Ask").get_by_label("Collection", exact=True).select_option(COLLECTION)
    question = page.get_by_label("Question")
    await question.focus()
    await page.keyboard.type("Which port does Envoy listen on for clients?")
    await page.keyboard.press("Enter")  # keyboard only
    answer = page.get_by_role("log", name="Answer")
    await expect(answer).to_contain_text("Which port does Envoy listen on for clients?")
    citation = answer.get_by_role("button", name="Source 1")
    await expect(citation).to_be_visible()
    await expect(page.get_by_text("cache: none")).to_be_visible()  # timings and cache level shown
    sources = page.get_by_role("list", name="Sources").get_by_role("listitem")
    assert await sources.count() >= 1
    await citation.focus()
    await page.keyboard.press("Enter")
    panel = page.get_by_role("complementary", name="Source")
    await expect(panel).to_be_visible()
    await expect(panel.locator("mark")).to_have_count(1)  # the cited passage, highlighted in its document
    await expect(panel).to_contain_text("Source [1]")
    await _shot(page, "ask")


async def test_an_uploaded_pdf_is_indexed_and_deleted_after_confirmation(page: Page) -> None:
    await _sign_in(page, WRITER, "#upload")
    await page.get_by_role("region", name="Upload").get_by_label("Collection", exact=True).fill("acme_uploads")
    report = pdf([["The quarterly report says revenue grew by nine percent."], ["Costs fell in the third quarter."]])
    files = [
        {"name": "report.pdf", "mimeType": "application/pdf", "buffer": report},
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"plain text"},
    ]
    await page.get_by_label("Files", exact=True).set_input_files(files)  # type: ignore[arg-type]
    listing = page.get_by_role("list", name="Uploaded files")
    await expect(listing).to_contain_text("notes.txt: rejected \u2014 not a PDF, DOCX, HTML or Markdown file")
    await page.get_by_role("button", name="Upload and index").click()
    await expect(listing).to_contain_text("report.pdf: indexed")
    await expect(page.get_by_role("status")).to_contain_text("Job succeeded: 1 of 1 indexed")
    await _shot(page, "upload")

    await page.get_by_role("link", name="Documents").click()
    await page.get_by_role("button", name="acme_uploads (2 chunks)").click()
    row = page.get_by_role("row", name="report.pdf")
    await expect(row).to_be_visible()
    await _shot(page, "documents")
    await page.get_by_role("button", name="Delete report.pdf").click()
    await expect(page.get_by_role("dialog")).to_contain_text("This cannot be undone")
    await page.get_by_role("button", name="Delete", exact=True).click()
    await expect(row).to_have_count(0)
    await expect(page.get_by_text("No document matches.")).to_be_visible()


async def test_the_reports_pages(page: Page, tmp_path: Path) -> None:
    await _sign_in(page, READER, "#experiments")
    await expect(page.get_by_text("No experiment is declared for your collections.")).to_be_visible()
    await _shot(page, "experiments")
    report = {"dataset": "xquad-en", "variants": {
        "dense": {"metrics": {"ndcg@10": 0.9435, "recall@10": 0.98}},
        "hybrid": {"metrics": {"ndcg@10": 0.9688, "recall@10": 0.99}}}}  # fmt: skip
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    await page.get_by_role("link", name="Evaluation").click()
    await page.get_by_label("Evaluation report").set_input_files(str(path))
    table = page.get_by_role("table", name="Metrics per variant")
    await expect(table.get_by_role("row", name="ndcg@10")).to_contain_text("0.9688")
    await expect(page.get_by_role("img", name="Metrics per variant: dense, hybrid")).to_be_visible()
    await _shot(page, "evaluation")
