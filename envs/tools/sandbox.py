"""Run an untrusted Python snippet in a separate, limited process: :func:`run_snippet`.

Layers, outermost first:

1. **A fresh process per snippet** (``python -I -S``: isolated mode, no site
   packages, so stdlib only), in its own session/process group, with
   ``cwd`` = a private temp dir (deleted afterwards), a minimal environment
   (``HOME``/``TMPDIR`` = that dir) and stdin closed.
2. **A wall-clock timeout**; on expiry the whole process group is killed
   (SIGKILL).
3. **rlimits** set in the child before the snippet runs: ``RLIMIT_CPU`` (CPU
   seconds), ``RLIMIT_AS`` (address space, so a 4 GB allocation is a
   ``MemoryError``), ``RLIMIT_FSIZE`` (largest file written, stdout included),
   ``RLIMIT_NPROC`` = 0 (no new processes for a non-root user; Linux ignores
   it for root), ``RLIMIT_CORE`` = 0.
4. **A network namespace** when the kernel lets this user make one
   (``unshare(CLONE_NEWNET)`` via libc; works as root or with user
   namespaces): the child then has no network interface but loopback.
   :attr:`SandboxResult.network_namespace` says whether it was in effect.
5. **An audit hook** (``sys.addaudithook``, PEP 578) installed before the
   snippet runs that refuses: importing ``socket``/``_socket``/``ssl``/
   ``ctypes``/``_posixsubprocess``/``multiprocessing``; every ``socket.*`` event;
   ``os.fork``/``forkpty``/``posix_spawn``/``exec``/``spawn``/``system``,
   ``subprocess.Popen`` and ``pty.spawn``; ``ctypes.*``; opening a file for
   writing, and removing, renaming or creating files and dirs, outside the temp
   dir; ``resource.setrlimit`` and ``sys.addaudithook`` (no undoing the limits); ``os.kill``.

What it does **not** guarantee: the audit hook is a speed bump, not a
security boundary (PEP 578 says so: code that reaches into interpreter
internals can get around it), and files *outside* the temp dir can still be
read. Layers 1–4 are enforced by the kernel; without a network namespace (a
non-root user without user namespaces) only the hook blocks the network. For
hostile code use a container or a VM. This sandbox is for model-written
snippets in training, where the threats are mistakes and reward hacking.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

__all__ = ["SandboxResult", "SandboxLimits", "run_snippet"]

_BOOTSTRAP = r'''
import os, sys, resource
snippet_path, cpu, memory, fsize = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(snippet_path, encoding="utf-8") as f:
    source = f.read()
netns = False
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

sys.addaudithook(_hook)
del resource
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
exec(compile(source, "<snippet>", "exec"), namespace)
'''


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one snippet run."""

    #: wall-clock seconds before the process group is killed
    timeout: float = 5.0
    #: CPU seconds (RLIMIT_CPU); the kernel stops the process after them
    cpu_seconds: int = 5
    #: address-space bytes (RLIMIT_AS)
    memory_bytes: int = 512 * 1024**2
    #: largest file the snippet may write, its stdout/stderr files included (RLIMIT_FSIZE)
    file_bytes: int = 1024**2
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
        network_namespace: the snippet ran without network interfaces.
    """

    stdout: str
    stderr: str
    status: str
    exit_code: int | None
    seconds: float
    network_namespace: bool = False

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


def _read(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(limit * 4 + 4)
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + f"\n[... output cut at {limit} characters]"


def run_snippet(code: str, limits: SandboxLimits = SandboxLimits(), python: str | None = None) -> SandboxResult:
    """Run ``code`` as a fresh ``__main__`` module in the sandbox and collect its output. Never raises on bad code."""
    outer = tempfile.mkdtemp(prefix="steprl-sandbox-")  # output files here, the snippet's own dir inside
    workdir = os.path.join(outer, "work")
    os.mkdir(workdir)
    start = time.perf_counter()
    try:
        snippet = os.path.join(outer, "snippet.py")
        with open(snippet, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(code)
        out_path, err_path = os.path.join(outer, "stdout"), os.path.join(outer, "stderr")
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
               "PYTHONIOENCODING": "utf-8", "PYTHONDONTWRITEBYTECODE": "1"}
        argv = [python or sys.executable, "-I", "-S", "-c", _BOOTSTRAP, snippet, str(limits.cpu_seconds),
                str(limits.memory_bytes), str(limits.file_bytes)]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, close_fds=True)
            timed_out = False
            try:
                proc.wait(timeout=limits.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the group: anything it started dies too
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        stdout = _read(out_path, limits.max_output)
        raw_err = _read(err_path, limits.max_output + 200)
        head, sep, rest = raw_err.partition("\n")
        netns = head == "\x1esandbox-netns=1"
        stderr = rest if head.startswith("\x1esandbox-netns=") else raw_err
        code_ = proc.returncode
        if timed_out:
            status = "timeout"
        elif code_ == 0:
            status = "ok"
        elif code_ == -signal.SIGXCPU:
            status = "cpu_limit"
        elif code_ == -signal.SIGXFSZ or "File too large" in stderr:
            status = "output_limit"
        elif "MemoryError" in stderr:
            status = "memory_limit"
        elif "PermissionError: sandbox:" in stderr:
            status = "blocked"
        elif code_ is not None and code_ < 0:
            status = "killed"
        else:
            status = "error"
        return SandboxResult(stdout, _clean_traceback(stderr), status, code_, time.perf_counter() - start, netns)
    finally:
        shutil.rmtree(outer, ignore_errors=True)


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
