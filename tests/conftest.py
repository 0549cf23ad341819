"""Shared fixtures: a sealed environment and real repositories in ``tmp_path``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
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
