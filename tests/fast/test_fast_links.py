"""Which install may claim the machine-wide tljh-config link (tljh_daemon.links)."""

import os

from tljh_daemon.paths import Paths
from tljh_daemon import links
from tljh_installer import steps


def test_only_the_default_prefix_or_an_explicit_flag_links(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    link = bin_dir / "tljh-config"
    other = Paths(str(tmp_path / "second"))
    said = links.link_tljh_config(other, bin_dir=str(bin_dir))
    assert not os.path.lexists(link) and "left alone" in said and other.prefix in said

    first = Paths(links.DEFAULT_PREFIX)
    links.link_tljh_config(first, bin_dir=str(bin_dir))
    assert os.readlink(link) == "/opt/tljh/hub/bin/tljh-config"
    links.link_tljh_config(other, bin_dir=str(bin_dir))
    assert os.readlink(link) == "/opt/tljh/hub/bin/tljh-config", "a second install never takes it over"
    assert links.remove_links_into(other, bin_dir=str(bin_dir)) == []
    assert links.remove_links_into(first, bin_dir=str(bin_dir)) == [], "the default install keeps its link"

    links.link_tljh_config(other, requested=True, bin_dir=str(bin_dir))
    assert os.readlink(link) == os.path.join(other.prefix, "hub", "bin", "tljh-config")
    assert links.remove_links_into(other, bin_dir=str(bin_dir)) == [str(link)]
    assert not os.path.lexists(link)


def test_login_shell_path_script_only_for_the_default_prefix_or_the_flag(tmp_path):
    profile_dir = str(tmp_path / "profile.d")
    other = Paths(str(tmp_path / "second"))
    said = steps.ensure_user_env_on_path(other, profile_dir)
    assert "not written" in said and not os.path.exists(profile_dir + "/" + os.path.basename(
        steps.profile_script(other, profile_dir)))
    steps.ensure_user_env_on_path(other, profile_dir, machine_wide=True)
    script = steps.profile_script(other, profile_dir)
    with open(script) as f:
        assert os.path.join(other.user_env, "bin") in f.read()
