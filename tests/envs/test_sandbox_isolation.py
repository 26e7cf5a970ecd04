"""The sandbox's OS isolation (bubblewrap): what a snippet can see and reach of the host, and the mode checks.

Probes that the audit hook would stop anyway (sockets, signals, forks) run in a
``Sandbox(audit_hook=False)``, so they test the namespaces, not the hook; the
read-only probes (files, /proc, environment) run through ``tools/python-v0`` with
the hook on, since it does not stop reads. After each, the same sandbox or env
runs ``print(1 + 1)``. ``test_hook_only_mode_sees_the_host`` is the control:
without bwrap the same probes do see the host.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
import warnings

import pytest

from steprl import envs
from steprl.envs.tools import format_tool_call
from steprl.envs.tools import sandbox as sandbox_module
from steprl.envs.tools.sandbox import Sandbox, SandboxLimits, SandboxUnavailableError

FAST = SandboxLimits(timeout=3.0, cpu_seconds=2)
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed: "
                                 "apt-get install bubblewrap (scripts/install.sh does it as root; CI has it)")
SOURCE_FILE = os.path.realpath(sandbox_module.__file__)  # the project's own source tree
RUNTIME = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))  # the interpreter's prefix


def run_tool(env, code: str) -> str:
    """The content of ``run_python``'s response."""
    obs, _, terminated, _, info = env.step(format_tool_call("run_python", {"code": code}))
    assert info["valid_action"] is True and not terminated
    return json.loads(obs.split("\n", 1)[1].rsplit("\n", 1)[0])["content"]


def found_in(output: str) -> dict:
    """The ``found`` dict a :func:`probe` snippet printed (the output itself in the failure message)."""
    assert output.startswith("{"), output
    return json.loads(output)


def probe(code: str, **values) -> str:
    """A snippet that defines ``values`` and prints the JSON of ``found`` (a dict the code fills in)."""
    head = "".join(f"{k} = {v!r}\n" for k, v in values.items())
    return f"import json, os\nfound = {{}}\n{head}{code}\nprint(json.dumps(found))"


def assert_next_step_works(run) -> None:
    assert run("print(1 + 1)") == "2"


@pytest.fixture
def env():
    env = envs.make("tools/python-v0", split="test", num_tasks=1, timeout=3.0, cpu_seconds=2)
    env.reset(seed=0, options={"task": 0})
    assert env.unwrapped.sandbox.isolation == "bwrap"  # the default
    return env


@pytest.fixture
def bare():
    """A bwrap sandbox without the audit hook: only the namespaces stand between the code and the host."""
    return Sandbox(limits=FAST, audit_hook=False)


def bare_run(sandbox: Sandbox, code: str) -> str:
    result = sandbox.run(code)
    assert result.status == "ok", result
    return result.stdout.strip()


@needs_bwrap
def test_snippet_sees_no_process_of_the_trainer(env):
    trainer = os.getpid()
    assert trainer > 2 and os.path.exists(f"/proc/{trainer}/environ")
    code = probe("""
found["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
found["own"], found["parent"] = os.getpid(), os.getppid()
found["trainer_visible"] = os.path.exists(f"/proc/{trainer}")
try:
    open(f"/proc/{trainer}/environ", "rb").read()
    found["trainer_environ"] = "read"
except OSError as exc:
    found["trainer_environ"] = type(exc).__name__
found["parent_cmdline"] = open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\\0")[0].decode()
""", trainer=trainer)
    found = found_in(run_tool(env, code))
    # Its own PID namespace: the sandbox's init (bwrap, pid 1) and the snippet; nothing of the host.
    assert found["pids"] == [1, found["own"]] and found["parent"] == 1
    assert found["parent_cmdline"].endswith("bwrap")  # its parent is the sandbox's init, not the trainer
    assert found["trainer_visible"] is False and found["trainer_environ"] == "FileNotFoundError"
    assert_next_step_works(lambda code: run_tool(env, code))


@needs_bwrap
def test_snippet_reads_no_file_outside_its_runtime(env):
    hidden = ["/etc/shadow", "/etc/passwd", SOURCE_FILE, os.path.dirname(SOURCE_FILE), "/work", os.getcwd(),
              os.path.expanduser("~")]
    if os.access("/root", os.R_OK):  # /root's entries other than the one leading to the runtime
        hidden += [os.path.join("/root", n) for n in os.listdir("/root")
                   if not RUNTIME.startswith(os.path.join("/root", n) + os.sep)]
    hidden = [p for p in dict.fromkeys(hidden) if os.path.exists(p) and not RUNTIME.startswith(p.rstrip("/") + "/")]
    assert "/etc/shadow" in hidden and SOURCE_FILE in hidden  # on the host they are there
    code = probe("""
found["visible"] = [p for p in hidden if os.path.exists(p)]
found["root_dir"] = sorted(os.listdir("/"))
found["runtime"] = len(open(os.__file__).read()) > 0  # the stdlib is readable
open("mine.txt", "w").write("x")
found["workdir"] = [os.getcwd(), os.listdir(".")]
""", hidden=hidden)
    found = found_in(run_tool(env, code))
    assert found["visible"] == []
    assert set(found["root_dir"]) <= {"usr", "lib", "lib64", "lib32", "proc", "dev", "sandbox",
                                      RUNTIME.split("/")[1]}, found["root_dir"]
    assert "etc" not in found["root_dir"] and "work" not in found["root_dir"]
    assert found["runtime"] is True and found["workdir"] == ["/sandbox", ["mine.txt"]]
    assert_next_step_works(lambda code: run_tool(env, code))


@needs_bwrap
def test_only_the_capped_work_dir_is_writable():
    sandbox = Sandbox(limits=SandboxLimits(timeout=3.0, workdir_bytes=4 * 1024**2), audit_hook=False)
    code = probe("""
for path in ("/x", "/root/x", "/usr/lib/x", "/dev/shm/x", os.__file__):
    try:
        open(path, "a").close()
        found[path] = "written"
    except OSError as exc:
        found[path] = exc.errno
written = 0
try:
    for i in range(8):  # 8 files of 1 MiB - 1 (RLIMIT_FSIZE) into a 4 MiB work dir
        with open(f"f{i}", "wb") as f:
            f.write(b"x" * (1024**2 - 1))
        written += 1
except OSError as exc:
    found["full"] = [written, exc.errno]
""")
    found = found_in(bare_run(sandbox, code))
    full = found.pop("full")
    assert set(found.values()) == {30}, found  # EROFS: the whole tree is read-only but /sandbox (and /dev/null)
    assert full[1] == 28 and 3 <= full[0] <= 4  # ENOSPC once 4 MiB are used
    assert_next_step_works(lambda code: bare_run(sandbox, code))


@needs_bwrap
def test_snippet_reads_an_empty_environment(env, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "sekret")
    code = probe("""
found["environ"] = dict(os.environ)
found["self"] = b"sekret" in open("/proc/self/environ", "rb").read()
found["init"] = b"sekret" in open("/proc/1/environ", "rb").read()
""")
    found = found_in(run_tool(env, code))
    assert "HF_TOKEN" not in found["environ"] and "sekret" not in json.dumps(found["environ"])
    assert set(found["environ"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "PWD", "LC_CTYPE"}, found["environ"]
    assert found["self"] is False and found["init"] is False
    assert_next_step_works(lambda code: run_tool(env, code))


@needs_bwrap
def test_snippet_cannot_reach_the_host_network(bare):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        code = probe("""
import socket
found["interfaces"] = [name for _, name in socket.if_nameindex()]
for host in ("127.0.0.1", "1.1.1.1", "10.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=1).close()
        found[host] = "connected"
    except OSError as exc:
        found[host] = type(exc).__name__ + ":" + str(exc.errno)
""", port=port)
        found = found_in(bare_run(bare, code))
        listener.settimeout(0.2)
        with pytest.raises(socket.timeout):
            listener.accept()  # nobody connected to the host's 127.0.0.1
    assert found["interfaces"] == ["lo"]  # a loopback of its own, nothing else
    assert found["127.0.0.1"] == "ConnectionRefusedError:111"  # its own loopback: no listener there
    assert found["1.1.1.1"] == found["10.0.0.1"] == "OSError:101"  # ENETUNREACH: no route anywhere
    assert_next_step_works(lambda code: bare_run(bare, code))


@needs_bwrap
def test_snippet_cannot_signal_a_host_process(bare):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        code = probe("""
import signal
for pid, sig in ((sleeper, signal.SIGKILL), (trainer, 0)):  # 0: only asks whether the pid can be signalled
    try:
        os.kill(pid, sig)
        found[str(pid)] = "sent"
    except OSError as exc:
        found[str(pid)] = type(exc).__name__
""", sleeper=sleeper.pid, trainer=os.getpid())
        found = found_in(bare_run(bare, code))
        time.sleep(0.1)
        assert sleeper.poll() is None  # still alive
        assert found == {str(sleeper.pid): "ProcessLookupError", str(os.getpid()): "ProcessLookupError"}
    finally:
        sleeper.kill()
        sleeper.wait()
    assert_next_step_works(lambda code: bare_run(bare, code))


def host_processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@needs_bwrap
@pytest.mark.parametrize("ending", ["exits", "times out"])
def test_snippet_leaves_no_process_behind(bare, ending):
    marker = f"steprl-sandbox-orphan-{uuid.uuid4().hex}"
    # A daemon: double fork, new session, exec a sleeping Python with the marker in its command line.
    code = probe("""
import sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)", marker])
    os._exit(0)
os.wait()
deadline = time.time() + 2
while time.time() < deadline and not any(
        marker.encode() in open(f"/proc/{p}/cmdline", "rb").read() for p in os.listdir("/proc") if p.isdigit()):
    time.sleep(0.02)
found["daemon_started"] = time.time() < deadline
print(json.dumps(found), flush=True)
if wait:
    time.sleep(60)
""", marker=marker, wait=ending == "times out")
    result = bare.run(code)
    assert json.loads(result.stdout.splitlines()[0]) == {"daemon_started": True}, result
    assert result.status == ("ok" if ending == "exits" else "timeout"), result
    assert host_processes_with(marker) == []
    assert_next_step_works(lambda code: bare_run(bare, code))


# -- the modes ----------------------------------------------------------------------------------
def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match=r"'docker' is not one of \('bwrap', 'hook'\)"):
        envs.make("tools/python-v0", sandbox="docker")
    with pytest.raises(ValueError, match="no isolation at all"):
        Sandbox("hook", audit_hook=False)


def test_no_silent_downgrade_without_bwrap(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox_module, "_PROBES", {})  # probe afresh, and leave the real cache alone
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH
    with pytest.raises(SandboxUnavailableError, match="not installed") as error:
        envs.make("tools/python-v0")
    assert "apt-get install bubblewrap" in str(error.value) and "sandbox='hook'" in str(error.value)
    # bwrap is there but cannot make namespaces (what it says with user namespaces disabled)
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailableError, match="setting up uid map: Permission denied") as error:
        Sandbox()
    assert "kernel.unprivileged_userns_clone=1" in str(error.value) and "run as root" in str(error.value)


def test_hook_only_mode_warns_once(monkeypatch):
    monkeypatch.setattr(sandbox_module, "_warned_hook_only", False)
    with pytest.warns(RuntimeWarning, match="no OS isolation"):
        env = envs.make("tools/python-v0", split="test", num_tasks=1, sandbox="hook")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        envs.make("tools/python-v0", split="test", num_tasks=1, sandbox="hook")
    env.reset(seed=0, options={"task": 0})
    assert run_tool(env, "print(6 * 7)") == "42" and env.unwrapped.last_run.isolation == "hook"


@pytest.mark.filterwarnings("ignore:sandbox='hook'")
def test_hook_only_mode_sees_the_host():
    """The control: the probes above do find the host when only the audit hook stands in the way."""
    code = probe("""
found["source"] = os.path.exists(source)
found["trainer"] = os.path.exists(f"/proc/{trainer}")
""", source=SOURCE_FILE, trainer=os.getpid())
    result = Sandbox("hook", limits=FAST).run(code)
    assert json.loads(result.stdout) == {"source": True, "trainer": True}
