"""nbgrader for several courses, as docs/howto-nbgrader.md sets it up (nbgrader's own
demo_multiple_classes): real nbgrader from PyPI, a formgrader per course run as a managed service
(`jupyterhub-singleuser` as the course's Unix account, in its `cwd`), groups `formgrade-<course>` and
`nbgrader-<course>`, roles granting `access:services!service=<course>` to graders only, and the
`server` role set to `inherit` so nbgrader in a user's server can read the user's groups.

Every nbgrader command runs as the real Unix user, in a kernel of the real server through Traefik:
the instructor's in the course's formgrader service (as the course account, like a terminal there),
the students' in their own servers."""

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

import pytest
import requests
import websocket

from hubclient import HubClient
from hubprocess import needs_root
from tljh_daemon.ports import free_port
from tljh_installer.steps import install_kernel_prewarm
from waiting import wait_for

pytestmark = needs_root

COURSES = ("course101", "course123")
PLUGIN = os.path.join(os.path.dirname(__file__), "..", "plugins", "tljh-nbgrader", "tljh_nbgrader.py")


# A student's answer to quickstart's ps1/problem1 (`squares`), put in place of its stub.
ANSWER = "def squares(n):\n    if n < 1:\n        raise ValueError('n must be >= 1')\n    return [i * i for i in range(1, n + 1)]\n"


def _uv():
    return shutil.which("uv") or os.path.join(os.path.dirname(sys.executable), "uv")


@pytest.fixture(scope="module")
def nbgrader_env():
    """A user environment with nbgrader from PyPI, built once (uv: a few seconds), or the prebuilt
    one named by TLJH_TEST_NBGRADER_ENV (never the shared TLJH_TEST_USER_ENV: nbgrader changes it)."""
    existing = os.environ.get("TLJH_TEST_NBGRADER_ENV")
    if existing:
        yield existing
        return
    top = tempfile.mkdtemp(prefix="tljh-test-nbgrader-", dir="/var/tmp")
    os.chmod(top, 0o755)
    path = os.path.join(top, "user")
    python = os.path.join(path, "bin", "python")
    try:
        subprocess.run([_uv(), "venv", "--quiet", "--python", "/usr/bin/python3", path], check=True)
        subprocess.run([_uv(), "pip", "install", "--quiet", "--compile-bytecode", "--python", python,
                        "jupyterhub", "jupyterlab", "ipykernel", "nbgrader"], check=True)
        install_kernel_prewarm([_uv()], python)
        yield path
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run_code(client, prefix, code, timeout=240):
    """The value of `code` run in a new kernel of the Jupyter server at `prefix` (`/user/<name>/`
    or `/services/<course>/`), through Traefik with the browser's cookies."""
    if not any(c.name == "_xsrf" and c.path.startswith(prefix) for c in client.cookies):
        lab = client.get(client.url(prefix + "lab"), timeout=60)  # the OAuth round trip sets them
        assert lab.status_code == 200, (prefix, lab.status_code, lab.text[:500])
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf" and c.path.startswith(prefix))
    r = client.post(client.url(prefix + "api/kernels"), json={"name": "python3"},
                    headers={"X-XSRFToken": xsrf}, timeout=60)
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies if c.path.startswith(prefix))
    ws = websocket.create_connection(client.url(f"{prefix}api/kernels/{kernel}/channels").replace("http", "ws", 1),
                                     cookie=cookie, timeout=timeout)
    try:
        return HubClient.execute_on(ws, "test", code, timeout, where=f"{prefix}: ")
    finally:
        ws.close()
        client.delete(client.url(f"{prefix}api/kernels/{kernel}"), headers={"X-XSRFToken": xsrf}, timeout=30)


def nbgrader(client, prefix, *args, cwd=None):
    """`nbgrader <args>` run (from PATH, as a terminal would) in a kernel of the server at `prefix`;
    its (exit status, output, Unix user)."""
    code = ("import getpass, subprocess\n"
            f"r = subprocess.run(['nbgrader', *{list(args)!r}], capture_output=True, text=True, cwd={cwd!r})\n"
            "(r.returncode, r.stdout + r.stderr, getpass.getuser())")
    return ast.literal_eval(run_code(client, prefix, code))


def plugin(hub, *args):
    """The tljh-nbgrader plugin's command (plugins/tljh-nbgrader) for this hub, as root runs it."""
    return subprocess.run([sys.executable, PLUGIN, "--prefix", hub.prefix, *args], capture_output=True,
                          text=True, timeout=300)


def service_log(hub, name):
    with open(os.path.join(hub.prefix, "state", "logs", f"service-{name}.log"), errors="replace") as f:
        return f.read()[-4000:]


@pytest.fixture(scope="module")
def courses(make_hub, nbgrader_env, run_id, unix_accounts, request):
    """A hub with two courses set up as docs/howto-nbgrader.md does (the tljh-nbgrader plugin's
    command), and its people logged in."""
    people = {role: f"{run_id}-{role}" for role in ("admin", "ia", "ib", "s1", "s2")}
    accounts = {course: f"{run_id}-{course}" for course in COURSES}  # the formgraders' Unix accounts
    unix_accounts.extend([*accounts.values(), *(f"jupyter-{name}" for name in people.values())])
    # /srv/nbgrader/exchange in the how-to; here one of this run's (/var/tmp: servers have a private /tmp)
    exchange = tempfile.mkdtemp(prefix="tljh-test-exchange-", dir="/var/tmp")
    request.addfinalizer(lambda: shutil.rmtree(exchange, ignore_errors=True))  # also when the setup fails
    hub = make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "users": {"admin": [people["admin"]]},
        "user_environment": {"path": nbgrader_env},
        "services": {"cull": {"enabled": False}},
    }, start=False)
    assert plugin(hub, "setup", "--exchange", exchange).returncode == 0
    ports = {course: free_port() for course in COURSES}
    for course, grader, students in (("course101", "ia", ("s1", "s2")), ("course123", "ib", ())):
        result = plugin(hub, "add-course", course, "--port", str(ports[course]), "--account", accounts[course],
                        "--grader", people[grader], *(f"--student={people[s]}" for s in students))
        assert result.returncode == 0, result.stdout + result.stderr
    # Running it again changes nothing.
    written = [hub.config_file, os.path.join(hub.prefix, "config", "jupyterhub_config.d", "nbgrader-course101.py")]
    before = [open(path).read() for path in written]
    result = plugin(hub, "add-course", "course101", "--port", str(ports["course101"]), "--account",
                    accounts["course101"], "--student", people["s2"])
    assert result.returncode == 0, result.stderr
    assert [open(path).read() for path in written] == before
    hub.start()
    for course in COURSES:  # jupyterhub-singleuser's /api answers without a login once it is up
        def up(course=course):
            try:
                return requests.get(f"{hub.url}/services/{course}/api", timeout=5).status_code == 200
            except requests.RequestException:
                return False
        try:
            wait_for(up, f"the formgrader service {course} to answer", timeout=90)
        except AssertionError:
            raise AssertionError(service_log(hub, course)) from None

    # Groups change through the REST API too: s1 joins course123 as a student.
    admin = HubClient(hub.url)
    assert admin.login(people["admin"], "pw").status_code == 302
    xsrf = {"X-XSRFToken": next(c.value for c in admin.cookies if c.name == "_xsrf")}
    r = admin.post(admin.url("/hub/api/groups/nbgrader-course123/users"), json={"users": [people["s1"]]},
                   headers=xsrf)
    assert r.status_code == 200, r.text
    r = admin.get(admin.url(f"/hub/api/users/{people['s1']}"))
    assert {"nbgrader-course101", "nbgrader-course123"} <= set(r.json()["groups"]), r.json()

    clients = {}
    for role in ("ia", "ib", "s1", "s2"):
        clients[role] = HubClient(hub.url)
        assert clients[role].login(people[role], "pw").status_code == 302
    return {"hub": hub, "people": people, "clients": clients, "accounts": accounts, "exchange": exchange}


def test_release_fetch_submit_collect_autograde(courses):
    """An instructor releases, two students fetch and submit, the instructor collects and grades."""
    people, clients, accounts = courses["people"], courses["clients"], courses["accounts"]
    instructor = clients["ia"]
    course = "/services/course101/"

    # The instructor, in course101's formgrader server (as the course account): generate, release.
    status, out, who = nbgrader(instructor, course, "generate_assignment", "ps1")
    assert (status, who) == (0, accounts["course101"]), out
    # It runs as the account with the account's groups only, not the hub's (root's).
    groups = ast.literal_eval(run_code(instructor, course, "import os, pwd, grp\n"
                                       "sorted(grp.getgrgid(g).gr_name for g in os.getgroups())"))
    assert groups == [accounts["course101"]], groups
    status, out, _ = nbgrader(instructor, course, "release_assignment", "ps1")
    assert status == 0 and "Released as: course101 ps1" in out, out

    # Two students, each in their own server as their own Unix account: list, fetch, (answer), submit.
    for student in ("s1", "s2"):
        client, name = clients[student], people[student]
        events = client.spawn(name)
        assert events[-1].get("ready") is True, events
        prefix = f"/user/{name}/"
        status, out, who = nbgrader(client, prefix, "list")
        assert (status, who) == (0, f"jupyter-{name}") and "course101 ps1" in out, out
        status, out, _ = nbgrader(client, prefix, "fetch_assignment", "ps1", "--course", "course101")
        assert status == 0 and "Fetched as: course101 ps1" in out, out
        if student == "s1":  # s1 answers problem 1; s2 hands in the stubs
            edit = ("import nbformat\n"
                    "path = 'course101/ps1/problem1.ipynb'\n"
                    "nb = nbformat.read(path, as_version=4)\n"
                    "cell = next(c for c in nb.cells if 'def squares' in c.source)\n"
                    f"cell.source = {ANSWER!r}\n"
                    "nbformat.write(nb, path)\n"
                    "'answered'")
            assert run_code(client, prefix, edit) == "'answered'"
        status, out, _ = nbgrader(client, prefix, "submit", "ps1", "--course", "course101")
        assert status == 0 and "Submitted as: course101 ps1" in out, out

    # A student of neither course's nbgrader group is refused by nbgrader itself (hub groups).
    status, out, _ = nbgrader(clients["s2"], f"/user/{people['s2']}/", "fetch_assignment", "ps1",
                              "--course", "course123")
    assert status != 0 and "You do not have access to this course" in out, out

    # The instructor collects and autogrades both submissions in the formgrader's server.
    status, out, _ = nbgrader(instructor, course, "collect", "ps1")
    assert status == 0, out
    status, out, _ = nbgrader(instructor, course, "autograde", "ps1", "--create")
    assert status == 0, out
    students = {f"jupyter-{people['s1']}", f"jupyter-{people['s2']}"}  # nbgrader's ids: Unix names

    # The formgrader (its own REST API, through Traefik) shows both graded, s1 ahead.
    r = instructor.get(instructor.url(f"{course}formgrader/api/submissions/ps1"), timeout=60)
    assert r.status_code == 200, service_log(courses["hub"], "course101")
    scores = {s["student"]: s["score"] for s in r.json() if s["autograded"]}
    assert set(scores) == students, r.json()
    assert scores[f"jupyter-{people['s1']}"] > scores[f"jupyter-{people['s2']}"], scores


def test_each_formgrader_is_for_its_graders_only(courses):
    """course101's grader reaches formgrader-course101 (200), not course123's (403); a student
    reaches neither (403), through Traefik and the hub's OAuth."""
    clients = courses["clients"]

    def formgrader(role, course):
        return clients[role].get(clients[role].url(f"/services/{course}/formgrader"), timeout=60)

    r = formgrader("ia", "course101")
    assert r.status_code == 200 and "formgrader" in r.text.lower(), (r.status_code, r.text[:300])
    r = formgrader("ib", "course123")
    assert r.status_code == 200, r.status_code
    r = formgrader("ia", "course123")
    assert r.status_code == 403 and "You do not have permission to access Service course123" in r.text
    for course in COURSES:
        r = formgrader("s1", course)
        assert r.status_code == 403 and f"You do not have permission to access Service {course}" in r.text
        # Not through the service's API either (a student's own token, as their kernel holds).
        r = clients["s1"].get(clients["s1"].url(f"/services/{course}/formgrader/api/submissions/ps1"),
                              allow_redirects=False, timeout=60)
        assert r.status_code in (302, 403), r.status_code
    # nbgrader's course list in the grader's own server finds their course's formgrader only
    # (their server's token inherits their scopes: the `server` role).
    name = courses["people"]["ia"]
    assert clients["ia"].spawn(name)[-1].get("ready") is True
    r = clients["ia"].get(clients["ia"].url(f"/user/{name}/formgraders"), timeout=60)
    assert r.status_code == 200 and r.json()["success"] is True, r.text
    found = [(c["course_id"], urlsplit(c["url"]).path) for c in r.json()["value"] if c["kind"] == "jupyterhub"]
    assert found == [("course101", "/services/course101/lab")], r.json()
    # Nobody signs in as a course account (a hub user only for nbgrader's group lookup).
    for account in courses["accounts"].values():
        r = HubClient(courses["hub"].url).login(account, "pw")
        assert r.status_code != 302 or "/hub/login" in r.headers["Location"], r.headers
