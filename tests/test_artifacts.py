"""Version folders: published whole, and only abandoned temporaries cleaned up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.artifacts import (
    list_versions,
    remove_stale_temporaries,
    staged_version,
    write_json,
)
from retrieval.processes import this_process


def _temporary(root: Path, name: str, writer: dict[str, object] | None) -> Path:
    folder = root / f".tmp-{name}"
    folder.mkdir(parents=True)
    (folder / "index.faiss").write_bytes(b"half written")
    if writer is not None:
        (folder / ".writer.json").write_text(json.dumps(writer), encoding="utf-8")
    return folder


def _dead_process() -> dict[str, object]:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return {"pid": child.pid, "host": socket.gethostname(), "start": ""}


def test_a_published_version_is_whole_and_names_no_writer(tmp_path: Path) -> None:
    with staged_version(tmp_path) as staged:
        (staged.path / "index.faiss").write_bytes(b"vectors")
        assert (staged.path / ".writer.json").is_file()  # while it is being written
    assert staged.final is not None and list_versions(tmp_path) == [staged.final]
    assert sorted(p.name for p in staged.final.iterdir()) == ["index.faiss"]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), staged_version(tmp_path):
        raise RuntimeError("disk on fire")
    assert list(tmp_path.iterdir()) == []


def test_only_abandoned_temporaries_are_removed(tmp_path: Path) -> None:
    me = this_process()
    live = _temporary(tmp_path, "live", {"pid": me.pid, "host": me.host, "start": me.start})
    dead = _temporary(tmp_path, "dead", _dead_process())
    elsewhere = {"pid": 1, "host": "another-host.internal", "start": "1"}
    remote_fresh = _temporary(tmp_path, "remote-fresh", elsewhere)
    remote_old = _temporary(tmp_path, "remote-old", elsewhere)
    unnamed_old = _temporary(tmp_path, "unnamed-old", None)
    unnamed_fresh = _temporary(tmp_path, "unnamed-fresh", None)
    two_hours_ago = time.time() - 7200
    for folder in (remote_old, unnamed_old):
        os.utime(folder, (two_hours_ago, two_hours_ago))

    assert remove_stale_temporaries(tmp_path, abandoned_after_s=3600) == 3
    # A job still writing, here or on another host sharing the folder, keeps its folder.
    assert live.is_dir() and remote_fresh.is_dir() and unnamed_fresh.is_dir()
    assert not dead.exists() and not remote_old.exists() and not unnamed_old.exists()


def test_writers_of_one_json_file_at_once_each_leave_it_whole(tmp_path: Path) -> None:
    """An operator choosing the hand-off target while `calibrate` saves (or two replicas
    sharing indexes/): with one fixed temporary name, one writer's rename took the file
    the other was still writing, or found it gone."""
    import threading

    path = tmp_path / "calibration.json"
    failures: list[BaseException] = []

    def write(name: str) -> None:
        try:
            for n in range(200):
                write_json(path, {"writer": name, "n": n, "padding": "x" * 4096})
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["writer"] in {"a", "b", "c"} and saved["n"] == 199
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]
