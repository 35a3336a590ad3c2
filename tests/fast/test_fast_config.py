"""config.yaml validation: every refusal names the key; a refused edit leaves the file as it was."""

import pytest

from tljh_daemon import config as config_mod
from tljh_daemon import configfile


@pytest.mark.parametrize("yaml_text, key, words", [
    ("auth:\n  type: kerberos\n", "auth.type", "not one of"),
    ("auth:\n  FirstUseAuthenticator:\n    min_password_length: 0\n", "auth.FirstUseAuthenticator.min_password_length", ""),
    ("auth:\n  DummyAuthenticator:\n    password: 5\n", "auth.DummyAuthenticator.password", ""),
    ("users:\n  admin: alice\n", "users.admin", "not of type"),
    ("users:\n  allowed: ['']\n", "users.allowed.0", ""),
    ("users:\n  extra_user_groups:\n    g: alice\n", "users.extra_user_groups.g", ""),
    ("users:\n  admins: [a]\n", "users.admins", "unknown key"),
    ("limits:\n  memory: lots\n", "limits.memory", "does not match"),
    ("limits:\n  cpu: 0\n", "limits.cpu", ""),
    ("user_environment:\n  default_app: lab\n", "user_environment.default_app", "jupyterlab"),
    ("user_enviroment:\n  default_app: lab\n", "user_enviroment", "unknown key"),
    ("http:\n  port: 99999\n", "http.port", ""),
    ("http:\n  port: '80'\n", "http.port", "not of type"),
    ("http:\n  port: 19150.0\n", "http.port", "not of type 'integer'"),
    ("hub:\n  port: 80\n", "hub.port", "is already http.port"),
    ("http:\n  port: 8099\n", "traefik_api.port", "must differ"),
    ("hub:\n  port: 4000\ntraefik_api:\n  port: 4000\n", "traefik_api.port", "is already hub.port"),
    ("hub:\n  port: 0\n", "hub.port", ""),
    ("traefik_api:\n  username: ''\n", "traefik_api.username", ""),
    ("spawner:\n  start_timeout: 0\n", "spawner.start_timeout", ""),
    ("spawner:\n  concurrent_spawn_limit: -1\n", "spawner.concurrent_spawn_limit", ""),
    ("services:\n  cull:\n    every: 0\n", "services.cull.every", ""),
    ("services:\n  cull:\n    concurrency: 0\n", "services.cull.concurrency", ""),
    ("services:\n  cull:\n    users: maybe\n", "services.cull.users", "not of type"),
    ("services:\n  cull:\n    remove_named_servers: true\n", "services.cull.remove_named_servers", "no named servers to remove"),
    ("named_servers:\n  limit_per_user: -1\n", "named_servers.limit_per_user", ""),
    ("named_servers:\n  enabled: maybe\n", "named_servers.enabled", "not of type"),
    ("base_url: /jupyter\n", "base_url", "must start and end with '/', e.g. '/jupyter/'"),
    ("base_url: jupyter/\n", "base_url", "must start and end with '/'"),
    ("base_url: /a b/\n", "base_url", "use only letters"),
    ("base_url: //\n", "base_url", "use only letters"),
    ("base_url: 5\n", "base_url", "not of type"),
    ("https:\n  enabled: true\n", "https.enabled", "needs a certificate"),
    ("https:\n  tls:\n    cert: /x.pem\n", "https.tls.key", "missing"),
    ("https:\n  tls:\n    cert: /nonexistent.pem\n    key: /nonexistent.key\n", "https.tls.cert", "does not exist"),
    ("https:\n  letsencrypt:\n    email: a@b.c\n", "https.letsencrypt.domains", "missing"),
    ("https:\n  letsencrypt:\n    acme_server: http://insecure\n", "https.letsencrypt.acme_server", ""),
    ("https:\n  letsencrypt:\n    dns_provider: Bad_Provider\n", "https.letsencrypt.dns_provider", ""),
    ("https:\n  enabled: true\n  port: 80\n  letsencrypt:\n    email: a@b.c\n    domains: [x.org]\n",
     "https.port", "differ"),
])
def test_bad_values_name_their_key(tmp_path, yaml_text, key, words):
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text)
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.load(str(path))
    assert e.value.key == key
    assert f"config key {key!r}" in str(e.value)
    assert words in str(e.value)


@pytest.mark.parametrize("yaml_text", ["auth: [\n", "- a list\n"])
def test_unreadable_files_are_refused_clearly(tmp_path, yaml_text):
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text)
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.load(str(path))
    assert str(path) in str(e.value)


def test_defaults_and_aliases(tmp_path):
    path = tmp_path / "config.yaml"
    assert config_mod.load(str(path)) == {**config_mod.DEFAULTS}  # a missing file means defaults
    path.write_text("auth:\n  type: firstuseauthenticator.FirstUseAuthenticator\nusers:\n  admin: [a]\n")
    config = config_mod.load(str(path))
    assert config["auth"]["type"] == "firstuse"  # TLJH's class names are accepted
    assert config["users"]["admin"] == ["a"] and config["users"]["banned"] == []
    assert config["spawner"]["start_timeout"] == config_mod.DEFAULTS["spawner"]["start_timeout"]


def test_refused_edit_leaves_the_file_untouched(tmp_path):
    path = tmp_path / "config.yaml"
    original = "# my settings\nhttp:\n  port: 8080  # behind nginx\n"
    path.write_text(original)
    with pytest.raises(config_mod.ConfigError) as e:
        with configfile.editing(str(path)) as data:
            data["http"]["port"] = "eighty"
    assert e.value.key == "http.port"
    assert path.read_text() == original
    with configfile.editing(str(path)) as data:
        data["http"]["port"] = 8081
    assert path.read_text() == original.replace("8080", "8081")  # comments survive


async def test_hub_app_uses_the_validated_config(start_hub):
    hub = await start_hub({"users": {"admin": ["Boss"]}})
    browser = await hub.browser("boss")
    async with browser.api("GET", "/user") as resp:
        assert (await resp.json())["admin"] is True
