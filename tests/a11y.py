"""What the browser tests check on a page for accessibility (issue 15, Done when): axe-core's
WCAG 2.2 A and AA rules (axe-core from npm: tests/browser/package.json, installed by
./run test), the page's language and direction, no sideways scrolling at 320 px, no English
left on an Arabic page; and moving through a page with the keyboard alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from tests.helpers import PASSWORD
from tests.test_browser import TIMEOUT_MS

AXE = Path(__file__).resolve().parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


# Words no Arabic page should show (in text, titles, labels or alternative text).
ENGLISH = (r"\b(the|and|you|your|to|of|sign|account|password|email|address|continue|allow|"
           r"deny|cancel|code|app|apps|privacy|change|delete|back|yes|this|that|with|for|not|"
           r"can|will|here|more|data|help|choose|send|new|create|remove|turn|use|see|device|"
           r"skip|content|policy|terms|logo|what|who|when|link|out|in|on|is|are)\b")


def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed ({AXE}): run ./run test, or "
                    "npm ci --prefix tests/browser")
    return AXE.read_text(encoding="utf-8")


@dataclass
class Audit:
    """Every page checked, and what was found wrong on each."""

    lang: str
    axe: str
    seen: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)
    csp: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", lambda m: self.csp.append(f"{page.url}: {m.text}")
                if "Content Security Policy" in m.text else None)

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(
            f"{name}:\n  " + "\n  ".join(found) for name, found in self.problems.items())

    async def check(self, page: Page, name: str) -> None:
        await page.wait_for_load_state()
        self.seen.append(name)
        found = await axe_violations(page, self.axe)
        found += await direction_problems(page, self.lang)
        found += await sideways_scroll(page)
        if self.lang == "ar":
            found += [f"English left: {text!r}" for text in await english_left(page)]
        if found:
            self.problems[f"{name} ({urlsplit(page.url).path})"] = found


async def axe_violations(page: Page, source: str) -> list[str]:
    # Evaluated through DevTools, so the pages' CSP (no scripts) does not stop it.
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(source)
    violations: list[dict[str, Any]] = await page.evaluate(
        """async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags},
               resultTypes: ['violations']})).violations.map(v => ({id: v.id, help: v.help,
               nodes: v.nodes.map(n => n.target.join(' '))}))""", WCAG_TAGS)
    return [f"axe {v['id']}: {v['help']} at {v['nodes']}" for v in violations]


async def direction_problems(page: Page, lang: str) -> list[str]:
    found = await page.evaluate("() => [document.documentElement.getAttribute('lang'), "
                                "document.documentElement.getAttribute('dir')]")
    expected = [lang, "rtl" if lang == "ar" else "ltr"]
    # An English page may leave dir out: left to right is the default.
    if lang != "ar" and found[1] is None:
        found[1] = "ltr"
    return [] if found == expected else [f"<html lang dir> is {found}, not {expected}"]


async def sideways_scroll(page: Page) -> list[str]:
    """WCAG 2.2 SC 1.4.10 Reflow: usable 320 CSS px wide without scrolling sideways."""
    size = page.viewport_size
    await page.set_viewport_size({"width": 320, "height": 640})
    try:
        widths = await page.evaluate("() => [document.documentElement.scrollWidth, "
                                     "document.documentElement.clientWidth]")
    finally:
        await page.set_viewport_size(size or {"width": 1280, "height": 800})
    return [] if widths[0] <= widths[1] else [f"scrolls sideways at 320 px: {widths}"]


async def english_left(page: Page) -> list[str]:
    found: list[str] = await page.evaluate("""(pattern) => {
        const english = new RegExp(pattern, 'i');
        const island = (el) => el.closest('[dir=ltr], bdi, code, kbd, samp, script, style, ' +
                                          '[translate=no], [type=hidden]') ||
                               !(el.closest('[lang]')?.getAttribute('lang') || '').startsWith('ar');
        const found = [];
        const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (node.parentElement && !island(node.parentElement) && english.test(node.nodeValue))
                found.push(node.nodeValue.trim().slice(0, 80));
        }
        for (const el of document.querySelectorAll('[alt], [aria-label], [placeholder], [title]')) {
            for (const name of ['alt', 'aria-label', 'placeholder', 'title']) {
                const value = el.getAttribute(name);
                if (value && !island(el) && english.test(value)) found.push(`${name}=${value}`);
            }
        }
        return found;
    }""", ENGLISH)
    return found


async def new_context(chromium: Browser, idp: str, lang: str) -> BrowserContext:
    """A browser whose customer reads `lang`: the browser's language, and the language
    cookie as if picked with the switcher (idp.web.i18n)."""
    context = await chromium.new_context(locale=lang, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_cookies([{"name": "idp_lang", "value": lang, "url": idp}])
    return context


async def submit(page: Page, form: str, button: str = "button.primary") -> None:
    async with page.expect_navigation():
        await page.locator(f"{form} {button}".strip()).first.click()


async def sign_in(page: Page, email: str = "alice@example.com", password: str = PASSWORD
                  ) -> None:
    await page.locator("#email").fill(email)
    await page.locator("#password").fill(password)
    await submit(page, "form:has(#password)")


async def focused(page: Page) -> dict[str, Any]:
    """The focused element, and whether its focus is drawn (WCAG 2.2 SC 2.4.7)."""
    result: dict[str, Any] = await page.evaluate("""() => {
        const el = document.activeElement, style = getComputedStyle(el);
        const box = el.getBoundingClientRect();
        return {tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name'),
                value: el.getAttribute('value'), text: el.textContent.trim(),
                visible: (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
                         || style.boxShadow !== 'none',
                onScreen: box.width > 0 && box.height > 0 && box.top >= 0 && box.left >= 0};
    }""")
    return result


async def tab_to(page: Page, matches: Any, limit: int = 30) -> list[dict[str, Any]]:
    """Tab until the focused element matches; every stop on the way shows its focus."""
    stops = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        now = await focused(page)
        stops.append(now)
        assert now["visible"] and now["onScreen"], now
        if matches(now):
            return stops
    raise AssertionError(f"never reached: {stops}")
