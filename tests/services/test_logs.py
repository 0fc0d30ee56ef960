"""The log files themselves: rotation, partial lines, following across a rotation."""

from __future__ import annotations

from pathlib import Path

from branchyard.services.logs import Follower, LineSplitter, LogWriter, read_lines


def test_rotation_keeps_the_newest_lines_within_the_bound(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "web.log", max_bytes=1000, files=3)
    for i in range(200):
        writer.write("out", f"line {i:03d}", when=1000.0 + i)
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web.log", "web.log.1", "web.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    lines = read_lines(tmp_path, ["web"], files=3)
    assert [line.text for line in lines] == [f"line {i:03d}" for i in range(200 - len(lines),
                                                                           200)]
    assert [line.text for line in read_lines(tmp_path, ["web"], last=2)] == ["line 198",
                                                                             "line 199"]
    assert [line.time for line in read_lines(tmp_path, ["web"], since=1198.0)] == [1198.0,
                                                                                  1199.0]


def test_services_merge_by_time(tmp_path: Path) -> None:
    web, api = LogWriter(tmp_path / "web.log", 10_000, 3), LogWriter(tmp_path / "api.log",
                                                                      10_000, 3)
    web.write("out", "w1", when=1.0)
    api.write("err", "a1", when=2.0)
    web.write("supervisor", "w2", when=3.0)
    got = [(x.service, x.stream, x.text) for x in read_lines(tmp_path, ["web", "api"])]
    assert got == [("web", "out", "w1"), ("api", "err", "a1"), ("web", "supervisor", "w2")]


def test_partial_lines_wait_for_their_end() -> None:
    split = LineSplitter()
    assert split.feed(b"hel") == []
    assert split.feed(b"lo\r\nwor") == ["hello"]
    assert split.feed("ld \u00e9\n".encode()) == ["world \u00e9"]
    assert split.feed(b"tail") == []
    assert split.flush() == ["tail"]


def test_follow_reads_on_across_a_rotation(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "web.log", max_bytes=300, files=2)
    writer.write("out", "before following")
    follower = Follower(tmp_path / "web.log", "web")
    assert follower.poll() == []  # starts at the end
    texts: list[str] = []
    for i in range(20):  # several rotations
        writer.write("out", f"line {i:02d} " + "x" * 30)
        texts += [line.text.split()[1] for line in follower.poll()]
    assert texts == [f"{i:02d}" for i in range(20)]
    follower.close()
    writer.close()
