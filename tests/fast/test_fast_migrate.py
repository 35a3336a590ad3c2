"""The TLJH takeover's pieces that the end-to-end test (tests/test_migrate_tljh.py, process
mode) cannot reach: TLJH's systemd units, a base_url without its trailing '/', a config we
cannot apply, passwords that cannot be read, re-runs."""

import dbm
import os
import sqlite3
import stat

import pytest

from tljh_daemon import config as config_mod
from tljh_daemon.db import SyncDatabase
from tljh_daemon.paths import Paths
from tljh_installer import migrate

FAKE_SYSTEMCTL = """#!/bin/sh
echo "$@" >> {log}
if [ "$1" = list-units ]; then
  echo "jupyter-ann.service loaded active running /opt/tljh/user/bin/jupyterhub-singleuser"
fi
"""


@pytest.fixture
def tljh_prefix(tmp_path):
    """A prefix with TLJH's database (JupyterHub's tables, the columns we read)."""
    paths = Paths(str(tmp_path / "tljh"))
    os.makedirs(paths.state_dir)
    os.makedirs(paths.config_dir)
    db = sqlite3.connect(os.path.join(paths.state_dir, migrate.TLJH_DATABASE))
    db.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, admin BOOLEAN);
        CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT, properties TEXT);
        CREATE TABLE user_group_map (user_id INTEGER, group_id INTEGER);
        INSERT INTO users VALUES (1, 'teacher', 1), (2, 'ann', 0);
        INSERT INTO groups VALUES (1, 'class-a', '{"room": "B12"}');
        INSERT INTO user_group_map VALUES (2, 1), (1, 1);
    """)
    db.commit()
    db.close()
    with open(paths.config_file, "w") as f:
        f.write("# TLJH's\nbase_url: /jupyter\nusers:\n  admin: [teacher]\n")
    return paths


def test_units_of_this_prefix_are_stopped_and_disabled(tmp_path, monkeypatch, tljh_prefix):
    log = tmp_path / "systemctl.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    systemctl = bin_dir / "systemctl"
    systemctl.write_text(FAKE_SYSTEMCTL.format(log=log))
    systemctl.chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(migrate.systemd, "booted", lambda: True)
    units = tmp_path / "units"
    units.mkdir()
    monkeypatch.setattr(migrate, "UNIT_DIR", str(units))
    (units / "jupyterhub.service").write_text(f"Environment=TLJH_INSTALL_PREFIX={tljh_prefix.prefix}\n")
    (units / "traefik.service").write_text("ExecStart=/srv/other-prefix/hub/bin/traefik\n")  # not this install's

    stopped, servers = migrate.stop_units(tljh_prefix.prefix)
    assert stopped == ["jupyterhub.service"] and servers == ["jupyter-ann.service"]
    calls = log.read_text().splitlines()
    assert "disable --now jupyterhub.service" in calls
    assert not any("traefik" in call for call in calls)
    assert "stop jupyter-ann.service" in calls


def test_take_over_imports_once_and_fixes_base_url(tljh_prefix):
    store = os.path.join(tljh_prefix.state_dir, migrate.TLJH_PASSWORDS)
    with dbm.open(store, "c") as passwords:
        passwords["ann"] = b"$2b$12$" + b"x" * 53
    assert migrate.pending(tljh_prefix)
    summary = migrate.take_over(tljh_prefix)
    assert "base_url '/jupyter' is now '/jupyter/' (a trailing '/' is required here)" in summary
    assert "group class-a: ann, teacher" in summary and "admins: teacher" in summary
    assert "first-use passwords of: ann" in summary
    with open(tljh_prefix.config_file) as f:
        assert f.read().startswith("# TLJH's\nbase_url: /jupyter/\n")
    # Importing again (a re-run after a later step failed) changes nothing and keeps passwords.
    db = SyncDatabase(tljh_prefix.database)
    db.execute("UPDATE users SET password_hash='changed-since' WHERE name='ann'")
    db.close()
    migrate.take_over(tljh_prefix)
    db = SyncDatabase(tljh_prefix.database)
    try:
        assert [(r["name"], r["admin"]) for r in db.all("SELECT name, admin FROM users ORDER BY name")] == \
            [("ann", 0), ("teacher", 1)]
        assert db.one("SELECT password_hash FROM users WHERE name='ann'")[0] == "changed-since"
        assert db.one("SELECT properties FROM groups WHERE name='class-a'")[0] == '{"room": "B12"}'
        assert db.one("SELECT COUNT(*) FROM group_members")[0] == 2
    finally:
        db.close()
    migrate.record(tljh_prefix, summary)
    assert not migrate.pending(tljh_prefix)


def test_a_config_we_cannot_apply_stops_before_anything_changes(tljh_prefix, monkeypatch):
    with open(tljh_prefix.config_file, "a") as f:
        f.write("auth:\n  type: oauthenticator.bitbucket.BitbucketOAuthenticator\n")
    stopped = []
    monkeypatch.setattr(migrate, "stop_units", lambda prefix: stopped.append(prefix) or ([], []))
    with pytest.raises(config_mod.ConfigError) as e:
        migrate.take_over(tljh_prefix)
    assert e.value.key == "auth.type" and "TLJH was left running" in str(e.value)
    assert stopped == [] and not os.path.exists(tljh_prefix.database)


def test_unreadable_passwords_are_reported(tljh_prefix):
    with open(os.path.join(tljh_prefix.state_dir, migrate.TLJH_PASSWORDS), "wb") as f:
        f.write(b"not a dbm file at all")
    summary = migrate.take_over(tljh_prefix)
    assert any("first-use passwords NOT imported" in line for line in summary)


def test_a_unit_that_will_not_stop_is_named(tmp_path, monkeypatch, tljh_prefix):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    systemctl = bin_dir / "systemctl"
    systemctl.write_text("#!/bin/sh\necho 'Access denied' >&2\nexit 1\n")
    systemctl.chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(migrate.systemd, "booted", lambda: True)
    monkeypatch.setattr(migrate, "UNIT_DIR", str(tmp_path))
    (tmp_path / "jupyterhub.service").write_text(f"WorkingDirectory={tljh_prefix.prefix}/state\n")
    with pytest.raises(RuntimeError, match="could not stop and disable TLJH's jupyterhub.service: Access denied"):
        migrate.stop_units(tljh_prefix.prefix)
