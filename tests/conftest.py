"""Shared fixtures: a registry of the built-ins only, so installed plugins never change a test; a
small run's settings and a trainer wired to that registry; a loader of the scripts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from ganforge.plugins import build_registry, get_plugin_manager
from ganforge.registry import Registry

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def load_script():
    """A loader of ``scripts/NAME.py`` as a module (the scripts are not a package)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def plugin_manager():
    return get_plugin_manager(entry_points=False)


@pytest.fixture
def registry(plugin_manager) -> Registry:
    return build_registry(plugin_manager)


@pytest.fixture
def small_config(tmp_path):
    """A factory of seconds-long 2-D runs (ring8, small models, 30 steps) in ``tmp_path / "run"``.

    Keyword arguments replace the settings below; ``hidden`` sets both networks' hidden widths
    (``gen.hidden`` and ``disc.hidden``), and ``options`` replaces the options as a whole. Each
    call returns a new ``RunConfig``, so a test may change the one it got."""
    from ganforge import RunConfig

    def make(*, hidden: tuple[int, ...] = (32, 32), **overrides) -> RunConfig:
        settings = dict(data="ring8", loss="nonsat", steps=30, batch_size=32, z_dim=4, out=str(tmp_path / "run"),
                        log_every=5, sample_every=10, ckpt_every=10,
                        options={"gen": {"hidden": hidden}, "disc": {"hidden": hidden}})
        return RunConfig(**{**settings, **overrides})

    return make


@pytest.fixture
def tiny_points_config(small_config):
    """The small run as it is: ``small_config()``."""
    return small_config()


@pytest.fixture
def make_trainer(registry, plugin_manager):
    """``make_trainer(config)``: a ``Trainer`` on this test's ``registry`` and ``plugin_manager``."""
    from ganforge import Trainer

    def make(config):
        return Trainer(config, registry=registry, plugin_manager=plugin_manager)

    return make


@pytest.fixture
def mount_tmpfs(tmp_path):
    """``mount_tmpfs("64k")``: a real tmpfs of that size under ``tmp_path`` (a full disk or a
    read-only mount the code meets as it would in use), unmounted afterwards; the test skips,
    saying why, where this machine cannot mount one."""
    import os
    import shutil
    import subprocess

    mounted = []

    def mount(size: str):
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a tmpfs needs root and mount(8)")
        disk = tmp_path / f"disk{len(mounted)}"
        disk.mkdir()
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                              capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"this sandbox refuses to mount a tmpfs: {made.stderr.strip()}")
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL cluster in a temporary folder on a free local port (``ganforge tune``
    and ``ganforge sweep`` workers sharing one study); skipped, saying why, where it cannot start."""
    import glob
    import os
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    # Debian's package keeps the server's programs off PATH, in /usr/lib/postgresql/N/bin
    path = os.pathsep.join([os.environ.get("PATH", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"))])
    found = {b: shutil.which(b, path=path) for b in ("initdb", "pg_ctl", "postgres")}
    missing = [b for b, where in found.items() if where is None]
    if missing:
        pytest.skip(f"PostgreSQL's {', '.join(missing)} not found (Debian: apt-get install postgresql; "
                    f".ci/run installs it through tools/ensure_postgresql.sh)")
    initdb, pg_ctl = found["initdb"], found["pg_ctl"]
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver: pip install psycopg2-binary")
    import psycopg2

    root = Path(tempfile.mkdtemp(prefix="ganforge-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no 'postgres' user to run the server as")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port, data = _free_port(), root / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "ganforge", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    started = subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
                              "-o", f"-p {port} -k {root} -h 127.0.0.1", "start"], capture_output=True, text=True)
    if started.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {started.stderr.strip()[:300]}")
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="ganforge", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE tune")
        conn.close()
        yield f"postgresql+psycopg2://ganforge@127.0.0.1:{port}/tune"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
