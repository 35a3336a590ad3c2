"""`tljh-config export z2jh`: the values, merged over the chart's defaults as Helm merges them,
validate against the chart's own JSON schema (tests/data/z2jh, copied from the chart), and
each setting lands on the key the chart reads."""

import base64
import os

import jsonschema
import pytest
from ruamel.yaml import YAML

from pki import make_pki
from tljh_daemon import config as config_mod
from tljh_daemon import z2jh
from tljh_daemon.auth import AUTH_TYPES, REGISTRY

CHART = os.path.join(os.path.dirname(__file__), "..", "data", "z2jh")


def _load(name):
    with open(os.path.join(CHART, name)) as f:
        return YAML(typ="safe").load(f)


CHART_VALUES = _load("values.yaml")
CHART_SCHEMA = _load("values.schema.yaml")


def helm_merge(base, override):
    """Helm's coalescing: maps merge, anything else replaces, null deletes the default."""
    result = dict(base)
    for key, value in override.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = helm_merge(result[key], value)
        else:
            result[key] = value
    return result


def export(settings, **kwargs):
    config = config_mod.merge(config_mod.DEFAULTS, settings)
    config_mod.validate(config, kwargs.get("plugin_keys") or ())
    config_mod.check(config)
    config["auth"]["type"] = AUTH_TYPES[config["auth"]["type"]]
    result = z2jh.Export(config, **kwargs)
    errors = list(jsonschema.Draft7Validator(CHART_SCHEMA).iter_errors(helm_merge(CHART_VALUES, result.values)))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    return result.values, dict(result.unmapped)


def test_the_schema_catches_a_bad_value():
    """The check above can fail: a value of the wrong type is refused by the chart's schema."""
    bad = helm_merge(CHART_VALUES, {"singleuser": {"cpu": {"limit": "lots"}}})
    assert list(jsonschema.Draft7Validator(CHART_SCHEMA).iter_errors(bad))


def test_defaults_firstuse_cull_and_lab():
    values, unmapped = export({})
    hub = values["hub"]["config"]
    assert hub["JupyterHub"]["authenticator_class"] == "firstuseauthenticator.FirstUseAuthenticator"
    assert hub["FirstUseAuthenticator"] == {"min_password_length": 6}
    assert hub["Authenticator"] == {"allow_all": True}  # empty users.allowed: anyone who signs in
    assert values["cull"] == {"enabled": True, "timeout": 600, "every": 60, "concurrency": 5, "maxAge": 0,
                              "users": False, "removeNamedServers": False, "adminUsers": True}
    assert values["singleuser"]["defaultUrl"] == "/lab"
    assert "proxy" not in values
    assert "passwords set at first login" in unmapped["auth.type"]
    assert list(unmapped) == ["auth.type"]  # nothing else is left over from the defaults


def test_pam_users_limits_groups_and_classic():
    values, unmapped = export(
        {
            "auth": {"type": "pam"},
            "users": {"admin": ["teacher"], "allowed": ["ann", "bob"], "banned": ["eve"],
                      "extra_user_groups": {"lab": ["ann"]}},
            "limits": {"memory": "512M", "cpu": 1.5},
            "user_environment": {"default_app": "classic"},
            "services": {"cull": {"enabled": True, "timeout": 90.5, "exempt_admins": True}},
        },
        groups={"class-a": {"users": ["ann", "bob"], "properties": {"room": "1"}}},
    )
    hub = values["hub"]["config"]
    assert hub["JupyterHub"]["authenticator_class"] == "jupyterhub.auth.PAMAuthenticator"
    assert hub["Authenticator"] == {"admin_users": ["teacher"], "allowed_users": ["ann", "bob"],
                                    "blocked_users": ["eve"]}
    assert hub["JupyterHub"]["load_groups"] == {"class-a": {"users": ["ann", "bob"], "properties": {"room": "1"}}}
    assert values["singleuser"]["memory"] == {"limit": "512M", "guarantee": "512M"}  # under the chart's 1G default
    assert values["singleuser"]["cpu"] == {"limit": 1.5}
    assert values["singleuser"]["defaultUrl"] == "/tree"
    assert values["cull"]["timeout"] == 90 and values["cull"]["adminUsers"] is False
    assert set(unmapped) >= {"auth.type", "users.extra_user_groups", "user_environment.default_app"}
    assert "/etc/shadow" in unmapped["auth.type"]


def test_ldap_settings_move_with_their_secret():
    ldap = {"server_address": "ldap.example.org", "lookup_dn": True, "user_search_base": "ou=people,dc=x",
            "user_attribute": "uid", "lookup_dn_search_user": "cn=reader,dc=x",
            "lookup_dn_search_password": "s3cret", "allowed_groups": ["cn=jupyter,ou=groups,dc=x"]}
    values, unmapped = export({"auth": {"type": "ldap", "LDAPAuthenticator": ldap}, "limits": {"memory": "4G"}})
    hub = values["hub"]["config"]
    assert hub["JupyterHub"]["authenticator_class"] == "ldapauthenticator.LDAPAuthenticator"
    assert hub["LDAPAuthenticator"] == ldap
    assert "allow_all" not in hub.get("Authenticator", {})  # allowed_groups restricts who gets in
    assert values["singleuser"]["memory"] == {"limit": "4G"}  # the chart's 1G guarantee stays
    assert "auth.type" not in unmapped


def test_generic_oauth_settings_are_passed_through():
    kind = AUTH_TYPES.get("oauthenticator.generic.GenericOAuthenticator")
    if kind is None:
        pytest.skip("generic OAuth is not in this tree yet")
    section = {"client_id": "hub", "client_secret": "shh", "authorize_url": "https://idp.example/auth",
               "token_url": "https://idp.example/token", "userdata_url": "https://idp.example/userinfo"}
    config = config_mod.merge(config_mod.DEFAULTS, {"auth": {"type": kind}})
    config["auth"]["type"] = kind
    config["auth"]["GenericOAuthenticator"] = section
    result = z2jh.Export(config)
    hub = result.values["hub"]["config"]
    assert hub["JupyterHub"]["authenticator_class"] == "oauthenticator.generic.GenericOAuthenticator"
    assert hub["GenericOAuthenticator"] == section
    errors = list(jsonschema.Draft7Validator(CHART_SCHEMA).iter_errors(helm_merge(CHART_VALUES, result.values)))
    assert not errors


def test_slurm_settings_are_reported_as_left_behind():
    values, unmapped = export({"spawner": {"type": "slurm", "slurm": {"partition": "gpu"}}})
    assert "spawner.slurm" in unmapped
    assert "gpu" not in str(values)


def test_usage_history_settings_are_reported_as_left_behind():
    assert "usage" not in export({})[1]
    assert "usage" in export({"usage": {"retention_hours": 72}})[1]


def test_https_letsencrypt():
    values, unmapped = export({"https": {"enabled": True, "letsencrypt": {
        "email": "admin@example.org", "domains": ["hub.example.org"], "staging": True, "dns_provider": "ovh"}}})
    assert values["proxy"]["https"] == {
        "enabled": True, "type": "letsencrypt", "hosts": ["hub.example.org"],
        "letsencrypt": {"contactEmail": "admin@example.org", "acmeServer": z2jh.LETSENCRYPT_STAGING}}
    assert "HTTP-01" in unmapped["https.letsencrypt.dns_provider"]


def test_https_manual_certificate_is_inlined(tmp_path):
    pki = make_pki(str(tmp_path))
    values, unmapped = export({"https": {"enabled": True, "tls": {"cert": pki["cert"], "key": pki["key"]}}})
    https = values["proxy"]["https"]
    assert https["type"] == "manual"
    assert https["manual"]["cert"] == open(pki["cert"]).read()
    assert "PRIVATE KEY" in https["manual"]["key"]
    assert "proxy.https.hosts" in unmapped


def test_extra_user_packages_are_found_beyond_jupyterlab(tmp_path):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    for name, version, requires in [("jupyterlab", "4.2.0", ["jupyter-server>=2"]),
                                    ("jupyter_server", "2.14.0", []),
                                    ("pandas", "2.2.2", ["numpy>=1.26"]),
                                    ("numpy", "2.0.0", [])]:
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires))
    packages = z2jh.user_packages(str(tmp_path))
    assert packages == ["numpy==2.0.0", "pandas==2.2.2"]
    text = z2jh.dump({"cull": {"enabled": True}}, z2jh.image_note(packages))
    assert "      pandas==2.2.2\n" in text and "singleuser.image" in text
    assert YAML(typ="safe").load(text) == {"cull": {"enabled": True}}


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_auth_type_names_a_jupyterhub_class(kind):
    config = config_mod.merge(config_mod.DEFAULTS, {"auth": {"type": kind}})
    result = z2jh.Export(config)
    cls = result.values["hub"]["config"]["JupyterHub"]["authenticator_class"]
    assert "." in cls and cls in REGISTRY[kind].class_names
    errors = list(jsonschema.Draft7Validator(CHART_SCHEMA).iter_errors(helm_merge(CHART_VALUES, result.values)))
    assert not errors


def test_base_url_pages_services_folders_and_plugin_keys(tmp_path):
    """Nothing is dropped silently: base_url, announcements and the logo map; external services
    move with their token and scopes; shared folders, plugin keys and plugins are named."""
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG fake")
    callback = "https://hub.example.org/jupyter/hub/oauth_callback"
    values, unmapped = export({
        "base_url": "/jupyter/",
        "auth": {"type": "github", "GitHubOAuthenticator": {"client_id": "c", "client_secret": "s",
                                                            "oauth_callback_url": callback}},
        "announcement": {"all": "<b>Maintenance</b> on Friday", "login": "Use your GitHub account"},
        "branding": {"logo": str(logo), "site_name": "Physics 101"},
        "shared_folders": {"course": {"group": "students"}},
        "services": {"launcher": {"api_token": "0123456789abcdef", "scopes": ["servers", "access:servers"]},
                     "dash": {"command": ["python3", "dash.py"], "url": "http://127.0.0.1:10101"}},
        "spawner": {"prewarm": False},
        "roles": {"graders": {"description": "Graders", "scopes": ["access:services!service=launcher"],
                              "groups": ["formgrade"]}},
        "simplest_plugin": {"present": True},
    }, plugin_keys={"simplest_plugin": "simplest"}, plugins=[("simplest", "tljh-plugin-simplest")])
    hub = values["hub"]
    assert hub["baseUrl"] == "/jupyter/"
    assert hub["config"]["GitHubOAuthenticator"]["oauth_callback_url"] == callback, "under hub.baseUrl"
    assert hub["config"]["JupyterHub"]["template_vars"] == {
        "announcement": "<b>Maintenance</b> on Friday", "announcement_login": "Use your GitHub account"}
    logo_file = hub["config"]["JupyterHub"]["logo_file"]
    assert hub["extraFiles"]["branding-logo"]["mountPath"] == logo_file
    assert base64.b64decode(hub["extraFiles"]["branding-logo"]["binaryData"]) == b"\x89PNG fake"
    assert hub["services"] == {"launcher": {"apiToken": "0123456789abcdef"}}
    assert hub["loadRoles"]["launcher-service"] == {"scopes": ["servers", "access:servers"], "services": ["launcher"]}
    assert hub["loadRoles"]["graders"] == {"description": "Graders", "scopes": ["access:services!service=launcher"],
                                           "groups": ["formgrade"]}
    for key in ("branding.site_name", "shared_folders.course", "services.dash", "simplest_plugin",
                "plugin simplest (package tljh-plugin-simplest)", "spawner.prewarm"):
        assert key in unmapped, (key, unmapped)
    assert "services.launcher" not in unmapped


def test_jupyterhub_config_d_settings_are_exported_or_named(tmp_path):
    """Spawner.environment becomes singleuser.extraEnv; a Spawner.mem_limit there is the limit the
    running hub uses, so it is the one exported; settings with no place are named."""
    from traitlets.config import Config

    from tljh_daemon import jupyterhub_config

    c = Config()
    c.Spawner.environment = {"COURSE": "physics"}
    c.Spawner.mem_limit = "3G"
    c.Spawner.cpu_guarantee = 0.5
    c.JupyterHub.template_vars = {"org": "Example College"}
    c.JupyterHub.load_groups = {"tutors": ["tara"]}
    c.JupyterHub.cookie_secret_file = "/elsewhere"
    config = config_mod.merge(config_mod.DEFAULTS, {"limits": {"memory": "1G"}})
    extra = jupyterhub_config.apply(c, config)
    extra.errors = ["/opt/tljh/config/jupyterhub_config.d/20-broken.py failed: NameError: x"]
    values, unmapped = export({"limits": {"memory": "1G"}}, extra=extra)
    assert values["singleuser"]["extraEnv"] == {"COURSE": "physics"}
    assert values["singleuser"]["memory"]["limit"] == "3G", "the effective limit, not config.yaml's"
    assert values["singleuser"]["cpu"]["guarantee"] == 0.5
    assert values["hub"]["config"]["JupyterHub"]["template_vars"] == {"org": "Example College"}
    assert values["hub"]["config"]["JupyterHub"]["load_groups"] == {"tutors": {"users": ["tara"]}}
    assert "JupyterHub.cookie_secret_file (jupyterhub_config.d)" in unmapped
    assert "/opt/tljh/config/jupyterhub_config.d/20-broken.py failed: NameError: x" in unmapped


def test_profiles_become_the_profile_list():
    values, unmapped = export({
        "limits": {"memory": "1G", "groups": {"teachers": {"memory": "4G"}}},
        "profiles": [
            {"slug": "small", "display_name": "Small", "description": "Exercises", "default": True,
             "limits": {"memory": "512M", "cpu": 0.5}},
            {"slug": "big", "display_name": "Big", "limits": {"memory": "4G"}, "groups": ["project"],
             "partition": "gpu"},
            {"slug": "plain", "display_name": "Plain"},
        ],
    })
    assert values["singleuser"]["profileList"] == [
        {"display_name": "Small", "slug": "small", "description": "Exercises", "default": True,
         "kubespawner_override": {"mem_limit": "512M", "mem_guarantee": "512M", "cpu_limit": 0.5}},
        {"display_name": "Big", "slug": "big", "kubespawner_override": {"mem_limit": "4G"}},
        {"display_name": "Plain", "slug": "plain"},
    ]
    assert "callable c.KubeSpawner.profile_list" in unmapped["profiles.1.groups"]
    assert "Slurm" in unmapped["profiles.1.partition"]
    assert "per-group limits" in unmapped["limits.groups.teachers"]
    assert not any(key.startswith("profiles.0") or key.startswith("profiles.2") for key in unmapped)


def test_named_servers_map_to_the_charts_hub_keys():
    values, unmapped = export({"named_servers": {"enabled": True, "limit_per_user": 3},
                               "services": {"cull": {"remove_named_servers": True}}})
    assert values["hub"]["allowNamedServers"] is True and values["hub"]["namedServerLimitPerUser"] == 3
    assert values["cull"]["removeNamedServers"] is True
    assert not any(key.startswith("named_servers") for key in unmapped)
    values, _ = export({})
    assert "allowNamedServers" not in values.get("hub", {})
