"""Run untrusted Python code in a sandbox: ``Sandbox().run(code) -> SandboxResult``.

:class:`Sandbox` is the one component any tool env uses to run model-written
code (``tools/python-v0`` does; an apps-world or plugin env can too). Each
:meth:`Sandbox.run` is a fresh ``python -I -S`` process (isolated mode, no site
packages: the standard library only) that gets the code on stdin, runs it as
``__main__`` and hands back stdout, stderr, the exit code, a status and
whether it was stopped (:class:`SandboxResult`). Nothing carries over between
runs. Layers, outermost first:

1. **OS isolation** (``isolation="bwrap"``, the default): the process runs in
   `bubblewrap <https://github.com/containers/bubblewrap>`_ with new user,
   PID, network, IPC, UTS, mount (and, where possible, cgroup) namespaces, all
   capabilities dropped, a new terminal session, and ``--die-with-parent``.
   Its file system is empty but for a read-only view of the Python runtime
   (the interpreter's prefix; for a system Python, the binary), ``/usr/lib``
   (``/lib``, ``/lib64``) for shared libraries, ``/usr/share/zoneinfo``, a new
   ``/proc`` and a minimal ``/dev``, and a private tmpfs work dir
   (``/sandbox``, cwd and ``HOME``, its size capped), all read-only but the
   work dir and ``/dev/null``. The environment is cleared to
   ``PATH``/``HOME``/``TMPDIR``/``LANG``. So the code sees no
   process but its own (``/proc`` holds the sandbox's pids only), no file of
   the host outside the runtime (no ``/etc``, no home dirs, no project tree),
   no network (a loopback of its own and nothing else), cannot signal a host
   process, and every process it starts dies with it. ``bwrap`` is probed once
   per interpreter; where it cannot run, :class:`Sandbox` raises
   :class:`SandboxUnavailableError` saying how to enable it, never falls back
   on its own. ``isolation="hook"`` (layers 2–4 only) must be asked for, and
   warns once.
2. **A wall-clock timeout**; on expiry the sandbox (or, with ``"hook"``, the
   process group) is killed with SIGKILL.
3. **rlimits** set in the child before the code runs: ``RLIMIT_CPU``,
   ``RLIMIT_AS`` (a 4 GB allocation is a ``MemoryError``), ``RLIMIT_FSIZE``
   (largest file, stdout included), ``RLIMIT_NPROC`` = 0 (ignored by Linux for
   root), ``RLIMIT_CORE`` = 0. With ``"hook"``, also a network namespace where
   this user may make one (``unshare(CLONE_NEWNET)``).
4. **An audit hook** (``sys.addaudithook``, PEP 578, on by default) that
   refuses, with a message naming what was refused: importing ``socket``,
   ``ssl``, ``ctypes``, ``_posixsubprocess``, ``multiprocessing`` and the like;
   ``socket.*`` and ``ctypes.*`` events; ``os.fork``/``exec``/``spawn``/
   ``system``/``kill``, ``subprocess.Popen``, ``pty.spawn``; writing, removing,
   renaming or creating files outside the work dir; ``resource.setrlimit`` and
   ``sys.addaudithook``. Under bwrap it is the second layer that gives the
   agent clear messages; without bwrap it is the only barrier to most of these.

Not guaranteed: see ``docs/tools.md`` ("The sandbox"). In short, the audit
hook alone is a speed bump, not a security boundary; bwrap's namespaces are a
kernel boundary but share the kernel (a kernel exploit escapes them), and
CPU, memory and fork counts are bounded per process, not per sandbox.

>>> sandbox = Sandbox(limits=SandboxLimits(timeout=2.0))
>>> sandbox.run("print(6 * 7)").stdout
'42\\n'
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

__all__ = ["ISOLATION_MODES", "Sandbox", "SandboxLimits", "SandboxResult", "SandboxUnavailableError", "run_snippet"]

#: ``"bwrap"``: OS isolation through bubblewrap (the default); ``"hook"``: audit hook and rlimits only.
ISOLATION_MODES = ("bwrap", "hook")

#: the work dir inside a bwrap sandbox (a private tmpfs)
SANDBOX_DIR = "/sandbox"

_BOOTSTRAP = r'''
import os, sys, resource
cpu, memory, fsize, want_netns, use_hook = (int(a) for a in sys.argv[1:6])
source = sys.stdin.buffer.read().decode("utf-8", "replace")
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
netns = False
if want_netns:
    try:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
        netns = _libc.unshare(0x40000000) == 0  # CLONE_NEWNET
        del _libc
    except Exception:
        pass
    for name in ("ctypes", "_ctypes", "ctypes._endian"):
        sys.modules.pop(name, None)
sys.stderr.write("\x1esandbox-netns=%d\n" % netns)
sys.stderr.flush()
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if use_hook:
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError):
        pass
ROOT = os.path.realpath(os.getcwd()) + os.sep
BLOCKED_IMPORTS = {"socket", "_socket", "ssl", "_ssl", "ctypes", "_ctypes", "_posixsubprocess", "multiprocessing",
                   "_multiprocessing", "asyncio", "select", "selectors", "urllib.request", "http.client", "ftplib",
                   "smtplib", "telnetlib", "poplib", "imaplib", "socketserver", "xmlrpc.client"}
BLOCKED_EVENTS = {"os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "os.kill",
                  "os.killpg", "subprocess.Popen", "pty.spawn", "resource.setrlimit", "sys.addaudithook",
                  "os.chroot", "os.setuid", "os.setgid", "signal.pthread_kill"}
PATH_EVENTS = {"os.remove": 0, "os.rename": 0, "os.rmdir": 0, "os.mkdir": 0, "os.link": 1, "os.symlink": 1,
               "os.truncate": 0, "os.chmod": 0, "os.chown": 0, "os.utime": 0, "shutil.rmtree": 0, "os.mkfifo": 0,
               "os.mknod": 0}
_realpath, _fspath, _isinstance, _int, _str, _bytes = os.path.realpath, os.fspath, isinstance, int, str, bytes

def _inside(path):
    if _isinstance(path, _int):
        return True  # an already open descriptor
    try:
        path = _fspath(path)
        if _isinstance(path, _bytes):
            path = path.decode("utf-8", "replace")
        return (_realpath(path) + os.sep).startswith(ROOT)
    except Exception:
        return False

def _hook(event, args):
    if event == "import" and args[0] in BLOCKED_IMPORTS:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed (no network, no processes)")
    if event.startswith("socket.") or event.startswith("ctypes."):
        raise PermissionError(f"sandbox: {event} is not allowed (no network, no native calls)")
    if event in BLOCKED_EVENTS:
        raise PermissionError(f"sandbox: {event} is not allowed (no new processes, no changing the limits)")
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in _str(mode) for c in "wax+")) or (
            flags is not None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
        if writing and path is not None and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} is not allowed outside the working directory")
    elif event in PATH_EVENTS:
        paths = [args[0]] + ([args[1]] if event in ("os.rename", "os.link", "os.symlink") else [])
        for path in paths:
            if not _inside(path):
                raise PermissionError(f"sandbox: {event} on {path!r} is not allowed outside the working directory")

if use_hook:
    sys.addaudithook(_hook)
del resource
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
exec(compile(source, "<snippet>", "exec"), namespace)
'''


class SandboxUnavailableError(RuntimeError):
    """OS isolation was asked for (``isolation="bwrap"``) but bubblewrap cannot run here."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one snippet run."""

    #: wall-clock seconds before the sandbox is killed
    timeout: float = 5.0
    #: CPU seconds (RLIMIT_CPU); the kernel stops the process after them
    cpu_seconds: int = 5
    #: address-space bytes (RLIMIT_AS)
    memory_bytes: int = 512 * 1024**2
    #: largest file the snippet may write, its stdout/stderr files included (RLIMIT_FSIZE)
    file_bytes: int = 1024**2
    #: size of the work dir's tmpfs, all files together (bwrap only; it is RAM)
    workdir_bytes: int = 64 * 1024**2
    #: characters of stdout / stderr kept
    max_output: int = 2000


@dataclass
class SandboxResult:
    """What a snippet run produced.

    Attributes:
        stdout: captured standard output (cut to ``max_output`` characters).
        stderr: captured standard error, the traceback if the snippet raised.
        status: ``"ok"``, ``"error"`` (raised / nonzero exit), ``"timeout"``
            (wall clock), ``"cpu_limit"``, ``"memory_limit"``, ``"output_limit"``,
            ``"blocked"`` (the audit hook refused an operation) or ``"killed"``.
        exit_code: the process's exit code (negative: killed by that signal).
        seconds: wall-clock duration.
        network_namespace: the snippet ran without the host's network interfaces.
        isolation: ``"bwrap"`` or ``"hook"`` (see :data:`ISOLATION_MODES`).
    """

    stdout: str
    stderr: str
    status: str
    exit_code: int | None
    seconds: float
    network_namespace: bool = False
    isolation: str = "hook"

    @property
    def timed_out(self) -> bool:
        """The run was stopped by the wall-clock timeout."""
        return self.status == "timeout"

    def message(self) -> str:
        """The result as the agent sees it: output, and a one-line reason when stopped."""
        reasons = {
            "timeout": "Stopped: the snippet ran past the wall-clock time limit.",
            "cpu_limit": "Stopped: the snippet used up its CPU time limit.",
            "memory_limit": "Stopped: the snippet ran out of memory (memory limit).",
            "output_limit": "Stopped: the snippet wrote more output than allowed.",
            "blocked": "Stopped: the snippet tried something the sandbox forbids (network, new processes, or "
                       "writing outside its working directory).",
            "killed": f"Stopped: the process was killed (exit code {self.exit_code}).",
        }
        parts = []
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("stderr:\n" + self.stderr.rstrip("\n"))
        if self.status in reasons:
            parts.append(reasons[self.status])
        elif not parts:
            parts.append("(no output; use print() to show values)")
        return "\n".join(parts)


class Sandbox:
    """Runs untrusted Python code, one fresh process per :meth:`run`; see the module docstring for the layers.

    Args:
        isolation: ``"bwrap"`` (default): OS isolation through bubblewrap; raises
            :class:`SandboxUnavailableError` if bwrap cannot run here. ``"hook"``:
            the audit hook and rlimits only, no OS isolation (the code can read the
            host's files and other processes' ``/proc`` entries); warns once.
        limits: time, CPU, memory, file and output limits of each run.
        python: the interpreter to run code with (default: this one); it runs with
            ``-I -S``, so the standard library only.
        audit_hook: install the audit hook (and ``RLIMIT_NPROC`` = 0) inside the
            child. ``False`` is for bwrap only: code that may start processes and
            open sockets inside its own namespaces, and tests of the namespaces.
    """

    def __init__(self, isolation: str = "bwrap", limits: SandboxLimits = SandboxLimits(), python: str | None = None,
                 audit_hook: bool = True):
        if isolation not in ISOLATION_MODES:
            raise ValueError(f"sandbox isolation {isolation!r} is not one of {ISOLATION_MODES}: 'bwrap' runs code in "
                             "Linux namespaces through bubblewrap (the default); 'hook' runs it with the audit hook "
                             "and rlimits only, without OS isolation")
        if isolation == "hook" and not audit_hook:
            raise ValueError("isolation='hook' with audit_hook=False would run code with no isolation at all; "
                             "use isolation='bwrap' or keep the audit hook")
        self.isolation, self.limits, self.audit_hook = isolation, limits, audit_hook
        self.python = os.path.realpath(python or sys.executable)
        if isolation == "bwrap":
            self._bwrap = bwrap_command(self.python)
        else:
            _warn_hook_only()

    def __repr__(self) -> str:
        return f"Sandbox(isolation={self.isolation!r}, limits={self.limits!r}, audit_hook={self.audit_hook})"

    def run(self, code: str) -> SandboxResult:
        """Run ``code`` as a fresh ``__main__`` module and collect its output. Never raises on bad code."""
        limits, bwrap = self.limits, self.isolation == "bwrap"
        outer = tempfile.mkdtemp(prefix="steprl-sandbox-")  # output files here; with "hook", the work dir inside
        start = time.perf_counter()
        info_read = info_write = None
        try:
            out_path, err_path = os.path.join(outer, "stdout"), os.path.join(outer, "stderr")
            code_path = os.path.join(outer, "code.py")  # the child's stdin: it gets the fd, not the path
            with open(code_path, "wb") as f:
                f.write(code.encode("utf-8", "surrogatepass"))
            child = [self.python, "-I", "-S", "-c", _BOOTSTRAP, str(limits.cpu_seconds), str(limits.memory_bytes),
                     str(limits.file_bytes), str(int(not bwrap)), str(int(self.audit_hook))]
            if bwrap:
                info_read, info_write = os.pipe()  # bwrap writes the sandbox's host pid here
                argv = [*self._bwrap, "--size", str(limits.workdir_bytes), "--tmpfs", SANDBOX_DIR, "--remount-ro", "/",
                        "--chdir", SANDBOX_DIR, "--info-fd", str(info_write), "--", *child]
                cwd, env = "/", {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
            else:
                cwd = os.path.join(outer, "work")
                os.mkdir(cwd)
                argv, env = child, {"PATH": "/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8"}
            with open(code_path, "rb") as code_in, open(out_path, "wb") as out, open(err_path, "wb") as err:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=code_in, stdout=out, stderr=err,
                                        start_new_session=True, close_fds=True,
                                        pass_fds=(info_write,) if bwrap else ())
                if bwrap:
                    os.close(info_write)
                    info_write = None
                try:
                    timed_out = not _wait(proc, limits.timeout)
                finally:
                    _stop(proc, info_read)
            stdout = _read(out_path, limits.max_output)
            raw_err = _read(err_path, limits.max_output + 200)
        finally:
            for fd in (info_read, info_write):
                if fd is not None:
                    os.close(fd)
            shutil.rmtree(outer, ignore_errors=True)
        head, _, rest = raw_err.partition("\n")
        netns = bwrap or head == "\x1esandbox-netns=1"
        stderr = rest if head.startswith("\x1esandbox-netns=") else raw_err
        exit_code = proc.returncode
        if bwrap and exit_code is not None and exit_code > 128:
            exit_code = 128 - exit_code  # bwrap exits 128 + N when the code was killed by signal N
        return SandboxResult(stdout, _clean_traceback(stderr), _status(exit_code, stderr, timed_out), exit_code,
                             time.perf_counter() - start, netns, self.isolation)


def run_snippet(code: str, limits: SandboxLimits = SandboxLimits(), python: str | None = None,
                isolation: str = "bwrap") -> SandboxResult:
    """``Sandbox(isolation, limits, python).run(code)``: one run (bwrap's probe is cached, so this is cheap)."""
    return Sandbox(isolation, limits, python).run(code)


# -- bubblewrap ---------------------------------------------------------------------------------
_PROBES: dict[tuple[str, str], tuple[str, ...] | str] = {}  # (bwrap, python) -> argv prefix, or why it failed
_warned_hook_only = False

_HOW_TO_ENABLE = (
    "To enable OS isolation: install bubblewrap (apt-get install bubblewrap; scripts/install.sh does it as root) "
    "and let it create namespaces: run as root, or allow unprivileged user namespaces (sysctl -w "
    "kernel.unprivileged_userns_clone=1, and on Ubuntu 24.04+ also kernel.apparmor_restrict_unprivileged_userns=0; "
    "user.max_user_namespaces must be > 0); inside Docker, the container needs seccomp/AppArmor profiles that allow "
    "unshare and mount (e.g. --security-opt seccomp=unconfined --security-opt apparmor=unconfined). Or opt out of OS "
    "isolation explicitly with sandbox='hook' (e.g. envs.make('tools/python-v0', sandbox='hook')): the audit hook "
    "and rlimits only.")


def bwrap_command(python: str) -> tuple[str, ...]:
    """The ``bwrap ...`` argv prefix that sandboxes ``python``; probed once per (bwrap, interpreter), then cached.

    Raises :class:`SandboxUnavailableError` (with bwrap's own error and how to fix it) when bwrap is
    missing or cannot create the namespaces.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailableError(f"bubblewrap (bwrap) is not installed, so snippets cannot be isolated. "
                                      f"{_HOW_TO_ENABLE}")
    key = (bwrap, python)
    if key not in _PROBES:
        _PROBES[key] = _probe(bwrap, python)
    found = _PROBES[key]
    if isinstance(found, str):
        raise SandboxUnavailableError(f"bubblewrap ({bwrap}) cannot run a sandbox here: {found}. {_HOW_TO_ENABLE}")
    return found


def _probe(bwrap: str, python: str) -> tuple[str, ...] | str:
    """The first argv prefix under which ``python`` starts in bwrap: with a user namespace, else (as root) without."""
    common = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
              "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", SANDBOX_DIR,
              "--setenv", "TMPDIR", SANDBOX_DIR, "--setenv", "LANG", "C.UTF-8", *_runtime_mounts(python),
              "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]  # /dev/null stays writable
    attempts = [[bwrap, "--unshare-user", "--uid", "65534", "--gid", "65534", *common]]  # nobody inside
    if os.geteuid() == 0:
        attempts.append([bwrap, *common])  # root may make the other namespaces without a user namespace
    errors = []
    for prefix in attempts:
        try:
            done = subprocess.run([*prefix, "--size", "1048576", "--tmpfs", SANDBOX_DIR, "--remount-ro", "/", "--",
                                   python, "-I", "-S", "-c", "pass"], env={"PATH": "/usr/bin:/bin"},
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if done.returncode == 0:
            return tuple(prefix)
        said = done.stderr.decode("utf-8", "replace").strip() or f"exit code {done.returncode}"
        if "--size" in said:
            said += " (--size needs bubblewrap >= 0.7)"
        errors.append(said)
    return "; ".join(dict.fromkeys(errors))


def _runtime_mounts(python: str) -> list[str]:
    """bwrap args for a read-only view of what ``python -I -S`` needs: its prefix (or binary) and the shared libs."""
    args: list[str] = []
    for path in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/share/zoneinfo"):
        args += ["--ro-bind-try", path, path]
    for path in ("/lib", "/lib64", "/lib32"):  # merged /usr: symlinks into /usr; older systems: directories
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    prefix = os.path.dirname(os.path.dirname(python))  # .../bin/python3.11 -> ...
    if prefix in ("/", "/usr"):
        args += ["--ro-bind", python, python]  # a system Python: its stdlib is under /usr/lib already
    else:
        args += ["--ro-bind", prefix, prefix]  # e.g. /root/.pyenv/versions/3.11.7 (not the rest of /root)
    return args


def _warn_hook_only() -> None:
    global _warned_hook_only
    if not _warned_hook_only:
        _warned_hook_only = True
        warnings.warn("sandbox='hook': snippets run with the audit hook and rlimits only, with no OS isolation: they "
                      "can read the host's files, the environment and command line of other processes in /proc, and "
                      "reach the network where the hook is bypassed. Use sandbox='bwrap' (the default) to isolate "
                      "them.", RuntimeWarning, stacklevel=4)


# -- running ------------------------------------------------------------------------------------
def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait at most ``timeout`` seconds for ``proc`` to exit; True if it did.

    A pidfd wakes up at the exit itself (``Popen.wait(timeout)`` polls with sleeps of up to 50 ms,
    which was about half of a short snippet's time).
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        exited = bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)
    if exited:
        proc.wait()
    return exited


def _stop(proc: subprocess.Popen, info_fd: int | None) -> None:
    """Kill what is left of a run and reap it; with bwrap, return only once the sandbox's processes are gone.

    The sandbox's init (its PID namespace's pid 1, whose host pid bwrap wrote to ``info_fd``) is
    what to kill and wait for: the kernel kills every process of the namespace and waits for them
    before init exits. bwrap itself can exit first (init reports the code's exit status as soon as
    the code ends), so its exit alone does not mean a daemon the code left behind is gone.
    """
    init = _sandbox_init(info_fd) if info_fd is not None else None
    if init is not None and proc.poll() is None:
        try:
            os.kill(init[0], signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group: anything it started dies too
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if init is not None:
        _wait_gone(*init)


def _sandbox_init(info_fd: int) -> tuple[int, str] | None:
    """(host pid, ``pid:[inode]`` of its PID namespace) of the sandbox's init, from bwrap's ``--info-fd``."""
    try:
        os.set_blocking(info_fd, False)
        info = json.loads(os.read(info_fd, 65536))
        return int(info["child-pid"]), f"pid:[{info.get('pid-namespace', '')}]"
    except (OSError, ValueError, KeyError, TypeError):
        return None  # bwrap failed before it started the sandbox


def _wait_gone(pid: int, pid_namespace: str, timeout: float = 5.0) -> None:
    """Wait until the sandbox's init has exited (its namespace emptied), or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    try:
        pidfd = os.pidfd_open(pid)
    except AttributeError:  # not Linux >= 5.3: poll
        pidfd = None
    except OSError:
        return  # already gone
    try:
        while time.monotonic() < deadline:
            try:  # the same process (a pid can be reused once it is gone)
                if os.readlink(f"/proc/{pid}/ns/pid") != pid_namespace:
                    return
            except OSError:
                return
            if pidfd is None:
                time.sleep(0.002)
            elif select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _status(exit_code: int | None, stderr: str, timed_out: bool) -> str:
    if timed_out:
        return "timeout"
    if exit_code == 0:
        return "ok"
    if exit_code == -signal.SIGXCPU:
        return "cpu_limit"
    if exit_code == -signal.SIGXFSZ or "File too large" in stderr:
        return "output_limit"
    if "MemoryError" in stderr:
        return "memory_limit"
    if "PermissionError: sandbox:" in stderr:
        return "blocked"
    if exit_code is not None and exit_code < 0:
        return "killed"
    return "error"


def _read(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(limit * 4 + 4)
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + f"\n[... output cut at {limit} characters]"


def _clean_traceback(stderr: str) -> str:
    """Drop the bootstrap's own frame from tracebacks: the agent sees only its snippet's lines."""
    lines = stderr.splitlines()
    out, skip = [], False
    for line in lines:
        if line.startswith('  File "<string>"'):
            skip = True
            continue
        if skip and line.startswith("    "):
            skip = False
            continue
        skip = False
        out.append(line)
    return "\n".join(out)
