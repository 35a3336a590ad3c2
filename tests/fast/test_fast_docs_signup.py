"""The tljh-config lines of the sign-up, workshop and LDAP how-tos are accepted as written:
each runs through the real `tljh-config` command, and the result loads (cross-key checks too)."""

import os
import re
import shlex

import pytest
from click.testing import CliRunner

from tljh_daemon import config as config_mod
from tljh_daemon.config_cli import main

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs")
LINE = re.compile(r"^\s+sudo tljh-config (set|add-item|unset|remove-item) (.+)$", re.M)


def doc_commands(name):
    with open(os.path.join(DOCS, name)) as f:
        return [[verb, *shlex.split(rest)] for verb, rest in LINE.findall(f.read())]


@pytest.mark.skipif(os.geteuid() != 0, reason="tljh-config needs root")
@pytest.mark.parametrize("doc, auth_type", [
    ("howto-signup.md", "native"),
    ("howto-workshop.md", "tmp"),
    ("howto-ldap.md", "ldap"),
])
def test_how_to_lines_are_accepted(tmp_path, doc, auth_type):
    commands = doc_commands(doc)
    assert len(commands) >= 3
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(main, ["--prefix", str(tmp_path), *command])
        assert result.exit_code == 0, (command, result.output)
    config = config_mod.load(os.path.join(tmp_path, "config", "config.yaml"))
    assert config["auth"]["type"] == auth_type
