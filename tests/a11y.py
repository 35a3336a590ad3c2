"""Page checks for the browser tests: accessibility (axe-core), no horizontal overflow,
no console errors, at desktop and phone width.

    from a11y import PHONE, assert_accessible, assert_no_horizontal_overflow, console_errors

    errors = console_errors(page)          # before page.goto
    page.set_viewport_size(PHONE)
    page.goto(url)
    assert_no_horizontal_overflow(page)
    assert_accessible(page)
    assert not errors, errors

axe-core (npm) is installed once into the shared npm cache (tests/npmcache.py) and injected
into the page; nothing is fetched by the browser.
"""

import os

from npmcache import npm_package

AXE_CORE_VERSION = "4.10.3"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}  # an iPhone SE/8-sized screen, the "375 px wide"
IMPACTS = ("minor", "moderate", "serious", "critical")


def _axe_source():
    with open(os.path.join(npm_package("axe-core", AXE_CORE_VERSION), "axe.min.js")) as f:
        return f.read()


def axe_violations(page, impacts=IMPACTS, disable=(), within=()):
    """axe-core's violations on the page as it is now, limited to the given impacts.
    `disable`: rule ids to skip (say why at the call site); `within`: CSS selectors of the
    parts to audit (default: the whole page)."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(content=_axe_source())
    result = page.evaluate(
        """async ([disable, within]) => {
            const rules = Object.fromEntries(disable.map((id) => [id, {enabled: false}]));
            const context = within.length ? {include: within.map((s) => [s])} : document;
            return await axe.run(context, {rules, resultTypes: ["violations"]});
        }""",
        [list(disable), list(within)])
    return [v for v in result["violations"] if v["impact"] in impacts]


def assert_accessible(page, impacts=IMPACTS, disable=(), within=()):
    """Fail with a readable list when axe-core finds violations (default: of any impact)."""
    violations = axe_violations(page, impacts, disable, within)
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} — {v['helpUrl']}")
        for node in v["nodes"][:5]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['failureSummary'].splitlines()[-1].strip()}")
    assert not violations, f"axe-core found {len(violations)} violation(s) on {page.url}:\n" + "\n".join(lines)


def assert_no_horizontal_overflow(page):
    """The page must not scroll sideways; names the elements that stick out on the right."""
    overflow = page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            if (document.documentElement.scrollWidth <= width) return null;
            const out = [];
            for (const el of document.body.querySelectorAll("*")) {
                const r = el.getBoundingClientRect();
                if (r.right > width + 1 && r.width > 0) {
                    const id = el.id ? "#" + el.id : "";
                    const cls = el.classList.length ? "." + [...el.classList].join(".") : "";
                    out.push(`${el.tagName.toLowerCase()}${id}${cls} (right edge ${Math.round(r.right)})`);
                }
            }
            return {width, scrollWidth: document.documentElement.scrollWidth, elements: out.slice(0, 10)};
        }""")
    assert overflow is None, (
        f"{page.url} scrolls sideways at {overflow['width']} px (content is {overflow['scrollWidth']} px wide): "
        + ", ".join(overflow["elements"]))


def console_errors(page):
    """A list that fills with the page's console errors and uncaught exceptions from now on."""
    errors = []
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    return errors
