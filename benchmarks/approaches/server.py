"""A: one long-running server process owns tasks.md; writers send requests over a unix
socket and wait for the answer. The server applies requests one at a time, writes the file
(temporary file and rename) before it answers, and fsyncs only when started with ``--fsync``.

Run as ``python -m approaches.server ROOT [--fsync]``: it prints ``ready`` once it listens on
``ROOT/server.sock``. Requests are lines: ``set TASK CHAR`` (answer ``ok`` or ``error …``),
``read`` (answer the length, a newline, then the bytes of tasks.md).
"""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from approaches import Backend, Design, child_env, edit, python

if TYPE_CHECKING:
    from bench_status_set import Layout


class Owner:
    """The server's state: tasks.md in memory, and on disk after every change."""

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.temporary = path.with_name(".tasks.md.tmp")
        self.text = path.read_bytes()
        self.fsync = fsync
        self.lock = threading.Lock()

    def set_status(self, task: int, char: str) -> None:
        with self.lock:
            text = edit(self.text, task, char)
            with self.temporary.open("wb") as handle:
                handle.write(text)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            self.temporary.replace(self.path)
            self.text = text

    def read(self) -> bytes:
        with self.lock:
            return self.text


def serve(root: Path, fsync: bool) -> None:
    owner = Owner(root / "tasks.md", fsync)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                verb, *args = line.decode().split()
                if verb == "set":
                    try:
                        owner.set_status(int(args[0]), args[1] if len(args) > 1 else " ")
                    except (KeyError, ValueError, OSError) as error:
                        self.wfile.write(f"error {error}\n".encode())
                    else:
                        self.wfile.write(b"ok\n")
                elif verb == "read":
                    text = owner.read()
                    self.wfile.write(b"%d\n" % len(text) + text)
                else:
                    self.wfile.write(b"error unknown request\n")
                self.wfile.flush()

    class Listener(socketserver.ThreadingUnixStreamServer):
        daemon_threads = True

    with Listener(str(root / "server.sock"), Handler) as listener:
        print("ready", flush=True)
        listener.serve_forever()


class Client:
    def __init__(self, root: Path) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.connect(str(root / "server.sock"))
        self.stream = self.socket.makefile("rwb")

    def _ask(self, request: str) -> bytes:
        self.stream.write(request.encode() + b"\n")
        self.stream.flush()
        return self.stream.readline().rstrip(b"\n")

    def set_status(self, task: int, char: str) -> None:
        # A space would be lost in the split of the request: the server reads no char as " ".
        answer = self._ask(f"set {task} {char}".rstrip())
        if answer != b"ok":
            raise RuntimeError(answer.decode())

    def read(self) -> bytes:
        length = int(self._ask("read"))
        return self.stream.read(length)

    def close(self) -> None:
        self.stream.close()
        self.socket.close()


class Server(Design):
    fsync = False
    readers = ("read request loop",)

    def __init__(self) -> None:
        self.servers: dict[Path, subprocess.Popen[bytes]] = {}

    def setup(self, root: Path, lay: Layout) -> None:
        (root / "tasks.md").write_bytes(lay.index)
        command = [python(), "-m", "approaches.server", str(root)]
        process = subprocess.Popen(
            command + (["--fsync"] if self.fsync else []),
            stdout=subprocess.PIPE,
            env=child_env(),
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            process.kill()
            raise RuntimeError("the server did not start")
        self.servers[root] = process

    def open(self, root: Path) -> Backend:
        return Client(root)

    def final(self, root: Path) -> bytes:
        return (root / "tasks.md").read_bytes()

    def stop(self, root: Path) -> None:
        process = self.servers.pop(root)
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), "--fsync" in sys.argv[2:])
