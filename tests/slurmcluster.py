"""A one-node Slurm cluster on loopback, from Debian's slurm-wlm and munge, for the tests.

munged, slurmctld and slurmd run in the foreground as our children, with their key,
configuration, state and logs in one temporary directory; `stop` cancels every job, waits
for Slurm to clean them up, then ends the three daemons by pid. The node has one CPU and
the partition gives each job a whole node, so a second job queues behind the first.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

CONF = """\
ClusterName={cluster}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={dir}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/linear
SchedulerType=sched/builtin
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=1 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=EXCLUSIVE
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tljh-test-slurm-", dir="/var/tmp")
        os.chmod(self.dir, 0o755)  # users' sbatch reads slurm.conf and reaches munge's socket
        for sub in ("munge", "state", "spool", "log"):
            os.makedirs(os.path.join(self.dir, sub))
        os.chmod(os.path.join(self.dir, "munge"), 0o755)
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.env = {**os.environ, "SLURM_CONF": self.conf}
        self.procs = []

    def start(self, timeout=60):
        key = os.path.join(self.dir, "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        with open(self.conf, "w") as f:
            f.write(CONF.format(cluster="tljhtest", dir=self.dir, ctld_port=_free_port(), slurmd_port=_free_port()))
        os.chmod(self.conf, 0o644)
        munge_dir = os.path.join(self.dir, "munge")
        self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={munge_dir}/munge.socket",
                               f"--key-file={key}", f"--pid-file={munge_dir}/munged.pid",
                               f"--seed-file={munge_dir}/seed", f"--log-file={self.dir}/log/munged.log"])
        self._wait(lambda: os.path.exists(f"{munge_dir}/munge.socket"), timeout, "munged")
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", self.conf])
        self._spawn("slurmd", ["slurmd", "-D", "-f", self.conf, "-N", "localhost"])
        self._wait(lambda: self.run("sinfo", "--noheader", "--format=%T").strip() == "idle", timeout, "the node")
        return self

    def _spawn(self, name, cmd):
        log = open(os.path.join(self.dir, "log", f"{name}.out"), "ab")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env))
        log.close()

    def _wait(self, condition, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {self.logs()}")
            if condition():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} did not come up in {timeout}s: {self.logs()}")

    def run(self, *cmd):
        result = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=60)
        return result.stdout

    def jobs(self):
        """[(job id, state, user)] of every job Slurm still lists."""
        out = self.run("squeue", "--states=all", "--noheader", "--format=%i|%T|%u")
        return [tuple(line.split("|")) for line in out.split()]

    def logs(self):
        text = []
        for name in sorted(os.listdir(os.path.join(self.dir, "log"))):
            with open(os.path.join(self.dir, "log", name), errors="replace") as f:
                text.append(f"--- {name}\n" + "".join(f.readlines()[-15:]))
        return "\n".join(text)

    def stop(self):
        if any(p.poll() is None for p in self.procs[1:]):
            active = [j for j, state, _ in self.jobs() if state in ("PENDING", "RUNNING", "COMPLETING")]
            if active:
                self.run("scancel", *active)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(
                    state in ("PENDING", "RUNNING", "COMPLETING") for _, state, _ in self.jobs()):
                time.sleep(0.5)
        for proc in reversed(self.procs):  # slurmd, slurmctld, then munged
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
