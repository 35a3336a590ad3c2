"""HTTPS settings as the hub sees them: certificate status on the admin panel, public URLs
handed to servers, and certificate checks in config validation."""

import base64
import json

import pytest

from pki import make_pki
from tljh_daemon import config as config_mod

LETSENCRYPT = {"enabled": True, "letsencrypt": {"email": "admin@example.org", "domains": ["hub.example.org"]}}


async def _https_card(hub):
    hub.add_user("boss", admin=True)
    browser = await hub.browser("boss")
    async with browser.request("GET", "/hub/admin") as r:
        assert r.status == 200
        text = await r.text()
    return text[text.index('id="https"'):]


async def test_own_certificate_is_described(start_hub, tmp_path):
    pki = make_pki(str(tmp_path))
    hub = await start_hub({"https": {"enabled": True, "tls": {"cert": pki["cert"], "key": pki["key"]}}})
    card = await _https_card(hub)
    assert "own certificate" in card
    assert "CN=tljh test CA" in card
    assert 'class="expires"' in card


async def test_letsencrypt_status_and_last_acme_error(start_hub):
    hub = await start_hub({"https": LETSENCRYPT})
    assert "not issued yet" in await _https_card(hub)
    with open(hub.proxy.log_path, "w") as f:
        f.write("time=x level=error msg=\"Unable to obtain ACME certificate for domains: rate limited\"\n")
    assert "Unable to obtain ACME certificate for domains: rate limited" in await _https_card(hub)


async def test_issued_acme_certificate_is_described(start_hub, tmp_path):
    pki = make_pki(str(tmp_path))
    hub = await start_hub({"https": LETSENCRYPT})
    with open(pki["cert"], "rb") as f:
        pem = base64.b64encode(f.read()).decode()
    with open(hub.proxy.acme_store, "w") as f:
        json.dump({"letsencrypt": {"Certificates": [{"certificate": pem, "domain": {"main": "x"}}]}}, f)
    card = await _https_card(hub)
    assert "CN=tljh test CA" in card and "not issued yet" not in card


async def test_https_off_says_so(hub):
    assert "HTTPS is off" in await _https_card(hub)


@pytest.mark.parametrize("port, origin", [(443, "https://hub.example.org"), (8443, "https://hub.example.org:8443")])
async def test_servers_learn_their_public_url(start_hub, port, origin):
    hub = await start_hub({"https": {**LETSENCRYPT, "port": port}})
    await hub.start_server("alice", hub.token("alice"))
    env = hub.spawner.requests[0].env
    assert env["JUPYTERHUB_PUBLIC_URL"] == origin + "/user/alice/"
    assert env["JUPYTERHUB_PUBLIC_HUB_URL"] == origin + "/hub/"


def test_mismatched_key_is_refused_naming_the_key(tmp_path):
    pki = make_pki(str(tmp_path))
    settings = config_mod.merge(config_mod.DEFAULTS, {"https": {"enabled": True, "tls": {
        "cert": pki["cert"], "key": pki["other_key"]}}})
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.check(settings)
    assert e.value.key == "https.tls"
    assert "do not load together" in str(e.value)
    settings["https"]["tls"]["key"] = pki["key"]
    config_mod.check(settings)  # the matching key is fine
