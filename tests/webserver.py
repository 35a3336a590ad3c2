"""What the nginx and Apache test fixtures share: a web server run in the foreground from a
config in its own temporary directory, started until it listens, stopped by its parent pid."""

import os
import shutil
import socket
import subprocess
import time


class ForegroundWebServer:
    name = "web server"  # for messages
    dir: str
    port: int
    proc = None

    def command(self):
        raise NotImplementedError

    def start(self, timeout=30):
        log = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not listen: {self.log()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # the foreground parent stops its workers with it
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()[-2000:]
            except OSError:
                pass
        return text
