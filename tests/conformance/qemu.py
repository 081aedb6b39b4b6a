"""A real QEMU driven over its qtest protocol and QMP, as the reference oracle.

``Qemu`` starts ``qemu-system-x86_64 -machine pc,pit=off -accel qtest`` with both
watchdogs, listening sockets of ours for the qtest and QMP channels, and gives:
- ``cmd(line)``: one qtest command and its reply (``OK``, ``OK 0x..``, ``OK <ns>``);
- ``qmp(name, **args)``: one QMP command, returning its result;
- ``settle()``: a ``clock_step 0`` barrier, so that work QEMU's main loop defers after
  a reply (reset/stop/powerdown/shutdown requests, zero-length timers) has run, then a
  ``query-status`` round trip that collects every QMP event emitted so far, and the
  run status.
Pitfalls handled (SPEC.md §7.3): ``pit=off`` keeps the PIT from stopping the clock;
``poweroff`` makes QEMU exit inside a command (no reply; reported as status
"poweroff"), ``-no-reboot`` + reset exits after SHUTDOWN (status "shutdown");
malformed input aborts QEMU, so commands are validated before they are sent; every
read has a deadline, so a hung QEMU fails the test instead of hanging it.
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = ROOT / "tools" / "setup-qemu-qtest.sh"
QEMU_BIN = "qemu-system-x86_64"
_COMMAND = re.compile(
    r"^(?:(?:out[bwl]) 0x[0-9a-f]{1,4} 0x[0-9a-f]{1,8}|(?:in[bwl]) 0x[0-9a-f]{1,4}"
    r"|(?:write[bwl]) 0x[0-9a-f]{1,16} 0x[0-9a-f]{1,8}|(?:read[bwl]) 0x[0-9a-f]{1,16}"
    r"|clock_step(?: \d{1,19})?|clock_set \d{1,19})$")


class QemuUnavailable(Exception):
    """QEMU with the qtest accelerator cannot be set up on this machine."""


class QemuExited(Exception):
    """QEMU ended while a command was outstanding (poweroff, or a crash)."""


def module_dir() -> str:
    return os.environ.get("WDCORE_QEMU_DIR") or str(Path.home() / ".cache" / "wdcore" / "qemu-qtest")


_setup_lock = threading.Lock()
_setup_result: list = []


def ensure_qemu() -> str:
    """Run tools/setup-qemu-qtest.sh once per process (it returns at once when cached);
    the module directory, or QemuUnavailable with the reason."""
    with _setup_lock:
        if not _setup_result:
            directory = module_dir()
            try:
                r = subprocess.run(["bash", str(SETUP_SCRIPT), directory], capture_output=True,
                                   text=True, timeout=900)
                ok = r.returncode == 0 and shutil.which(QEMU_BIN) is not None
                _setup_result.append(directory if ok else QemuUnavailable(
                    f"tools/setup-qemu-qtest.sh failed ({r.returncode}): {r.stderr.strip()[-500:]}"))
            except (OSError, subprocess.TimeoutExpired) as exc:
                _setup_result.append(QemuUnavailable(f"tools/setup-qemu-qtest.sh: {exc}"))
        result = _setup_result[0]
    if isinstance(result, Exception):
        raise result
    return result


class Qemu:
    """One QEMU process with ib700 and i6300esb, driven over qtest and QMP."""

    def __init__(self, action: str = "reset", no_reboot: bool = False, esb_slot: int = 2,
                 timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.exited = False
        self.final_status: str | None = None
        self._tmp = tempfile.mkdtemp(prefix="wdcore-qemu-")
        qsock, msock = os.path.join(self._tmp, "qtest.sock"), os.path.join(self._tmp, "qmp.sock")
        listeners = []
        for path in (qsock, msock):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            s.listen(1)
            s.settimeout(timeout_s)
            listeners.append(s)
        argv = [QEMU_BIN, "-machine", "pc,pit=off", "-accel", "qtest",
                "-qtest", f"unix:{qsock}", "-qtest-log", "/dev/null",
                "-chardev", f"socket,path={msock},id=qmp0", "-mon", "chardev=qmp0,mode=control",
                "-display", "none", "-nodefaults", "-no-user-config",
                # QEMU reads a PCI addr= in hex ("16" is slot 0x16): always say 0x..
                "-device", "ib700", "-device", f"i6300esb,addr={esb_slot:#x}",
                "-action", f"watchdog={action}"]
        if no_reboot:
            argv.append("-no-reboot")
        env = dict(os.environ, QEMU_MODULE_DIR=module_dir())
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        self.stderr_lines: list[str] = []
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        try:
            self._q, _ = listeners[0].accept()
            self._m, _ = listeners[1].accept()
        except OSError as exc:
            self.close()
            raise QemuExited(f"QEMU did not connect: {exc}; stderr: {self.stderr_text()}") from exc
        finally:
            for s in listeners:
                s.close()
        self._qbuf = b""
        self._mbuf = b""
        self._events: list[dict] = []
        greeting = self._qmp_read()
        assert "QMP" in greeting, greeting
        self.qmp("qmp_capabilities")

    # --- plumbing ------------------------------------------------------------------
    def _drain_stderr(self) -> None:
        for raw in self.proc.stderr:  # type: ignore[union-attr]
            self.stderr_lines.append(raw.decode(errors="replace").rstrip("\n"))

    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines[-20:])

    def _readline(self, sock: socket.socket, attr: str) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        while b"\n" not in getattr(self, attr):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"QEMU did not answer within {self.timeout_s} s")
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                continue
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.exited = True
                raise QemuExited("QEMU closed the connection")
            setattr(self, attr, getattr(self, attr) + chunk)
        line, rest = getattr(self, attr).split(b"\n", 1)
        setattr(self, attr, rest)
        return line

    def _qmp_read(self) -> dict:
        return json.loads(self._readline(self._m, "_mbuf"))

    # --- qtest -----------------------------------------------------------------------
    def cmd(self, line: str) -> str:
        if not _COMMAND.match(line):
            raise ValueError(f"refusing to send a malformed qtest command: {line!r}")
        try:
            self._q.sendall(line.encode() + b"\n")
            return self._readline(self._q, "_qbuf").decode()
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.exited = True
            raise QemuExited(str(exc)) from exc

    # --- QMP ---------------------------------------------------------------------------
    def qmp(self, name: str, **arguments):
        msg = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        try:
            self._m.sendall(json.dumps(msg).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            self.exited = True
            raise QemuExited(str(exc)) from exc
        while True:
            reply = self._qmp_read()
            if "event" in reply:
                self._events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"QMP {name}: {reply['error']}")
            return reply.get("return")

    def settle(self) -> tuple[list[dict], str]:
        """Barrier, then (events since the last settle, run status)."""
        if self.exited:
            return self._take_events(), self.final_status or "poweroff"
        try:
            self.cmd("clock_step 0")
            status = self.qmp("query-status")["status"]
        except QemuExited:
            # QEMU ends after SHUTDOWN (-no-reboot) or inside a poweroff; collect what it
            # said before closing
            self._drain_qmp_after_exit()
            events = self._take_events()
            names = [e["event"] for e in events]
            self.final_status = "shutdown" if "SHUTDOWN" in names else "poweroff"
            return events, self.final_status
        return self._take_events(), status

    def _drain_qmp_after_exit(self) -> None:
        self._m.setblocking(False)
        try:
            while True:
                try:
                    chunk = self._m.recv(65536)
                except (BlockingIOError, ConnectionResetError):
                    break
                if not chunk:
                    break
                self._mbuf += chunk
        finally:
            self._m.setblocking(True)
        for line in self._mbuf.split(b"\n"):
            if line.strip():
                msg = json.loads(line)
                if "event" in msg:
                    self._events.append(msg)
        self._mbuf = b""

    def _take_events(self) -> list[dict]:
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        for s in ("_q", "_m"):
            sock = getattr(self, s, None)
            if sock is not None:
                sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        # every stderr line must be read before anyone counts them
        self._stderr_thread.join(timeout=5)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
