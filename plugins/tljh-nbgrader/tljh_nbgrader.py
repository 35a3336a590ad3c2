"""nbgrader for several courses, set up as nbgrader's demo_multiple_classes does on JupyterHub.

As a plugin (`bootstrap.py --plugin ./plugins/tljh-nbgrader`) it installs nbgrader into the user
environment and makes the exchange. Its command does the steps of docs/howto-nbgrader.md:

    sudo tljh-nbgrader setup [--exchange DIR]
    sudo tljh-nbgrader add-course COURSE --port PORT [--account NAME] [--grader NAME ...] [--student NAME ...]
    sudo tljh-config reload

`add-course` makes the course's Unix account (`grader-<course>`) with nbgrader's course directory
(`nbgrader quickstart`), the formgrader service `services.<course>` (jupyterhub-singleuser as that
account), the roles `formgrade-<course>`, `nbgrader-<course>`, `<course>-service` and `server:
inherit` in config.yaml, and the groups `formgrade-<course>` (graders) and `nbgrader-<course>`
(students) in `jupyterhub_config.d/nbgrader-<course>.py`. Running it again changes nothing that is
there already (members added by hand stay).
"""

import argparse
import ast
import os
import pwd
import re
import subprocess
import sys

from tljh import config as tljh_config
from tljh.hooks import hookimpl

EXCHANGE = "/srv/nbgrader/exchange"
#: nbgrader's course ids double as service, group and role names here
COURSE = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")
MARK = "# Written by tljh-nbgrader."

GLOBAL_CONFIG = MARK + """
# One exchange for all courses; who is in which course comes from the hub's groups
# (nbgrader-<course>: students, formgrade-<course>: graders).
from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()
c.Exchange.root = {exchange!r}
c.Exchange.path_includes_course = True
c.Authenticator.plugin_class = JupyterHubAuthPlugin
"""

COURSE_CONFIG = MARK + """
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = {course!r}
"""

GROUPS = MARK + """
# The course's groups (created at each hub start; members added through the REST API or the
# admin panel are kept). The course account is a grader so nbgrader's formgrader finds its course.
# update(), not =: every file of jupyterhub_config.d sets the same `c`.
c.JupyterHub.load_groups.update({groups!r})
"""


@hookimpl
def tljh_extra_user_pip_packages():
    return ["nbgrader"]


@hookimpl
def tljh_post_install():
    setup(tljh_config.INSTALL_PREFIX)


def _config_file(prefix):
    return os.path.join(prefix, "config", "config.yaml")


def user_environment(prefix):
    """The user environment's prefix: user_environment.path, else <prefix>/user."""
    configured = (tljh_config.get_current_config(_config_file(prefix)).get("user_environment") or {}).get("path")
    return configured or os.path.join(prefix, "user")


def setup(prefix, exchange=EXCHANGE):
    """The exchange (everyone may write, sticky) and nbgrader's global config in the user environment."""
    os.makedirs(exchange, exist_ok=True)
    os.chmod(exchange, 0o1777)
    config_dir = os.path.join(user_environment(prefix), "etc", "jupyter")
    os.makedirs(config_dir, exist_ok=True)
    path = os.path.join(config_dir, "nbgrader_config.py")
    if os.path.exists(path) and not open(path).read().startswith(MARK):
        print(f"{path} exists and is not ours: left as it is", file=sys.stderr)
        return
    with open(path, "w") as f:
        f.write(GLOBAL_CONFIG.format(exchange=exchange))


def _as(account, env_bin, *command, **kwargs):
    home = pwd.getpwnam(account).pw_dir
    subprocess.run(["runuser", "-u", account, "--", "env", f"HOME={home}", f"USER={account}",
                    f"PATH={env_bin}:/usr/local/bin:/usr/bin:/bin", *command], check=True, cwd=home, **kwargs)


def _merged_role(config, name, scopes=(), groups=(), services=()):
    role = dict((config.get("roles") or {}).get(name) or {})
    for key, values in (("scopes", scopes), ("groups", groups), ("services", services)):
        if values:
            role[key] = list(dict.fromkeys([*(role.get(key) or []), *values]))
    return role


def add_course(prefix, course, port, account=None, graders=(), students=()):
    """Everything one course needs (see the module's docstring); returns the course account."""
    if not COURSE.match(course):
        raise ValueError(f"{course!r} is not a course id here: lowercase letters, digits, - and _, "
                         f"starting with a letter (it names a service, groups and roles)")
    account = account or f"grader-{course}"
    env_bin = os.path.join(user_environment(prefix), "bin")
    try:
        pwd.getpwnam(account)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", account], check=True)
    home = pwd.getpwnam(account).pw_dir
    course_config = os.path.join(home, ".jupyter", "nbgrader_config.py")
    if not os.path.exists(course_config):
        _as(account, env_bin, "mkdir", "-p", os.path.dirname(course_config))
        _as(account, env_bin, "sh", "-c", 'cat > "$1"', "sh", course_config, text=True,
            input=COURSE_CONFIG.format(root=os.path.join(home, course), course=course))
    if not os.path.exists(os.path.join(home, course)):
        _as(account, env_bin, "nbgrader", "quickstart", course, capture_output=True)

    path = _config_file(prefix)
    config = tljh_config.get_current_config(path)
    tljh_config.set_config_value(path, f"services.{course}", {
        "command": [os.path.join(env_bin, "jupyterhub-singleuser")],
        "url": f"http://127.0.0.1:{port}",
        "user": account,
        "cwd": home,
        "environment": {"JUPYTERHUB_DEFAULT_URL": "/lab", "PATH": f"{env_bin}:/usr/local/bin:/usr/bin:/bin"},
    })
    roles = {
        # graders open the course's formgrader (and their server's course list finds it)
        f"formgrade-{course}": _merged_role(config, f"formgrade-{course}",
                                            [f"access:services!service={course}", "list:services",
                                             f"read:services!service={course}"], [f"formgrade-{course}"]),
        # nbgrader's course list (in students' and graders' servers) finds the course's service
        f"nbgrader-{course}": _merged_role(config, f"nbgrader-{course}",
                                           ["list:services", f"read:services!service={course}"],
                                           [f"nbgrader-{course}"]),
        # the formgrader's nbgrader reads its account's groups with the service's token
        f"{course}-service": _merged_role(config, f"{course}-service", [f"read:users!user={account}"],
                                          services=[course]),
        # servers' tokens act for their owner, so nbgrader there can read the owner's groups
        "server": _merged_role(config, "server", ["inherit"]),
    }
    for name, role in roles.items():
        tljh_config.set_config_value(path, f"roles.{name}", role)
    if account not in ((config.get("users") or {}).get("banned") or []):
        tljh_config.add_config_value(path, "users.banned", account)  # a hub user only for its groups

    config_d = os.path.join(prefix, "config", "jupyterhub_config.d")
    os.makedirs(config_d, exist_ok=True)
    groups = {f"formgrade-{course}": sorted({account, *graders}), f"nbgrader-{course}": sorted(set(students))}
    groups_file = os.path.join(config_d, f"nbgrader-{course}.py")
    if os.path.exists(groups_file):  # keep the members named before
        for group, members in _groups_in(groups_file).items():
            groups[group] = sorted({*groups.get(group, []), *members})
    with open(groups_file, "w") as f:
        f.write(GROUPS.format(groups=groups))
    return account


def _groups_in(path):
    """The load_groups mapping of a groups file written before (a literal; the file is not run)."""
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Dict):
            return ast.literal_eval(node.args[0])
    return {}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tljh-nbgrader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default=tljh_config.INSTALL_PREFIX, help="the hub's install prefix")
    commands = parser.add_subparsers(dest="command", required=True)
    setup_cmd = commands.add_parser("setup", help="the exchange and nbgrader's global config")
    setup_cmd.add_argument("--exchange", default=EXCHANGE)
    add = commands.add_parser("add-course", help="a course: account, formgrader service, roles, groups")
    add.add_argument("course")
    add.add_argument("--port", type=int, required=True, help="a free local port for its formgrader")
    add.add_argument("--account", help="the Unix account the formgrader runs as [grader-<course>]")
    add.add_argument("--grader", action="append", default=[], help="a hub user who grades (repeatable)")
    add.add_argument("--student", action="append", default=[], help="a hub user who takes it (repeatable)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run it as root (sudo)")
    try:
        if args.command == "setup":
            setup(args.prefix, args.exchange)
            print(f"Exchange: {args.exchange}")
        else:
            account = add_course(args.prefix, args.course, args.port, args.account, args.grader, args.student)
            print(f"Course {args.course}: formgrader at /services/{args.course}/ running as {account}. "
                  f"Apply it with: sudo tljh-config reload")
    except (ValueError, subprocess.CalledProcessError) as e:
        print(f"tljh-nbgrader: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
