"""Browser fixtures: the real portal on a free 127.0.0.1 port, driven by Debian's Chromium.

`portal` starts `create_app` under `web.AppRunner` inside the test's event loop (sharing
the test database) and yields its base URL; `browser` launches /usr/bin/chromium through
Playwright (never a browser Playwright downloads: `scripts/install-browser.sh` installs
Debian's); `watched_page` is a page that records every dialog, console error, page error
and request to another host (which it also aborts), so a test can assert that nothing ran
and nothing left the machine. Every test module here marks itself `browser`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database
from portal.app import runner_options
from tests.portal.helpers import with_settings
from tests.support import portal_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

try:
    from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, Route, async_playwright
except ImportError:  # the test extras are not installed
    async_playwright = None  # type: ignore[assignment]


@dataclass
class Watch:
    """What a page did that a safe page never does."""

    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    def quiet(self) -> bool:
        return not (self.dialogs or self.console_errors or self.page_errors or self.outside_requests)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    port = free_port()
    return with_settings(settings, public_url=f"http://127.0.0.1:{port}", http_port=port, http_host="127.0.0.1")


@pytest.fixture
async def portal(live_settings: Settings, db: Database, mailbox: Mailbox) -> AsyncIterator[str]:
    runner = web.AppRunner(portal_app(live_settings, db), **runner_options())
    await runner.setup()
    await web.TCPSite(runner, live_settings.http_host, live_settings.http_port).start()
    yield live_settings.public_url
    await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if async_playwright is None:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is missing at /usr/bin/chromium (scripts/install-browser.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def watched_page(browser: Browser) -> AsyncIterator[tuple[Page, Watch]]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    watch = Watch()

    async def guard(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", None):
            await route.continue_()
        else:
            watch.outside_requests.append(route.request.url)
            await route.abort()

    def dialog(opened: Dialog) -> None:
        watch.dialogs.append(opened.message)
        asyncio.ensure_future(opened.dismiss())

    await page.route("**/*", guard)
    page.on("dialog", dialog)
    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.console_errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    yield page, watch
    await context.close()


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG under test-output/screenshots/ for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


AXE_SCRIPT = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
_RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return result.violations.map(v => `${v.id} (${v.impact}): ${v.help}\\n    ` +
    v.nodes.map(n => `${n.target.join(" ")}: ${n.failureSummary.replace(/\\s+/g, " ")}`).join("\\n    "));
}"""


async def accessibility_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.2 AA violations on the page as it stands, one line per rule.

    The script is evaluated through the DevTools protocol, which the page's CSP (no
    inline script) does not govern, so the page under test stays exactly as served.
    """
    if not AXE_SCRIPT.exists():
        pytest.fail("axe-core is missing: run scripts/install-browser.sh (it installs tests/browser/axe)")
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    return list(await page.evaluate(_RUN_AXE, WCAG_22_AA))
