"""Profiles on a booted systemd: the chosen profile's limits are the server's scope limits
(MemoryMax, CPUQuota), and where the container's cgroups are writable, a kernel that fits the
big profile is killed in the small one and lives in the big one."""

import pytest

from test_install import User, installed

SMALL_MIB, BIG_MIB = 500, 1500
PROFILES = f"""limits:
  memory: 1G
profiles:
  - slug: small
    display_name: Small
    default: true
    limits:
      memory: {SMALL_MIB}M
      cpu: 0.5
  - slug: big
    display_name: Big
    limits:
      memory: {BIG_MIB}M
      cpu: 1
"""


@pytest.fixture(scope="module")
def install(rootfs, pytestconfig):
    with installed(rootfs, pytestconfig, PROFILES) as hub:
        yield hub


class ProfileUser(User):
    """A user whose server is started through the REST API with `{"profile": <profile>}`."""

    def __init__(self, install, name, password, profile):
        self.profile = profile
        super().__init__(install, name, password)

    def spawn(self):
        xsrf = next(c.value for c in self.client.cookies if c.name == "_xsrf" and c.path == "/hub/")
        r = self.client.post(self.client.url(f"/hub/api/users/{self.name}/server"), json={"profile": self.profile},
                             headers={"X-XSRFToken": xsrf})
        assert r.status_code == 202, r.text
        events = self.client.progress_events(self.name)
        assert events[-1].get("ready"), events
        assert self.client.get(self.client.url(f"/user/{self.name}/lab")).status_code == 200  # OAuth done
        self.kernel = self.client.start_kernel(self.name)


@pytest.fixture(scope="module")
def small(install):
    return ProfileUser(install, "sam", "sam-first-password", "small")


@pytest.fixture(scope="module")
def big(install):
    return ProfileUser(install, "bea", "bea-first-password", "big")


def test_the_profiles_limits_are_the_scopes(install, small, big):
    for user, memory, cpu in ((small, SMALL_MIB, "500ms"), (big, BIG_MIB, "1s")):
        pid = user.value("int(__import__('os').environ['JPY_PARENT_PID'])")
        assert f"jupyter-{user.name}.scope\n" in install.sh(["cat", f"/proc/{pid}/cgroup"])
        scope = install.unit(f"jupyter-{user.name}.scope", "MemoryMax", "CPUQuotaPerSecUSec")
        assert scope == {"MemoryMax": str(memory * 2**20), "CPUQuotaPerSecUSec": cpu}
        model = user.client.get(user.client.url(f"/hub/api/users/{user.name}")).json()
        assert model["servers"][""]["user_options"] == {"profile": user.profile}


def test_a_kernel_over_the_small_profile_is_killed_and_lives_in_the_big_one(install, small, big):
    if not install.container.delegate_cgroups:
        pytest.skip("cgroups are read-only in this container (cgroup v2 host): MemoryMax is not enforced")
    code = f"x = bytearray({2 * SMALL_MIB} * 2**20)"
    assert big.run_until_kernel_dies(code, timeout=120) == "finished"
    assert small.run_until_kernel_dies(code, timeout=120) == "restarting"
