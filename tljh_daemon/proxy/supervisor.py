"""How Traefik is kept running.

Process mode: the daemon runs Traefik itself, re-adopts it after a restart and
restarts it when it dies. Traefik runs in its own session so the data path
(browser <-> user servers) keeps working while the daemon restarts."""

import asyncio
import json
import logging
import os
import subprocess

import psutil

from ..spawner.process import process_for
from ..spawner.base import ProcessId
from ..systemd import systemctl
from ..tasks import cancel_and_wait
from .base import ProxyRunner
from .pageout import page_out_executable
from .traefik import read_env_file

log = logging.getLogger(__name__)


class TraefikSupervisor(ProxyRunner):
    check_interval = 1.0

    def __init__(self, proxy):
        self.proxy = proxy
        self.pidfile = os.path.join(proxy.paths.traefik_dir, "traefik.pid")
        self.log_path = os.path.join(proxy.paths.logs_dir, "traefik.log")
        self.handle = None
        self._popen = None
        self._task = None

    def _read_pidfile(self):
        try:
            with open(self.pidfile) as f:
                data = json.load(f)
            return ProcessId(int(data["pid"]), float(data["create_time"]))
        except (OSError, ValueError, KeyError):
            return None

    def _launch(self):
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._popen = subprocess.Popen(
                [self.proxy.traefik_bin, f"--configFile={self.proxy.static_config_path}"],
                env={**os.environ, **read_env_file(self.proxy.env_file)},  # ACME CA / DNS credentials
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            os.close(fd)
        self.handle = ProcessId(self._popen.pid, psutil.Process(self._popen.pid).create_time())
        with open(self.pidfile, "w") as f:
            json.dump({"pid": self.handle.pid, "create_time": self.handle.create_time}, f)
        log.info("Started Traefik (pid %s)", self.handle.pid)
        return self.handle

    def alive(self):
        if self.handle is None:
            return False
        if self._popen is not None and self._popen.pid == self.handle.pid:
            return self._popen.poll() is None
        return process_for(self.handle) is not None

    def stop(self):
        if self.handle is None:
            self.handle = self._read_pidfile()
        proc = process_for(self.handle) if self.handle else None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except psutil.TimeoutExpired:
                proc.kill()
        if self._popen is not None:
            self._popen.poll()
        return proc is not None

    async def start(self, *, config_changed: bool) -> None:
        """Adopt a running Traefik (restart it if its static config changed) or launch one."""
        self.handle = self._read_pidfile()
        if self.handle and process_for(self.handle) is not None:
            if config_changed:
                log.info("Traefik's static config changed; restarting it")
                self.stop()
                self._launch()
            else:
                log.info("Re-adopted running Traefik (pid %s)", self.handle.pid)
        else:
            self._launch()
        await self.wait_up()
        await release_startup_pages(self.handle.pid)
        self._task = asyncio.create_task(self._watch())

    async def wait_up(self):
        try:
            await self.proxy.wait_until_up(alive=self.alive)
        except RuntimeError as e:
            raise RuntimeError(f"{e} ({self.log_path})") from None

    async def _watch(self):
        while True:
            await asyncio.sleep(self.check_interval)
            if not self.alive():
                log.error("Traefik died; restarting it")
                try:
                    handle = self._launch()
                    await self.wait_up()
                    await release_startup_pages(handle.pid)
                except Exception:
                    log.exception("Restarting Traefik failed; will try again")

    async def close(self):
        await cancel_and_wait(self._task)
        self._task = None


class TraefikUnit(ProxyRunner):
    """systemd mode: Traefik is the `tljh-traefik` unit; the daemon only (re)starts it."""

    unit = "tljh-traefik.service"

    def __init__(self, proxy):
        self.proxy = proxy

    async def start(self, *, config_changed):
        await systemctl("restart" if config_changed else "start", self.unit, check=True)
        await self.proxy.wait_until_up()
        _, pid = await systemctl("show", "--property=MainPID", "--value", self.unit)
        if pid.strip().isdigit() and int(pid) > 0:
            await release_startup_pages(int(pid))

    async def close(self):
        pass


async def release_startup_pages(pid: int) -> None:
    """Drop the pages of Traefik's binary its start-up left resident (see pageout.py)."""
    try:
        before = psutil.Process(pid).memory_info().rss
        if await asyncio.to_thread(page_out_executable, pid):
            after = psutil.Process(pid).memory_info().rss
            log.info("Traefik's resident memory: %d MiB after start-up, %d MiB without its start-up pages",
                     before >> 20, after >> 20)
    except psutil.Error:
        pass  # it exited meanwhile; the watcher restarts it
