"""Shared fixtures: a sealed environment and real repositories in ``tmp_path``."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pygit2
import pytest
from hypothesis import HealthCheck, settings

from tasksync import Status, TaskId, TaskStore

settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "deep", max_examples=100_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ref-backend",
        choices=("libgit2", "git"),
        default="libgit2",
        help="git: move every ref of the repositories tests open (in this process) through "
        "the git CLI, as for a reftable repository (see tasksync/store/refs.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--ref-backend") == "git":
        from tasksync.store import refs

        refs.FORCE_GIT_REFS = True


# Every checkbox character of FORMAT.md and the status it reads as.
CHECKBOXES = [
    (" ", Status.TODO),
    ("+", Status.IN_PROGRESS),
    ("-", Status.IN_REVIEW),
    ("x", Status.DONE),
    ("X", Status.DONE),
    ("~", Status.BLOCKED),
    ("!", Status.CLOSED),
]

# Id input forms of FORMAT.md and the id each one reads as.
ID_FORMS = [
    ("1", TaskId(1)),
    ("01", TaskId(1)),
    ("001", TaskId(1)),
    ("#1", TaskId(1)),
    ("#001", TaskId(1)),
    ("157", TaskId(157)),
    ("#157", TaskId(157)),
    ("md#157", TaskId(157, "md#")),
    ("md#1", TaskId(1, "md#")),
    ("task#157", TaskId(157)),
    ("task#001", TaskId(1)),
    ("#1042", TaskId(1042)),
]

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_AUTHOR_DATE": "@1700000000 +0000",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_COMMITTER_DATE": "@1700000000 +0000",
}


@pytest.fixture(autouse=True)
def hermetic_seal(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """No user or system git config, a pinned identity and date, an empty HOME."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(("GIT_", "TASKSYNC_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("EDITOR", "false")
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    levels = (
        pygit2.enums.ConfigLevel.GLOBAL,
        pygit2.enums.ConfigLevel.XDG,
        pygit2.enums.ConfigLevel.SYSTEM,
        pygit2.enums.ConfigLevel.PROGRAMDATA,
    )
    saved = {level: pygit2.settings.search_path[level] for level in levels}
    for level in levels:
        pygit2.settings.search_path[level] = str(home)
    yield
    for level, value in saved.items():
        pygit2.settings.search_path[level] = value


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run the real git CLI and return its stdout."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A non-bare repository with one commit on its main branch."""
    path = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    git(path, "commit", "-q", "--allow-empty", "-m", "first")
    return path


@pytest.fixture
def worktree(repo: Path) -> Path:
    """A linked worktree of ``repo`` on its own branch."""
    path = repo.parent / "session"
    git(repo, "worktree", "add", "-q", "-b", "session", str(path))
    return path


@pytest.fixture
def store(repo: Path) -> TaskStore:
    """An initialized task store in ``repo``."""
    opened = TaskStore.open(repo)
    opened.init()
    return opened


def tasks_md(path: Path, ref: str = "refs/tasks/main") -> str:
    """``process/tasks.md`` on the ref, read with the git CLI (not through tasksync)."""
    return git(path, "show", f"{ref}:process/tasks.md")


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run :func:`tasksync.cli.main` and return its exit code, stdout and stderr."""
    from tasksync.cli import main

    with pytest.raises(SystemExit) as caught:
        main(list(args))
    captured = capsys.readouterr()
    code = caught.value.code
    assert isinstance(code, int)
    return code, captured.out, captured.err


# -- a git daemon on 127.0.0.1 --------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the kernel's pick, closed again)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GitDaemon:
    """A ``git daemon`` serving every repository under ``base`` at ``url`` (pushes allowed).

    URLs under it are network URLs, so clones of them are not session clones of a hub.
    """

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.base = base
        self.port = port or free_port()
        self.url = f"git://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 10.0) -> None:
        """Start the daemon and return once its port accepts connections."""
        import socket
        import time

        assert self.process is None, "the daemon is already running"
        log = (self.base.parent / f"daemon-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                f"--base-path={self.base}",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + wait
        while True:
            if self.process.poll() is not None:
                self.process = None
                raise AssertionError(f"git daemon exited at start; see {log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() >= deadline:
                    self.stop()
                    raise AssertionError(
                        f"git daemon never accepted connections on port {self.port} "
                        f"within {wait:g} s"
                    ) from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Terminate the daemon (if running) and wait for it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def bare(self, name: str) -> tuple[Path, str]:
        """A new empty bare repository ``name.git`` under the daemon: its path and its URL."""
        path = self.base / f"{name}.git"
        git(self.base, "init", "-q", "--bare", "-b", "main", str(path))
        return path, f"{self.url}{name}.git"


@pytest.fixture
def git_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitDaemon]:
    """A running ``git daemon``: ``.base`` the directory it serves, ``.url`` the URL prefix
    (``git://127.0.0.1:PORT/``); ``.bare(name)`` makes a repository there. Stopped at the end."""
    daemon = GitDaemon(tmp_path_factory.mktemp("daemon") / "served")
    daemon.base.mkdir()
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """This interpreter's ``git-tasks`` first on PATH, so git (hooks, merge drivers) finds
    ``git tasks``."""
    import sys

    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "git-tasks").exists()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def bare_with_main(root: Path, name: str) -> Path:
    """A bare repository ``root/name`` with one commit on main and no tasks ref."""
    path = root / name
    git(root, "init", "-q", "--bare", "-b", "main", str(path))
    seed = root / f"{name}-seed"
    git(root, "clone", "-q", str(path), str(seed))
    git(seed, "commit", "-q", "--allow-empty", "-m", "first")
    git(seed, "push", "-q", "origin", "main")
    return path


def in_threads(work: Callable[[int], object], count: int) -> list[BaseException]:
    """Run ``work(0)`` to ``work(count - 1)``, each in a thread of its own, released together
    once all have started; the exceptions they raised (an empty list when none did)."""
    go = threading.Barrier(count)
    errors: list[BaseException] = []

    def guarded(number: int) -> None:
        go.wait()
        try:
            work(number)
        except BaseException as error:  # returned to the test, not swallowed
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


# -- git's lock on the tasks ref, held by a real process ------------------------------------------


def update_ref_stdin(cwd: Path, *lines: str) -> subprocess.Popen[str]:
    """A ``git update-ref --stdin`` told ``lines``, once it has answered each ``start`` and
    ``prepare`` among them; it waits for more."""
    proc = subprocess.Popen(
        ["git", "update-ref", "--stdin"],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("".join(f"{line}\n" for line in lines))
    proc.stdin.flush()
    for line in lines:
        if line in ("start", "prepare"):
            assert proc.stdout.readline() == f"{line}: ok\n"
    return proc


def hold_ref_lock(cwd: Path, command: str) -> subprocess.Popen[str]:
    """A ``git update-ref --stdin`` that holds the ref lock after ``prepare`` of ``command``
    (an ``update`` or ``create`` line), waiting for ``commit``."""
    return update_ref_stdin(cwd, "start", command, "prepare")


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL, then reap, so the process is gone as a crashed one is."""
    proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def commit_held(proc: subprocess.Popen[str]) -> None:
    """Let a :func:`hold_ref_lock` process commit its transaction and exit."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("commit\n")
    proc.stdin.close()
    assert proc.stdout.readline() == "commit: ok\n"
    assert proc.wait(timeout=10) == 0
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def wait_until_older(path: Path, seconds: float) -> None:
    """Return once the file's last write is at least ``seconds`` old (a handshake on the file's
    own time, not a guess at how long anything takes)."""
    while time.time() - path.stat().st_mtime < seconds:
        time.sleep(0.02)
