"""Every command that writes checks its destination before the work: a bad one is one line naming
the path and what is wrong with it, exit 2, and nothing is loaded, sampled or computed first.
Writes go to a temporary file renamed into place, so a full disk leaves no partial output. The disk
tests mount a real, tiny tmpfs (as root) and skip, saying why, where that is refused."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess

import pytest

from ganforge.cli.main import describe_os_error, main
from ganforge.errors import UsageError
from ganforge.run.destination import check_output_file, check_run_folder, replacing

SMALL = ["--data", "ring8", "--threads", "1", "--set", "gen.hidden=16", "--set", "disc.hidden=16",
         "--sample-every", "0"]
WRITERS = {"sample": ("-o", ".npy"), "eval": ("--json", ".json"), "export": ("-o", ".pt2")}


def one_line_error(code: int, err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (code, err)
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Loading a run, evaluating or building a Trainer fails the test: the check comes first."""
    import ganforge.metrics.evaluate
    import ganforge.train.restore
    import ganforge.train.trainer

    def work(*args, **kwargs):
        raise AssertionError("the command started its work before checking its destination")

    monkeypatch.setattr(ganforge.train.restore, "load_run", work)
    monkeypatch.setattr(ganforge.metrics.evaluate, "evaluate", work)
    monkeypatch.setattr(ganforge.train.trainer, "Trainer", work)


def bad_files(tmp_path, suffix):
    """(kind, path, words the message must hold) for an output file with ``suffix``."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / f"folder{suffix}").mkdir()
    deep = "/".join(["d" * 200] * 21)
    return [
        ("a file in the middle", tmp_path / "afile" / f"x{suffix}", "afile is a file, not a folder"),
        ("a file deeper in the middle", tmp_path / "afile" / "sub" / f"x{suffix}", "afile is a file, not a folder"),
        ("an existing folder", tmp_path / f"folder{suffix}", "is a folder; give a file name such as"),
        ("a folder that takes no files", f"/proc/x{suffix}", "/proc does not accept new files"),
        ("a folder that cannot be created", f"/proc/new/x{suffix}", "cannot create the folder /proc/new"),
        ("a name too long", tmp_path / ("n" * 300 + suffix), "is too long (3"),
        ("a path too long", tmp_path / deep / f"x{suffix}", "the path is too long"),
        ("a NUL in the name", f"{tmp_path}/x\0y{suffix}", "NUL character"),
    ]


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_a_bad_output_file_is_one_line_before_any_work(command, tmp_path, capsys, no_work):
    option, suffix = WRITERS[command]
    for kind, path, words in bad_files(tmp_path, suffix):
        code = main([command, str(tmp_path / "run"), option, str(path)])
        line = one_line_error(code, capsys.readouterr().err)
        assert words in line and f"{option} " in line, (kind, line)


@pytest.mark.parametrize("command, path", [("sample", "x.txt"), ("sample", "x"), ("export", "g.pt")])
def test_a_wrong_suffix_is_one_line_before_any_work(command, path, tmp_path, capsys, no_work):
    code = main([command, str(tmp_path / "run"), "-o", str(tmp_path / path)])
    line = one_line_error(code, capsys.readouterr().err)
    assert ".npy" in line if command == "sample" else ".pt2" in line


def test_a_bad_run_folder_is_one_line_before_any_work(tmp_path, capsys, no_work):
    (tmp_path / "afile").write_text("x")
    for path, words in [(tmp_path / "afile", "is a file, not a folder"),
                        (tmp_path / "afile" / "run", "afile is a file, not a folder"),
                        ("/proc/run", "cannot create the folder /proc/run"),
                        ("/proc", "/proc does not accept new files"),
                        (tmp_path / ("r" * 300), "is too long")]:
        code = main(["run", *SMALL, "--steps", "2", "--out", str(path)])
        line = one_line_error(code, capsys.readouterr().err)
        assert words in line and "--out " in line, line


def test_good_destinations_pass_and_create_nothing(tmp_path):
    assert check_output_file(tmp_path / "a" / "b" / "x.npy") == tmp_path / "a" / "b" / "x.npy"
    (tmp_path / "old.npy").write_text("replaced later")
    check_output_file(tmp_path / "old.npy")
    check_run_folder(tmp_path / "new" / "run")
    check_run_folder(None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npy"]  # no folder made, no probe left


def test_replacing_writes_whole_files_or_nothing(tmp_path):
    out = tmp_path / "sub" / "x.json"
    with replacing(out, "--json") as partial:
        assert partial.parent == out.parent and partial.suffix == ".json"
        partial.write_text("{}")
    assert out.read_text() == "{}" and os.listdir(out.parent) == ["x.json"]
    with pytest.raises(KeyboardInterrupt):  # a signal mid-write: the old file stays, no partial
        with replacing(out, "--json") as partial:
            partial.write_text('{"half')
            raise KeyboardInterrupt
    assert out.read_text() == "{}" and os.listdir(out.parent) == ["x.json"]
    with pytest.raises(UsageError, match=r"--json .*x.json: no space left.*free space or choose another --json"):
        with replacing(out, "--json"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(out.parent) == ["x.json"]


def test_an_io_error_the_commands_did_not_catch_says_what_happened():
    full = OSError(errno.ENOSPC, "No space left on device", "runs/r/checkpoints/x")
    assert describe_os_error(full, "run") == ("No space left on device (runs/r/checkpoints/x); free space or "
                                              "choose another --out. Earlier checkpoints are intact")
    read_only = describe_os_error(OSError(errno.EROFS, "Read-only file system", "r/samples"), "run")
    assert "read-only" in read_only and "Earlier checkpoints are intact" in read_only
    other = describe_os_error(OSError(errno.EIO, "Input/output error", "r/x"), "sample")
    assert other == "Input/output error (r/x)" and "checkpoint" not in other and "free space" not in other


# -- a real tmpfs: full and read-only ------------------------------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    assert main(["run", *SMALL, "--steps", "20", "--out", str(out)]) == 0
    return out


@pytest.fixture
def tiny_disk(mount_tmpfs):
    """A 64 KiB tmpfs."""
    return mount_tmpfs("64k")


def fill(disk, leave: int) -> None:
    """Fill ``disk`` until about ``leave`` bytes are free."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "ab") as filler:
        try:
            filler.write(b"\0" * max(free - leave, 0))
        except OSError:  # the last page: full is full
            pass


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(small_run, tiny_disk, capsys):
    fill(tiny_disk, 12 * 1024)  # room for a probe, not for the outputs
    for args, words in [(["export", str(small_run), "-o", str(tiny_disk / "g.pt2")], "no space left"),
                        (["sample", str(small_run), "-n", "5000", "-o", str(tiny_disk / "x.npy")], "no space left"),
                        (["sample", str(small_run), "-n", "200", "-o", str(tiny_disk / "x.png")], "no space left")]:
        code = main(args)
        line = one_line_error(code, capsys.readouterr().err)
        assert words in line and "free space" in line, line
        assert os.listdir(tiny_disk) == ["filler"], "a partial output was left on the full disk"
    fill(tiny_disk, 0)
    for args in (["eval", str(small_run), "--json", str(tiny_disk / "m.json")],
                 ["run", *SMALL, "--steps", "2", "--out", str(tiny_disk / "run")]):
        line = one_line_error(main(args), capsys.readouterr().err)
        assert "no space left" in line, line
    assert os.listdir(tiny_disk) == ["filler"]


def test_a_read_only_mount_is_one_line_before_any_work(tiny_disk, capsys, no_work):
    assert subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)]).returncode == 0
    for args in (["sample", "r", "-o", str(tiny_disk / "x.npy")], ["eval", "r", "--json", str(tiny_disk / "m.json")],
                 ["export", "r", "-o", str(tiny_disk / "g.pt2")], ["run", *SMALL, "--out", str(tiny_disk / "run")],
                 ["sample", "r", "-o", str(tiny_disk / "new" / "x.npy")]):
        line = one_line_error(main(args), capsys.readouterr().err)
        assert "is read-only" in line and str(tiny_disk) in line, line
