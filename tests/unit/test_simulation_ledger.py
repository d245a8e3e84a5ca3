"""The simulation's ledger (local/simulation_ledger.py) and its command line: a line per seed as it finishes, a
resumed run skips what the ledger holds, a ledger of other code is refused, the summary reads the file alone.
The seeds here are stand-ins (no moto): the runner is replaced by one that reports made-up results."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest

from local import simulation
from local import simulation_ledger as ledgers
from local.simulation_ledger import Ledger, LedgerError

CODE = {"commit": "a" * 40, "dirty": False, "changes": None}
OPTIONS = {"chaos": {"replay": 0.02}}


def report(seed: int, *violations: str) -> simulation.Report:
    made = simulation.Report(seed, [simulation.Violation(v) for v in violations], [],
                             orders=Counter({"CONFIRMED": 2}), faults=Counter({"crash": seed % 3}), seconds=1.5,
                             paths=Counter({"redrive handler": 1}))
    made.digest = f"digest-{seed}-{len(violations)}"
    return made


@pytest.fixture
def fake_runs(monkeypatch):
    """run_seeds replaced: every seed asked for is reported at once (and noted); the code is commit CODE."""
    asked: list[list[int]] = []

    def run_seeds(seeds, jobs, on_report):
        asked.append(list(seeds))
        for seed in seeds:
            on_report(report(seed, *(["money: provider holds 100, kept orders are worth 0"] if seed == 3 else [])))

    monkeypatch.setattr(simulation, "run_seeds", run_seeds)
    monkeypatch.setattr(ledgers, "code_version", lambda root, leave_out=(): dict(CODE))
    return asked


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_seed_is_on_disk_as_soon_as_it_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setattr(ledgers, "code_version", lambda root, leave_out=(): dict(CODE))
    seen_on_disk: list[list[int]] = []

    def run_seeds(seeds, jobs, on_report):
        for seed in seeds:
            on_report(report(seed))
            seen_on_disk.append([line["seed"] for line in lines(path)[1:]])  # read by another process's eyes

    monkeypatch.setattr(simulation, "run_seeds", run_seeds)
    assert simulation.main(["--seeds", "3", "--first", "10", "--ledger", str(path)]) == 0
    assert seen_on_disk == [[10], [10, 11], [10, 11, 12]]
    head, *entries = lines(path)
    assert head["commit"] == CODE["commit"] and head["seeds"] == [10, 3] and head["options"]["chaos"]
    assert entries[1] == {"seed": 11, "violations": [], "orders": {"CONFIRMED": 2}, "faults": {"crash": 2},
                          "paths": {"redrive handler": 1}, "erased": 0, "seconds": 1.5, "digest": "digest-11-0"}


def test_a_resumed_run_skips_the_seeds_the_ledger_holds(tmp_path, fake_runs, monkeypatch, capsys):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path, ledgers.header(CODE, simulation_options(), 0, 6)) as ledger:
        for seed in (0, 1, 4):
            ledger.record(report(seed))
    code = simulation.main(["--seeds", "6", "--ledger", str(path)])
    assert fake_runs == [[2, 3, 5]]
    assert sorted(line["seed"] for line in lines(path)[1:]) == [0, 1, 2, 3, 4, 5]
    assert code == 1  # seed 3 failed: the ledger's summary decides
    assert "seed 3: VIOLATION money" in capsys.readouterr().out
    simulation.main(["--seeds", "6", "--ledger", str(path)])  # all done: nothing runs again
    assert fake_runs[-1] == [2, 3, 5] and len(lines(path)) == 7


def simulation_options():
    from dataclasses import asdict

    return {"chaos": asdict(simulation.Chaos())}


def test_a_run_killed_while_writing_a_line_loses_only_that_seed(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path, ledgers.header(CODE, OPTIONS, 0, 4)) as ledger:
        ledger.record(report(0))
        ledger.record(report(1))
    whole = path.read_bytes()
    path.write_bytes(whole[:-20])  # the kill came in the middle of seed 1's line
    with Ledger(path, ledgers.header(CODE, OPTIONS, 0, 4)) as ledger:
        assert ledger.done == {0}
        ledger.record(report(1))
    assert [line["seed"] for line in lines(path)[1:]] == [0, 1]


@pytest.mark.parametrize(("other", "named"), [
    ({"code": {**CODE, "commit": "b" * 40}}, "commit: ledger aaaaaaaaaaaa, this run bbbbbbbbbbbb"),
    ({"code": {**CODE, "dirty": True, "changes": "c" * 64}}, "changes: ledger a clean tree"),
    ({"options": {"chaos": {"replay": 0.5}}}, "options"),
    ({"first": 100}, "seeds"),
])
def test_a_ledger_of_other_code_or_options_is_refused(tmp_path, other, named):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path, ledgers.header(CODE, OPTIONS, 0, 4)) as ledger:
        ledger.record(report(0))
    before = path.read_bytes()
    wanted = ledgers.header(other.get("code", CODE), other.get("options", OPTIONS), other.get("first", 0), 4)
    with pytest.raises(LedgerError, match="written by another run") as refused:
        Ledger(path, wanted)
    assert named in str(refused.value)
    assert path.read_bytes() == before


def test_the_command_line_refuses_a_ledger_of_another_commit_and_runs_nothing(tmp_path, fake_runs, monkeypatch,
                                                                              capsys):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path, ledgers.header({**CODE, "commit": "b" * 40}, simulation_options(), 0, 5)):
        pass
    assert simulation.main(["--seeds", "5", "--ledger", str(path)]) == 2
    assert fake_runs == []
    assert "refused" in capsys.readouterr().err


def test_two_runs_cannot_write_one_ledger(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path, ledgers.header(CODE, OPTIONS, 0, 4)), pytest.raises(LedgerError, match="another run"):
        Ledger(path, ledgers.header(CODE, OPTIONS, 0, 4))


def test_the_summary_reads_the_ledger_alone(tmp_path, capsys):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path, ledgers.header(CODE, OPTIONS, 0, 10)) as ledger:
        for seed in (0, 1, 2, 5, 8):
            ledger.record(report(seed, *(["stock: sold 3 but kept orders bought 2"] if seed == 5 else [])))
    assert simulation.main(["--summarise", str(path)]) == 1
    out = capsys.readouterr().out
    assert "5 of 10 seeds done; missing 5: 3-4, 6-7, 9" in out
    assert "1 with violations [5]" in out
    assert "seed 5: VIOLATION stock: sold 3 but kept orders bought 2" in out
    assert "'CONFIRMED': 10" in out  # totals over the seeds done
    summary = ledgers.summarise(path)
    assert (summary.missing, summary.failed, summary.code) == ([3, 4, 6, 7, 9], [5], 1)


def test_the_summary_of_a_finished_clean_ledger_passes_and_of_an_unfinished_one_does_not(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path, ledgers.header(CODE, OPTIONS, 0, 3)) as ledger:
        ledger.record(report(0))
        ledger.record(report(1))
        assert simulation.main(["--summarise", str(path)]) == 3
        ledger.record(report(2))
    assert simulation.main(["--summarise", str(path)]) == 0


def test_a_seed_recorded_twice_with_different_outcomes_fails_the_summary(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path, ledgers.header(CODE, OPTIONS, 0, 1)) as ledger:
        ledger.record(report(0))
        again = report(0)
        again.digest = "something else"
        ledger.record(again)
    summary = ledgers.summarise(path)
    assert summary.inconsistent == [0] and summary.code == 1


def test_ranges():
    assert ledgers.ranges([]) == []
    assert ledgers.ranges([1, 2, 3, 7, 9, 10]) == ["1-3", "7", "9-10"]


def test_the_code_version_is_the_commit_and_what_differs_from_it(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "one")
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("{}\n")
    clean = ledgers.code_version(tmp_path, leave_out=[ledger])
    assert clean["dirty"] is False and len(clean["commit"]) == 40
    (tmp_path / "a.py").write_text("x = 2\n")
    changed = ledgers.code_version(tmp_path, leave_out=[ledger])
    (tmp_path / "b.py").write_text("y = 1\n")
    added = ledgers.code_version(tmp_path, leave_out=[ledger])
    assert changed["commit"] == clean["commit"] and changed["dirty"]
    assert len({clean["changes"], changed["changes"], added["changes"]}) == 3
    with pytest.raises(LedgerError, match="not a git checkout"):
        ledgers.code_version(tmp_path / "nowhere")
