"""Profiles (`profiles`) and per-group limits (`limits.groups`): validated config, the REST
API's user_options, the spawn page's options form, the limits a server starts with, the
stored choice in the server model and the admin panel, Slurm's partition and options."""

import os
import re

import pytest
from click.testing import CliRunner

from tljh_daemon import config as config_mod
from tljh_daemon import groups, limit_changes, profiles
from tljh_daemon.spawner import slurm_settings

COURSE = {
    "limits": {"memory": "1G", "cpu": 1},
    "profiles": [
        {"slug": "small", "display_name": "Small", "description": "For exercises", "default": True,
         "limits": {"memory": "512M"}},
        {"slug": "big", "display_name": "Big", "description": "For the project", "limits": {"memory": "4G", "cpu": 2}},
        {"slug": "grading", "display_name": "Grading", "groups": ["teachers"], "limits": {"memory": "8G"}},
    ],
}


def in_group(hub, group, *names):
    for name in names:
        hub.add_user(name)
    if groups.get(hub.db, group) is None:
        groups.create(hub.db, group)
    groups.add_members(hub.db, group, list(names))


async def start(hub, name, token, **kwargs):
    """POST /users/<name>/server with `kwargs` (json= or data=); (status, JSON message or None)."""
    async with hub.api("POST", f"/users/{name}/server", token, **kwargs) as resp:
        body = await resp.json() if resp.status >= 400 else None
        return resp.status, body and body["message"]


# -- configuration ---------------------------------------------------------------


@pytest.mark.parametrize("yaml_text, key, words", [
    ("profiles:\n- display_name: X\n", "profiles.0", "'slug' is a required property"),
    ("profiles:\n- slug: Big Server\n  display_name: X\n", "profiles.0.slug", "does not match"),
    ("profiles:\n- slug: a\n  display_name: ''\n", "profiles.0.display_name", ""),
    ("profiles:\n- slug: a\n  display_name: A\n  limits:\n    memory: lots\n", "profiles.0.limits.memory",
     "does not match"),
    ("profiles:\n- slug: a\n  display_name: A\n  limits:\n    cpu: 0\n", "profiles.0.limits.cpu", ""),
    ("profiles:\n- slug: a\n  display_name: A\n  limits:\n    disk: 1G\n", "profiles.0.limits.disk", "unknown key"),
    ("profiles:\n- slug: a\n  display_name: A\n  groups: teachers\n", "profiles.0.groups", "not of type"),
    ("profiles:\n- slug: a\n  display_name: A\n  image: x\n", "profiles.0.image", "unknown key"),
    ("profiles:\n- slug: a\n  display_name: A\n- slug: a\n  display_name: B\n", "profiles.1.slug",
     "already the slug of profiles.0"),
    ("profiles:\n- slug: a\n  display_name: A\n  default: true\n- slug: b\n  display_name: B\n  default: true\n",
     "profiles.1.default", "only one profile"),
    ("profiles:\n  slug: a\n", "profiles", "not of type 'array'"),
    ("profiles:\n- slug: a\n  display_name: A\n  environment: ml\n", "profiles.0.environment",
     "'ml' is not one of environments.* (none is configured)"),
    ("limits:\n  groups:\n    teachers:\n      memory: lots\n", "limits.groups.teachers.memory", "does not match"),
    ("limits:\n  groups:\n    teachers:\n      gpu: 1\n", "limits.groups.teachers.gpu", "unknown key"),
    ("limits:\n  groups:\n    teachers: 4G\n", "limits.groups.teachers", "not of type 'object'"),
])
def test_bad_profiles_and_group_limits_name_their_key(tmp_path, yaml_text, key, words):
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text)
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.load(str(path))
    assert e.value.key == key, str(e.value)
    assert words in str(e.value)


def test_tljh_config_refuses_a_bad_group_limit_and_leaves_the_file(tmp_path, as_root_for_tljh_config):
    from tljh_daemon.config_cli import main

    def run(*args):
        return CliRunner().invoke(main, ["--prefix", str(tmp_path), *args])

    assert run("set", "limits.groups.teachers.memory", "4G").exit_code == 0
    path = os.path.join(tmp_path, "config", "config.yaml")
    before = open(path).read()
    refused = run("set", "limits.groups.teachers.cpu", "0")
    assert refused.exit_code != 0
    assert "config key 'limits.groups.teachers.cpu'" in refused.output and "was not changed" in refused.output
    assert open(path).read() == before
    assert run("get", "limits.groups.teachers.memory").output.strip() == "4G"


# -- the limits a server gets -----------------------------------------------------


def test_group_limits_largest_wins_and_a_profile_wins_over_them():
    group_limits = {"teachers": {"memory": "4G"}, "staff": {"memory": "1536M", "cpu": 3}, "other": {"memory": "64G"}}
    base = {"memory": "1G", "cpu": 1}
    assert profiles.effective_limits(base, group_limits, [], None) == base
    assert profiles.effective_limits(base, group_limits, ["teachers", "staff"], None) == {"memory": "4G", "cpu": 3}
    assert profiles.effective_limits(base, group_limits, ["staff"], None) == {"memory": "1536M", "cpu": 3}
    small = profiles.Profile("small", "Small", limits={"memory": "512M"})
    assert profiles.effective_limits(base, group_limits, ["teachers", "staff"], small) == {"memory": "512M", "cpu": 3}
    assert profiles.effective_limits({}, {"t": {"memory": "2G"}}, ["t"], None) == {"memory": "2G"}


async def test_group_limits_reach_the_spawner_and_the_environment(start_hub):
    hub = await start_hub({"limits": {"memory": "1G", "groups": {"teachers": {"memory": "4G", "cpu": 2},
                                                                  "staff": {"memory": "2G", "cpu": 3}}}})
    in_group(hub, "teachers", "tina")
    in_group(hub, "staff", "tina", "sam")
    await hub.start_server("tina", hub.token("tina"))
    await hub.start_server("bob", hub.token("bob"))
    await hub.start_server("sam", hub.token("sam"))
    limits = {r.user: r.limits for r in hub.spawner.requests}
    assert limits == {"tina": {"memory": "4G", "cpu": 3}, "bob": {"memory": "1G"}, "sam": {"memory": "2G", "cpu": 3}}
    tina = next(r for r in hub.spawner.requests if r.user == "tina")
    assert (tina.env["MEM_LIMIT"], tina.env["CPU_LIMIT"]) == (str(4 * 1024**3), "3.0")
    assert hub.hub.settings.server.limits == {"memory": "1G"}, "limits.groups is not a limit itself"
    # Started with what the configuration gives them: no running server "keeps other limits".
    rows = hub.db.all(limit_changes.RUNNING_SQL)
    server = hub.hub.settings.server
    expected = limit_changes.expected_limits(server.limits, server.group_limits, server.profiles,
                                             groups.names_of_users(hub.db, ["tina", "bob", "sam"]))
    assert limit_changes.with_other_limits(rows, expected) == []
    groups.remove_members(hub.db, "teachers", ["tina"])
    expected = limit_changes.expected_limits(server.limits, server.group_limits, server.profiles,
                                             groups.names_of_users(hub.db, ["tina", "bob", "sam"]))
    assert limit_changes.with_other_limits(rows, expected) == ["tina"]


# -- the REST API -------------------------------------------------------------------


async def test_rest_api_starts_the_chosen_profile_and_shows_it(start_hub):
    hub = await start_hub(COURSE)
    token = hub.token("alice")
    assert await start(hub, "alice", token, json={"profile": "big"}) == (202, None)
    await hub.wait_for_state("alice", "running")
    assert hub.spawner.requests[-1].limits == {"memory": "4G", "cpu": 2}
    assert hub.spawner.requests[-1].profile.slug == "big"
    async with hub.api("GET", "/users/alice", token) as resp:
        model = await resp.json()
    assert model["servers"][""]["user_options"] == {"profile": "big"}
    async with hub.api("DELETE", "/users/alice/server", token) as resp:
        assert resp.status == 204
    async with hub.api("GET", "/users/alice?include_stopped_servers=1", token) as resp:
        assert (await resp.json())["servers"][""]["user_options"] == {"profile": "big"}


@pytest.mark.parametrize("body", [None, "", "{}", '{"profile": ""}', '{"profile": null}'])
async def test_no_options_start_the_default_profile(start_hub, body):
    hub = await start_hub(COURSE)
    kwargs = {} if body is None else {"data": body, "headers": {"Content-Type": "application/json"}}
    assert await start(hub, "alice", hub.token("alice"), **kwargs) == (202, None)
    await hub.wait_for_state("alice", "running")
    assert hub.spawner.requests[-1].limits == {"memory": "512M", "cpu": 1}
    assert (await hub.hub.servers.row("alice")).user_options == '{"profile": "small"}'


@pytest.mark.parametrize("options, status, words", [
    ({"profile": "huge"}, 400, "no such profile 'huge'; the profiles are: small, big, grading"),
    ({"profile": "grading"}, 403, "profile 'grading' is only for members of the groups teachers"),
    ({"profile": 5}, 400, "profile must be a string"),
    ({"profile": "big", "image": "x"}, 400, "unknown user_options 'image'"),
])
async def test_bad_options_are_refused_with_a_message(start_hub, options, status, words):
    hub = await start_hub(COURSE)
    got, message = await start(hub, "alice", hub.token("alice"), json=options)
    assert got == status and words in message
    assert await hub.hub.servers.state("alice") == "stopped" and not hub.spawner.requests


async def test_a_groups_profile_is_open_to_its_members_and_admins_start_others_with_it(start_hub):
    hub = await start_hub(COURSE)
    in_group(hub, "teachers", "tina")
    assert await start(hub, "tina", hub.token("tina"), json={"profile": "grading"}) == (202, None)
    await hub.wait_for_state("tina", "running")
    assert hub.spawner.requests[-1].limits == {"memory": "8G", "cpu": 1}
    admin = hub.token("root", admin=True)
    hub.add_user("bob")
    status, message = await start(hub, "bob", admin, json={"profile": "grading"})
    assert (status, message) == (403, "profile 'grading' is only for members of the groups teachers"), \
        "the profile must fit the server's user, whoever starts it"
    assert await start(hub, "bob", admin, json={"profile": "big"}) == (202, None)
    await hub.wait_for_state("bob", "running")  # not left starting when the test ends


async def test_without_profiles_a_profile_is_refused_and_none_is_fine(hub):
    status, message = await start(hub, "alice", hub.token("alice"), json={"profile": "big"})
    assert status == 400 and "no profiles are configured" in message
    assert await start(hub, "alice", hub.token("alice"), json={}) == (202, None)
    await hub.wait_for_state("alice", "running")
    async with hub.api("GET", "/users/alice", hub.token("alice")) as resp:
        assert (await resp.json())["servers"][""]["user_options"] == {}


# -- the spawn page ------------------------------------------------------------------


def radios(html):
    """[(value, checked)] of the page's profile radio buttons, each with its <label for=...>."""
    found = []
    for tag in re.findall(r'<input type="radio"[^>]*>', html):
        value = re.search(r'value="([^"]*)"', tag).group(1)
        ident = re.search(r'id="([^"]*)"', tag).group(1)
        assert f'<label for="{ident}">' in html, f"no label for {ident}"
        found.append((value, "checked" in tag))
    return found


async def test_spawn_page_offers_the_users_profiles_and_starts_the_chosen_one(start_hub):
    hub = await start_hub(COURSE)
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as resp:
        assert '<a class="button" id="start" href="/hub/spawn">Start my server</a>' in await resp.text()
    async with browser.request("GET", "/hub/spawn") as resp:
        assert resp.status == 200
        html = await resp.text()
    assert radios(html) == [("small", True), ("big", False)], "grading is for teachers only"
    assert "<legend>Server size</legend>" in html and "For the project (4GB memory, 2 CPU)" in html
    form = {"_xsrf": browser.xsrf, "profile": "big"}
    async with browser.request("POST", "/hub/spawn", data=form) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/hub/spawn-pending/alice"
    await hub.wait_for_state("alice", "running")
    assert hub.spawner.requests[-1].limits == {"memory": "4G", "cpu": 2}
    async with browser.request("GET", "/hub/spawn") as resp:  # running: straight to the server
        assert resp.status == 302 and resp.headers["Location"] == "/user/alice/"


async def test_spawn_page_refuses_a_profile_outside_the_users_groups(start_hub):
    hub = await start_hub(COURSE)
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/spawn?next=/user/alice/lab") as resp:
        assert 'action="/hub/spawn/alice?next=%2Fuser%2Falice%2Flab"' in await resp.text()
    async with browser.request("POST", "/hub/spawn", data={"_xsrf": browser.xsrf, "profile": "grading"}) as resp:
        assert resp.status == 403
        html = await resp.text()
    assert "profile &#39;grading&#39; is only for members of the groups teachers" in html
    assert radios(html) == [("small", True), ("big", False)]
    assert await hub.hub.servers.state("alice") == "stopped"
    # The home page's plain start (no profile field) takes the default.
    async with browser.request("POST", "/hub/spawn", data={"_xsrf": browser.xsrf}) as resp:
        assert resp.status == 302
    await hub.wait_for_state("alice", "running")
    assert hub.spawner.requests[-1].limits == {"memory": "512M", "cpu": 1}


async def test_a_failed_start_is_retried_with_its_profile(start_hub):
    hub = await start_hub(COURSE)
    hub.accounts.fail = "no account today"
    browser = await hub.browser("alice")
    async with browser.request("POST", "/hub/spawn", data={"_xsrf": browser.xsrf, "profile": "big"}):
        pass
    await hub.wait_for_state("alice", "failed")
    async with browser.request("GET", "/hub/spawn-pending/alice") as resp:
        assert '<input type="hidden" name="profile" value="big">' in await resp.text()


async def test_no_form_without_profiles_for_the_user(start_hub):
    hub = await start_hub({"profiles": [{"slug": "grading", "display_name": "Grading", "groups": ["teachers"],
                                         "limits": {"memory": "8G"}}]})
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/spawn") as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/hub/spawn-pending/alice"
    await hub.wait_for_state("alice", "running")
    assert hub.spawner.requests[-1].limits == {} and (await hub.hub.servers.row("alice")).user_options == "{}"


async def test_admin_panel_shows_the_profile_of_running_servers(start_hub):
    hub = await start_hub(COURSE)
    await start(hub, "alice", hub.token("alice"), json={"profile": "big"})
    await hub.wait_for_state("alice", "running")
    browser = await hub.browser("root")
    hub.db.execute("UPDATE users SET admin=1 WHERE name='root'")
    async with browser.request("GET", "/hub/admin") as resp:
        html = await resp.text()
    assert '<small class="server-profile">Profile: Big</small>' in html
    assert 'id="other-limits"' not in html, "started with what its profile gives: nothing to flag"


# -- Slurm -------------------------------------------------------------------------


def test_slurm_takes_the_profiles_partition_options_and_limits():
    settings = {**slurm_settings.DEFAULTS, "partition": "cpu", "memory": "2G", "options": ["--qos=normal"]}
    gpu = profiles.Profile("gpu", "GPU", limits={"memory": "16G"}, partition="gpu", options=("--gres=gpu:1",))
    job = slurm_settings.job_settings(settings, {"memory": "16G"}, [], gpu)
    assert slurm_settings.sbatch_options(job) == ["--partition=gpu", "--mem=16G", "--qos=normal", "--gres=gpu:1"]
    plain = slurm_settings.job_settings(settings, {"memory": "1G"}, [], profiles.Profile("s", "S"))
    assert slurm_settings.sbatch_options(plain) == ["--partition=cpu", "--mem=2G", "--qos=normal"]


async def test_a_restart_for_a_demotion_keeps_the_profile(start_hub):
    hub = await start_hub(COURSE)
    boss = hub.token("boss", admin=True)
    alice = hub.token("alice", admin=True)
    assert await start(hub, "alice", alice, json={"profile": "big"}) == (202, None)
    await hub.wait_for_state("alice", "running")
    async with hub.api("PATCH", "/users/alice", boss, json={"admin": False}) as resp:
        assert resp.status == 200 and "restarted" in (await resp.json())["server_note"]
    await hub.wait_for_state("alice", "running")
    assert [(r.admin, r.profile.slug) for r in hub.spawner.requests] == [(True, "big"), (False, "big")]


async def test_a_profile_posted_to_a_hub_without_profiles_is_a_clear_400(hub):
    browser = await hub.browser("alice")
    async with browser.request("POST", "/hub/spawn", data={"_xsrf": browser.xsrf, "profile": "big"}) as resp:
        assert resp.status == 400
        assert "no profiles are configured on this hub" in await resp.text()
    assert await hub.hub.servers.state("alice") == "stopped"


def environment_with_a_server(path):
    """An environment directory with an executable (never run) jupyterhub-singleuser."""
    singleuser = path / "bin" / "jupyterhub-singleuser"
    singleuser.parent.mkdir(parents=True)
    singleuser.write_text("#!/bin/sh\nexit 1\n")
    singleuser.chmod(0o700)
    return str(path)


async def test_a_profiles_environment_runs_the_server_from_it(start_hub, tmp_path):
    """The profile's environment's jupyterhub-singleuser, with its bin first on PATH; the default
    profile keeps the user environment's (a fresh start: the launcher serves that one only)."""
    ml = environment_with_a_server(tmp_path / "ml-env")
    hub = await start_hub({
        "environments": {"ml": {"path": ml}},
        "profiles": [{"slug": "plain", "display_name": "Plain", "default": True},
                     {"slug": "ml", "display_name": "Machine learning", "environment": "ml"}],
    })
    token = hub.token("alice")
    assert await start(hub, "alice", token, json={"profile": "ml"}) == (202, None)
    await hub.wait_for_state("alice", "running")
    request = hub.spawner.requests[-1]
    assert request.cmd[0] == os.path.join(ml, "bin", "jupyterhub-singleuser")
    assert request.env["PATH"].split(":")[0] == os.path.join(ml, "bin")
    async with hub.api("DELETE", "/users/alice/server", token) as resp:
        assert resp.status == 204
    # JupyterHub 6: a start that names no user_options (no body, {}) uses the last ones again;
    # empty ones ({"user_options": {}}) are the defaults.
    assert await start(hub, "alice", token, json={}) == (202, None)
    await hub.wait_for_state("alice", "running")
    assert hub.spawner.requests[-1].cmd[0].startswith(ml)
    async with hub.api("DELETE", "/users/alice/server", token) as resp:
        assert resp.status == 204
    assert await start(hub, "alice", token, json={"user_options": {}}) == (202, None)
    await hub.wait_for_state("alice", "running")
    assert not hub.spawner.requests[-1].cmd[0].startswith(ml)


async def test_a_profiles_environment_without_a_server_fails_the_start_and_says_why(start_hub, tmp_path):
    bare = tmp_path / "bare-env"
    bare.mkdir()
    hub = await start_hub({
        "environments": {"bare": {"path": str(bare)}},
        "profiles": [{"slug": "bare", "display_name": "Bare", "environment": "bare"}],
    })
    token = hub.token("alice")
    assert await start(hub, "alice", token, json={"profile": "bare"}) == (202, None)
    await hub.wait_for_state("alice", "failed")
    record = await hub.hub.servers.row("alice")
    assert "profile 'bare'" in record.message and "no jupyterhub-singleuser" in record.message
