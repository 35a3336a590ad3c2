"""shared_folders: a folder readable by a group's members, writable by a named group, linked into
each reader's home; checked with real Unix accounts and real servers."""

import asyncio
import grp
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from hubclient import HubClient
from hubprocess import needs_root
from tljh_daemon import accounts

pytestmark = needs_root


def as_account(account, *cmd):
    return subprocess.run(["runuser", "-u", account, "--", *cmd], capture_output=True, text=True, timeout=60)


@pytest.fixture
def groups(run_id):
    names = [f"{run_id}-readers", f"{run_id}-writers"]
    yield names
    for name in names:
        subprocess.run(["groupdel", name], capture_output=True)


@pytest.fixture
def base():
    path = tempfile.mkdtemp(prefix="tljh-test-shared-", dir="/var/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_shared_folder_rights_and_links(make_hub, user_env, run_id, unix_accounts, groups, base):
    readers, writers = groups
    teacher, alice, bob = f"{run_id}-teacher", f"{run_id}-alice", f"{run_id}-bob"
    unix_accounts.extend(f"jupyter-{n}" for n in (teacher, alice, bob))
    folder = os.path.join(base, "course")
    hub = make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "user_environment": {"path": user_env},
        "users": {"extra_user_groups": {readers: [alice], writers: [teacher]}},
        "shared_folders": {"course": {"path": folder, "group": readers, "writers": writers}},
    })
    info = os.stat(folder)
    assert info.st_uid == 0 and info.st_gid == grp.getgrnam(writers).gr_gid
    assert stat.S_IMODE(info.st_mode) & 0o2007 == 0o2000, "setgid; nothing for others"

    clients = {}
    for name in (teacher, alice):
        client = clients[name] = HubClient(hub.url)
        assert client.login(name, "pw").status_code == 302
        assert client.spawn(name)[-1]["ready"] is True
        assert client.get(client.url(f"/user/{name}/lab")).status_code == 200
        home = os.path.expanduser(f"~jupyter-{name}")
        assert os.readlink(os.path.join(home, "course")) == folder
    asyncio.run(accounts.ensure_account(f"jupyter-{bob}"))  # an account in neither group

    # The teacher writes through the link, from their own server; alice reads it from hers.
    kernel = clients[teacher].start_kernel(teacher)
    assert clients[teacher].execute(teacher, kernel, "open('course/notes.txt', 'w').write('hi')") == "2"
    kernel = clients[alice].start_kernel(alice)
    assert clients[alice].execute(alice, kernel, "open('course/notes.txt').read()") == "'hi'"
    denied = clients[alice].execute(alice, kernel, "\n".join([
        "try:", "    open('course/mine.txt', 'w')", "except PermissionError:", "    print('denied')",
        "'done'"]))
    assert denied == "'done'" and not os.path.exists(os.path.join(folder, "mine.txt"))
    # The file got the writers' group, and readers can read it, by default ACL.
    assert os.stat(os.path.join(folder, "notes.txt")).st_gid == grp.getgrnam(writers).gr_gid
    assert as_account(f"jupyter-{alice}", "cat", os.path.join(folder, "notes.txt")).stdout == "hi"
    # Someone in neither group cannot even list it.
    listing = as_account(f"jupyter-{bob}", "ls", folder)
    assert listing.returncode != 0 and "Permission denied" in listing.stderr
    assert as_account(f"jupyter-{bob}", "cat", os.path.join(folder, "notes.txt")).returncode != 0
