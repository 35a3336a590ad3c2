"""Announcements, site name, logo and a template override, as a user sees them in a real
headless Chromium (the daemon as its own process, through Traefik)."""

import os

import pytest

from hubprocess import needs_root

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]
LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
        '<rect width="40" height="20" fill="#036"/></svg>')


@pytest.fixture(scope="module")
def page(browser):
    return browser.new_page()


def test_a_visitor_sees_the_site_as_branded(make_hub, page, tmp_path):
    (tmp_path / "logo.svg").write_text(LOGO)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "home.html").write_text(
        '{% extends "templates/home.html" %}{% block main %}<p id="rules">Course rules</p>{{ super() }}{% endblock %}')
    hub = make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "announcement": {"login": "Use your <b>college</b> name", "home": "Homework 3 is out",
                         "logout": "Save your work next time"},
        "branding": {"site_name": "Physics 101", "logo": str(tmp_path / "logo.svg"), "templates": str(templates)},
    })
    page.goto(f"{hub.url}/hub/login")
    assert page.locator(".announcement").inner_text() == "Use your college name"
    assert page.locator(".announcement b").inner_text() == "college"
    assert page.title() == "Sign in – Physics 101"
    assert page.locator(".site-name").inner_text() == "Physics 101"
    logo = page.locator(".login-brand img")
    page.wait_for_function("img => img.complete", arg=logo.element_handle())
    assert logo.evaluate("img => img.naturalWidth") == 40, "our logo file, not the default"

    page.fill("input[name=username]", "branded-visitor")
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/hub/**")
    page.goto(f"{hub.url}/hub/home")
    assert page.locator(".announcement").inner_text() == "Homework 3 is out"
    assert page.locator("#rules").inner_text() == "Course rules"
    assert page.locator("h1").inner_text() == "Your server", "the override extends our page"

    page.goto(f"{hub.url}/hub/logout")
    assert page.locator(".announcement").inner_text() == "Save your work next time"
    page.click("text=Sign in again")
    page.wait_for_url("**/hub/login")
