"""Fixtures for container integration tests: a cached Debian rootfs and booted containers.

All tests here are skipped (loudly) unless run as root.
"""

import os
import time

import pytest

import harness

NOT_ROOT = "integration tests need root (overlayfs, systemd-nspawn, nsenter); run them as root"


def pytest_report_header(config):
    if os.geteuid() != 0:
        return f"*** SKIPPING ALL integration tests: {NOT_ROOT} ***"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    ours = [item for item in items if str(item.fspath).startswith(here + os.sep)]
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=NOT_ROOT))
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if ours and reporter:
        reporter.write_line(f"*** SKIPPING {len(ours)} integration tests: {NOT_ROOT} ***", red=True, bold=True)


@pytest.fixture(scope="session")
def rootfs():
    """Path of the cached Debian rootfs (installs host tools and builds it on first use)."""
    harness.ensure_host_tools()
    start = time.monotonic()
    path = harness.build_rootfs()
    print(f"\n[harness] rootfs {path} ready in {time.monotonic() - start:.1f}s")
    return path


@pytest.fixture
def container_factory(rootfs):
    """Boot containers: `container_factory(binds_ro=..., binds=..., delegate_cgroups=...)`.

    binds_ro defaults to this checkout at /src. Every container is stopped at teardown.
    """
    started = []

    def make(binds_ro=(f"{harness.REPO}:/src",), binds=(), delegate_cgroups=False):
        c = harness.Container(rootfs, binds_ro=binds_ro, binds=binds, delegate_cgroups=delegate_cgroups)
        started.append(c)
        t = time.monotonic()
        c.start()
        print(f"[harness] {c.name} booted in {time.monotonic() - t:.1f}s")
        return c

    yield make
    errors = []
    for c in reversed(started):
        t = time.monotonic()
        try:
            c.stop()
        except Exception as e:  # still stop the others
            errors.append(e)
        print(f"[harness] {c.name} stopped in {time.monotonic() - t:.1f}s")
    if errors:
        raise errors[0]


@pytest.fixture
def container(container_factory):
    """One booted container with this checkout bind-mounted read-only at /src."""
    return container_factory()
