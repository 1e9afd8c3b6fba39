"""A real one-node SLURM cluster for the `slurm` tests: munge, slurmctld and slurmd on this machine, each with its
own key, socket, ports, spool and logs in one temporary folder, started in the foreground and stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

INSTALL = "apt-get install -y slurm-wlm munge"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
# Requeued jobs wait cred_expire + 1 s before they may start again (slurm.conf AuthInfo; default 120 s).
CRED_EXPIRE_S = 5
KILL_WAIT_S = 3  # SIGTERM to SIGKILL when a job is cancelled, requeued or out of time (default 30 s)


def missing_binaries() -> list[str]:
    """The SLURM and munge programs this machine lacks (daemons live in sbin, which a user's PATH may not hold)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    return [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name, path=path) is None]


def _binary(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    assert found, name
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


@dataclass
class SlurmCluster:
    """A running cluster: `env` is what a client (sbatch, the launcher, a job) needs to reach it."""

    root: Path
    node: str
    cpus: int
    env: dict[str, str]
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)
    started_s: float = 0.0

    @property
    def partition(self) -> str:
        return "debug"

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a SLURM client command (scontrol, squeue, ...) against this cluster."""
        return subprocess.run(
            [_binary(args[0]), *args[1:]],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job the controller still knows (running, pending, or finished under MinJobAge): id -> fields."""
        out = self.run("squeue", "--noheader", "--states=all", "--format=%i|%T|%r|%N|%j").stdout
        jobs = {}
        for line in out.splitlines():
            job_id, state, reason, nodes, name = line.split("|", 4)
            jobs[job_id] = {"state": state, "reason": reason, "nodes": nodes, "name": name}
        return jobs

    def show_job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o` as a dict (Restarts, JobState, ArrayJobId, ...)."""
        out = self.run("scontrol", "show", "job", "-o", job_id).stdout.strip()
        fields = {}
        for token in out.split():
            key, _, value = token.partition("=")
            fields.setdefault(key, value)
        return fields

    def wait_for(self, condition: Callable[[], object], what: str, timeout: float = 120, poll: float = 0.2):
        """Poll `condition` until it returns something truthy (returned); fail naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"SLURM test cluster: timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(poll)

    def no_job_running(self) -> bool:
        """No job of an earlier test still holds a CPU (running, finishing, or about to start)."""
        return not [j for j in self.jobs().values() if j["state"] in ("RUNNING", "COMPLETING", "PENDING")]

    def idle(self) -> bool:
        out = self.run("sinfo", "--noheader", "--format=%T", check=False)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for log in sorted((self.root / "log").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel what is left, stop exactly the daemons this cluster started (by their PIDs), remove the folder."""
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].poll() is None:
            self.run("scancel", "--me", check=False)
            deadline = time.monotonic() + 3 * KILL_WAIT_S + 10
            while time.monotonic() < deadline and not self.no_job_running():
                time.sleep(0.3)
        for name in ("slurmd", "slurmctld", "munged"):  # clients first, the authentication last
            proc = self.daemons.get(name)
            if proc is None or proc.poll() is not None:
                continue
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        shutil.rmtree(self.root, ignore_errors=True)


def _slurm_conf(root: Path, node: str, cpus: int, memory_mb: int) -> str:
    return f"""# One-node test cluster written by tests/slurm_cluster.py
ClusterName=nvembedtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket,cred_expire={CRED_EXPIRE_S}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={root}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# A requeued job becomes eligible cred_expire + 1 s later; look at pending jobs every 2 s, not every 60 s.
SchedulerParameters=sched_interval=2,bf_interval=2
# No accounting daemon: this is the case the launcher must handle (job states from squeue, not sacct).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Preemption and requeue: running batch jobs may be requeued (scontrol requeue, submitit's own requeue).
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
KillWait={KILL_WAIT_S}
MinJobAge=600
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def start_cluster(ready_timeout: float = 60) -> SlurmCluster:
    """Start munge, slurmctld and slurmd in a fresh temporary folder and wait until `sinfo` shows the node idle.

    The folder is made under /tmp with mode 0755 because munged refuses a socket folder the other users cannot
    traverse (pytest's own temporary folders are 0700).
    """
    start = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="nvembed-slurm-", dir="/tmp"))
    root.chmod(0o755)
    for sub in ("munge", "state", "spool", "run", "log"):
        (root / sub).mkdir()
        (root / sub).chmod(0o755)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    (root / "plugstack.conf").write_text("")
    node = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, node, cpus, max(256, int(_memory_mb() * 0.8))))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
    env["SLURM_CONF"] = str(conf)
    cluster = SlurmCluster(root=root, node=node, cpus=cpus, env=env)

    def daemon(name: str, *args: str) -> None:
        with (root / "log" / f"{name}.out").open("wb") as log:  # the daemon keeps its own copy of the descriptor
            cluster.daemons[name] = subprocess.Popen(
                [_binary(name), *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    try:
        daemon(
            "munged",
            "--foreground",
            f"--socket={root}/munge/munge.socket",
            f"--key-file={key}",
            f"--pid-file={root}/munge/munged.pid",
            f"--log-file={root}/log/munged.log",
            f"--seed-file={root}/munge/munged.seed",
        )
        cluster.wait_for(lambda: (root / "munge" / "munge.socket").exists(), "munged's socket", timeout=15)
        daemon("slurmctld", "-D", "-i")
        daemon("slurmd", "-D")
        for name, proc in cluster.daemons.items():
            time.sleep(0.05)
            assert proc.poll() is None, f"{name} exited at once:\n{cluster.log_tail()}"
        cluster.wait_for(cluster.idle, "the node to be idle in sinfo", timeout=ready_timeout, poll=0.25)
    except BaseException as exc:
        tail = cluster.log_tail()
        cluster.stop()
        raise AssertionError(f"SLURM test cluster did not start ({exc}):\n{tail}") from exc
    cluster.started_s = time.monotonic() - start
    return cluster
