"""The study's progress board reads the step store: a step is running on the node its marker
names, done when its record is written; stale markers from an earlier run are not running."""

from __future__ import annotations

import io
import json
import logging
import os
import time

from rich.console import Console

from sublearn.flows.board import RUNNING, StepsBoard


def test_the_board_follows_steps_through_the_store(tmp_path, caplog):
    folders = [tmp_path / "finetune" / key for key in ("a", "b", "c")]
    for folder in folders:
        folder.mkdir(parents=True)
    stale = folders[2] / RUNNING  # left by an earlier run: must not show as running
    stale.write_text("old-node")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    plain = Console(file=io.StringIO(), force_terminal=False)
    labels = ["finetune student-seed0", "finetune neutral-seed0", "finetune student-seed1"]
    board = StepsBoard(
        list(zip(labels, folders, strict=True)),
        done_before=5,
        known_before=6,
        log=logging.getLogger("sublearn.test"),
        every_s=0.05,
        console=plain,
    )
    assert board.poll() == [] and (board.done, board.total) == (5, 9)

    (folders[0] / RUNNING).write_text("host/node-a")
    (folders[1] / RUNNING).write_text("host/node-b")
    assert board.poll() == [
        "[5/9] finetune student-seed0: running on host/node-a",
        "[5/9] finetune neutral-seed0: running on host/node-b",
    ]
    shown = Console(file=io.StringIO(), width=120)
    shown.print(board.table())
    rows = [line for line in shown.file.getvalue().splitlines() if "host/" in line]
    assert [row.replace("│", " ").split()[:3] for row in rows] == [
        ["finetune", "student-seed0", "host/node-a"],
        ["finetune", "neutral-seed0", "host/node-b"],
    ]

    (folders[0] / "record.json").write_text(json.dumps({"node": "host/node-a"}))
    assert board.poll() == ["[6/9] finetune student-seed0: done on host/node-a"]
    assert board.poll() == []  # nothing changed

    # on a thread while a phase runs: plain lines off a terminal
    with caplog.at_level(logging.INFO, logger="sublearn.test"), board:
        (folders[1] / "record.json").write_text(json.dumps({"node": "host/node-b"}))
        time.sleep(0.3)
    assert "[7/9] finetune neutral-seed0: done on host/node-b" in caplog.messages
    assert board.steps[2].state == "waiting"
