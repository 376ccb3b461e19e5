"""The spool: frames read back as written, a torn last frame ignored, nothing deleted before it
is committed, and a killed writer's segment drained and then removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vis_pipeline.spool import (
    DAMAGED_FOLDER,
    Spool,
    SpoolEntry,
    SpoolWriter,
    decode_frames,
    encode,
)


def entries(count: int, start: int = 0) -> list[SpoolEntry]:
    return [
        SpoolEntry(1_000 + i, b'{"id": %d, "note": "\xc3\xa9"}' % i, f"d-{i}", "184094")
        for i in range(start, start + count)
    ]


def test_frames_read_back_exactly_and_stop_at_a_torn_or_damaged_one() -> None:
    written = entries(3)
    data = b"".join(encode(entry) for entry in written)
    assert decode_frames(data, 100) == (written, len(data))
    # A frame cut anywhere is not read, and neither is anything after it.
    for cut in range(len(data) - len(encode(written[2])) + 1, len(data)):
        assert decode_frames(data[:cut], 100) == (written[:2], len(data) - len(encode(written[2])))
    damaged = bytearray(data)
    damaged[len(encode(written[0])) + 20] ^= 0xFF
    assert decode_frames(bytes(damaged), 100) == (written[:1], len(encode(written[0])))
    assert decode_frames(data, 2) == (written[:2], len(encode(written[0]) + encode(written[1])))


def test_pending_records_stay_until_committed_and_a_sealed_drained_segment_goes(
    tmp_path: Path,
) -> None:
    writer = SpoolWriter(tmp_path)
    spool = Spool(tmp_path)
    writer.append(entries(5))
    batch = spool.pending()
    assert batch.entries == entries(5)
    assert spool.pending().entries == entries(5)  # not committed: read again
    spool.commit(batch.ends)
    assert spool.pending().entries == []
    assert spool.pending_bytes() == 0
    # Held by its writer: committed, but kept (more may come).
    assert spool.purge().deleted == [] and len(spool.segments()) == 1
    writer.append(entries(2, 5))
    assert spool.pending().entries == entries(2, 5)
    writer.close()
    # Sealed with uncommitted records: kept.
    assert spool.purge().deleted == [] and len(spool.segments()) == 1
    spool.commit(spool.pending().ends)
    assert spool.purge().deleted == list(batch.ends)
    assert spool.segments() == [] and spool.committed() == {}


def test_a_writer_moves_to_a_new_segment_and_the_old_one_can_go(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=200)
    spool = Spool(tmp_path)
    for start in range(0, 12, 3):
        writer.append(entries(3, start))
    assert len(spool.segments()) == 4
    assert spool.pending().entries == entries(12)
    spool.commit(spool.pending().ends)
    # The three sealed segments go; the writer's current one stays.
    assert len(spool.purge().deleted) == 3
    assert len(spool.segments()) == 1
    writer.close()


def test_a_writer_killed_mid_write_leaves_a_torn_tail_that_is_ignored_then_set_aside(
    tmp_path: Path,
) -> None:
    # A writer process appends (and fsyncs) two batches, then a torn third record is on disk
    # when it dies: the state kill -9 in the middle of a write leaves.
    code = (
        "import sys, os, signal; from pathlib import Path; "
        "from vis_pipeline.spool import SpoolWriter, SpoolEntry, encode; "
        "w = SpoolWriter(Path(sys.argv[1])); "
        "w.append([SpoolEntry(1, b'{\"id\": 1}')]); w.append([SpoolEntry(2, b'{\"id\": 2}')]); "
        "torn = encode(SpoolEntry(3, b'{\"id\": 3}')); os.write(w._descriptor, torn[:9]); "
        "print('written', flush=True); signal.pause()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "written\n"
        spool = Spool(tmp_path)
        assert [e.body for e in spool.pending().entries] == [b'{"id": 1}', b'{"id": 2}']
        assert spool.purge().deleted == []  # its writer still holds it
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    batch = spool.pending()
    assert len(batch.entries) == 2
    assert spool.purge().set_aside == []  # sealed now, but not committed
    spool.commit(batch.ends)
    purged = spool.purge()
    # The torn tail was never acknowledged: the segment is set aside, not deleted.
    assert purged.set_aside == list(batch.ends) and purged.deleted == []
    assert (tmp_path / DAMAGED_FOLDER / purged.set_aside[0]).exists()
    assert spool.segments() == []


def test_only_one_drain_at_a_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with spool.drain_lock():
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="another drain"), Spool(tmp_path).drain_lock(0.1):
            pass
        assert time.monotonic() - started < 2
    with spool.drain_lock(0.1):
        pass
