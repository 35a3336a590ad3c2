"""Bad input gets a clear JSON 400 (or an error page) with a message, never a 500; the hub
answers normally afterwards (issue 10, items 6 and 7)."""

from datetime import datetime, timedelta, timezone

import pytest

NOT_UTF8 = b'\xff\xfe{"usernames": ["x"]}'
BODY_ENDPOINTS = [
    ("POST", "/users"),
    ("POST", "/groups/g1/users"),
    ("DELETE", "/groups/g1/users"),
    ("POST", "/users/root1/tokens"),
    ("PUT", "/groups/g1/properties"),
    ("POST", "/users/root1/activity"),
    ("PATCH", "/users/root1"),
]


async def _error(resp, status=400):
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["status"] == status and body["message"]
    return body["message"]


@pytest.fixture
async def admin(hub):
    token = hub.token("root1", admin=True)
    async with hub.api("POST", "/groups/g1", token) as resp:
        assert resp.status == 201
    return token


@pytest.mark.parametrize("method,path", BODY_ENDPOINTS)
async def test_body_that_is_not_utf8_is_a_400(hub, admin, method, path):
    async with hub.api(method, path, admin, data=NOT_UTF8) as resp:
        assert "not valid UTF-8" in await _error(resp)


async def test_deeply_nested_json_is_a_400(hub, admin):
    async with hub.api("POST", "/users", admin, data="[" * 100_000) as resp:
        assert "nested too deeply" in await _error(resp)
    async with hub.api("POST", "/users", admin, data='{"a":' * 50_000 + "1" + "}" * 50_000) as resp:
        assert "nested too deeply" in await _error(resp)


async def test_a_content_encoded_body_is_refused_unread(hub, admin):
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with hub.api("POST", "/users", admin, data=b"this is not gzip", headers=headers) as resp:
        assert resp.status == 415
        assert "content-encoding 'gzip'" in (await resp.json())["message"].lower()


async def test_login_form_that_is_not_utf8_is_a_400_page(hub):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with hub.request("POST", "/hub/login", data=b"username=\xff&password=x", headers=headers) as resp:
        assert resp.status == 400
        assert "not valid UTF-8" in await resp.text()


@pytest.mark.parametrize("query,message", [
    ({"offset": "99999999999999999999999"}, "offset must be at most"),
    ({"limit": "99999999999999999999999"}, "limit must be at most"),
    ({"offset": "-1"}, "offset must not be negative"),
    ({"limit": "-5"}, "limit must not be negative"),
    ({"offset": "1.5"}, "must be integers"),
])
async def test_out_of_range_pagination_is_a_400(hub, admin, query, message):
    for path in ("/users", "/groups"):
        async with hub.api("GET", path, admin, params=query) as resp:
            assert message in await _error(resp)


async def test_admin_page_with_a_huge_offset_is_not_a_500(hub):
    browser = await hub.browser("root1")
    hub.db.execute("UPDATE users SET admin=1 WHERE name='root1'")
    async with browser.request("GET", "/hub/admin", params={"offset": "9" * 30}) as resp:
        assert resp.status == 200


async def test_trace_is_a_405(hub, admin):
    for path in ("/hub/api/users", "/hub/login", "/hub/api/", "/hub/health"):
        async with hub.request("TRACE", path, admin) as resp:
            assert resp.status == 405, path
    async with hub.api("TRACE", "/users", admin) as resp:
        await _error(resp, 405)


async def test_hub_answers_normally_after_bad_input(hub, admin):
    async with hub.api("POST", "/users", admin, data=NOT_UTF8):
        pass
    async with hub.api("POST", "/users", admin, json={"usernames": ["fine"]}) as resp:
        assert resp.status == 201


async def test_user_model_names_the_asking_token(hub):
    token = hub.token("alice")
    async with hub.api("GET", "/user", token) as resp:
        model = await resp.json()
    async with hub.api("GET", "/users/alice/tokens", token) as resp:
        listed = [t["id"] for t in (await resp.json())["api_tokens"]]
    assert model["token_id"] in listed
    assert "session_id" in model
    browser = await hub.browser("bob")
    async with browser.api("GET", "/user") as resp:
        assert (await resp.json())["token_id"] is None


def _stamp(delta):
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_activity_far_in_the_future_is_a_400(hub):
    token = hub.token("alice")
    async with hub.api("POST", "/users/alice/activity", token,
                       json={"last_activity": _stamp(timedelta(hours=2))}) as resp:
        assert "more than an hour in the future" in await _error(resp)
    hub.add_user("alice")
    async with hub.api("POST", "/users/alice/activity", token,
                       json={"servers": {"": {"last_activity": _stamp(timedelta(days=365))}}}) as resp:
        await _error(resp)
    # A clock a little ahead is fine (JupyterHub allows 59 minutes).
    async with hub.api("POST", "/users/alice/activity", token,
                       json={"last_activity": _stamp(timedelta(minutes=30))}) as resp:
        assert resp.status == 200
