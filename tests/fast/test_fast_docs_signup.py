"""The tljh-config lines of the sign-up, workshop, LDAP and OAuth how-tos are accepted as written:
each runs through the real `tljh-config` command, and the result loads (cross-key checks too)."""

import os
import re
import shlex

import pytest
from click.testing import CliRunner

from tljh_daemon import config as config_mod
from tljh_daemon.auth import authenticator_class
from tljh_daemon.config_cli import main

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs")
LINE = re.compile(r"^\s+sudo tljh-config (set|add-item|unset|remove-item) (.+)$", re.M)


def doc_commands(name):
    with open(os.path.join(DOCS, name)) as f:
        return [[verb, *shlex.split(rest)] for verb, rest in LINE.findall(f.read())]


@pytest.mark.parametrize("doc, auth_type", [
    ("howto-signup.md", "native"),
    ("howto-workshop.md", "tmp"),
    ("howto-ldap.md", "ldap"),
    ("howto-oidc.md", "generic"),
    ("howto-github.md", "github"),
    ("howto-google.md", "google"),
])
def test_how_to_lines_are_accepted(tmp_path, doc, auth_type, as_root_for_tljh_config):
    commands = doc_commands(doc)
    assert len(commands) >= 3
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(main, ["--prefix", str(tmp_path), *command])
        assert result.exit_code == 0, (command, result.output)
    config = config_mod.load(os.path.join(tmp_path, "config", "config.yaml"))
    assert config["auth"]["type"] == auth_type
    # Secrets the how-to sets are masked by `tljh-config show`.
    cls = authenticator_class(auth_type)
    shown = runner.invoke(main, ["--prefix", str(tmp_path), "show"]).output
    for key in cls.SECRET_KEYS:
        value = (config["auth"].get(cls.section) or {}).get(key)
        if value:
            assert key in shown and value not in shown
