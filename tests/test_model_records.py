"""The model registry and the retraining cycle log, the same through both backends: the
home's SQLite file and a real PostgreSQL server (replicas on several hosts). A promotion
made by one process is what every other one serves next; a reader never sees no adapter
live while promotions run; folders are found again from another home path; a cycle run
on PostgreSQL cleans up after a killed one, as on SQLite."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from finetune.cycles import CycleLog
from finetune.pipeline import GeneratorPaths
from finetune.registry import ModelRegistry, UnknownModelError
from retrieval.leftovers import WRITER_FILE
from tests.support.models import two_adapters

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgresql"])
def paths(request: pytest.FixtureRequest, tmp_path: Path) -> GeneratorPaths:
    """A home whose registry and cycle log are in its SQLite file, or in PostgreSQL (skipped
    where no PostgreSQL is installed)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    home = tmp_path / "home"
    home.mkdir()
    return GeneratorPaths.under(home, postgres_url=url)


@pytest.fixture
def registry(paths: GeneratorPaths) -> Iterator[ModelRegistry]:
    opened = ModelRegistry.open(paths)
    yield opened
    opened.close()


def test_registry_records_bases_adapters_and_the_live_one(
    registry: ModelRegistry, paths: GeneratorPaths
) -> None:
    base = registry.register_base(
        paths.base_models / "gpt-0001",
        source="bootstrap",
        model_ref=str(paths.base_models / "gpt-0001"),
        metrics={"loss": 2.5},
    )
    again = registry.register_base(
        paths.base_models / "gpt-0001", source="bootstrap", model_ref="ignored"
    )
    assert again == base and base.folder == paths.base_models / "gpt-0001"
    assert base.model_ref == str(paths.base_models / "gpt-0001") and base.metrics == {"loss": 2.5}
    hub = registry.register_base(
        Path("HuggingFaceTB/SmolLM2-135M"),
        source="pretrained",
        model_ref="HuggingFaceTB/SmolLM2-135M",
    )
    assert hub.folder == Path("HuggingFaceTB/SmolLM2-135M")  # a hub id, not a folder of ours
    assert registry.base(base.id) == base and registry.base(hub.id) == hub

    first = registry.register_adapter(paths.adapters / "v0001", base_id=base.id)
    second = registry.register_adapter(
        paths.adapters / "v0002", base_id=base.id, parent_id=first.id, metrics={"eval": []}
    )
    assert (second.folder, second.parent_id, second.base_id) == (
        paths.adapters / "v0002",
        first.id,
        base.id,
    )
    merged = registry.add_metrics(second.id, {"gate": {"candidate": {"x": 0.5}}})
    assert merged.metrics == {"eval": [], "gate": {"candidate": {"x": 0.5}}}
    assert registry.live_adapter() is None
    registry.promote(first.id)
    registry.promote(second.id)
    assert registry.live_adapter() == registry.adapter(second.id)
    assert [a.id for a in registry.adapters()] == [first.id, second.id]
    with pytest.raises(UnknownModelError):
        registry.promote(999)
    with pytest.raises(UnknownModelError):
        registry.adapter(999)
    with pytest.raises(UnknownModelError):
        registry.base(999)
    assert registry.live_adapter() == registry.adapter(second.id)  # a failed promotion: unchanged


def test_cycle_log_records_cycles_and_rollbacks(paths: GeneratorPaths) -> None:
    log = CycleLog.open(paths)
    try:
        cycle = log.start(owner="pid 1 on a", live_adapter_id=None, data={"approved": 3})
        log.set_candidate(cycle, 7)
        log.add_figures(cycle, {"embedder": {"status": "kept"}})
        done = log.finish(cycle, status="kept", reason="worse", figures={"tolerance": 0.02})
        assert (done.status, done.reason, done.candidate_adapter_id) == ("kept", "worse", 7)
        assert done.figures == {"embedder": {"status": "kept"}, "tolerance": 0.02}
        assert done.data == {"approved": 3} and done.finished_at is not None
        rollback = log.record_rollback(from_id=7, to_id=6, reason="rolled back")
        assert (rollback.kind, rollback.status) == ("rollback", "rolled_back")
        killed = log.start(owner="pid 2 on b", live_adapter_id=6, data={})
        assert [c.id for c in log.cycles()] == [killed, rollback.id, cycle]  # newest first
        assert log.abandon_running() == [killed]
        assert log.cycle(killed).status == "abandoned" and log.abandon_running() == []
        with pytest.raises(LookupError):
            log.cycle(999)
    finally:
        log.close()


PROMOTE = """
import sys
from pathlib import Path
from finetune.pipeline import GeneratorPaths
from finetune.registry import ModelRegistry


home, url, adapter_id = Path(sys.argv[1]), sys.argv[2] or None, int(sys.argv[3])
registry = ModelRegistry.open(GeneratorPaths.under(home, postgres_url=url))
registry.promote(adapter_id)
print(registry.live_adapter().folder)
registry.close()
"""


def test_a_promotion_by_another_process_is_what_this_one_reads_next(
    registry: ModelRegistry, paths: GeneratorPaths
) -> None:
    first, second = two_adapters(registry, paths)
    registry.promote(first)
    child = subprocess.run(
        [sys.executable, "-c", PROMOTE, str(paths.home), paths.postgres_url or "", str(second)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == str(paths.adapters / "v0002")
    live = registry.live_adapter()  # the connection this process held all along
    assert live is not None and live.id == second


def test_a_reader_never_sees_no_adapter_live_while_promotions_run(
    registry: ModelRegistry, paths: GeneratorPaths
) -> None:
    first, second = two_adapters(registry, paths)
    registry.promote(first)
    seen: set[int | None] = set()
    stop = threading.Event()

    def read() -> None:
        reader = ModelRegistry.open(paths)  # another connection, as another replica's
        try:
            while not stop.is_set():
                live = reader.live_adapter()
                seen.add(None if live is None else live.id)
        finally:
            reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(60):
            registry.promote(second if n % 2 == 0 else first)
    finally:
        stop.set()
        thread.join()
    assert None not in seen and seen <= {first, second}


def test_a_folder_is_found_from_another_home_path(paths: GeneratorPaths, tmp_path: Path) -> None:
    """A replica names the shared home its own way (here: through a link); a job may have
    been given the home relative to its working directory. Both databases record a folder
    relative to the home (SQLite too, since finetune_0002), so a home can also move."""
    link = tmp_path / "mounted-elsewhere"
    link.symlink_to(paths.home)
    writer = ModelRegistry.open(paths)
    try:
        first, _ = two_adapters(writer, paths)
        writer.promote(first)
    finally:
        writer.close()
    elsewhere = GeneratorPaths.under(link, postgres_url=paths.postgres_url)
    reader = ModelRegistry.open(elsewhere)
    try:
        live = reader.live_adapter()
        base = reader.base(live.base_id) if live is not None else None
    finally:
        reader.close()
    assert live is not None and base is not None
    assert (live.folder / "..").resolve() == paths.adapters.resolve()  # the same folder
    assert live.folder == elsewhere.adapters / "v0001"  # under the reader's own home
    assert base.model_ref == str(elsewhere.base_models / "gpt-0001")

    # A job started in the home's parent with a relative home records the same folder.
    cwd = os.getcwd()
    os.chdir(paths.home.parent)
    try:
        relative = GeneratorPaths.under(Path("home"), postgres_url=paths.postgres_url)
        job = ModelRegistry.open(relative)
        try:
            third = job.register_adapter(relative.adapters / "v0003", base_id=base.id)
        finally:
            job.close()
    finally:
        os.chdir(cwd)
    reader = ModelRegistry.open(elsewhere)
    try:
        found = reader.adapter(third.id).folder
    finally:
        reader.close()
    assert found == elsewhere.adapters / "v0003"


def _dead_writer() -> dict[str, Any]:
    """A writer marker naming this pid with another start time: a process now gone."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "start": "1"}


def test_a_cycle_marks_a_killed_one_and_removes_only_its_unrecorded_folder(
    paths: GeneratorPaths,
) -> None:
    """run_cycle on either backend: the killed cycle's record is marked abandoned, the
    folder it published but never recorded goes, recorded folders stay, and the new
    candidate is promoted where every replica reads it."""
    from finetune.config import GeneratorConfig
    from finetune.retrain import RetrainPolicy, TrainJob, run_cycle
    from tests.support.finetune_fakes import InMemoryRetriever, toy_conversations

    registry = ModelRegistry.open(paths)
    try:
        first, _ = two_adapters(registry, paths)
        registry.promote(first)
    finally:
        registry.close()
    for name in ("v0001", "v0002"):
        (paths.adapters / name).mkdir(parents=True)
        (paths.adapters / name / WRITER_FILE).write_text(json.dumps(_dead_writer()))
    orphan = paths.adapters / "v0003"
    orphan.mkdir()
    (orphan / WRITER_FILE).write_text(json.dumps(_dead_writer()))
    log = CycleLog.open(paths)
    try:
        killed = log.start(owner="pid 1 on gone", live_adapter_id=first, data={})
    finally:
        log.close()

    def train(job: TrainJob) -> Any:
        folder = job.paths.adapters / "v0004"
        folder.mkdir()
        trained = ModelRegistry.open(job.paths)
        try:
            assert job.live is not None
            return trained.register_adapter(folder, base_id=job.live.base_id, parent_id=first)
        finally:
            trained.close()

    def evaluate(adapter: Any, gate: Any) -> dict[str, float]:
        return {"held_out_rouge_l": 0.9 if adapter.folder.name == "v0004" else 0.1}

    logs = toy_conversations(repeats=2)
    report = run_cycle(
        logs=logs,
        feedback=[],
        retriever=InMemoryRetriever(logs),
        config=GeneratorConfig(),
        policy=RetrainPolicy(budget_minutes=0.1),
        paths=paths,
        train=train,
        evaluate=evaluate,
        progress=False,
    )
    assert report.record.status == "promoted"
    assert report.record.data["abandoned_adapters_removed"] == 1
    assert sorted(p.name for p in paths.adapters.iterdir()) == ["v0001", "v0002", "v0004"]
    other_replica = replace(paths, database=paths.home / "elsewhere.db")  # its own SQLite
    log = CycleLog.open(other_replica)
    registry = ModelRegistry.open(other_replica)
    try:
        if paths.postgres_url is not None:  # the other replica shares only PostgreSQL
            statuses = [(c.id, c.status) for c in log.cycles()]
            assert statuses == [(report.record.id, "promoted"), (killed, "abandoned")]
            live = registry.live_adapter()
            assert live is not None and live.folder.name == "v0004"
        else:
            assert log.cycles() == [] and registry.live_adapter() is None
    finally:
        log.close()
        registry.close()
