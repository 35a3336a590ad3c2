"""Is a pre-warmed server the same as a fresh one? What both report, compared (issue: fidelity).

`PROBE` is a user's own `~/.jupyter/jupyter_server_config.py`: a server that reads it (as a fresh
one does) writes a report of what it derives from the user, the environment and the process to
`~/.tljh-fidelity/<pid>.json`. It imports the launcher's preload list first, so a value a library
computed at import time is in the report whether the server imported it early (the launcher, as
root) or late (a fresh server, as the user). `KERNEL_PROBE` is the same for a kernel.

`collect(client, name, mode, read_report)` gathers both reports from a running server;
`differences(fresh, prewarmed, allowed)` lists every key whose values differ, minus the ones
`allowed` names with a reason. `check_lab_settings_and_workspaces` drives JupyterLab's settings and
workspaces APIs as the browser does and says where they failed.
"""

import ast
import json
import re
import time
from urllib.parse import urlsplit

PROBE_DIR = ".tljh-fidelity"

# Differences a user cannot meet, each with why it stays (both tiers' fidelity tests use these).
ALLOWED = {
    "sys.flags.ignore_environment": "the launcher runs with -E so the daemon's PYTHON* variables never reach "
                                    "servers; a spawn whose environment sets one starts fresh",
    "sys.flags.no_user_site": "the launcher runs with -s so root's ~/.local is never imported; each server "
                              "adds its user's own site-packages where a fresh interpreter would",
}

_PROBE_BODY = r'''
def _tljh_fidelity_report(preload):
    import gc, importlib, json, locale, os, re, resource, signal, site, sys, tempfile
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    import traitlets
    from jupyter_core import paths
    import IPython.paths

    def status():
        keep = ("Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "CapInh", "CapPrm", "CapEff", "CapBnd",
                "CapAmb", "SigBlk", "SigIgn")
        with open("/proc/self/status") as f:
            return {k: v.strip() for k, _, v in (line.partition(":") for line in f) if k in keep}

    def static_defaults():
        """Every static trait default of every Configurable class loaded: these are computed when
        the class is defined, i.e. at import time."""
        out = {}
        for module in list(sys.modules.values()):
            for value in list(vars(module).values()) if hasattr(module, "__dict__") else ():
                if (isinstance(value, type) and issubclass(value, traitlets.HasTraits)
                        and value.__module__ == getattr(module, "__name__", None)):
                    # What instances start from: traitlets keeps a copy of static defaults per class.
                    initial = getattr(value, "_static_immutable_initial_values", {})
                    for trait_name, trait in value.class_traits().items():
                        default = initial.get(trait_name, getattr(trait, "default_value", None))
                        if isinstance(default, (str, list, tuple, dict)) and default:
                            text = re.sub(r" at 0x[0-9a-f]+", "", repr(default))
                            out[f"trait {value.__module__}.{value.__qualname__}.{trait_name}"] = text
        return out

    def globals_naming(needles):
        """Module-level strings (or strings in a module-level list, tuple or dict) that name one
        of `needles`: a value a module computed at import from the launcher's HOME or USER."""
        found = []
        for module_name, module in list(sys.modules.items()):
            for key, value in list(getattr(module, "__dict__", {}).items()):
                items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
                if any(isinstance(v, str) and any(n in v for n in needles) for v in items):
                    found.append(f"{module_name}.{key}")
        return sorted(found)

    umask = os.umask(0o022)
    os.umask(umask)
    main = sys.modules.get("__main__")
    report = {
        "pid": os.getpid(),
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "umask": oct(umask),
        "rlimits": {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")},
        "locale LC_CTYPE": locale.setlocale(locale.LC_CTYPE),
        "locale LC_ALL": locale.setlocale(locale.LC_ALL),
        "preferred encoding": locale.getpreferredencoding(False),
        "filesystem encoding": sys.getfilesystemencoding(),
        "stdout": [getattr(sys.stdout, "encoding", None), getattr(sys.stdout, "line_buffering", None)],
        "sys.flags": {n: getattr(sys.flags, n) for n in dir(sys.flags) if not n.startswith(("_", "n_")) and not callable(getattr(sys.flags, n))},
        "sys.argv": sys.argv,
        "sys.orig_argv": getattr(sys, "orig_argv", None),
        "sys.executable": sys.executable,
        "sys.path": sys.path,
        "sys.prefix": [sys.prefix, sys.base_prefix, sys.exec_prefix],
        "sys.dont_write_bytecode": sys.dont_write_bytecode,
        "site": [site.ENABLE_USER_SITE, site.USER_SITE, site.USER_BASE],
        "__main__": [getattr(main, "__name__", None), getattr(main, "__file__", None)],
        "tempdir": tempfile.gettempdir(),
        "signals": {s.name: repr(signal.getsignal(s)) for s in signal.valid_signals() if isinstance(s, signal.Signals)
                    and s not in (signal.SIGKILL, signal.SIGSTOP)},
        "signal mask": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "session leader": os.getsid(0) == os.getpid(),
        "process group leader": os.getpgid(0) == os.getpid(),
        "priority": os.getpriority(os.PRIO_PROCESS, 0),
        "oom_score_adj": open("/proc/self/oom_score_adj").read().strip(),
        "status": status(),
        "recursion limit": sys.getrecursionlimit(),
        "switch interval": sys.getswitchinterval(),
        "gc": [gc.isenabled(), gc.get_threshold()],
        "jupyter config dir": paths.jupyter_config_dir(),
        "jupyter data dir": paths.jupyter_data_dir(),
        "jupyter runtime dir": paths.jupyter_runtime_dir(),
        "jupyter path": paths.jupyter_path(),
        "jupyter config path": paths.jupyter_config_path(),
        "ipython dir": IPython.paths.get_ipython_dir(),
        "expanduser": os.path.expanduser("~"),
        "module globals naming the launcher": globals_naming(%(launcher)r),
        **static_defaults(),
    }
    directory = os.path.join(os.path.expanduser("~"), %(dir)r)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{os.getpid()}.json"), "w") as f:
        json.dump(report, f, indent=1, sort_keys=True, default=repr)
    # Proof that the user's own config reached the server: a setting from it (the marker header).
    c.ServerApp.tornado_settings = {"headers": {"X-Tljh-Fidelity": "user-config"}}


_tljh_fidelity_report(%(preload)r)
'''


def probe_config(preload, launcher_names):
    """The text of ~/.jupyter/jupyter_server_config.py that writes a server's report; it lists module
    globals that hold one of `launcher_names` (the launcher's own HOME and USER)."""
    return _PROBE_BODY % {"dir": PROBE_DIR, "preload": list(preload), "launcher": list(launcher_names)}


KERNEL_PROBE = r"""
import json as _j, os as _o, resource as _r, sys as _s
def _status():
    with open("/proc/self/status") as f:
        return {k: v.strip() for k, _, v in (l.partition(":") for l in f)
                if k in ("Uid", "Gid", "Groups", "NoNewPrivs", "SigBlk", "SigIgn", "CapEff", "CapBnd")}
_m = _o.umask(0o022); _o.umask(_m)
_j.dumps({"server pid": int(_o.environ["JPY_PARENT_PID"]), "env": dict(_o.environ), "cwd": _o.getcwd(), "umask": oct(_m), "sys.path": _s.path,
          "sys.executable": _s.executable, "ipython dir": get_ipython().ipython_dir,
          "rlimits": {n: _r.getrlimit(getattr(_r, n)) for n in dir(_r) if n.startswith("RLIMIT_")},
          "status": _status(), "priority": _o.getpriority(_o.PRIO_PROCESS, 0)})
""".strip()


def flatten(report, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}: one key per compared value, so differences name it."""
    out = {}
    for key, value in report.items():
        if isinstance(value, dict) and key in ("env", "rlimits", "status", "signals", "sys.flags"):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def normalise(report, per_spawn):
    """Replace values that differ between any two spawns (a token, a port, a pid) in strings by their names."""
    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        for name, spawn_value in per_spawn.items():
            if isinstance(value, str) and spawn_value:
                value = re.sub(re.escape(str(spawn_value)) + r"(?!\d)", f"<{name}>", value)
        return value
    return walk(report)


def differences(fresh, prewarmed, allowed):
    """Keys whose values differ, except those in `allowed` (key or key prefix -> reason)."""
    a, b = flatten(fresh), flatten(prewarmed)
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<missing>") == b.get(key, "<missing>"):
            continue
        if any(key == k or (k.endswith(".") and key.startswith(k)) for k in allowed):
            continue
        out.append(f"{key}: fresh {a.get(key, '<missing>')!r} vs pre-warmed {b.get(key, '<missing>')!r}")
    return out


def check_lab_settings_and_workspaces(client, name):
    """Change a JupyterLab setting and save and read back a workspace through the server's APIs, as
    JupyterLab's front end does. Returns a list of failures (empty when all worked)."""
    failures = []
    headers = {"X-XSRFToken": client.server_xsrf()}
    base = client.url(f"/user/{name}/lab/api")
    plugin = "@jupyterlab/apputils-extension:themes"
    raw = json.dumps({"theme": "JupyterLab Dark"})
    r = client.put(f"{base}/settings/{plugin}", data=json.dumps({"raw": raw}), headers=headers)
    if r.status_code != 204:
        failures.append(f"PUT settings {plugin}: {r.status_code} {r.text[:300]}")
    r = client.get(f"{base}/settings/{plugin}")
    if r.status_code != 200 or json.loads(r.text).get("raw") != raw:
        failures.append(f"GET settings {plugin}: {r.status_code} {r.text[:300]}")
    workspace = {"data": {"layout-restorer:data": {"main": {"current": "notebook:x.ipynb"}}},
                 "metadata": {"id": "tljh-fidelity"}}
    r = client.put(f"{base}/workspaces/tljh-fidelity", data=json.dumps(workspace), headers=headers)
    if r.status_code != 204:
        failures.append(f"PUT workspace: {r.status_code} {r.text[:300]}")
    r = client.get(f"{base}/workspaces/tljh-fidelity")
    if r.status_code != 200 or r.json().get("data") != workspace["data"]:
        failures.append(f"GET workspace: {r.status_code} {r.text[:300]}")
    r = client.get(f"{base}/workspaces")
    if r.status_code != 200:
        failures.append(f"GET workspaces: {r.status_code} {r.text[:300]}")
    return failures



def collect(client, name, mode, read_report, timeout=30):
    """The reports of `name`'s running server and of a new kernel in it (normalised: token, port
    and the server's pid by name), and what failed in JupyterLab's settings and workspaces APIs.
    `read_report(pid)` returns the text of the server's report file, or None while there is none."""
    lab = client.get(client.url(f"/user/{name}/lab"))
    assert lab.status_code == 200, f"{mode}: /lab answered {lab.status_code}"
    assert lab.headers.get("X-Tljh-Fidelity") == "user-config", \
        f"{mode}: the user's own jupyter_server_config.py was not applied"
    lab_failures = [f"{mode} server: {f}" for f in check_lab_settings_and_workspaces(client, name)]
    kernel = json.loads(ast.literal_eval(client.run(name, KERNEL_PROBE)))
    # The server that started it (jupyter_client sets JPY_PARENT_PID; a pre-warmed kernel's parent
    # process is the server's kernel zygote).
    pid = kernel.pop("server pid")
    deadline = time.monotonic() + timeout
    while (text := read_report(pid)) is None:
        assert time.monotonic() < deadline, f"no report from the {mode} server (pid {pid})"
        time.sleep(0.2)
    server = json.loads(text)
    assert server.pop("pid") == pid
    env = server["env"]
    per_spawn = {"token": env["JUPYTERHUB_API_TOKEN"], "port": urlsplit(env["JUPYTERHUB_SERVICE_URL"]).port,
                 "server pid": pid, "invocation id": env.get("INVOCATION_ID"),
                 "journal stream": env.get("JOURNAL_STREAM")}  # systemd's, per unit
    return normalise(server, per_spawn), normalise(kernel, per_spawn), lab_failures
