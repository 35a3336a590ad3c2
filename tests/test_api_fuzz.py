"""A bounded fuzz run of the REST API: schemathesis generates valid and invalid requests from
JupyterHub's own OpenAPI spec (tests/data/rest-api.yml, copied from JupyterHub 6) and sends
them through Traefik with an admin token. Whatever the request, the answer is never a 5xx.

Operations we do not implement must answer 4xx (404/405) like any other unknown path.
Bounded to a few examples per operation so the run stays around two minutes on a busy
2-core machine.

The hub runs with PAM (it never creates Unix accounts) and an empty user environment, so
the spawns the fuzzer asks for fail cleanly before anything runs: no account, no process.
"""

import collections
import os
import shutil
import tempfile

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hubclient import HubClient
from hubprocess import needs_root

pytestmark = needs_root
# A deeper run: TLJH_FUZZ_EXAMPLES=200 TLJH_FUZZ_RANDOM=1 ./scripts/test tests/test_api_fuzz.py
EXAMPLES = int(os.environ.get("TLJH_FUZZ_EXAMPLES", "15"))
DERANDOMIZE = not os.environ.get("TLJH_FUZZ_RANDOM")
SPEC = os.path.join(os.path.dirname(__file__), "data", "rest-api.yml")

schema = (
    schemathesis.openapi.from_path(SPEC)
    # Not fuzzed: POST /shutdown stops the hub under test (tests/test_rest_api.py covers it).
    .exclude(path="/shutdown")
)

# Random names mostly reach 404s. Half the cases get names that exist instead (made fresh
# before each operation, since the fuzzer may delete them), so the handlers behind are fuzzed.
USER, GROUP = "fuzz-user", "fuzz-group"
KNOWN = {}  # path parameter -> an existing value; filled by the `existing` fixture


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    known = dict(KNOWN)
    if context.operation.path.startswith("/groups/"):
        known["name"] = GROUP
    replaced = {key: known[key] for key in path_parameters or {} if key in known}
    if not replaced:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **replaced}])


@pytest.fixture(scope="module")
def hub(make_hub, run_id):
    """An admin token made through the login + token API, then the hub restarted with PAM."""
    empty_env = tempfile.mkdtemp(prefix="tljh-test-empty-env-", dir="/var/tmp")
    admin = f"{run_id}-fuzzadmin"
    hub = make_hub({"auth": {"type": "dummy"}, "users": {"admin": [admin]},
                    "user_environment": {"path": empty_env}, "sharing": {"enabled": True},
                    # the named-server paths reach their handlers (random names: mostly refused)
                    "named_servers": {"enabled": True, "limit_per_user": 3}})
    client = HubClient(hub.url)
    assert client.login(admin, "any").status_code == 302
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf")
    r = client.post(client.url(f"/hub/api/users/{admin}/tokens"), json={"note": "fuzz"},
                    headers={"X-XSRFToken": xsrf})
    assert r.status_code == 201, r.text
    hub.token = r.json()["token"]
    hub.stop_all()
    hub.update_config(auth={"type": "pam"})
    hub.start()
    yield hub
    shutil.rmtree(empty_env, ignore_errors=True)


@pytest.fixture(scope="module")
def session(hub):
    s = requests.Session()
    s.trust_env = False
    yield s
    s.close()


@pytest.fixture
def existing(hub, session):
    """The user (with a token) and the group the path parameters may name, as they were."""
    auth = {"Authorization": f"token {hub.token}"}
    api = hub.url + "/hub/api"
    session.post(f"{api}/users/{USER}", headers=auth, timeout=10)
    session.post(f"{api}/groups/{GROUP}", headers=auth, timeout=10)
    r = session.post(f"{api}/users/{USER}/tokens", json={"note": "fuzzed"}, headers=auth, timeout=10)
    assert r.status_code == 201, r.text
    KNOWN.update(name=USER, owner=USER, token_id=r.json()["id"], server_name="fuzz")  # a valid named server


SEEN = collections.defaultdict(collections.Counter)  # operation -> Counter of status codes


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, hub, session, existing):
    session.cookies.clear()  # each case stands alone
    # The admin token replaces whatever Authorization header the case made up.
    response = case.call(base_url=hub.url + "/hub/api", session=session, timeout=30,
                         headers={"Authorization": f"token {hub.token}"})
    SEEN[f"{case.method} {case.path}"][response.status_code] += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}\n"
        f"{case.as_curl_command()}\n{response.text[:500]}"
    )


def test_hub_healthy_after_the_fuzz_run(hub, session):
    """Runs after the fuzz cases (file order): nothing they sent broke the hub, and the
    run reached the handlers (an admin token that did not work would only see 403s)."""
    for operation, statuses in sorted(SEEN.items()):
        print(f"{operation}: {dict(sorted(statuses.items()))}")
    succeeded = {op for op, statuses in SEEN.items() if any(200 <= s < 300 for s in statuses)}
    assert len(succeeded) >= 15, sorted(succeeded)
    assert requests.get(hub.url + "/hub/health", timeout=10).status_code == 200
    me = session.get(hub.url + "/hub/api/user", headers={"Authorization": f"token {hub.token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["admin"] is True, me.text
