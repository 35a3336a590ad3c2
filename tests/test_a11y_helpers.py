"""The page checks in tests/a11y.py catch what they claim to (so a passing check means something)."""

import os

import pytest

from a11y import PHONE, assert_accessible, assert_no_horizontal_overflow, axe_violations, console_errors
from npmcache import have_node

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not have_node(), reason="needs node and npm for axe-core"),
]

GOOD = """<!doctype html><html lang="en"><head><title>Good</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Hello</h1><label>Name <input type="text"></label></main></body></html>"""


def test_a_plain_labelled_page_passes(browser):
    page = browser.new_page(viewport=PHONE)
    errors = console_errors(page)
    page.set_content(GOOD)
    assert_accessible(page)
    assert_no_horizontal_overflow(page)
    assert not errors
    page.close()


def test_missing_labels_and_alt_text_fail(browser):
    page = browser.new_page()
    page.set_content(GOOD.replace("<label>Name <input type=\"text\"></label>", '<input type="text"><img src="x.png">'))
    ids = {v["id"] for v in axe_violations(page)}
    assert {"label", "image-alt"} <= ids, ids
    with pytest.raises(AssertionError, match="image-alt"):
        assert_accessible(page)
    page.close()


def test_a_wide_table_at_phone_width_fails(browser):
    cell = "a long cell that does not wrap " * 5
    page = browser.new_page(viewport=PHONE)
    page.set_content(GOOD.replace("<h1>Hello</h1>", f'<table id="wide"><tr><td style="white-space: nowrap">{cell}</td></tr></table>'))
    with pytest.raises(AssertionError, match="table#wide"):
        assert_no_horizontal_overflow(page)
    page.close()


def test_console_errors_are_collected(browser):
    page = browser.new_page()
    errors = console_errors(page)
    page.set_content(GOOD.replace("</main>", "</main><script>console.error('boom'); undefinedFunction();</script>"))
    page.wait_for_function("() => true")
    assert any("boom" in e for e in errors) and any("undefinedFunction" in e for e in errors), errors
    page.close()
