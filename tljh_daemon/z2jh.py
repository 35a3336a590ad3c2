"""`tljh-config export z2jh`: our settings as a values file for the Zero to JupyterHub chart.

The chart's hub is JupyterHub itself, so most settings become traitlets under
`hub.config.<Class>`; the rest map onto the chart's own keys (singleuser.*, cull.*,
proxy.https.*). Whatever has no counterpart on Kubernetes (Unix groups, ports, the
machine's own services) is returned as a list of (key, reason) so the admin sees it.
"""

import base64
import importlib.metadata
import io
import json
import os
import re
import sqlite3

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from . import config as config_mod
from . import roles as roles_mod
from .auth import REGISTRY


# Why a user's sign-in cannot simply move with the settings.
AUTH_NOTES = {
    "pam": "PAM checks /etc/shadow on this machine; the hub pod has no such accounts, "
           "so pick an authenticator backed by a directory or an identity provider",
    "firstuse": "passwords set at first login stay in this hub's database; "
                "each user sets a new one at their first login on Kubernetes",
    "native": "sign-ups and passwords stay in this hub's database; users sign up again",
}

DEFAULT_URLS = {"jupyterlab": "/lab", "classic": "/tree", "notebook": "/tree"}
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
CHART_MEMORY_GUARANTEE = 1024**3  # the chart's default singleuser.memory.guarantee (1G)
# tljh-kernel-prewarm is the install's own (kernels.prewarm), not a package an image needs.
BASE_USER_PACKAGES = ("jupyterhub", "jupyterlab", "notebook", "ipykernel", "tljh-kernel-prewarm")
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def authenticator_class(auth_type):
    """(JupyterHub class name, settings section) for our auth.type: each of our authenticators
    names the upstream class it stands for first among the dotted names in `class_names`."""
    cls = REGISTRY.get(auth_type)
    dotted = [name for name in (cls.class_names if cls else ()) if "." in name]
    if not dotted:
        return None, None
    return dotted[0], cls.section or dotted[0].rsplit(".", 1)[-1]


def memory_bytes(text):
    number, unit = re.fullmatch(r"([0-9.]+)([KMGT]?)", text).groups()
    return float(number) * UNITS[unit]


class Export:
    """Builds the values (`self.values`) and the list of what did not map (`self.unmapped`)."""

    def __init__(self, config, *, groups=None, user_packages=(), extra=None, plugin_keys=None, plugins=()):
        """`config`: config.yaml's effective settings; `extra`: what plugins and
        jupyterhub_config.d add (jupyterhub_config.Extra; its `config` then replaces `config`);
        `plugin_keys`: {key: plugin} of plugin-owned keys; `plugins`: [(name, package)]."""
        self.config = extra.config if extra is not None else config
        self.values = {}
        self.unmapped = []
        self.plugin_keys = dict(plugin_keys or {})
        groups = dict(groups or {})
        if extra is not None:
            for name, members in extra.load_groups.items():
                users = groups.setdefault(name, {"users": []}).setdefault("users", [])
                users.extend(m for m in members if m not in users)
        self._base_url()
        self._auth(groups)
        self._limits()
        self._profiles()
        self._culling()
        self._named_servers()
        self._https()
        self._singleuser()
        self._pages()
        self._services()
        self._roles()
        if extra is not None:
            self._config_d(extra)
        self._plugins(plugins)
        self._leftovers(user_packages)
        self._sweep()

    def put(self, dotted, value):
        node = self.values
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    def skip(self, key, reason):
        self.unmapped.append((key, reason))

    def _base_url(self):
        if self.config["base_url"] != "/":
            # The OAuth callback URLs exported below keep the same path: they stay under it.
            self.put("hub.baseUrl", self.config["base_url"])

    def _pages(self):
        """Announcements become the template variables JupyterHub's own pages show; the logo
        is shipped in the values (hub.extraFiles) and named by JupyterHub.logo_file."""
        announcement, branding = self.config["announcement"], self.config["branding"]
        names = {"all": "announcement", "login": "announcement_login", "home": "announcement_home",
                 "spawn": "announcement_spawn", "logout": "announcement_logout"}
        template_vars = {names[page]: text for page, text in announcement.items() if text}
        if template_vars:
            self.template_vars().update(template_vars)
        if branding["logo"]:
            name = "logo" + os.path.splitext(branding["logo"])[1]
            path = f"/usr/local/etc/jupyterhub/branding/{name}"
            with open(branding["logo"], "rb") as f:
                self.put("hub.extraFiles.branding-logo", {"mountPath": path,
                                                          "binaryData": base64.b64encode(f.read()).decode()})
            self.put("hub.config.JupyterHub.logo_file", path)
        if branding["site_name"]:
            self.skip("branding.site_name", "JupyterHub's pages have no site name setting: put it in your "
                                            "own templates (JupyterHub.template_paths, files in hub.extraFiles)")
        if branding["templates"]:
            self.skip("branding.templates", "templates for this hub's pages, not JupyterHub's (other block "
                                            "names): write JupyterHub templates and ship them in hub.extraFiles")

    def template_vars(self):
        config = self.values.setdefault("hub", {}).setdefault("config", {}).setdefault("JupyterHub", {})
        return config.setdefault("template_vars", {})

    def _services(self):
        """Services that run elsewhere (an api_token, no command) move as hub.services, their
        scopes as hub.loadRoles; a service the hub runs here is a process on this machine."""
        for name, spec in sorted(self.config["services"].items()):
            if name == "cull":
                continue
            if spec.get("command"):
                self.skip(f"services.{name}", "a process on this machine; run it in the hub pod "
                                              "(hub.services and hub.extraContainers) or beside the chart")
                continue
            service = {"apiToken": spec["api_token"]} if spec.get("api_token") else {}
            if spec.get("admin"):
                service["admin"] = True
            self.put(f"hub.services.{name}", service)
            if spec.get("scopes") and not spec.get("admin"):
                self.put(f"hub.loadRoles.{name}-service", {"scopes": list(spec["scopes"]), "services": [name]})
            if spec.get("url"):
                self.skip(f"services.{name}.url", "a loopback address on this machine: set "
                                                  f"hub.services.{name}.url to where it runs on the cluster")

    def _roles(self):
        """roles (and load_roles) as the chart's hub.loadRoles, keyed by name."""
        for _, spec in roles_mod.entries(self.config.get("roles") or []):
            role = {key: list(spec[key]) for key in ("scopes", "users", "groups", "services") if spec.get(key)}
            if spec.get("description"):
                role["description"] = spec["description"]
            self.put(f"hub.loadRoles.{spec['name']}", role)

    def _config_d(self, extra):
        """jupyterhub_config.d and plugins' tljh_custom_jupyterhub_config, where the chart has a place."""
        spawner = extra.spawner
        if spawner.get("environment"):
            self.put("singleuser.extraEnv", dict(spawner["environment"]))
        if spawner.get("default_url"):
            self.put("singleuser.defaultUrl", spawner["default_url"])
        if spawner.get("cmd"):
            self.put("singleuser.cmd", list(spawner["cmd"]))
        if spawner.get("args"):
            self.put("hub.config.KubeSpawner.args", list(spawner["args"]))
        if spawner.get("notebook_dir"):
            self.put("hub.config.KubeSpawner.notebook_dir", spawner["notebook_dir"])
        if spawner.get("mem_guarantee"):
            self.put("singleuser.memory.guarantee", spawner["mem_guarantee"])
        if spawner.get("cpu_guarantee"):
            self.put("singleuser.cpu.guarantee", spawner["cpu_guarantee"])
        if extra.template_vars:
            self.template_vars().update(extra.template_vars)
        if extra.template_paths:
            self.skip("JupyterHub.template_paths (jupyterhub_config.d)",
                      "folders on this machine: ship the templates in hub.extraFiles and set "
                      "hub.config.JupyterHub.template_paths")
        for error in extra.errors:
            self.skip(error, "skipped by this hub too (fix it, then export again)")
        for name in extra.not_applied:
            self.skip(f"{name} (jupyterhub_config.d)", "not applied by this hub either; if the chart's "
                                                       "JupyterHub should have it, set it in hub.extraConfig")

    def _plugins(self, plugins):
        for key, plugin in sorted(self.plugin_keys.items()):
            self.skip(key, f"a key of the TLJH plugin {plugin!r}; plugins do not run on the chart")
        for name, package in plugins:
            self.skip(f"plugin {name} (package {package})",
                      "TLJH plugins do not run on the chart: put the packages it added in the user "
                      "image (see the list at the top) and its JupyterHub settings in hub.config")

    def _auth(self, groups):
        auth, users = self.config["auth"], self.config["users"]
        kind = auth["type"]
        cls, section = authenticator_class(kind)
        section_names = {name for name in auth if name != "type"}
        if cls is None:
            self.skip("auth.type", f"{kind!r} has no JupyterHub authenticator class known to the export")
        else:
            self.put("hub.config.JupyterHub.authenticator_class", cls)
            settings = {k: v for k, v in (auth.get(section) or {}).items() if v is not None}
            if settings:
                self.put(f"hub.config.{section}", settings)
            section_names.discard(section)
        if kind in AUTH_NOTES:
            self.skip("auth.type", AUTH_NOTES[kind])
        for name in sorted(section_names):  # other authenticators' settings: not in use here
            if auth.get(name) and auth.get(name) != config_mod.DEFAULTS["auth"].get(name):
                self.skip(f"auth.{name}", f"settings of an authenticator other than auth.type {kind!r}; not exported")
        names = {"admin": "admin_users", "allowed": "allowed_users", "banned": "blocked_users"}
        for ours, theirs in names.items():
            if users[ours]:
                self.put(f"hub.config.Authenticator.{theirs}", sorted(users[ours]))
        section = self.values.get("hub", {}).get("config", {}).get(section, {}) if cls else {}
        restricted = users["allowed"] or any(k.startswith("allowed_") and v for k, v in section.items())
        if not restricted:
            # Here an empty users.allowed lets everyone who signs in use the hub; JupyterHub 5
            # needs that said explicitly.
            self.put("hub.config.Authenticator.allow_all", True)
        if groups:
            self.put("hub.config.JupyterHub.load_groups", groups)
        if users["extra_user_groups"]:
            self.skip("users.extra_user_groups",
                      "Unix groups on this machine; user pods have no such accounts (use hub groups or "
                      "singleuser.extraPodConfig / supplemental groups instead)")

    def _limits(self):
        limits = self.config["limits"]
        if limits["memory"]:
            self.put("singleuser.memory.limit", limits["memory"])
            if memory_bytes(limits["memory"]) < CHART_MEMORY_GUARANTEE:
                self.put("singleuser.memory.guarantee", limits["memory"])  # a guarantee above the limit fails
        if limits["cpu"]:
            self.put("singleuser.cpu.limit", limits["cpu"])
        for group in sorted(limits.get("groups") or {}):
            self.skip(f"limits.groups.{group}", "KubeSpawner has no per-group limits: offer a profile to the "
                                                "group instead (profiles.*.groups), or set them in a pre_spawn_hook")

    def _profiles(self):
        """profiles → singleuser.profileList (KubeSpawner's profile_list): limits become
        kubespawner_override's mem_limit / cpu_limit."""
        exported = []
        for index, profile in enumerate(self.config.get("profiles") or ()):
            entry = {"display_name": profile["display_name"], "slug": profile["slug"]}
            if profile.get("description"):
                entry["description"] = profile["description"]
            if profile.get("default"):
                entry["default"] = True
            override = {}
            limits = profile.get("limits") or {}
            if limits.get("memory"):
                override["mem_limit"] = limits["memory"]
                if memory_bytes(limits["memory"]) < CHART_MEMORY_GUARANTEE:
                    override["mem_guarantee"] = limits["memory"]  # a guarantee above the limit fails
            if limits.get("cpu"):
                override["cpu_limit"] = limits["cpu"]
            if override:
                entry["kubespawner_override"] = override
            exported.append(entry)
            if profile.get("groups"):
                self.skip(f"profiles.{index}.groups",
                          "singleuser.profileList offers each profile to everyone: restrict it to the groups "
                          "with a callable c.KubeSpawner.profile_list (hub.extraConfig)")
            for key in ("partition", "options"):
                if profile.get(key):
                    self.skip(f"profiles.{index}.{key}", "a Slurm setting; user pods do not run as Slurm jobs")
        if exported:
            self.put("singleuser.profileList", exported)

    def _culling(self):
        cull = self.config["services"]["cull"]
        self.put("cull.enabled", bool(cull["enabled"]))
        if not cull["enabled"]:
            return
        for ours, theirs in (("timeout", "timeout"), ("every", "every"), ("concurrency", "concurrency"),
                             ("max_age", "maxAge")):
            self.put(f"cull.{theirs}", int(round(cull[ours])))
        self.put("cull.users", bool(cull["users"]))
        self.put("cull.removeNamedServers", bool(cull["remove_named_servers"]))
        self.put("cull.adminUsers", not cull["exempt_admins"])

    def _named_servers(self):
        """named_servers.* → the chart's hub.allowNamedServers and hub.namedServerLimitPerUser."""
        named = self.config["named_servers"]
        if named["enabled"]:
            self.put("hub.allowNamedServers", True)
            if named["limit_per_user"]:
                self.put("hub.namedServerLimitPerUser", named["limit_per_user"])

    def _https(self):
        https = self.config["https"]
        tls, le = https["tls"], https["letsencrypt"]
        if not https["enabled"]:
            return
        self.put("proxy.https.enabled", True)
        if tls["cert"]:
            self.put("proxy.https.type", "manual")
            for key in ("cert", "key"):
                with open(tls[key]) as f:
                    self.put(f"proxy.https.manual.{key}", f.read())
            self.skip("proxy.https.hosts", "the certificate's domain names: set proxy.https.hosts to them")
        else:
            self.put("proxy.https.type", "letsencrypt")
            self.put("proxy.https.letsencrypt.contactEmail", le["email"])
            self.put("proxy.https.hosts", list(le["domains"]))
            server = le["acme_server"] or (LETSENCRYPT_STAGING if le["staging"] else "")
            if server:
                self.put("proxy.https.letsencrypt.acmeServer", server)
            if le["dns_provider"]:
                self.skip("https.letsencrypt.dns_provider",
                          "the chart's Let's Encrypt uses the HTTP-01 challenge only; use cert-manager for DNS-01")
            if le["acme_ca_file"]:
                self.skip("https.letsencrypt.acme_ca_file", "the chart cannot trust an extra ACME CA")
        if https["port"] != 443:
            self.skip("https.port", "the chart's proxy serves HTTPS on 443 (proxy.service.* sets the Service)")

    def _singleuser(self):
        app = self.config["user_environment"]["default_app"]
        self.put("singleuser.defaultUrl", DEFAULT_URLS[app])
        if app == "classic":
            self.skip("user_environment.default_app",
                      "'classic' is Notebook 7's /tree on the chart's images (nbclassic is not installed)")
        spawner = self.config["spawner"]
        self.put("singleuser.startTimeout", int(round(spawner["start_timeout"])))
        if spawner["concurrent_spawn_limit"]:
            self.put("hub.concurrentSpawnLimit", spawner["concurrent_spawn_limit"])
        if spawner.get("type", "local") != "local":
            self.skip(f"spawner.{spawner['type']}", "servers run as pods on Kubernetes: the "
                                                    f"{spawner['type']} spawner's settings do not apply")

    def _leftovers(self, user_packages):
        if self.config["http"]["port"] != 80:
            self.skip("http.port", "the chart's proxy serves HTTP on 80 (proxy.service.* sets the Service)")
        if self.config["user_environment"]["path"]:
            self.skip("user_environment.path", "user pods run the image's environment (singleuser.image)")
        for name in sorted(self.config["environments"]):
            self.skip(f"environments.{name}", "user pods run the image's environment: install its packages "
                                              "(with ipykernel and a kernelspec) into singleuser.image, or "
                                              "give a profile an image of its own")
        for name in sorted(self.config["shared_folders"]):
            self.skip(f"shared_folders.{name}", "a folder on this machine shared by a group: use a shared "
                                                "volume (singleuser.storage.extraVolumes / extraVolumeMounts)")
        if self.config["usage"] != config_mod.DEFAULTS["usage"]:
            self.skip("usage", "the chart keeps no usage history; the hub's /hub/metrics and the cluster's "
                               "own monitoring (e.g. Prometheus with kube-state-metrics) take its place")
        if user_packages:
            self.skip("user environment packages",
                      f"{len(user_packages)} packages beyond JupyterLab: build an image with them and set "
                      f"singleuser.image (the list is at the top of the values file)")

    # config.yaml keys the steps above consume, map or name; anything else set to other than its
    # default is named by _sweep, so nothing is dropped silently.
    HANDLED = ("base_url", "auth", "users", "limits", "profiles", "user_environment", "http.port", "https.enabled",
               "https.port", "https.tls", "https.letsencrypt.email", "https.letsencrypt.domains",
               "https.letsencrypt.staging", "https.letsencrypt.acme_server", "https.letsencrypt.dns_provider",
               "https.letsencrypt.acme_ca_file", "services", "spawner.start_timeout",
               "spawner.concurrent_spawn_limit", "spawner.type", "usage", "announcement", "branding",
               "shared_folders", "roles", "named_servers")

    def _sweep(self):
        done = set(self.HANDLED) | {key for key, _ in self.unmapped} | set(self.plugin_keys)
        for key, value in _leaves(self.config):
            if any(key == d or key.startswith(d + ".") for d in done):
                continue
            if value != _default(key):
                self.skip(key, "no counterpart on the chart (a setting of this machine's hub); not exported")


def _leaves(data, prefix=""):
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, dotted + ".")
        else:
            yield dotted, value


def _default(key):
    node = config_mod.DEFAULTS
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def hub_groups(database):
    """{group: {"users": [...], "properties": {...}}} from this hub's database (JupyterHub's
    load_groups form), or {} when there is no database yet."""
    if not os.path.exists(database):
        return {}
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        groups = {name: {"users": [], "properties": json.loads(props or "{}")}
                  for name, props in db.execute("SELECT name, properties FROM groups ORDER BY name")}
        for group, user in db.execute("SELECT group_name, user FROM group_members ORDER BY user"):
            groups[group]["users"].append(user)
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()
    return {name: {k: v for k, v in g.items() if v} or {"users": []} for name, g in groups.items()}


def user_packages(user_env):
    """`name==version` of what the user environment holds beyond JupyterLab and what it needs."""
    paths = [os.path.join(user_env, "lib", d, "site-packages")
             for d in (os.listdir(os.path.join(user_env, "lib")) if os.path.isdir(os.path.join(user_env, "lib")) else [])]
    dists = {}
    for dist in importlib.metadata.distributions(path=paths):
        name = _canonical(dist.metadata["Name"] or "")
        if name:
            dists[name] = dist
    needed, todo = set(), [p for p in BASE_USER_PACKAGES if p in dists] + ["pip", "setuptools", "wheel"]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        for requirement in (dists[name].requires or []) if name in dists else []:
            if "extra ==" in requirement:
                continue
            todo.append(_canonical(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0]))
    return sorted(f"{dists[n].metadata['Name']}=={dists[n].version}" for n in dists if n not in needed)


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def image_note(packages):
    """The comment put at the top of the values file when the user environment has extras."""
    lines = [
        "Packages installed in this hub's user environment beyond JupyterLab. Build a user image",
        "with them, e.g. a Dockerfile:",
        "  FROM quay.io/jupyterhub/k8s-singleuser-sample:<chart version>",
        "  RUN pip install --no-cache-dir \\",
        *[f"      {p} \\" for p in packages[:-1]],
        f"      {packages[-1]}",
        "then set singleuser.image.name and singleuser.image.tag to it.",
    ]
    return "\n".join(lines)


def dump(values, note=None):
    """The values as YAML text, with `note` as a comment block at the top."""
    data = CommentedMap(values)
    header = "Helm values for the Zero to JupyterHub chart, exported by `tljh-config export z2jh`.\n"
    header += "It holds secrets (client secrets, passwords, TLS keys): keep it private."
    if note:
        header += "\n\n" + note
    data.yaml_set_start_comment(header)
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()
