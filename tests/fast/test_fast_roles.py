"""Roles (JupyterHub's RBAC): the default roles' scopes, configured roles for users, groups and
services, what the REST API shows, and tljh-config refusing bad roles."""

import os
import sys

import pytest
from click.testing import CliRunner

from tljh_daemon import config as config_mod
from tljh_daemon import roles, scopes
from tljh_daemon.config_cli import main

# JupyterHub's documented defaults (jupyterhub/roles.py, get_default_roles, and scopes.py's
# `self` expansion): (who, scope, target user, held?). A plain user's `user` role is `self`.
DEFAULTS_TABLE = [
    ("user", "read:users", "alice", True),
    ("user", "users:activity", "alice", True),
    ("user", "start:servers", "alice", True),
    ("user", "delete:servers", "alice", True),
    ("user", "read:tokens", "alice", True),
    ("user", "tokens", "alice", True),
    ("user", "access:servers", "alice", True),
    ("user", "users:shares", "alice", True),
    ("user", "read:users", "bob", False),
    ("user", "list:users", "alice", False),  # `self` lists nobody: GET /users is a 403
    ("user", "admin:servers", "alice", False),
    ("user", "access:servers", "bob", False),
    ("user", "admin:users", "alice", False),
    ("user", "access:services", None, False),  # not since JupyterHub 2: only a role gives it
    ("user", "list:services", None, False),
    ("user", "read:hub", None, False),
    ("admin", "admin:users", "bob", True),
    ("admin", "admin:servers", "bob", True),
    ("admin", "access:servers", "bob", True),
    ("admin", "access:services", None, True),
    ("admin", "admin:groups", None, True),
    ("admin", "read:roles", None, True),
    ("admin", "read:hub", None, True),
    ("admin", "proxy", None, True),
    ("admin", "shutdown", None, True),
    ("admin", "read:metrics", None, True),
    ("admin", "admin-ui", None, True),
]


@pytest.mark.parametrize("who, scope, target, held", DEFAULTS_TABLE)
def test_default_roles_hold_what_jupyterhub_documents(who, scope, target, held):
    granted = roles.Roles().user_scopes("alice", admin=(who == "admin"))
    if target is None:
        assert scopes.held_anywhere(granted, scope) is held
    else:
        assert scopes.allows(granted, scope, user=target) is held


def test_default_role_names_and_server_role():
    assert [r.name for r in roles.DEFAULTS] == ["user", "admin", "server", "token"]
    assert roles.Roles().user_roles("alice", False) == ["user"]
    assert roles.Roles().user_roles("alice", True) == ["admin", "user"]
    server = dict((r.name, r) for r in roles.DEFAULTS)["server"]
    assert server.scopes == ("users:activity!user", "access:servers!server")
    assert set(roles.DEFAULTS[1].scopes) >= {"admin:users", "admin:servers", "admin:services", "admin:groups",
                                             "tokens", "access:services", "access:servers", "read:roles", "shares"}


# who gets what from configured roles: (role, holder, scope, target, held?)
CONFIGURED = [
    {"name": "graders-a", "scopes": ["access:services!service=formgrader-a", "read:users!group=course-a"],
     "groups": ["formgrade-a"]},
    {"name": "helpers", "scopes": ["admin:servers!user", "list:users"], "users": ["hal"]},
    {"name": "culler", "scopes": ["read:users:activity", "delete:servers", "access:services!service"],
     "services": ["cull-bot"]},
]


@pytest.mark.parametrize("user, groups, scope, target, held", [
    ("gina", ["formgrade-a"], "access:services", {"service": "formgrader-a"}, True),
    ("gina", ["formgrade-a"], "access:services", {"service": "formgrader-b"}, False),
    ("gina", ["formgrade-a"], "read:users", {"user": "sam", "user_groups": ["course-a"]}, True),
    ("gina", ["formgrade-a"], "read:users", {"user": "sam", "user_groups": ["course-b"]}, False),
    ("sam", ["course-a"], "access:services", {"service": "formgrader-a"}, False),
    ("hal", [], "admin:servers", {"user": "hal"}, True),  # `!user` is the holder
    ("hal", [], "admin:servers", {"user": "sam"}, False),
    ("hal", [], "list:users", {}, True),
    ("hal", [], "admin:users", {"user": "sam"}, False),
])
def test_configured_roles_for_users_and_groups(user, groups, scope, target, held):
    configured = roles.Roles(roles.from_config(CONFIGURED))
    assert configured.user_scopes(user, False, groups) is not None
    assert scopes.allows(configured.user_scopes(user, False, groups), scope, **target) is held


def test_roles_of_users_groups_and_services():
    configured = roles.Roles(roles.from_config(CONFIGURED))
    assert configured.user_roles("gina", False, ["formgrade-a"]) == ["graders-a", "user"]
    assert configured.group_roles("formgrade-a") == ["graders-a"]
    assert configured.service_roles("cull-bot") == ["culler"]
    assert configured.service_scopes("cull-bot") == {"read:users:activity", "delete:servers",
                                                      "access:services!service=cull-bot"}
    assert configured.needs_groups
    direct = roles.from_config([{"name": "x-role", "users": ["a"], "scopes": ["list:users"]}])
    assert not roles.Roles(direct).needs_groups


def test_the_user_role_can_be_redefined_and_the_mapping_form_reads_the_same():
    mapping = {"user": {"scopes": ["self", "access:services"]},
               "graders": {"scopes": ["list:users"], "groups": ["g"]}}
    configured = roles.Roles(roles.from_config(mapping))
    assert scopes.held_anywhere(configured.user_scopes("alice", False), "access:services")
    assert [r.name for r in roles.from_config(mapping)] == ["user", "graders"]
    narrowed = roles.Roles(roles.from_config([{"name": "user", "scopes": ["read:users!user"]}]))
    assert not scopes.allows(narrowed.user_scopes("alice", False), "start:servers", user="alice")
    assert scopes.allows(narrowed.user_scopes("alice", False), "read:users", user="alice")
    assert scopes.allows(narrowed.user_scopes("root", True), "start:servers", user="alice")


@pytest.mark.parametrize("value, key, words", [
    ([{"name": "graders", "scopes": ["access:everything"]}], "roles.0.scopes", "unknown scopes: access:everything"),
    ([{"name": "graders", "colour": "red"}], "roles.0.colour", "unknown key"),
    ([{"scopes": ["list:users"]}], "roles.0", "'name' is a required property"),
    ([{"name": "Bad Name"}], "roles.0.name", "not a role name"),
    ([{"name": "admin", "scopes": ["list:users"]}], "roles.0.scopes", "cannot be changed"),
    ([{"name": "admin", "groups": ["staff"]}], "roles.0.groups", "list them in users.admin"),
    ([{"name": "graders", "users": "alice"}], "roles.0.users", "is not of type 'array'"),
    ([{"name": "dup"}, {"name": "dup"}], "roles.1.name", "defined twice"),
    ({"graders": {"colour": "red"}}, "roles.graders.colour", "unknown key"),
    ({"graders": {"scopes": ["read:users!nobody"]}}, "roles.graders.scopes", "unknown scopes"),
    ("graders", "roles", "is not of type"),
])
def test_bad_roles_are_refused_naming_the_key(value, key, words):
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.validate(config_mod.merge(config_mod.DEFAULTS, {"roles": value}))
    assert e.value.key == key, str(e.value)
    assert words in str(e.value)


def test_bad_service_oauth_settings_are_refused_naming_the_key():
    for spec, key in (({"api_token": "t" * 16, "oauth_client_allowed_scopes": ["nope"]},
                       "services.x.oauth_client_allowed_scopes"),
                      ({"api_token": "t" * 16, "oauth_roles": ["ghost"]}, "services.x.oauth_roles"),
                      ({"command": ["a"], "cwd": "relative/dir"}, "services.x.cwd")):
        with pytest.raises(config_mod.ConfigError) as e:
            config_mod.validate(config_mod.merge(config_mod.DEFAULTS, {"services": {"x": spec}}))
        assert e.value.key == key, str(e.value)


def test_tljh_config_builds_a_role_and_refuses_a_bad_one(tmp_path, as_root_for_tljh_config):
    """The role a course needs, in tljh-config commands; a typo is refused before the file is written."""
    def run(*args):
        return CliRunner().invoke(main, ["--prefix", str(tmp_path), *args])

    path = os.path.join(tmp_path, "config", "config.yaml")
    for line in (("add-item", "roles.graders-a.scopes", "access:services!service=formgrader-a"),
                 ("add-item", "roles.graders-a.groups", "formgrade-a"),
                 ("set", "roles.graders-a.description", "Course A's graders")):
        result = run(*line)
        assert result.exit_code == 0, (line, result.output)
    config = config_mod.load(path)
    assert config["roles"] == {"graders-a": {"scopes": ["access:services!service=formgrader-a"],
                                             "groups": ["formgrade-a"], "description": "Course A's graders"}}
    with open(path) as f:
        before = f.read()
    refused = run("add-item", "roles.graders-a.scopes", "acess:services")
    assert refused.exit_code == 1
    assert "roles.graders-a.scopes" in refused.output and "acess:services" in refused.output
    refused = run("set", "roles.graders-a.colour", "red")
    assert refused.exit_code == 1 and "roles.graders-a.colour" in refused.output
    with open(path) as f:
        assert f.read() == before


async def test_api_shows_roles_and_effective_scopes(start_hub):
    hub = await start_hub({"roles": [
        {"name": "graders-a", "description": "Course A", "scopes": ["access:services!service=formgrader-a",
                                                                    "list:users"], "groups": ["formgrade-a"]},
        {"name": "helpers", "scopes": ["read:users:activity"], "users": ["hal"]},
    ]})
    admin = hub.token("boss", admin=True)
    gina = hub.token("gina")
    async with hub.api("GET", "/user", gina) as resp:
        me = await resp.json()
    assert me["roles"] == ["user"]
    assert not scopes.held_anywhere(me["scopes"], "access:services"), me["scopes"]
    async with hub.api("POST", "/groups/formgrade-a", admin, json={"users": ["gina"]}) as resp:
        assert resp.status == 201
    # Joining the group takes effect at once: her roles, and her browser session's scopes. A token
    # she made before keeps the scopes it was made with (never more than she holds now).
    async with hub.api("GET", "/user", gina) as resp:
        me = await resp.json()
    assert me["roles"] == ["graders-a", "user"]
    assert not scopes.held_anywhere(me["scopes"], "access:services")
    browser = await hub.browser("gina")
    async with browser.api("GET", "/user") as resp:
        me = await resp.json()
    assert {"access:services!service=formgrader-a", "list:users"} <= set(me["scopes"])
    async with hub.api("GET", "/users/gina", admin) as resp:
        assert (await resp.json())["roles"] == ["graders-a", "user"]
    async with hub.api("GET", "/groups/formgrade-a", admin) as resp:
        assert (await resp.json())["roles"] == ["graders-a"]
    async with hub.api("GET", "/users/hal", hub.token("hal")) as resp:
        assert (await resp.json())["roles"] == ["helpers", "user"]
    async with hub.api("GET", "/users/boss", admin) as resp:
        assert (await resp.json())["roles"] == ["admin", "user"]
    # A new token without scopes gets what the roles give now.
    async with hub.api("POST", "/users/gina/tokens", gina, json={}) as resp:
        assert resp.status == 201
        assert "access:services!service=formgrader-a" in (await resp.json())["scopes"]
    async with hub.api("DELETE", "/groups/formgrade-a/users", admin, json={"users": ["gina"]}) as resp:
        assert resp.status == 200
    async with browser.api("GET", "/user") as resp:
        assert not scopes.held_anywhere((await resp.json())["scopes"], "access:services")


async def test_external_service_with_a_role_from_config_yaml(start_hub):
    """An external service (url + api_token, no command) uses its fixed token on the REST API,
    with what its role gives; the hub keeps only the token's hash."""
    secret = "external-secret-token-1234"
    hub = await start_hub({"services": {"reports": {"api_token": secret, "url": "http://127.0.0.1:10103"}},
                           "roles": [{"name": "reporter", "scopes": ["list:users", "read:users:activity"],
                                      "services": ["reports"]}]})
    service = hub.hub.service_manager.services["reports"]
    assert service.proc is None and service.token is None and service.api_token is None
    assert secret not in repr(service) and secret not in repr(hub.hub.settings)
    assert hub.proxy.routes["/services/reports/"] == "http://127.0.0.1:10103"
    hub.add_user("alice")
    async with hub.api("GET", "/user", secret) as resp:
        me = await resp.json()
    assert me["kind"] == "service" and me["roles"] == ["reporter"]
    assert set(me["scopes"]) == {"list:users", "read:users:activity"}
    async with hub.api("GET", "/users", secret) as resp:
        assert resp.status == 200 and "alice" in {u["name"] for u in await resp.json()}
    async with hub.api("DELETE", "/users/alice", secret) as resp:
        assert resp.status == 403
    async with hub.api("GET", "/services", hub.token("boss", admin=True)) as resp:
        assert (await resp.json())["reports"]["roles"] == ["reporter"]


async def test_the_admin_role_makes_an_admin_service_and_admin_users(start_hub):
    hub = await start_hub({"services": {"ops": {"api_token": "ops-secret-token-123"}},
                           "roles": [{"name": "admin", "services": ["ops"], "users": ["ada"]}]})
    assert hub.hub.service_manager.services["ops"].admin is True
    async with hub.api("POST", "/users/newcomer", "ops-secret-token-123") as resp:
        assert resp.status == 201
    assert "ada" in hub.hub.settings.auth.admin  # made an admin at start, as users.admin
    async with hub.api("GET", "/services", hub.token("boss", admin=True)) as resp:
        assert (await resp.json())["ops"]["admin"] is True


async def test_service_cwd_and_oauth_allowed_scopes(start_hub, tmp_path):
    """`cwd` is the command's working directory; a user with access logs in to the service and its
    token carries the oauth_client_allowed_scopes and oauth_roles' scopes that user holds."""
    workdir = tmp_path / "course-a"
    workdir.mkdir()
    out = tmp_path / "cwd.txt"
    script = (f"import os, time; open({str(out)!r} + '.tmp', 'w').write(os.getcwd());"
              f" os.replace({str(out)!r} + '.tmp', {str(out)!r}); time.sleep(60)")
    hub = await start_hub({
        "services": {"formgrader-a": {
            "command": [sys.executable, "-c", script], "url": "http://127.0.0.1:10104", "cwd": str(workdir),
            "oauth_client_allowed_scopes": ["read:users!user", "admin:users"], "oauth_roles": ["readers"]}},
        "roles": [{"name": "graders-a", "scopes": ["access:services!service=formgrader-a"], "users": ["gina"]},
                  {"name": "readers", "scopes": ["read:users:groups!user"]}],
    })
    await hub.wait_for(out.exists, "the service to start")
    assert out.read_text() == str(workdir)
    service = hub.hub.service_manager.services["formgrader-a"]
    query = {"client_id": "service-formgrader-a", "redirect_uri": "/services/formgrader-a/oauth_callback",
             "response_type": "code", "state": "s"}
    refused = await hub.browser("sam")
    async with refused.request("GET", "/hub/api/oauth2/authorize", params=query) as resp:
        assert resp.status == 403
    browser = await hub.browser("gina")
    async with browser.request("GET", "/hub/api/oauth2/authorize", params=query) as resp:
        assert resp.status == 302, await resp.text()
        code = resp.headers["Location"].split("code=")[1].split("&")[0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": query["redirect_uri"],
            "client_id": "service-formgrader-a", "client_secret": service.token}
    async with hub.request("POST", "/hub/api/oauth2/token", data=form) as resp:
        assert resp.status == 200
        granted = set((await resp.json())["scope"].split())
    # the access scope, her own read:users and read:users:groups; never admin:users (she lacks it)
    assert granted == {"access:services!service=formgrader-a", "read:users!user=gina", "read:users:groups!user=gina"}


async def test_admin_panel_shows_each_users_roles(start_hub):
    import re

    hub = await start_hub({"roles": {"graders-a": {"scopes": ["list:users"], "groups": ["formgrade-a"]},
                                     "helpers": {"scopes": ["read:users:activity"], "users": ["hal"]}}})
    admin = hub.token("boss", admin=True)
    for name in ("gina", "hal", "sam"):
        hub.add_user(name)
    async with hub.api("POST", "/groups/formgrade-a", admin, json={"users": ["gina"]}) as resp:
        assert resp.status == 201
    browser = await hub.browser("boss")
    async with browser.request("GET", "/hub/admin") as resp:
        assert resp.status == 200
        text = await resp.text()

    def roles_cell(name):
        row = re.search(rf'<tr data-user="{name}".*?</tr>', text, re.S).group(0)
        return re.search(r'<td class="roles" data-label="Roles">(.*?)</td>', row).group(1)

    assert roles_cell("gina") == "graders-a"
    assert roles_cell("hal") == "helpers"
    assert roles_cell("boss") == "admin"
    assert roles_cell("sam") == ""  # only the `user` role, which everyone holds


def test_upgrade_note_names_services_no_role_lets_users_reach():
    """Users no longer hold access:services by default: the installer (and the daemon's log)
    names the routed services only admins can now reach, with the commands to grant access."""
    def config(**extra):
        return config_mod.merge(config_mod.DEFAULTS, {"services": {
            "board": {"command": ["x"], "url": "http://127.0.0.1:9001"},
            "grades": {"command": ["x"], "url": "http://127.0.0.1:9002"},
            "bot": {"command": ["x"]}}, **extra})  # no url: no browser reaches it anyway

    assert roles.unreachable_services(config()) == ["board", "grades"]
    granted = config(roles={"board-users": {"scopes": ["access:services!service=board"], "groups": ["g"]}})
    assert roles.unreachable_services(granted) == ["grades"]
    everyone = config(roles={"user": {"scopes": ["self", "access:services"]}})
    assert roles.unreachable_services(everyone) == []
    note = roles.access_note(["grades"])
    assert "tljh-config add-item roles.grades-users.scopes access:services!service=grades" in note
    # the commands in the note are accepted as written
    import re
    commands = re.findall(r"tljh-config add-item (\S+) ([^\s;]+)", note)
    assert [key for key, _ in commands] == ["roles.grades-users.scopes", "roles.grades-users.groups"]
    value = config_mod.merge(config_mod.DEFAULTS, {"roles": {"grades-users": {
        "scopes": [commands[0][1]], "groups": ["graders"]}}})
    config_mod.validate(value)
    assert roles.unreachable_services(config(roles=value["roles"])) == ["board"]


async def test_daemon_logs_the_note_at_start(start_hub, caplog):
    hub = await start_hub({"services": {"board": {"api_token": "board-secret-token", "url": "http://127.0.0.1:9003"}}})
    assert hub.hub.service_manager.services["board"].url
    assert "only admins can reach the service(s) board" in caplog.text


def test_role_user_names_follow_the_hubs_name_rules():
    """Role members are matched as the hub's names (lowercase); a name the REST API would refuse
    is refused by tljh-config naming the key, and holds nothing when it comes from load_roles."""
    configured = roles.Roles(roles.from_config([{"name": "helpers", "scopes": ["list:users"],
                                                 "users": ["Hal", "bad/name"]}]))
    assert configured.user_roles("hal", False) == ["helpers", "user"]
    assert all("/" not in name for name in configured._by_user)
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.validate(config_mod.merge(config_mod.DEFAULTS, {"roles": {"helpers": {"users": ["bad/name"]}}}))
    assert e.value.key == "roles.helpers.users"


async def test_a_plain_user_cannot_list_users_as_in_jupyterhub(hub):
    async with hub.api("GET", "/users", hub.token("alice")) as resp:
        assert resp.status == 403
    async with hub.api("GET", "/users/alice", hub.token("alice")) as resp:
        assert resp.status == 200


# nbgrader's demo_multiple_classes jupyterhub_config.py, in its own words (load_groups, load_roles
# with the `server` role redefined as `inherit`, and a service per course with a fixed token)
NBGRADER_DEMO = '''
c.JupyterHub.load_groups = {
    "formgrade-course101": ["instructor1"],
    "nbgrader-course101": ["instructor1", "student1"],
    "nbgrader-course123": ["student2"],
}
c.JupyterHub.load_roles = roles = [
    {"name": "server", "scopes": ["inherit"]},
]
for course in ["course101", "course123"]:
    roles.append({"name": f"formgrade-{course}", "groups": [f"formgrade-{course}"],
                  "scopes": [f"access:services!service={course}"]})
    roles.append({"name": f"nbgrader-{course}", "groups": [f"nbgrader-{course}"],
                  "scopes": ["list:services", f"read:services!service={course}"]})
c.JupyterHub.services = [
    {"name": "course101", "url": "http://127.0.0.1:9999", "api_token": "course101-token-0123456789"},
    {"name": "course123", "url": "http://127.0.0.1:9998", "api_token": "course123-token-0123456789"},
]
'''


async def test_nbgrader_demo_config_roles_services_and_server_tokens(start_hub, tmp_path):
    prefix = tmp_path / "prefix0"
    (prefix / "config" / "jupyterhub_config.d").mkdir(parents=True)
    (prefix / "config" / "jupyterhub_config.d" / "nbgrader.py").write_text(NBGRADER_DEMO)
    hub = await start_hub(prefix=str(prefix))
    assert not [n for n in hub.hub.extra.not_applied if "load_roles" in n], hub.hub.extra.not_applied
    # A student's server token (the `server` role is `inherit`) lists the course services: the
    # full model of their own course, only the name of the other.
    await hub.start_server("student1", hub.token("student1"))
    server_token = hub.spawner.requests[-1].env["JUPYTERHUB_API_TOKEN"]
    async with hub.api("GET", "/services", server_token) as resp:
        assert resp.status == 200, await resp.text()
        services = await resp.json()
    assert services["course101"]["url"] == "http://127.0.0.1:9999" and services["course101"]["kind"] == "service"
    assert services["course123"] == {"kind": "service", "name": "course123"}
    async with hub.api("GET", "/services/course101", server_token) as resp:
        assert resp.status == 200 and (await resp.json())["prefix"] == "/services/course101/"
    async with hub.api("GET", "/services/course123", server_token) as resp:
        # list:services implies read:services:name (JupyterHub's hierarchy): the name only
        assert resp.status == 200 and await resp.json() == {"kind": "service", "name": "course123"}
    async with hub.api("GET", "/services/course123", hub.token("student1", ["read:users!user=student1"])) as resp:
        assert resp.status == 403
    async with hub.api("GET", "/users/student2", server_token) as resp:
        assert resp.status in (403, 404), "inherit is the owner's scopes, no more"
    # `inherit` follows the owner: a course role given later reaches the running server's token.
    async with hub.api("GET", "/services/course123", server_token) as resp:
        assert "url" not in await resp.json()
    async with hub.api("POST", "/groups/nbgrader-course123/users", hub.token("boss", admin=True),
                       json={"users": ["student1"]}) as resp:
        assert resp.status == 200, await resp.text()
    async with hub.api("GET", "/services/course123", server_token) as resp:
        assert (await resp.json())["url"] == "http://127.0.0.1:9998"
    # Without a course role, a user lists no services (403), as in JupyterHub.
    async with hub.api("GET", "/services", hub.token("nobody")) as resp:
        assert resp.status == 403
    async with hub.api("GET", "/services/nope", hub.token("boss", admin=True)) as resp:
        assert resp.status == 404
    # Only the course's graders may open the formgrader.
    query = {"client_id": "service-course101", "redirect_uri": "/services/course101/oauth_callback",
             "response_type": "code"}
    for name, status in (("instructor1", 302), ("student1", 403)):
        browser = await hub.browser(name)
        async with browser.request("GET", "/hub/api/oauth2/authorize", params=query) as resp:
            assert resp.status == status, name


async def test_the_default_server_role_only_reports_activity_and_identifies(hub):
    await hub.start_server("alice", hub.token("alice"))
    server_token = hub.spawner.requests[-1].env["JUPYTERHUB_API_TOKEN"]
    async with hub.api("GET", "/user", server_token) as resp:
        assert set((await resp.json())["scopes"]) == {"users:activity!user=alice", "access:servers!server=alice/",
                                                       "read:users:name!user=alice"}
