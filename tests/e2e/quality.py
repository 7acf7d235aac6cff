"""The web client's quality bar, checked on a page as the browser shows it:
- accessibility: axe-core's WCAG 2.1 A/AA rules (labels, names, contrast, landmarks' ARIA);
- phone width: nothing wider than the screen, so the page never scrolls sideways;
- keyboard: Tab alone reaches every control the page shows, each with a visible focus mark.

axe-core comes from the web client's own devDependencies (`npm ci` in web/), not a CDN."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Page

from tests.servers.platform import REPO

AXE_SCRIPT = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# Marks each control the page shows and could take the keyboard focus (tabIndex >= 0, enabled,
# rendered). Radio buttons count once per group: Tab enters a group, arrow keys move in it.
_MARK_CONTROLS = """
() => {
  const selector = 'a[href], button, input, select, textarea, summary, [tabindex]';
  const seenGroups = new Set();
  const controls = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.disabled || el.tabIndex < 0 || el.type === 'hidden') continue;
    if (el.closest('[inert], [aria-hidden="true"]')) continue;
    if (!el.checkVisibility({ visibilityProperty: true })) continue;
    if (el.type === 'radio') {
      const group = `${el.form ? '' : 'doc'}:${el.name}`;
      if (el.name && seenGroups.has(group)) { el.dataset.qaGroup = group; continue; }
      seenGroups.add(group);
      el.dataset.qaGroup = group;
    }
    el.dataset.qa = String(controls.length);
    controls.push(describe(el));
  }
  return controls;

  function describe(el) {
    const name = el.getAttribute('aria-label') || (el.labels && el.labels[0]?.innerText) ||
      el.innerText || el.getAttribute('placeholder') || el.getAttribute('name') || '';
    const kind = el.tagName.toLowerCase() + (el.type ? `[${el.type}]` : '');
    return `${kind} "${name.trim().slice(0, 60)}"`;
  }
}
"""

# Which marked control has the focus now (its group's first radio for a radio), and whether
# the focus shows: an outline or a ring on it, on its label (visually hidden inputs such as
# the file picker show it there), or on a wrapper that styles :focus-within.
_FOCUSED = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  let index = el.dataset.qa;
  if (index === undefined && el.dataset.qaGroup) {
    const group = CSS.escape(el.dataset.qaGroup);
    const first = document.querySelector(`[data-qa-group="${group}"][data-qa]`);
    index = first?.dataset.qa;
  }
  const shows = (node) => {
    if (!node) return false;
    const style = getComputedStyle(node);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
    return outline || (style.boxShadow && style.boxShadow !== 'none');
  };
  const candidates = [el, el.labels?.[0], el.parentElement, el.parentElement?.parentElement];
  return { index: index ?? null, visible: candidates.some(shows), tag: el.tagName.toLowerCase(),
           text: (el.getAttribute('aria-label') || el.innerText || '').trim().slice(0, 60) };
}
"""


@dataclass
class QualityReport:
    where: str
    problems: list[str] = field(default_factory=list)


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    if not AXE_SCRIPT.is_file():
        raise AssertionError(f"axe-core is missing at {AXE_SCRIPT}: run `make web` (npm ci).")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT.read_text())
    result: dict[str, Any] = page.evaluate(
        "(tags) => axe.run(document, { runOnly: { type: 'tag', values: tags } })", WCAG_TAGS
    )
    found = []
    for violation in result["violations"]:
        targets = [", ".join(node["target"]) for node in violation["nodes"][:4]]
        rule = f"axe {violation['id']} ({violation['impact']})"
        found.append(f"{rule}: {violation['help']} at {targets}")
    return found


def overflow(page: Page) -> list[str]:
    """Whether the page is wider than the window (it would scroll sideways), and what sticks out."""
    wide: dict[str, Any] = page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const scroll = document.documentElement.scrollWidth;
          const culprits = [];
          if (scroll > width + 1) {
            for (const el of document.querySelectorAll('body *')) {
              const box = el.getBoundingClientRect();
              if (box.right > width + 1 && el.checkVisibility() && !el.closest('.table-wrap, pre'))
                culprits.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`);
              if (culprits.length > 5) break;
            }
          }
          return { width, scroll, culprits };
        }"""
    )
    if wide["scroll"] <= wide["width"] + 1:
        return []
    return [f"page is {wide['scroll']} px wide in a {wide['width']} px window: {wide['culprits']}"]


def keyboard_gaps(page: Page, *, max_presses: int = 250) -> list[str]:
    """Tab from the top of the page until the focus comes round again; every control the page
    shows must have been reached, and each must show that it has the focus."""
    controls: list[str] = page.evaluate(_MARK_CONTROLS)
    if not controls:
        return []
    # Start from the top: the body takes the focus (for this once), so the next Tab goes to
    # the page's first control, as on a fresh load.
    page.evaluate(
        """() => { document.body.tabIndex = -1; document.body.focus();
                   document.body.removeAttribute('tabindex'); window.scrollTo(0, 0); }"""
    )
    reached: set[str] = set()
    no_mark: list[str] = []
    first: str | None = None
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED)
        if focused is None or focused["index"] is None:
            continue
        index = focused["index"]
        if index == first:
            break  # round again
        first = first or index
        reached.add(index)
        if not focused["visible"]:
            no_mark.append(f'{focused["tag"]} "{focused["text"]}"')
    problems = [
        f"Tab never reaches {controls[int(i)]}"
        for i in sorted(set(map(str, range(len(controls)))) - reached, key=int)
    ]
    problems += [f"no visible focus on {name}" for name in dict.fromkeys(no_mark)]
    return problems


def check_page(page: Page, where: str, *, keyboard: bool = True) -> QualityReport:
    """Every check on the page as it is now; the caller asserts the report is empty."""
    report = QualityReport(where)
    report.problems += axe_violations(page)
    report.problems += overflow(page)
    if keyboard:
        report.problems += keyboard_gaps(page)
    return report


def format_reports(reports: list[QualityReport]) -> str:
    failed = [report for report in reports if report.problems]
    return "\n".join(f"{r.where}:\n  " + "\n  ".join(r.problems) for r in failed)
