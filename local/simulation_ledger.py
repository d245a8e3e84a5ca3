"""The seeded simulation's ledger: one JSON line per finished seed, so that a long run (10,000 seeds take
hours) can be stopped at any moment, carried on in another session, and summarised from the file alone.

    python -m local.simulation --seeds 10000 --ledger .sim/ledger-10k.jsonl    runs the seeds the ledger lacks
    python -m local.simulation --summarise .sim/ledger-10k.jsonl              what it holds, without running

The first line (the header) says what ran: the commit and a digest of any uncommitted changes, the versions
that shape the run (Python, moto, botocore), the simulation's options and the seeds meant. A ledger only takes
seeds from the same code and options: 10,000 seeds say something about one version of the code. Each other
line is one finished seed, written and flushed as soon as it is known: a run killed mid-way loses only the
seeds it was running.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import botocore

# moto is imported where its version is read (a ledger's header): `make simulate-summary` reads a ledger with this
# module and must not load it (~0.3 s).

FORMAT = 1
COMPARED = ("format", "commit", "changes", "versions", "options", "seeds")  # header fields a resume must match


class LedgerError(Exception):
    """The ledger cannot take this run (written by other code or options, or in use)."""


def code_version(root: Path, *, leave_out: Iterable[Path] = ()) -> dict[str, Any]:
    """The commit checked out at ``root``, whether the tree differs from it, and a digest of how (tracked
    changes and untracked files, except ``leave_out``: the ledger itself may live in the tree)."""

    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True).stdout

    try:
        commit = git("rev-parse", "HEAD").decode().strip()
    except (OSError, subprocess.CalledProcessError) as error:
        raise LedgerError(f"{root} is not a git checkout: a ledger records the commit it ran ({error})") from None
    top = Path(git("rev-parse", "--show-toplevel").decode().strip())
    skipped = {p.resolve() for p in leave_out}
    untracked = sorted(path for path in git("ls-files", "--others", "--exclude-standard", "-z").decode().split("\0")
                       if path and (top / path).resolve() not in skipped)
    diff = git("diff", "HEAD", "--binary")
    if not diff and not untracked:
        return {"commit": commit, "dirty": False, "changes": None}
    digest = hashlib.sha256(diff)
    for path in untracked:
        digest.update(path.encode() + b"\0")
        with contextlib.suppress(OSError):  # gone meanwhile, or a directory link
            digest.update((top / path).read_bytes())
    return {"commit": commit, "dirty": True, "changes": digest.hexdigest()}


def versions() -> dict[str, str]:
    """What shapes a run besides the code: the interpreter and the libraries standing in for AWS."""
    import moto

    return {"python": platform.python_version(), "moto": moto.__version__, "botocore": botocore.__version__}


def header(code: dict[str, Any], options: dict[str, Any], first: int, count: int) -> dict[str, Any]:
    return {"format": FORMAT, **code, "versions": versions(), "options": options, "seeds": [first, count],
            "started": datetime.now(UTC).isoformat(timespec="seconds")}


def entry(report: Any) -> dict[str, Any]:
    """One seed's line, from its local.simulation.Report."""
    return {"seed": report.seed, "violations": [v.what for v in report.violations],
            "orders": dict(sorted(report.orders.items())), "faults": dict(sorted(report.faults.items())),
            "paths": dict(sorted(report.paths.items())), "erased": report.erased,
            "seconds": round(report.seconds, 3), "digest": report.digest}


def read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and every seed line; a line cut off by a kill (no newline yet) is not one."""
    content = path.read_bytes()
    lines = content[:content.rfind(b"\n") + 1].split(b"\n")[:-1]
    if not lines:
        raise LedgerError(f"{path} has no header")
    try:
        head = json.loads(lines[0])
        entries = [json.loads(line) for line in lines[1:] if line.strip()]
    except ValueError as error:
        raise LedgerError(f"{path} is not a simulation ledger ({error})") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise LedgerError(f"{path} is not a simulation ledger of format {FORMAT}")
    return head, entries


class Ledger:
    """A ledger open for a run: the seeds it already holds, and a line written for each seed finished."""

    def __init__(self, path: Path, wanted: dict[str, Any]):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = open(path, "a+b")  # noqa: SIM115 (held for the run, closed by close())
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise LedgerError(f"{path} is being written by another run") from None
        self.done: set[int] = set()
        self._cut_torn_line()
        if self._file.seek(0, os.SEEK_END) == 0:  # new (or killed while its header was written)
            self._write(wanted)
            return
        head, entries = read(path)
        differ = [name for name in COMPARED if head.get(name) != wanted.get(name)]
        if differ:
            self._file.close()
            raise LedgerError(f"{path} was written by another run ({_differences(head, wanted, differ)}): a ledger "
                              "holds seeds of one code version and one set of options; start another ledger")
        self.done = {e["seed"] for e in entries}

    def record(self, report: Any) -> None:
        self._write(entry(report))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, line: dict[str, Any]) -> None:
        self._file.write(json.dumps(line).encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def _cut_torn_line(self) -> None:
        """A kill while a line was written leaves part of it (read() does not count it): cut it, so that the next
        line starts on its own."""
        self._file.seek(0)
        content = self._file.read()
        if content and not content.endswith(b"\n"):
            self._file.truncate(content.rfind(b"\n") + 1)


def _differences(head: dict[str, Any], wanted: dict[str, Any], names: list[str]) -> str:
    shown = []
    for name in names:
        was, now = head.get(name), wanted.get(name)
        if name == "commit":
            was, now = str(was)[:12], str(now)[:12]
        elif name == "changes":
            was, now = ("uncommitted changes " + was[:12] if was else "a clean tree",
                        "uncommitted changes " + now[:12] if now else "a clean tree")
        shown.append(f"{name}: ledger {was}, this run {now}")
    return "; ".join(shown)


@dataclass
class Summary:
    head: dict[str, Any]
    done: dict[int, dict[str, Any]]
    missing: list[int]
    failed: list[int]
    inconsistent: list[int]  # seeds recorded more than once with different outcomes
    orders: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    erased: int = 0
    seconds: float = 0.0

    @property
    def code(self) -> int:
        """The exit status: 0 every seed meant is done and none failed; 1 some failed (or disagree with
        themselves); 3 not all done yet (2 is left to errors)."""
        if self.failed or self.inconsistent:
            return 1
        return 3 if self.missing else 0


def summarise(path: Path) -> Summary:
    head, entries = read(path)
    first, count = head["seeds"]
    done: dict[int, dict[str, Any]] = {}
    inconsistent = set()
    for e in entries:
        if e["seed"] in done and done[e["seed"]]["digest"] != e["digest"]:
            inconsistent.add(e["seed"])
        done[e["seed"]] = e
    summary = Summary(head, done, [s for s in range(first, first + count) if s not in done],
                      sorted(s for s, e in done.items() if e["violations"]), sorted(inconsistent))
    for e in done.values():
        summary.orders.update(e["orders"])
        summary.faults.update(e["faults"])
        summary.paths.update(e["paths"])
        summary.erased += e["erased"]
        summary.seconds += e["seconds"]
    return summary


def ranges(seeds: list[int]) -> list[str]:
    """Sorted seeds as runs: [1, 2, 3, 7] -> ["1-3", "7"]."""
    out: list[str] = []
    start = previous = None
    for seed in [*seeds, None]:
        if start is not None and (seed is None or seed != previous + 1):  # type: ignore[operator]
            out.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if start is None:
            start = seed
        previous = seed
    return out


def describe(summary: Summary, path: Path) -> list[str]:
    """The summary as printed: what the ledger covers, what is missing, and every violation."""
    head = summary.head
    first, count = head["seeds"]
    tree = f"with uncommitted changes {head['changes'][:12]}" if head.get("changes") else "clean"
    lines = [f"ledger {path}: commit {head['commit'][:12]} ({tree}), seeds {first}..{first + count - 1}, "
             f"started {head['started']}"]
    missing = ranges(summary.missing)
    lines.append(f"{len(summary.done)} of {count} seeds done"
                 + (f"; missing {len(summary.missing)}: {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}"
                    if missing else "; none missing"))
    lines.append(f"{len(summary.failed)} with violations{' ' + str(summary.failed[:20]) if summary.failed else ''}")
    for seed in summary.failed:
        for what in summary.done[seed]["violations"]:
            lines.append(f"  seed {seed}: VIOLATION {what}   (replay: make simulate SEED={seed})")
    for seed in summary.inconsistent:
        lines.append(f"  seed {seed}: recorded more than once with different outcomes (not deterministic)")
    per_seed = summary.seconds / len(summary.done) if summary.done else 0.0
    lines.append(f"orders {dict(sorted(summary.orders.items()))}; customers erased {summary.erased}; "
                 f"faults injected {dict(sorted(summary.faults.items()))}; operator and client paths "
                 f"{dict(sorted(summary.paths.items()))}; {summary.seconds:.0f} s of seed time "
                 f"({per_seed:.2f} s per seed)")
    return lines
