"""The Airflow child's event file: the reader never sees half a line."""

from __future__ import annotations

from pathlib import Path

from forest_mlops.demo.events import EventReader, EventWriter


def test_reader_returns_each_event_once_and_waits_for_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    reader = EventReader(path)
    assert list(reader.new_events()) == []  # no file yet
    writer = EventWriter(path)
    writer.emit("airflow_ready", seconds=1.5)
    writer.emit("collection", run=1, batches=[])
    assert [e["event"] for e in reader.new_events()] == ["airflow_ready", "collection"]
    assert list(reader.new_events()) == []
    with path.open("a") as stream:
        stream.write('{"event": "training_st')  # the child is mid-write
    assert list(reader.new_events()) == []
    with path.open("a") as stream:
        stream.write('art"}\n')
    assert list(reader.new_events()) == [{"event": "training_start"}]
