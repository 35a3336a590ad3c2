"""Announcements (announcement.*), site name and logo (branding.*), and a templates folder
whose files override the hub's own (branding.templates)."""

import pytest

from tljh_daemon import config as config_mod


@pytest.fixture
def branded(tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    templates = tmp_path / "templates"
    templates.mkdir()
    # Overrides our home.html, and extends our own copy of it.
    (templates / "home.html").write_text(
        '{% extends "templates/home.html" %}{% block main %}<p id="course">Course rules</p>{{ super() }}{% endblock %}')
    return {
        "announcement": {"all": "<b>Maintenance Sunday</b>", "login": "Use your college name",
                         "home": "Homework 3 is out", "spawn": "Starting takes a minute", "logout": "See you"},
        "branding": {"site_name": "Physics 101", "logo": str(logo), "templates": str(templates)},
    }


async def test_announcements_site_name_logo_and_templates(start_hub, branded):
    hub = await start_hub(branded)
    async with hub.request("GET", "/hub/login") as resp:
        login = await resp.text()
    assert '<b>Maintenance Sunday</b>' in login and "Use your college name" in login
    assert "Homework 3 is out" not in login
    assert "<title>Sign in – Physics 101</title>" in login and 'class="site-name"' in login
    async with hub.request("GET", "/hub/logo") as resp:
        assert await resp.read() == b"\x89PNG\r\n\x1a\nfake"

    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as resp:
        home = await resp.text()
    assert "Homework 3 is out" in home and "Use your college name" not in home
    assert '<p id="course">Course rules</p>' in home and "Your server" in home, "override extends ours"
    hub.spawner.never_answer = True  # stays on the progress page
    async with browser.request("GET", "/hub/spawn/alice") as resp:
        assert resp.headers["Location"] == "/hub/spawn-pending/alice"
    async with browser.request("GET", "/hub/spawn-pending/alice") as resp:
        assert "Starting takes a minute" in await resp.text()
    async with browser.request("GET", "/hub/logout") as resp:
        assert resp.status == 200 and "See you" in await resp.text()
    async with browser.request("GET", "/hub/home") as resp:
        assert resp.status == 302, "signed out"


async def test_without_a_logout_announcement_logout_goes_to_login(hub):
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/logout") as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/hub/login"


@pytest.mark.parametrize("key, value", [("branding.logo", "/nonexistent.png"), ("branding.templates", "/nonexistent")])
def test_missing_logo_or_templates_folder_is_refused(tmp_path, key, value):
    section, name = key.split(".")
    (tmp_path / "config.yaml").write_text(f"{section}:\n  {name}: {value}\n")
    with pytest.raises(config_mod.ConfigError, match=f"'{key}': the (file|folder) {value} does not exist"):
        config_mod.load(str(tmp_path / "config.yaml"))
