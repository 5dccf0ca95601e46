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

Each run ends as one of: ok (every check held), failed (a command failed and said why: the
runner would show a red job with a reason), hung (a command outlived its time limit), leaked
(pods of the job left after cleanup_job), wrong (a command succeeded but a check did not hold:
a workspace that differs, an output line lost or printed twice, a wrong exit code, a missing
output). hung, leaked and wrong must be zero.

Usage (root, release build, kubectl): bench/e2e/soak.py [--jobs N] [--copies N] [--seed S]
  [--link BYTES_PER_S] [--json FILE]. Exit 0 when no run was hung, leaked or wrong (and, with
  --min-ok P, at least P percent ok). --keep keeps the work directory: hook.log there holds
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
          "token-rotation", "kill-pod-podpipe"]
STEP_LINES = 40
HOOK_TIMEOUT = 240  # s: a step re-attaches for up to 300 s, a down time here is at most 4 s
CP_TIMEOUT = 120


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
                if not st.get("restart", {}).get("down", False):
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

    def __init__(self, cluster, kind, delay, rnd, sessions=1):
        self.cluster, self.kind, self.delay, self.rnd = cluster, kind, delay, rnd
        self.sessions = sessions  # exec-drop: how many of the next sessions it arms
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
        return e

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
        inj = Injector(self.cluster, kind, self.rnd.uniform(0, 12), self.rnd)
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
            said = [l for l in text.splitlines() if "::error::" in l or "error" in l.lower()]
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
            s1 = self.write_step(self.lines_step(
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
        dest_pod = f"/data/c{n}"
        if direction == "into":
            argv = [self.tree, "soak-a:" + dest_pod]
        elif direction == "out of":
            out = os.path.join(self.work, f"out{n}")
            argv = ["soak-a:/data/src", out]
        else:
            argv = ["soak-a:/data/src", "soak-b:" + dest_pod]
        # A copy opens its sessions in its first moments: exec-drop is armed before it starts,
        # for its probes and transfers (up to 4 sessions between pods), and drops each after a
        # random number of output bytes (a receiver's few output bytes may stay under it).
        delay = 0 if kind == "exec-drop" else self.rnd.uniform(0, 1.5)
        inj = Injector(self.cluster, kind, delay, self.rnd, sessions=4 if direction == "between"
                       else 2)
        env = dict(os.environ, KUBECONFIG=self.cluster.sa_kc)
        inj.start()
        try:
            p = subprocess.run([self.podpipe, "cp", "-v", *argv], capture_output=True, text=True,
                               env=env, timeout=CP_TIMEOUT)
            code, text = p.returncode, p.stdout + p.stderr
        except subprocess.TimeoutExpired:
            code, text = None, ""
        inj.finish()
        if code is None:
            return ("hung", f"cp {direction} outlived {CP_TIMEOUT} s"), inj, direction
        if code != 0:
            said = text.strip().splitlines()[-1] if text.strip() else ""
            return (("failed" if said else "wrong"), said or "exit without a message"), inj, \
                direction
        if direction == "out of":
            got = local_digest(out)
            shutil.rmtree(out, ignore_errors=True)
        else:
            pod = "soak-a" if direction == "into" else "soak-b"
            got = self.pod_digest(pod, dest_pod)
            self.kubectl_run("exec", pod, "--", "rm", "-rf", dest_pod)
        if got != self.digest:
            return ("wrong", f"digest {got} after a successful cp"), inj, direction
        # A retry that continued where the cut attempt stopped (issue 21) says so with -v.
        self.resumed = "resuming the" in text
        return ("ok", ""), inj, direction

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
            plan = [("job", i, FAULTS[i % len(FAULTS)]) for i in range(a.jobs)] + \
                   [("copy", i, FAULTS[(i // 3) % len(FAULTS)]) for i in range(a.copies)]
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
    ap.add_argument("--time-limit", type=float, default=0, help="stop starting runs after S s")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: needs root (kubesim's pods)")
    s = Soak(a)
    seconds = s.run()
    sys.exit(0 if s.report(seconds) else 1)


if __name__ == "__main__":
    main()
