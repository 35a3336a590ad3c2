"""Hardening (issue 18), in-process: each small case an outside attempt to break a fresh
install found, so none comes back. The end-to-end cases are in tests/test_security.py."""

import dataclasses
import os
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from tljh_daemon import config as config_mod
from tljh_daemon import config_cli, configfile, install_marker


# -- user and group names in config.yaml ---------------------------------------------------

@pytest.mark.parametrize("key, value", [
    ("users.admin", ".."), ("users.admin", "a b"), ("users.allowed", "x/y"), ("users.banned", "tab\there"),
    ("users.extra_user_groups.students", ".."), ("auth.GenericOAuthenticator.admin_users", "a b"),
])
def test_config_refuses_user_names_the_rest_api_refuses(tmp_path, as_root_for_tljh_config, key, value):
    config = tmp_path / "config" / "config.yaml"
    config.parent.mkdir()
    config.write_text("users:\n  admin: [teacher]\n")
    result = CliRunner().invoke(config_cli.main, ["--prefix", str(tmp_path), "add-item", key, value])
    assert result.exit_code == 1, result.output
    assert f"config key {key!r}" in result.output and "not a valid user name" in result.output
    assert config.read_text() == "users:\n  admin: [teacher]\n"


def test_config_refuses_a_group_name_unix_refuses(tmp_path, as_root_for_tljh_config):
    result = CliRunner().invoke(config_cli.main, ["--prefix", str(tmp_path), "add-item",
                                                  "users.extra_user_groups.Bad Group", "alice"])
    assert result.exit_code == 1 and "'users.extra_user_groups.Bad Group'" in result.output, result.output
    assert "not a valid group name" in result.output


def test_a_hand_edited_bad_name_makes_load_refuse_and_the_daemon_drop_it(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("users:\n  admin: [teacher, '..', 'a b']\n  extra_user_groups:\n    '-x': [bob]\n")
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.load(str(path))  # what `tljh-config reload` runs before it touches the hub
    assert e.value.key == "users.admin"
    dropped = []
    config = config_mod.load(str(path), bad_names=dropped)  # the daemon's start
    assert config["users"]["admin"] == ["teacher"] and config["users"]["extra_user_groups"] == {}
    assert [(key, value) for key, value, _ in dropped] == [
        ("users.admin", ".."), ("users.admin", "a b"), ("users.extra_user_groups.-x", None)]


async def test_bad_names_from_plugins_never_crash_the_hub(start_hub, monkeypatch):
    """Names that reach the settings without tljh-config (jupyterhub_config.d, plugins) are
    skipped with an error line, never an InvalidName at start-up (admins.reconcile)."""
    from tljh_daemon import admins, users

    hub = await start_hub({"users": {"admin": ["teacher"]}})
    assert users.valid_names(["teacher", "..", "a b", "Boss"]) == {"teacher", "boss"}
    hub.add_user("teacher")
    settings = hub.hub.settings
    monkeypatch.setattr(hub.hub, "settings", dataclasses.replace(
        settings, auth=dataclasses.replace(settings.auth, admin=("teacher", "..", "a b"))))
    await admins.reconcile(hub.hub)  # no InvalidName: the good name applies, the bad ones are skipped
    assert hub.db.one("SELECT admin FROM users WHERE name='teacher'")["admin"] == 1
    async with hub.api("GET", "/health") as resp:
        assert resp.status == 200


# -- tljh-config on unreadable files --------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    (b"auth: [\n  type: x\n", "not valid YAML"),
    (b"auth:\n  type: firstuse\nbranding:\n  site_name: \xff\xfe caf\xe9\n", "not UTF-8 text (line 4"),
])
@pytest.mark.parametrize("verb", [["show"], ["get", "auth.type"], ["set", "limits.cpu", "1"], ["reload"]])
def test_tljh_config_on_a_broken_file_says_why_without_a_traceback(tmp_path, as_root_for_tljh_config,
                                                                   content, words, verb):
    config = tmp_path / "config" / "config.yaml"
    config.parent.mkdir()
    config.write_bytes(content)
    result = CliRunner().invoke(config_cli.main, ["--prefix", str(tmp_path), *verb])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and words in result.output, result.output
    assert config.read_bytes() == content


def test_show_never_prints_an_unmaskable_secret(tmp_path, as_root_for_tljh_config):
    config = tmp_path / "config" / "config.yaml"
    config.parent.mkdir()
    config.write_text("auth:\n  DummyAuthenticator:\n    password: hunter2\n  oops: [\n")
    result = CliRunner().invoke(config_cli.main, ["--prefix", str(tmp_path), "show"])
    assert result.exit_code == 1 and "hunter2" not in result.output, result.output


def test_the_config_lock_file_is_private(tmp_path):
    path = tmp_path / "config.yaml"
    old = os.umask(0)
    try:
        with configfile.editing(str(path)) as data:
            data["limits"] = {"cpu": 1}
    finally:
        os.umask(old)
    assert os.stat(str(path) + ".lock").st_mode & 0o777 == 0o600


# -- the install marker -----------------------------------------------------------------------

def test_the_marker_guard_refuses_protected_directories(tmp_path):
    for path in ("/", "/usr", "/etc", "/home", "/var/lib", os.path.expanduser("~root")):
        assert install_marker.refusal(path), path
    assert install_marker.refusal(str(tmp_path)) is None
    with pytest.raises(install_marker.NotAnInstall, match="does not hold an install"):
        install_marker.check(str(tmp_path))
    install_marker.write(str(tmp_path))
    assert install_marker.check(str(tmp_path)) == os.path.realpath(tmp_path)
    assert os.stat(install_marker.path(str(tmp_path))).st_mode & 0o777 == 0o644


# -- compressed request bodies ----------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["gzip", "deflate", "GZIP "])
async def test_a_compressed_login_form_is_refused_before_anything_reads_it(hub, encoding):
    headers = {"Content-Encoding": encoding, "Content-Type": "application/x-www-form-urlencoded"}
    async with hub.request("POST", "/hub/login", data=b"\x1f\x8b" + bytes(1000), headers=headers) as resp:
        assert resp.status == 415
        assert resp.headers["Accept-Encoding"] == "identity"
        assert "not accepted; send them uncompressed" in await resp.text()
    async with hub.request("POST", "/hub/login", data=b"username=a&password=b",
                           headers={"Content-Encoding": "identity"}) as resp:
        assert resp.status != 415  # identity is no encoding at all


# -- token expiry -------------------------------------------------------------------------------

@pytest.mark.parametrize("expires_in", [10**12, 2**63, 10**30, 315360001, 0, -1, 1e23, 3600.5, True])
async def test_token_expiry_is_bounded_and_never_a_500(hub, expires_in):
    admin = hub.token("boss", admin=True)
    async with hub.api("POST", "/users/boss/tokens", admin, json={"expires_in": expires_in}) as resp:
        assert resp.status == 400, await resp.text()
        assert "expires_in must be a whole number of seconds from 1 to 315360000" in (await resp.json())["message"]


async def test_the_longest_token_expiry_works(hub):
    admin = hub.token("boss", admin=True)
    async with hub.api("POST", "/users/boss/tokens", admin, json={"expires_in": 315360000}) as resp:
        assert resp.status == 201
        token = await resp.json()
    assert token["expires_at"].startswith(str(int(token["created"][:4]) + 9)) or \
        token["expires_at"].startswith(str(int(token["created"][:4]) + 10))


# -- health and storage -------------------------------------------------------------------------

async def test_health_reports_a_disk_full_for_all_but_root(hub, monkeypatch):
    """The root daemon's probe write fits into ext4's reserved blocks; users' writes do not."""
    real_statvfs = os.statvfs

    def nearly_full(path):
        vfs = real_statvfs(path)
        return os.statvfs_result((vfs.f_bsize, 4096, vfs.f_blocks, 1000, 0, vfs.f_files, vfs.f_ffree,
                                  vfs.f_favail, vfs.f_flag, vfs.f_namemax))

    async with hub.request("GET", "/hub/health") as resp:
        assert resp.status == 200
    monkeypatch.setattr(os, "statvfs", nearly_full)
    monkeypatch.setattr(hub.hub.storage, "_cached", (float("-inf"), None))
    async with hub.request("GET", "/hub/health") as resp:
        assert resp.status == 503
        assert "full (0 MiB left for anyone but root)" in (await resp.json())["message"]


# -- login throttling ---------------------------------------------------------------------------

async def _guess(hub, name, address):
    """One browser's password guess for `name` from client `address` (as Traefik forwards it)."""
    browser = await hub.browser()
    async with browser.request("GET", "/hub/login"):
        pass
    form = {"username": name, "password": "wrong", "_xsrf": browser.xsrf}
    async with browser.request("POST", "/hub/login", data=form, headers={"X-Forwarded-For": address}) as resp:
        return await resp.text()


async def _throttled_hub(start_hub):
    """A hub whose throttle steps are 50 ms instead of 1 s; check_password records its calls."""
    import asyncio
    import time

    from tljh_daemon.auth.throttle import LoginThrottle

    hub = await start_hub({"auth": {"DummyAuthenticator": {"password": "pw"}}})
    auth = hub.hub.authenticator
    auth.throttle = LoginThrottle(unit=0.05)
    checks, real_check = [], auth.check_password

    async def recorded(name, password):
        started = time.monotonic()
        await asyncio.sleep(0.02)  # a password check takes time (bcrypt, PAM, LDAP)
        result = await real_check(name, password)
        checks.append((name, started, time.monotonic()))
        return result

    auth.check_password = recorded
    return hub, checks


def _most_at_once(intervals):
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


async def test_parallel_guesses_for_one_name_are_no_faster_than_serial_ones(start_hub):
    import asyncio

    hub, checks = await _throttled_hub(start_hub)
    pages = await asyncio.gather(*(_guess(hub, "alice", "203.0.113.7") for _ in range(21)))
    checked = [p for p in pages if "Invalid username or password" in p]
    refused = [p for p in pages if "Too many login attempts at once" in p]
    assert len(checked) + len(refused) == 21 and len(checked) == len(checks) >= 3
    assert _most_at_once([(s, e) for _, s, e in checks]) == 1  # one at a time
    starts = sorted(s for _, s, _ in checks)
    # the 3rd failure on waits 1, 2, 4 ... steps (50 ms here) after the previous check
    for i, (before, after) in enumerate(zip(starts, starts[1:])):
        expected = 0 if i < 1 else 0.05 * min(2 ** (i - 1), 16)
        assert after - before >= expected + 0.02 * 0.9, (i, after - before)


async def test_guesses_from_one_address_run_a_few_at_a_time_and_slow_down(start_hub):
    import asyncio

    hub, checks = await _throttled_hub(start_hub)
    names = [f"user{i}" for i in range(12)]
    await asyncio.gather(*(_guess(hub, name, "198.51.100.9") for name in names))
    assert len(checks) == 12
    assert _most_at_once([(s, e) for _, s, e in checks]) <= 4
    throttle = hub.hub.authenticator.throttle
    assert throttle.delay("someone-else", "198.51.100.9") > 0  # 12 failures: past the 10 free ones
    assert throttle.delay("someone-else", "192.0.2.1") == 0  # another address is not slowed


# -- workshop accounts ----------------------------------------------------------------------------

def _tmp(**keys):
    return {"auth": {"type": "tmp", "TmpAuthenticator": keys}}


async def _tmplogin(hub, address):
    async with hub.request("GET", "/hub/tmplogin", headers={"X-Forwarded-For": address}) as resp:
        return resp.status, resp.headers.get("Retry-After"), await resp.text()


def _temporary_users(hub):
    return hub.db.one("SELECT COUNT(*) AS n FROM users WHERE temporary=1")["n"]


async def test_the_workshop_defaults_hold_a_class_of_100_behind_one_address_and_cap_the_rest(start_hub):
    import asyncio

    hub = await start_hub(_tmp())
    first = await asyncio.gather(*(_tmplogin(hub, "203.0.113.50") for _ in range(60)))
    assert [status for status, _, _ in first] == [302] * 60
    status, retry_after, page = await _tmplogin(hub, "203.0.113.50")
    assert status == 429 and 0 < int(retry_after) <= 60
    assert "Too many new workshop accounts from your network" in page
    for i in range(140):  # the rest of the room, and more, from other addresses
        assert (await _tmplogin(hub, f"198.51.100.{i}"))[0] == 302
    assert _temporary_users(hub) == 200
    status, retry_after, page = await _tmplogin(hub, "192.0.2.1")
    assert status == 503 and retry_after == "60"
    assert "This workshop is full: all 200 places are taken" in page
    assert _temporary_users(hub) == 200


async def test_the_workshop_cap_holds_under_a_burst(start_hub):
    """300 anonymous visits at once (the attack) make at most max_users users."""
    import asyncio

    hub = await start_hub(_tmp(max_users=25, rate_per_client="1000/minute"))
    results = await asyncio.gather(*(_tmplogin(hub, "203.0.113.9") for _ in range(300)))
    assert sum(1 for status, _, _ in results if status == 302) == 25
    assert sum(1 for status, _, _ in results if status == 503) == 275
    assert _temporary_users(hub) == 25


@pytest.mark.parametrize("value", ["lots", "60/fortnight", ""])
def test_a_bad_workshop_rate_names_its_key(tmp_path, value):
    path = tmp_path / "config.yaml"
    path.write_text(f"auth:\n  type: tmp\n  TmpAuthenticator:\n    rate_per_client: '{value}'\n")
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.load(str(path))
    assert e.value.key == "auth.TmpAuthenticator.rate_per_client"


# -- look-alike names ---------------------------------------------------------------------------

LOOK_ALIKES = {
    "sa\uff4eat1": "look-alike characters",  # fullwidth n
    "s\u0430nat1": "mixes Cyrillic and Latin",  # Cyrillic a
    "\u03bflga": "mixes Greek and Latin",  # Greek omicron
    "sana\u0338t": "combining mark",  # a combining long solidus overlay left after NFC
    "\ufb01lip": "look-alike characters",  # the fi ligature
}
FINE = ["zo\u00eb", "zoe\u0308", "\u5b66\u751f", "\u0438\u0432\u0430\u043d", "\u03b5\u03bb\u03ad\u03bd\u03b7",
        "\u092a\u094d\u0930\u093f\u092f\u093e", "ann@example.org"]


@pytest.mark.parametrize("name, words", LOOK_ALIKES.items())
async def test_the_api_refuses_new_look_alike_names(hub, name, words):
    admin = hub.token("boss", admin=True)
    async with hub.api("POST", "/users", admin, json={"usernames": [name]}) as resp:
        assert resp.status == 400 and words in (await resp.json())["message"]
    async with hub.api("POST", f"/users/{quote(name)}", admin) as resp:
        assert resp.status == 400 and words in (await resp.json())["message"]
    assert hub.db.one("SELECT COUNT(*) AS n FROM users WHERE name != 'boss'")["n"] == 0


@pytest.mark.parametrize("name", FINE)
async def test_names_in_one_alphabet_are_still_welcome(hub, name):
    admin = hub.token("boss", admin=True)
    async with hub.api("POST", "/users", admin, json={"usernames": [name]}) as resp:
        assert resp.status == 201, await resp.text()


async def test_first_use_and_sign_up_refuse_new_look_alike_names(start_hub):
    firstuse = await start_hub({"auth": {"type": "firstuse"}})
    browser = await firstuse.browser()
    for name, words in LOOK_ALIKES.items():
        resp = await browser.login(name, "a-long-password")
        assert resp.status == 403 and words in await resp.text()
        assert firstuse.db.one("SELECT 1 FROM users WHERE name=?", (name,)) is None
    native = await start_hub({"auth": {"type": "native"}})
    browser = await native.browser()
    async with browser.request("GET", "/hub/signup"):
        pass
    form = {"username": "s\u0430nat1", "password": "violet-kettle-42", "password_confirm": "violet-kettle-42",
            "_xsrf": browser.xsrf}
    async with browser.request("POST", "/hub/signup", data=form) as resp:
        assert "mixes Cyrillic and Latin letters" in await resp.text()
    assert native.db.one("SELECT COUNT(*) AS n FROM signups")["n"] == 0


async def test_an_existing_look_alike_user_can_still_log_in(start_hub):
    hub = await start_hub({"auth": {"type": "firstuse"}})
    browser = await hub.browser()
    hub.add_user("sa\uff4eat1")  # made before the rule
    assert (await browser.login("sa\uff4eat1", "a-long-password")).status == 302


# -- demotion reaches running servers -----------------------------------------------------------

async def test_demoting_an_admin_restarts_their_running_server_without_admin(hub):
    boss = hub.token("boss", admin=True)
    alice = hub.token("alice", admin=True)
    await hub.start_server("alice", alice)
    assert hub.spawner.requests[-1].admin is True
    async with hub.api("PATCH", "/users/alice", boss, json={"admin": False}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["admin"] is False
    assert body["server_note"] == "alice's running server was restarted without admin rights (sudo)."
    assert hub.spawner.stopped == ["alice"]
    await hub.wait_for_state("alice", "running")
    assert [r.admin for r in hub.spawner.requests if r.user == "alice"] == [True, False]


async def test_demoting_an_admin_without_a_server_changes_only_the_flag(hub):
    boss = hub.token("boss", admin=True)
    hub.add_user("carol", admin=True)
    async with hub.api("PATCH", "/users/carol", boss, json={"admin": False}) as resp:
        assert "server_note" not in await resp.json()
    assert hub.spawner.requests == [] and hub.spawner.stopped == []


async def test_a_provider_that_drops_admin_at_login_restarts_the_server(start_hub):
    """An authenticator's group change (LoggedIn.admin from the provider) acts like a demotion."""
    from tljh_daemon.auth import LoggedIn
    from tljh_daemon.auth.dummy import DummyAuthenticator

    class GroupsDecide(DummyAuthenticator):
        admin_now = True

        async def login(self, name, password, address=""):
            return LoggedIn(name, admin=self.admin_now)

    hub = await start_hub(authenticator=GroupsDecide)
    await hub.browser("dana")
    await hub.start_server("dana", hub.token("dana"))
    assert hub.spawner.requests[-1].admin is True
    hub.hub.authenticator.admin_now = False
    await hub.browser("dana")  # logs in again: the provider no longer says admin
    assert hub.spawner.stopped == ["dana"]
    await hub.wait_for_state("dana", "running")
    assert [r.admin for r in hub.spawner.requests] == [True, False]


def test_the_installer_leaves_no_world_writable_lock_in_the_environments(tmp_path):
    """uv makes <env>/.lock 0666; anyone holding its lock would stall root's next install."""
    from tljh_daemon.paths import Paths
    from tljh_installer import steps

    paths = Paths(str(tmp_path))
    for env in (paths.hub_env, paths.user_env):
        os.makedirs(env)
        lock = os.path.join(env, ".lock")
        open(lock, "w").close()
        os.chmod(lock, 0o666)
    steps.tighten_lock_files(paths)
    assert [os.stat(os.path.join(env, ".lock")).st_mode & 0o777 for env in (paths.hub_env, paths.user_env)] \
        == [0o644, 0o644]


def test_the_throttle_forgets_old_failures_instead_of_growing_forever():
    import time

    from tljh_daemon.auth.throttle import FailedLoginThrottle

    throttle = FailedLoginThrottle()
    throttle.max_keys = 3
    for i in range(3):
        throttle.failed(f"old{i}")
        throttle._failures[f"old{i}"] = (1, time.monotonic() - throttle.forget_after - 1)
    throttle.failed("new")
    assert set(throttle._failures) == {"new"}


def test_bootstrap_refuses_the_prefixes_uninstall_would_refuse(capsys, tmp_path):
    """bootstrap.py works alone, so it keeps its own copy of the list: the two must agree."""
    import importlib.util
    import pwd

    path = os.path.join(os.path.dirname(__file__), "..", "..", "bootstrap.py")
    spec = importlib.util.spec_from_file_location("bootstrap_copy", path)
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    assert bootstrap.SYSTEM_DIRS == install_marker.SYSTEM_DIRS
    homes = [e.pw_dir for e in pwd.getpwall() if e.pw_dir.startswith("/home/") or e.pw_dir == "/root"]
    for prefix in ["/", "/usr", "/var/lib", *homes[:3]]:
        with pytest.raises(SystemExit):
            bootstrap.refuse_system_or_home(prefix)
        assert "choose a directory of its own" in capsys.readouterr().err
    bootstrap.refuse_system_or_home(str(tmp_path / "tljh"))  # fine
