#!/usr/bin/env python3
"""Fault soak (issue 21): jobs through podpipe-hook and `podpipe cp` copies on kubesim, each with
one fault injected at a random moment, and every result checked.

A job is what the runner does (spec/hook-behavior.md): prepare_job with the soak tree as the
workspace, two script steps that print numbered lines for a few seconds (the first hashes the
workspace in the pod, the second exits 3), a container step, a script step that reads what the
container step wrote, cleanup_job. A copy is `podpipe cp` into a pod, out of one, or between two.

Faults (kubesim's /kubesim/faults, tools/kubesim/README.md; one per run, at a random moment):
  none             control runs
  exec-drop        the next exec session is dropped after a random number of output bytes
  restart-refused  an API-server restart: every connection cut, connects refused for 1-4 s
  restart-503      the same with a load balancer answering 503 (Retry-After 1) meanwhile
  http-429         a burst of 1-5 requests answered 429 (Retry-After 1)
  http-503         a burst of 1-5 requests answered 503
  token-rotation   the service-account token the hook and cp use is rotated, no grace
  kill-pod-podpipe the first in-pod `podpipe recv`/`send` seen after the moment is SIGKILLed
  kubelet-restart  the node's kubelet restarts: every exec and log follow cut at once, new ones
                   answered 500 (error dialing backend) for 1-5 s; REST keeps working
  token-expiry     the service-account token expires and no new one is written for 2-6 s: the
                   command running then may fail (401, a clear error); cleanup_job runs after
                   the new token came, as the runner's would, and only pods left then leak
  disk-full        the pod's writable layer gets only 0-8 MB more (kubesim diskFull): a copy into
                   the pod's filesystem (/tmp), or a job whose first step writes 16 MB to /tmp,
                   must fail with a clear error (no space), never hang
  source-change    copies into and out of a pod only: once the copy has moved some MB, a file
                   early in the tree gets bytes appended, a late one is replaced, then the copy's
                   exec session is cut (kubeletRestart, no down time) so it resumes against the
                   changed source; the destination must equal the changed source (or the copy
                   fails clearly). When the copy ended before the change, the fault did not fire

--kinds K1,K2 runs only those fault kinds (jobs skip source-change; a disk-full copy always goes
into a pod, a source-change copy into or out of one). A copy that keeps failing is retried by
podpipe for PODPIPE_COPY_RETRY_SECONDS (--copy-retry-seconds sets it for the hook and cp); the
time limits are above that budget.

Each run ends as one of: ok (every check held), failed (a command failed and said why: the
runner would show a red job with a reason), hung (a command outlived its time limit), leaked
(pods of the job left after cleanup_job), wrong (a command succeeded but a check did not hold:
a workspace that differs, an output line lost or printed twice, a wrong exit code, a missing
output). hung, leaked and wrong must be zero.

Usage (root, release build, kubectl): bench/e2e/soak.py [--jobs N] [--copies N] [--seed S]
  [--link BYTES_PER_S] [--kinds K1,K2] [--copy-retry-seconds S] [--json FILE]. Exit 0 when
  no run was hung, leaked or wrong (and, with --min-ok P, at least P percent ok). --keep keeps the work directory: hook.log there holds
  every hook invocation's output, kubesim.log kubesim's.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAULTS = ["none", "exec-drop", "restart-refused", "restart-503", "http-429", "http-503",
          "token-rotation", "kill-pod-podpipe", "kubelet-restart", "token-expiry", "disk-full",
          "source-change"]
JOB_ONLY_NOT = {"source-change"}  # kinds that jobs do not run
STEP_LINES = 40
HOOK_TIMEOUT = 240  # s: a step re-attaches for up to 300 s, a down time here is at most 6 s
COPY_RETRY_DEFAULT = 120  # s: podpipe's PODPIPE_COPY_RETRY_SECONDS default
CP_TIMEOUT = 120  # s beyond the retry budget: a copy that keeps failing is not hung
DISK_FULL_SCRATCH = 16_000_000  # bytes a disk-full job's first step writes to /tmp


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def find_kubectl():
    for k in (os.environ.get("KUBECTL", ""), "/usr/lib/google-cloud-sdk/bin/kubectl.1.32",
              "/usr/bin/kubectl", "/usr/local/bin/kubectl"):
        if k and os.access(k, os.X_OK):
            return k
    print("soak: kubectl not found (set KUBECTL): skipped", file=sys.stderr)
    sys.exit(77)


def make_tree(dest, seed):
    """A deterministic tree: ~1500 files, ~24 MB, text (compressible) and random bytes."""
    rnd = random.Random(seed)
    words = [b"podpipe", b"kubesim", b"chunk", b"manifest", b"stream", b"runner", b"\n"]
    for d in range(30):
        sub = os.path.join(dest, "src", f"mod{d:02}")
        os.makedirs(sub, exist_ok=True)
        for f in range(48):
            size = rnd.choice([0, 100, 2000, 9000, 30000])
            data = b" ".join(rnd.choice(words) for _ in range(size // 6))
            with open(os.path.join(sub, f"f{f:03}.txt"), "wb") as fh:
                fh.write(data)
    os.makedirs(os.path.join(dest, "blobs"), exist_ok=True)
    for b in range(12):
        with open(os.path.join(dest, "blobs", f"b{b}.bin"), "wb") as fh:
            fh.write(rnd.randbytes(rnd.choice([300_000, 1_000_000, 3_000_000])))
    os.makedirs(os.path.join(dest, "empty", "dir"), exist_ok=True)
    os.symlink("../src/mod00/f000.txt", os.path.join(dest, "blobs", "link"))


DIGEST_SH = ("cd \"$1\" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum "
             "| sha256sum | cut -d' ' -f1")


def local_digest(path):
    return subprocess.run(["sh", "-c", DIGEST_SH, "sh", path], check=True,
                          capture_output=True, text=True).stdout.strip()


class Cluster:
    """kubesim with the static podpipe as its externals; the admin endpoint for faults."""

    def __init__(self, work, build, link, pod_binary):
        self.work = work
        self.state = os.path.join(work, "state")
        ext = os.path.join(work, "ext", "podpipe")
        os.makedirs(ext)
        shutil.copy(pod_binary, os.path.join(ext, "podpipe"))
        self.pod_binary = pod_binary
        self.admin_kc = os.path.join(work, "admin.kubeconfig")
        args = [os.path.join(build, "tools", "kubesim", "kubesim"), "--dir", self.state,
                "--kubeconfig-out", self.admin_kc, "--nodes", "1",
                "--externals", os.path.join(work, "ext")]
        if link:
            args += ["--exec-bandwidth", link, "--exec-latency", "2ms"]
        self.log = open(os.path.join(work, "kubesim.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(self.admin_kc):
                break
            time.sleep(0.05)
        else:
            sys.exit("soak: kubesim did not start (see " + self.log.name + ")")
        text = open(self.admin_kc).read()
        self.server = re.search(r"server: (\S+)", text).group(1)
        self.port = int(self.server.rsplit(":", 1)[1])
        self.token = re.search(r"token: (\S+)", text).group(1)
        ca = base64.b64decode(re.search(r"certificate-authority-data: (\S+)", text).group(1))
        self.ca_file = os.path.join(work, "ca.crt")
        with open(self.ca_file, "wb") as fh:
            fh.write(ca)
        self.ctx = ssl.create_default_context(cafile=self.ca_file)
        # The hook and cp authenticate as the service account through its token file (what a
        # runner pod mounts), so a rotation reaches them as it would in a cluster.
        self.sa_kc = os.path.join(work, "sa.kubeconfig")
        with open(self.sa_kc, "w") as fh:
            fh.write(text.replace("name: kubesim-admin\n  user:\n    token: " + self.token,
                                  "name: kubesim-admin\n  user:\n    tokenFile: " +
                                  os.path.join(self.state, "serviceaccount", "token")))

    def faults(self, body=None, timeout=5):
        req = urllib.request.Request(self.server + "/kubesim/faults",
                                     data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST",
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
            return json.loads(r.read())

    def settle(self):
        """Waits out a restart's down time and disarms what did not fire."""
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                st = self.faults()
                if not st.get("restart", {}).get("down", False) and \
                        not st.get("expireToken", {}).get("restorePending", False):
                    self.faults({"exec": {"count": 0}, "http": {"code": 503, "count": 0}})
                    return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("kubesim did not come back within 30 s")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def pod_podpipes(port):
    """pids of in-pod podpipe recv/send processes of the kubesim on `port` (kubesim's pods share
    our PID namespace, and other kubesims may run beside: a container's environment names its
    API server's port)."""
    mark = f"KUBERNETES_SERVICE_PORT={port}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"/__e/podpipe/podpipe") and \
                argv[1] in (b"recv", b"send"):
            try:
                env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            except OSError:
                continue
            if mark in env:
                found.append(int(pid))
    return found


class Injector:
    """One fault at `delay` seconds from start(); records whether it fired."""

    def __init__(self, cluster, kind, delay, rnd, sessions=1, target=None):
        self.cluster, self.kind, self.delay, self.rnd = cluster, kind, delay, rnd
        self.sessions = sessions  # exec-drop: how many of the next sessions it arms
        # disk-full: a function answering the pod to fill (None while there is none yet);
        # source-change: a SourceChange.
        self.target = target
        self.fired = kind == "none"
        self.detail = ""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop.set()
        self.thread.join(10)
        if self.kind == "exec-drop" and not self.fired:
            try:  # armed but no session came: not fired
                self.fired = self.cluster.faults()["exec"]["remaining"] == 0
            except (urllib.error.URLError, OSError, ValueError, KeyError):
                pass
        self.cluster.settle()

    def run(self):
        if self.kind == "none" or self.stop.wait(self.delay):
            return
        c, r = self.cluster, self.rnd
        try:
            if self.kind == "exec-drop":
                b = r.choice([0, 1000, 50_000, 500_000, 3_000_000])
                self.detail = f"dropAfterBytes {b}"
                c.faults({"exec": {"count": self.sessions, "dropAfterBytes": b}})
            elif self.kind.startswith("restart-"):
                down = round(r.uniform(1, 4), 1)
                mode = self.kind.split("-", 1)[1]
                self.detail = f"down {down} s"
                body = {"downSeconds": down, "mode": mode}
                if mode == "503":
                    body["retryAfterSeconds"] = 1
                c.faults({"restart": body})
                self.fired = True
            elif self.kind.startswith("http-"):
                n = r.randint(1, 5)
                self.detail = f"{n} requests"
                c.faults({"http": {"code": int(self.kind[5:]), "count": n,
                                   "retryAfterSeconds": 1}})
                self.fired = True
            elif self.kind == "token-rotation":
                c.faults({"rotateToken": {"graceSeconds": 0}})
                self.fired = True
            elif self.kind == "kubelet-restart":
                down = round(r.uniform(1, 5), 1)
                st = c.faults({"kubeletRestart": {"downSeconds": down}})
                self.fired = True
                self.detail = f"down {down} s, {st['kubeletRestart']['cut']} streams cut so far"
            elif self.kind == "token-expiry":
                after = round(r.uniform(2, 6), 1)
                c.faults({"expireToken": {"restoreAfterSeconds": after}})
                self.fired = True
                self.detail = f"new token after {after} s"
            elif self.kind == "disk-full":
                free = r.choice([0, 100_000, 1_000_000, 4_000_000, 8_000_000])
                while not self.stop.is_set():
                    pod = self.target()
                    if pod:
                        c.faults({"diskFull": {"namespace": "default", "pod": pod,
                                               "freeBytes": free}})
                        self.fired = True
                        self.detail = f"{pod}: {free} bytes free"
                        return
                    time.sleep(0.1)
            elif self.kind == "source-change":
                self.target.run(self)
            elif self.kind == "kill-pod-podpipe":
                while not self.stop.is_set():
                    pids = pod_podpipes(c.port)
                    if pids:
                        for p in pids:
                            try:
                                os.kill(p, signal.SIGKILL)
                            except ProcessLookupError:
                                pass
                        self.fired = True
                        self.detail = f"{len(pids)} killed"
                        return
                    time.sleep(0.01)
        except (urllib.error.URLError, OSError) as e:
            self.detail = f"could not inject: {e}"


def tree_bytes(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_size
            except OSError:
                pass
    return total


class SourceChange:
    """source-change: once `watch` (the copy's destination, as the host sees it) holds
    `min_bytes`, appends to a file early in the tree `src` (host path of the source), replaces
    a later one, then cuts the copy's exec sessions (kubeletRestart, no down time). `changed`
    says whether the change came while the copy was still running."""

    def __init__(self, src, watch, min_bytes, running):
        self.src, self.watch, self.min_bytes, self.running = src, watch, min_bytes, running
        self.changed = False

    def run(self, inj):
        deadline = time.time() + 60
        while not inj.stop.is_set() and time.time() < deadline:
            if not self.running():
                inj.detail = "the copy ended before the change"
                return
            if os.path.isdir(self.watch) and tree_bytes(self.watch) >= self.min_bytes:
                break
            time.sleep(0.05)
        else:
            return
        if not self.running():
            inj.detail = "the copy ended before the change"
            return
        with open(os.path.join(self.src, "blobs", "b0.bin"), "ab") as fh:
            fh.write(b"appended by the soak\n" * 5000)
        victim = os.path.join(self.src, "src", "mod15", "f020.txt")
        with open(victim + ".soak-new", "wb") as fh:
            fh.write(b"replaced by the soak\n" * 700)
        os.replace(victim + ".soak-new", victim)
        self.changed = True
        before = inj.cluster.faults()["kubeletRestart"]["cut"]
        after = inj.cluster.faults({"kubeletRestart": {"downSeconds": 0}})["kubeletRestart"]["cut"]
        inj.fired = after > before
        inj.detail = f"changed after {self.min_bytes} bytes, {after - before} sessions cut"


class Soak:
    def __init__(self, args):
        self.resumed = False
        self.args = args
        self.build = os.path.abspath(args.build)
        self.hook_bin = os.path.join(self.build, "hooks", "podpipe-hook")
        self.podpipe = os.path.join(self.build, "tools", "podpipe", "podpipe")
        self.kubectl = find_kubectl()
        # The in-pod podpipe: the static build, else (sanitizer builds) the dynamic one, which
        # runs in debian:12 (kubesim's host root), the only image the soak uses.
        self.pod_binary = args.pod_binary or next(
            (p for p in (os.path.join(self.build, "static", "podpipe"), self.podpipe)
             if os.access(p, os.X_OK)), self.podpipe)
        self.rnd = random.Random(args.seed)
        self.work = tempfile.mkdtemp(prefix="podpipe-soak.", dir="/var/tmp")
        self.results = []

    # ---- helpers --------------------------------------------------------------------------

    def env(self):
        e = dict(os.environ)
        e.update(KUBECONFIG=self.cluster.sa_kc, ACTIONS_RUNNER_POD_NAME="runner-soak",
                 RUNNER_WORKSPACE=self.W + "/app", GITHUB_WORKSPACE=self.W + "/app/app",
                 RUNNER_TEMP=self.W + "/_temp", ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS="60")
        if self.args.copy_retry_seconds is not None:
            e["PODPIPE_COPY_RETRY_SECONDS"] = str(self.args.copy_retry_seconds)
        return e

    def retry_budget(self):
        r = self.args.copy_retry_seconds
        return COPY_RETRY_DEFAULT if r is None else r

    def job_pod(self):
        """The running job pod of the soak's runner (the first created), or None."""
        r = self.kubectl_run("get", "pods", "-l", "runner-pod=runner-soak", "--sort-by",
                             ".metadata.creationTimestamp", "-o",
                             "jsonpath={range .items[*]}{.metadata.name} {.status.phase}{\"\\n\"}"
                             "{end}")
        for line in r.stdout.splitlines():
            name, _, phase = line.partition(" ")
            if phase == "Running":
                return name
        return None

    def pod_volume(self, pod, volume):
        """The host directory of a pod's emptyDir (kubesim: STATE/pods/UID/volumes/NAME)."""
        uid = self.kubectl_run("get", "pod", pod, "-o", "jsonpath={.metadata.uid}").stdout.strip()
        return os.path.join(self.cluster.state, "pods", uid, "volumes", volume)

    def kubectl_run(self, *a, timeout=60):
        return subprocess.run([self.kubectl, "--kubeconfig", self.cluster.admin_kc, *a],
                              capture_output=True, text=True, timeout=timeout)

    def pod_digest(self, pod, path):
        r = self.kubectl_run("exec", pod, "--", "sh", "-c", DIGEST_SH, "sh", path)
        return r.stdout.strip() if r.returncode == 0 else "exec failed: " + r.stderr.strip()

    def hook(self, command, args, state):
        resp = os.path.join(self.W, "_temp", "_runner_hook_responses", f"r{time.time_ns()}.json")
        open(resp, "w").close()
        doc = json.dumps({"command": command, "responseFile": resp, "args": args,
                          "state": state})
        try:
            p = subprocess.run([self.hook_bin], input=doc, capture_output=True, text=True,
                               env=self.env(), timeout=HOOK_TIMEOUT)
            out = open(resp).read()
            with open(os.path.join(self.work, "hook.log"), "a") as fh:
                fh.write(f"==== {command} exit {p.returncode}\n{p.stdout}{p.stderr}")
            return p.returncode, p.stdout + p.stderr, out
        except subprocess.TimeoutExpired as e:
            return None, (e.stdout or b"").decode(errors="replace") if isinstance(
                e.stdout, bytes) else (e.stdout or ""), ""
        finally:
            os.unlink(resp)

    # ---- one job --------------------------------------------------------------------------

    def step_args(self, name, out_id):
        return {"entryPoint": "bash", "entryPointArgs": ["--noprofile", "--norc", "-e", "-o",
                                                         "pipefail", "/__w/_temp/" + name],
                "environmentVariables": {
                    "GITHUB_OUTPUT": "/__w/_temp/_runner_file_commands/set_output_" + out_id},
                "prependPath": [], "workingDirectory": "/__w/app/app"}

    def write_step(self, text):
        name = f"soak-{time.time_ns()}.sh"
        with open(os.path.join(self.W, "_temp", name), "w") as fh:
            fh.write(text)
        return name

    def outputs(self, out_id):
        path = os.path.join(self.W, "_temp", "_runner_file_commands", "set_output_" + out_id)
        try:
            return open(path).read()
        except OSError:
            return ""

    def lines_step(self, tag, extra, code):
        return (f"i=0; while [ $i -lt {STEP_LINES} ]; do i=$((i+1)); echo {tag}-line-$i; "
                f"sleep 0.05; done\n{extra}\nexit {code}\n")

    def job(self, n, kind):
        """Runs one job; returns (verdict, its injector). The final verdict, cleanup_job and
        leaked pods included, is self.job_verdict."""
        tag = f"soak-j{n}"
        fc = os.path.join(self.W, "_temp", "_runner_file_commands")
        for f in os.listdir(fc):
            os.unlink(os.path.join(fc, f))
        # disk-full: armed once prepare_job made the job pod, before the first step (which
        # writes to the container's filesystem); the other kinds at a random moment.
        disk_full = kind == "disk-full"
        inj = Injector(self.cluster, kind, 0 if disk_full else self.rnd.uniform(0, 12), self.rnd,
                       target=self.job_pod if disk_full else None)
        if not disk_full:
            inj.start()
        state = None
        verdict = ("ok", "")

        def check(code, text, expected, what):
            nonlocal verdict
            if code is None:
                verdict = ("hung", what + " outlived " + str(HOOK_TIMEOUT) + " s")
                return False
            if code == expected:
                return True
            if expected != 0 and code == 0:
                verdict = ("wrong", f"{what} exited 0, the step's code is {expected}")
                return False
            said = [l for l in text.splitlines() if "::error::" in l or "error" in l.lower()
                    or "no space left" in l.lower()]
            verdict = ("failed" if said else "wrong",
                       f"{what} exited {code}: " + (said[-1] if said else "without saying why: " +
                                                        " | ".join(text.splitlines()[-3:])))
            return False

        def lines_once(text, t, what):
            nonlocal verdict
            got = re.findall(rf"^{t}-line-(\d+)$", text, re.M)
            want = [str(i) for i in range(1, STEP_LINES + 1)]
            if got != want:
                missing = sorted(set(want) - set(got), key=int)
                twice = sorted({x for x in got if got.count(x) > 1}, key=int)
                verdict = ("wrong", f"{what}: lines lost {missing[:5]} or twice {twice[:5]}")
                return False
            return True

        try:
            job_args = {"container": {"image": "debian:12", "entryPoint": None,
                                      "entryPointArgs": [], "workingDirectory": "/__w/app/app",
                                      "environmentVariables": {}, "portMappings": [],
                                      "systemMountVolumes": [], "userMountVolumes": []},
                        "services": []}
            code, text, resp = self.hook("prepare_job", job_args, None)
            if not check(code, text, 0, "prepare_job"):
                return verdict, inj
            state = json.loads(resp)["state"]
            scratch = ""
            if disk_full:
                inj.start()
                inj.thread.join(30)
                scratch = (f"head -c {DISK_FULL_SCRATCH} /dev/zero > /tmp/soak-scratch\n"
                           "rm -f /tmp/soak-scratch\n")
            s1 = self.write_step(scratch + self.lines_step(
                tag + "-s1", f"echo digest=$(sh -c {shlex(DIGEST_SH)} sh /__w/app/app) >> "
                             "\"$GITHUB_OUTPUT\"", 0))
            code, text, _ = self.hook("run_script_step", self.step_args(s1, "1"), state)
            if not check(code, text, 0, "script step 1") or \
                    not lines_once(text, tag + "-s1", "script step 1"):
                return verdict, inj
            got = self.outputs("1").strip()
            if got != "digest=" + self.digest:
                verdict = ("wrong", f"the job pod's workspace digest is '{got}'")
                return verdict, inj
            s2 = self.write_step(self.lines_step(tag + "-s2", f"echo {tag} > made.txt", 3))
            code, text, _ = self.hook("run_script_step", self.step_args(s2, "2"), state)
            if not check(code, text, 3, "script step 2") or \
                    not lines_once(text, tag + "-s2", "script step 2"):
                return verdict, inj
            cargs = {"image": "debian:12", "entryPoint": "sh",
                     # The runner's args are words the hook splits as a shell would
                     # (spec/hook-behavior.md, fixArgs): the script is one quoted word.
                     "entryPointArgs": ["-c", "'cat made.txt > from-container.txt && "
                                              "echo c=1 >> $GITHUB_OUTPUT'"],
                     "workingDirectory": "/github/workspace",
                     "environmentVariables": {
                         "GITHUB_OUTPUT": "/github/file_commands/set_output_3"},
                     "portMappings": [], "systemMountVolumes": [], "userMountVolumes": []}
            code, text, _ = self.hook("run_container_step", cargs, state)
            if not check(code, text, 0, "container step"):
                return verdict, inj
            if self.outputs("3").strip() != "c=1":
                verdict = ("wrong", "the container step's output is missing")
                return verdict, inj
            s3 = self.write_step("cat from-container.txt\n")
            code, text, _ = self.hook("run_script_step", self.step_args(s3, "4"), state)
            if not check(code, text, 0, "script step 3"):
                return verdict, inj
            if not re.search(rf"^{tag}$", text, re.M):
                verdict = ("wrong", "the container step's file did not reach the next step")
                return verdict, inj
            return verdict, inj
        finally:
            if not inj.thread.ident:  # disk-full, prepare_job failed: nothing to fill
                inj.stop.set()
                inj.start()
            # After a token-expiry this waits for the new token, as cleanup_job (the runner
            # runs it whatever happened) comes after it.
            inj.finish()
            if state is not None or verdict[0] != "ok":
                code, text, _ = self.hook("cleanup_job", {}, state)
                if code is None and verdict[0] == "ok":
                    verdict = ("hung", "cleanup_job")
                elif code != 0 and verdict[0] == "ok":
                    verdict = ("failed", "cleanup_job: " + text.strip().splitlines()[-1]
                               if text.strip() else "cleanup_job failed silently")
            left = ""
            for _ in range(60):
                r = self.kubectl_run("get", "pods", "-l", "runner-pod=runner-soak", "-o", "name")
                left = r.stdout.strip()
                if not left:
                    break
                time.sleep(0.5)
            if left and verdict[0] in ("ok", "failed"):
                verdict = ("leaked", left.replace("\n", " "))
            self.job_verdict = verdict

    # ---- one copy -------------------------------------------------------------------------

    def copy(self, n, kind):
        direction = ["into", "out of", "between"][n % 3]
        if kind == "disk-full":
            direction = "into"  # the pod's filesystem fills
        elif kind == "source-change" and direction == "between":
            direction = "into" if (n // 3) % 2 else "out of"
        # disk-full copies go to the pod's writable layer (kubesim limits it; emptyDirs are
        # host directories it cannot limit).
        dest_pod = f"/tmp/c{n}" if kind == "disk-full" else f"/data/c{n}"
        src, src_pod, change = self.tree, "/data/src", None
        if kind == "source-change":
            # A source of its own, changed under the copy.
            if direction == "into":
                src = os.path.join(self.work, f"src{n}")
                shutil.copytree(self.tree, src, symlinks=True)
                watch = os.path.join(self.pod_volume("soak-a", "data"), f"c{n}")
                changed_src = src
            else:
                src_pod = f"/data/src{n}"
                data = self.pod_volume("soak-a", "data")
                changed_src = os.path.join(data, f"src{n}")
                shutil.copytree(os.path.join(data, "src"), changed_src, symlinks=True)
                watch = os.path.join(self.work, f"out{n}")
            change = SourceChange(changed_src, watch, self.rnd.choice([1_000_000, 3_000_000,
                                                                       6_000_000]),
                                  lambda: proc is not None and proc.poll() is None)
        if direction == "into":
            argv = [src, "soak-a:" + dest_pod]
        elif direction == "out of":
            out = os.path.join(self.work, f"out{n}")
            argv = ["soak-a:" + src_pod, out]
        else:
            argv = ["soak-a:" + src_pod, "soak-b:" + dest_pod]
        # A copy opens its sessions in its first moments: exec-drop is armed before it starts,
        # for its probes and transfers (up to 4 sessions between pods), and drops each after a
        # random number of output bytes (a receiver's few output bytes may stay under it).
        # disk-full is armed before it too; source-change waits for the copy's progress.
        delay = 0 if kind in ("exec-drop", "disk-full", "source-change") else \
            self.rnd.uniform(0, 1.5)
        inj = Injector(self.cluster, kind, delay, self.rnd, sessions=4 if direction == "between"
                       else 2, target=(lambda: "soak-a") if kind == "disk-full" else change)
        env = dict(os.environ, KUBECONFIG=self.cluster.sa_kc)
        if self.args.copy_retry_seconds is not None:
            env["PODPIPE_COPY_RETRY_SECONDS"] = str(self.args.copy_retry_seconds)
        proc = None
        if kind == "disk-full":
            inj.start()
            inj.thread.join(30)
        limit = CP_TIMEOUT + self.retry_budget()
        try:
            proc = subprocess.Popen([self.podpipe, "cp", "-v", *argv], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, env=env)
            if kind != "disk-full":
                inj.start()
            try:
                text, _ = proc.communicate(timeout=limit)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                code, text = None, ""
            inj.finish()
            return self.judge(n, kind, direction, code, text, dest_pod, inj, limit,
                              change, changed_src if change else None), inj, direction
        finally:
            if kind == "disk-full":  # lift the limit (a tmpfs may grow again)
                self.cluster.faults({"diskFull": {"namespace": "default", "pod": "soak-a",
                                                  "freeBytes": 1 << 40}})
            if direction != "out of":
                self.kubectl_run("exec", "soak-a" if direction == "into" else "soak-b", "--",
                                 "rm", "-rf", dest_pod)
            else:
                shutil.rmtree(os.path.join(self.work, f"out{n}"), ignore_errors=True)
            if change:
                shutil.rmtree(changed_src, ignore_errors=True)

    def judge(self, n, kind, direction, code, text, dest_pod, inj, limit, change, changed_src):
        if code is None:
            return ("hung", f"cp {direction} outlived {limit} s")
        if code != 0:
            said = text.strip().splitlines()[-1] if text.strip() else ""
            return (("failed" if said else "wrong"), said or "exit without a message")
        if kind == "disk-full" and inj.fired:
            return ("wrong", "cp succeeded into a pod with too little space left")
        if direction == "out of":
            got = local_digest(os.path.join(self.work, f"out{n}"))
        else:
            got = self.pod_digest("soak-a" if direction == "into" else "soak-b", dest_pod)
        want = self.digest
        if change is not None:
            if change.changed and not inj.fired:
                # Changed under a copy that was not cut: what it copied is a mix, as for any
                # copy of a changing tree; not judged.
                return ("ok", "")
            if change.changed:
                want = local_digest(changed_src)  # the source as it is after the change
        if got != want:
            return ("wrong", f"digest {got} after a successful cp, want {want}")
        # A retry that continued where the cut attempt stopped (issue 21) says so with -v.
        self.resumed = "resuming the" in text
        return ("ok", "")

    # ---- the run --------------------------------------------------------------------------

    def make_pod(self, name):
        yaml = f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: main
    image: debian:12
    command: [sleep, "1000000"]
    volumeMounts:
    - {{name: bin, mountPath: /__e/podpipe, readOnly: true}}
    - {{name: data, mountPath: /data}}
  volumes:
  - {{name: bin, hostPath: {{path: {os.path.join(self.work, "ext", "podpipe")}}}}}
  - {{name: data, emptyDir: {{}}}}
"""
        r = subprocess.run([self.kubectl, "--kubeconfig", self.cluster.admin_kc, "create",
                            "--validate=false", "-f", "-"], input=yaml, capture_output=True,
                           text=True)
        if r.returncode != 0:
            sys.exit("soak: " + r.stderr)
        self.kubectl_run("wait", "--for=jsonpath={.status.phase}=Running", "pod/" + name,
                         "--timeout=60s")

    def run(self):
        a = self.args
        self.tree = os.path.join(self.work, "tree")
        make_tree(self.tree, a.seed)
        self.digest = local_digest(self.tree)
        self.W = os.path.join(self.work, "runner", "_work")
        for d in ("app", "_actions", "_tool", "_temp/_github_home", "_temp/_github_workflow",
                  "_temp/_runner_file_commands", "_temp/_runner_hook_responses"):
            os.makedirs(os.path.join(self.W, d), exist_ok=True)
        shutil.copytree(self.tree, os.path.join(self.W, "app", "app"), symlinks=True)
        with open(os.path.join(self.W, "_temp", "_github_workflow", "event.json"), "w") as fh:
            fh.write('{"ref":"refs/heads/main"}\n')
        self.cluster = Cluster(self.work, self.build, a.link, self.pod_binary)
        t_start = time.time()
        try:
            if a.copies:
                for p in ("soak-a", "soak-b"):
                    self.make_pod(p)
                r = subprocess.run([self.podpipe, "cp", self.tree, "soak-a:/data/src"],
                                   capture_output=True, text=True,
                                   env=dict(os.environ, KUBECONFIG=self.cluster.admin_kc))
                if r.returncode != 0:
                    sys.exit("soak: seeding soak-a failed: " + r.stderr)
            job_kinds = [k for k in a.kinds if k not in JOB_ONLY_NOT] or ["none"]
            plan = [("job", i, job_kinds[i % len(job_kinds)]) for i in range(a.jobs)] + \
                   [("copy", i, a.kinds[(i // 3) % len(a.kinds)]) for i in range(a.copies)]
            self.rnd.shuffle(plan)
            for what, i, kind in plan:
                t0 = time.time()
                if what == "job":
                    _, inj = self.job(i, kind)
                    verdict, extra = self.job_verdict, ""
                else:
                    self.resumed = False
                    verdict, inj, extra = self.copy(i, kind)
                rec = {"what": what if what == "job" else "cp " + extra, "n": i, "fault": kind,
                       "outcome": verdict[0], "why": verdict[1],
                       "seconds": round(time.time() - t0, 2)}
                if what == "copy":
                    rec["resumed"] = self.resumed
                if inj is not None:
                    rec["fired"] = inj.fired
                    rec["fault_detail"] = inj.detail
                self.results.append(rec)
                log(json.dumps(rec))
                if a.time_limit and time.time() - t_start > a.time_limit:
                    log("soak: time limit reached")
                    break
        finally:
            self.cluster.stop()
            if not a.keep:
                shutil.rmtree(self.work, ignore_errors=True)
        return time.time() - t_start

    def report(self, seconds):
        rows = {}
        for r in self.results:
            kind = r["what"].split()[0]
            key = (kind, r["fault"])
            d = rows.setdefault(key, {"runs": 0, "ok": 0, "failed": 0, "hung": 0, "leaked": 0,
                                      "wrong": 0, "not fired": 0, "resumed": 0})
            d["runs"] += 1
            d[r["outcome"]] += 1
            if r.get("resumed"):
                d["resumed"] += 1
            if not r.get("fired", True):
                d["not fired"] += 1
        print(f"## Fault soak, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{os.cpu_count()} cores, seed {self.args.seed}, {seconds:.0f} s")
        print()
        print("| run | fault | runs | ok | failed (clear) | hung | leaked | wrong | "
              "fault not fired | ok after a resume |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        tot = {"runs": 0, "ok": 0, "failed": 0, "hung": 0, "leaked": 0, "wrong": 0,
               "not fired": 0, "resumed": 0}
        for (kind, fault), d in sorted(rows.items()):
            print(f"| {kind} | {fault} | {d['runs']} | {d['ok']} | {d['failed']} | {d['hung']} |"
                  f" {d['leaked']} | {d['wrong']} | {d['not fired']} | {d['resumed']} |")
            for k in tot:
                tot[k] += d[k]
        print(f"| all | | {tot['runs']} | {tot['ok']} | {tot['failed']} | {tot['hung']} | "
              f"{tot['leaked']} | {tot['wrong']} | {tot['not fired']} | {tot['resumed']} |")
        print()
        for r in self.results:
            if r["outcome"] != "ok":
                print(f"- {r['what']} #{r['n']} ({r['fault']} {r.get('fault_detail', '')}): "
                      f"{r['outcome']}: {r['why']}")
        if self.args.json:
            with open(self.args.json, "w") as fh:
                json.dump(self.results, fh, indent=1)
        bad = tot["hung"] + tot["leaked"] + tot["wrong"]
        ok_pct = 100.0 * tot["ok"] / tot["runs"] if tot["runs"] else 100.0
        return bad == 0 and ok_pct >= self.args.min_ok


def shlex(s):
    return "'" + s.replace("'", "'\\''") + "'"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=16, help="hook jobs (default 16)")
    ap.add_argument("--copies", type=int, default=24, help="podpipe cp runs (default 24)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--link", default="20000000",
                    help="kubesim --exec-bandwidth, bytes/s per direction ('' = unlimited)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--pod-binary", help="the in-pod podpipe (default: BUILD/static/podpipe, "
                                         "else BUILD/tools/podpipe/podpipe)")
    ap.add_argument("--json", help="write every run's record here")
    ap.add_argument("--min-ok", type=float, default=0.0,
                    help="fail unless at least this percentage of runs is ok")
    ap.add_argument("--kinds", help="comma-separated fault kinds to run (default: all of "
                                    + ", ".join(FAULTS) + ")")
    ap.add_argument("--copy-retry-seconds", type=int,
                    help="PODPIPE_COPY_RETRY_SECONDS for the hook and cp (default: podpipe's)")
    ap.add_argument("--time-limit", type=float, default=0, help="stop starting runs after S s")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    a.kinds = a.kinds.split(",") if a.kinds else list(FAULTS)
    unknown = [k for k in a.kinds if k not in FAULTS]
    if unknown:
        ap.error("unknown fault kinds: " + ", ".join(unknown))
    if os.geteuid() != 0:
        sys.exit("soak: needs root (kubesim's pods)")
    s = Soak(a)
    seconds = s.run()
    sys.exit(0 if s.report(seconds) else 1)


if __name__ == "__main__":
    main()
