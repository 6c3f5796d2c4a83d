"""Issue 4 targets: archival of Amplifier sessions, side by side with the tools users would pick.

Run::

    python benchmarks/bench_archive.py                       # 200 sessions, 1 GiB, seed 1
    python benchmarks/bench_archive.py --sessions 200 --target-bytes 1G --seed 1 --workdir DIR
    python benchmarks/bench_archive.py --quick               # 20 sessions, 100 MiB: smoke run

On one generated corpus (``scripts/generate_sessions.py``: forks, sub-sessions, resumes), it
measures the stored bytes and ingest time of

* sessctl: the corpus imported into a fresh repository by the library's importer
  (``SessionMigrator.discover_sessions`` + ``migrate_batch``, in a child process; three
  times, times are medians), then the object store repacked as ``sessctl archive`` does
  (``--no-compact``: not), ``fsck`` and a byte-identical export of a sample of sessions;
* per-file ``zstd -19 --long=27``; a git repository of the files after
  ``git gc --aggressive``; ``restic backup`` (``--compression max`` and ``auto``);
  ``borg create --compression zstd`` (and ``zstd,19``); and the solid archive
  ``tar | zstd -19 --long=31``;

plus the import throughput (events.jsonl bytes per CPU second of the importing process), the
fork test (ten forks of a ~100 MiB session that diverge by ~5% each, against one session) and
a breakdown of what takes the repository's bytes (``--no-analysis``: skipped).

The work directory (default /tmp/bench-archive) holds the corpus (~1 GiB), the fork set
(~1.1 GiB), every tool's output and the sessctl repositories; about 3 GiB in all. A full
run from scratch takes 12-17 minutes on a 2-core machine, most of it `git gc --aggressive`
(one thread: git gives a thread no fewer than 2 x window objects) and borg at zstd,19.

The corpus, the fork set and every competitor's figures are cached in the work directory,
keyed by the corpus parameters and the generator's source: a re-run (e.g. after an importer
change) only re-measures sessctl. ``--remeasure all`` (or a list of names) forces them.
Full runs write their figures into docs/benchmarks.md ("## Archival (issue 4)"); ``--quick``
runs only print unless ``--report`` is given. Tools are installed by
``benchmarks/setup_tools.sh`` (Debian packages; needs root or sudo when one is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import importlib.util
import json
import os
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GENERATOR = ROOT / "scripts" / "generate_sessions.py"
SECTION = "Archival (issue 4)"
MB = 1_000_000  # throughput figures are decimal MB/s, as in /work/shared/reference/limits.md
MIB = 1 << 20

sys.path.insert(0, str(HERE))
from _report import write_section  # noqa: E402

# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError


def secs(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.2f} s" if s < 100 else f"{s:.0f} s"


def load_generator() -> Any:
    name = "generate_sessions"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # before exec_module: dataclasses need it
    spec.loader.exec_module(mod)
    return mod


def parse_size(text: str) -> int:
    return int(load_generator().parse_size(text))


def file_bytes(path: Path) -> int:
    """Sum of the apparent sizes of the regular files under ``path`` (or of the file)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            if not os.path.islink(os.path.join(dirpath, f)):
                total += st.st_size
    return total


def du(path: Path, apparent: bool) -> int:
    args = ["du", "-s", "--block-size=1"] + (["--apparent-size"] if apparent else []) + [str(path)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def measure(path: Path) -> dict[str, int]:
    """``files``: bytes of the regular files (what the tables compare); ``du -sb`` (which also
    counts directory entries) and allocated blocks (``du -s --block-size=1``)."""
    return {"files": file_bytes(path), "du_sb": du(path, True), "allocated": du(path, False)}


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_timed(
    cmd: list[str] | str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float]:
    """Run a command (a string runs under ``bash -o pipefail``); (wall, child CPU) seconds."""
    argv = ["bash", "-o", "pipefail", "-c", cmd] if isinstance(cmd, str) else cmd
    full_env = {**os.environ, **(env or {})}
    c0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, env=full_env, cwd=cwd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {cmd}\n{proc.stdout[-2000:]}"
            f"\n{proc.stderr[-4000:]}"
        )
    return wall, cpu


def cmd_text(cmd: list[str] | str) -> str:
    return cmd if isinstance(cmd, str) else shlex.join(cmd)


def tool_versions() -> dict[str, str]:
    def first(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return "missing"
        return out.strip().splitlines()[0].strip() if out.strip() else "?"

    return {
        "zstd": first(["zstd", "--version"]).replace("*** ", "").replace(" ***", ""),
        "git": first(["git", "--version"]),
        "restic": first(["restic", "version"]),
        "borg": first(["borg", "--version"]),
        "tar": first(["tar", "--version"]),
    }


def setup_tools() -> None:
    script = HERE / "setup_tools.sh"
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed:\n{proc.stdout}{proc.stderr}")


def source_digest() -> str:
    return hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:10]


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def save_json(path: Path, doc: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Corpus:
    key: str
    root: Path  # the folder holding projects/
    manifest: dict[str, Any]

    @property
    def raw_bytes(self) -> int:
        return int(self.manifest["total_bytes"])

    @property
    def events_bytes(self) -> int:
        return int(self.manifest["events_bytes"])


def ensure_corpus(work: Path, sessions: int, target: int, seed: int) -> Corpus:
    key = f"s{sessions}-b{target}-seed{seed}-g{source_digest()}"
    root = work / f"corpus-{key}"
    mpath = work / f"corpus-{key}.json"
    manifest = load_json(mpath)
    if manifest is not None and root.is_dir():
        log(f"corpus: reusing {root} ({human(manifest['total_bytes'])})")
        return Corpus(key, root, manifest)
    shutil.rmtree(root, ignore_errors=True)
    log(f"corpus: generating {sessions} sessions, {human(target)}, seed {seed} into {root}")
    gen = load_generator()
    summary = gen.generate(root, sessions, target, seed, layout="projects")
    manifest = {
        "sessions": summary.sessions,
        "top_level": summary.top_level,
        "forks": summary.forks,
        "sub_sessions": summary.sub_sessions,
        "resumed": summary.resumed,
        "killed": summary.killed,
        "files": summary.files,
        "total_bytes": file_bytes(root),
        "events_bytes": summary.events_bytes,
        "transcript_bytes": summary.transcript_bytes,
        "metadata_bytes": summary.metadata_bytes,
        "events_lines": summary.events_lines,
        "llm_requests": summary.llm_requests,
        "generate_s": summary.elapsed_s,
        "seed": seed,
        "target_bytes": target,
        "records": [
            {
                "session_id": r.session_id,
                "kind": r.kind,
                "path": str(Path(r.path).relative_to(root)),
                "resumes": r.resumes,
                "killed": r.killed,
                "events_bytes": r.events_bytes,
                "parent_id": r.parent_id,
            }
            for r in summary.records
        ],
    }
    save_json(mpath, manifest)
    log(f"corpus: {human(manifest['total_bytes'])} in {summary.elapsed_s:.1f} s")
    return Corpus(key, root, manifest)


def ensure_forks(
    work: Path, session_bytes: int, n_forks: int, divergence: float, seed: int
) -> dict[str, Any]:
    """One ~``session_bytes`` session and ``n_forks`` forks of it, each forked at the last turn
    ending at or before ``1 - divergence`` of its events and continued with about
    ``divergence`` of new events, written the way amplifier-foundation forks (copied lines
    with the session id rewritten and ``parent_session_id`` added). Two trees: ``single/``
    (the parent alone) and ``all/`` (parent + forks; hard links)."""
    key = f"forks3-b{session_bytes}-n{n_forks}-d{divergence}-seed{seed}-g{source_digest()}"
    base = work / key
    mpath = work / f"{key}.json"
    manifest = load_json(mpath)
    if manifest is not None and base.is_dir():
        log(f"forks: reusing {base}")
        return {**manifest, "base": str(base)}
    shutil.rmtree(base, ignore_errors=True)
    log(f"forks: generating a {human(session_bytes)} session and {n_forks} forks into {base}")
    gs = load_generator()
    t0 = time.perf_counter()
    out = base / "all"
    g = gs._Generator(
        out, n_forks + 1, session_bytes * (n_forks + 1), seed, "projects", False, True, None
    )
    g.scale = 1.0  # full-size system prompt, tools and configuration
    budgets = [float(session_bytes)]
    g.claim = lambda weight: budgets.pop(0)
    project = gs._Project(g.text, 0)
    start = gs._ERA_NEW_FROM + 3 * gs._DAY_NS  # the newest on-disk format
    top = gs._Session(
        g,
        kind="top",
        sid=g.text.uuid4(),
        project=project,
        era="new",
        bundle_version=gs._bundle_version_for(start),
        start_ns=start,
        weight=1.0,
    )
    top.run()
    parent_bytes = top.events_bytes
    marks = top.turn_marks
    n_turn = max(
        [i + 1 for i, m in enumerate(marks) if m[3] <= (1 - divergence) * parent_bytes] or [1]
    )
    mark = marks[n_turn - 1]
    copied = mark[3] + mark[4] * len(', "parent_session_id": ' + json.dumps(top.sid))
    avg_turn = parent_bytes / max(len(marks), 1)

    class _Fork(gs._Session):  # type: ignore[misc, name-defined]
        def _prepare_fork(self) -> None:
            r = self.r
            orig = r.choice

            def forced(seq: Any) -> Any:  # the first choice made is the fork turn
                r.choice = orig
                return n_turn

            r.choice = forced
            try:
                super()._prepare_fork()
            finally:
                r.__dict__.pop("choice", None)

    forks = []
    for _ in range(n_forks):
        # the session loop stops once its bytes + half its last turn reach the budget: a
        # quarter of an average turn on top makes the forks' new events average ``divergence``
        budgets.append(copied + divergence * parent_bytes + 0.25 * avg_turn)
        f = _Fork(
            g,
            kind="fork",
            sid=g.text.uuid4(),
            project=project,
            era="new",
            bundle_version=top.bundle.version,
            start_ns=0,
            weight=1.0,
            fork_of=top,
        )
        f.run()
        forks.append(f)
    top.release_fork_state()

    # single/: the parent alone (hard links to the same files)
    rel = top.dir.relative_to(out)
    single = base / "single" / rel
    single.mkdir(parents=True)
    for p in top.dir.iterdir():
        os.link(p, single / p.name)
    fork_new = []  # each fork's own events (after its copied lines) per parent event byte
    for f in forks:
        with open(f.dir / "events.jsonl", "rb") as fh:
            own = sum(len(line) for i, line in enumerate(fh) if i >= f.copied_lines)
        fork_new.append(own / parent_bytes)
    manifest = {
        "parent": top.sid,
        "parent_events_bytes": parent_bytes,
        "parent_bytes": file_bytes(top.dir),
        "parent_turns": len(marks),
        "fork_turn": n_turn,
        "copied_events_bytes": copied,
        "forks": [f.sid for f in forks],
        "fork_new_fraction": fork_new,
        "all_bytes": file_bytes(out),
        "all_events_bytes": sum(
            (d / "events.jsonl").stat().st_size for d in [top.dir, *(f.dir for f in forks)]
        ),
        "generate_s": time.perf_counter() - t0,
    }
    save_json(mpath, manifest)
    log(
        f"forks: parent {human(parent_bytes)} ({len(marks)} turns), forked at turn {n_turn}, "
        f"new {min(fork_new):.1%}-{max(fork_new):.1%} (mean {sum(fork_new) / len(fork_new):.1%}); "
        f"all {human(manifest['all_bytes'])}"
    )
    return {**manifest, "base": str(base)}


# --------------------------------------------------------------------------------------------
# competitors
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Competitor:
    name: str
    label: str
    group: str  # "dedup": counted in "best of zstd/git/restic/borg"; "solid": tar+zstd
    out: Path  # what is measured
    setup: list[list[str] | str]  # not timed (repository init)
    ingest: list[list[str] | str]  # timed
    env: dict[str, str]
    note: str


def competitors(corpus: Corpus, out_base: Path, borg19: bool) -> list[Competitor]:
    c = corpus.root
    parent, name = str(c.parent), c.name
    o = out_base
    restic_env = {"RESTIC_PASSWORD": "bench", "RESTIC_CACHE_DIR": str(o / "restic-cache")}
    borg_env = {
        "BORG_BASE_DIR": str(o / "borg-home"),
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
        "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
    }
    git_dir = o / "git.git"
    git = [
        "git",
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.invalid",
        "-c",
        "gc.auto=0",
        f"--git-dir={git_dir}",
        f"--work-tree={c}",
    ]
    out: list[Competitor] = [
        Competitor(
            "zstd",
            "per-file `zstd -19 --long=27 -T0`",
            "dedup",
            o / "zstd-per-file",
            [],
            [
                [
                    "zstd",
                    "-19",
                    "--long=27",
                    "-T0",
                    "-q",
                    "-r",
                    name,
                    "--output-dir-mirror",
                    str(o / "zstd-per-file"),
                ]
            ],
            {},
            "one .zst per file; `-T0` given, but a file's jobs are too big to split, "
            "so about one core",
        ),
        Competitor(
            "git",
            "git after `git gc --aggressive`",
            "dedup",
            git_dir,
            [["git", "init", "-q", "--bare", str(git_dir)]],
            [
                [*git, "add", "-A", "."],
                [*git, "commit", "-q", "-m", "corpus"],
                [*git, "gc", "--aggressive", "--quiet"],
            ],
            {},
            "size of the bare .git; add + commit + gc timed",
        ),
        Competitor(
            "restic-max",
            "`restic backup --compression max`",
            "dedup",
            o / "restic-max",
            [["restic", "-q", "-r", str(o / "restic-max"), "init", "--repository-version", "2"]],
            [
                [
                    "restic",
                    "-q",
                    "-r",
                    str(o / "restic-max"),
                    "backup",
                    "--compression",
                    "max",
                    "--host",
                    "bench",
                    name,
                ]
            ],
            restic_env,
            "repository format 2; init (key derivation) not timed; the chunker polynomial is "
            "random per repository, so sizes vary between runs",
        ),
        Competitor(
            "restic-auto",
            "`restic backup --compression auto`",
            "dedup",
            o / "restic-auto",
            [["restic", "-q", "-r", str(o / "restic-auto"), "init", "--repository-version", "2"]],
            [
                [
                    "restic",
                    "-q",
                    "-r",
                    str(o / "restic-auto"),
                    "backup",
                    "--compression",
                    "auto",
                    "--host",
                    "bench",
                    name,
                ]
            ],
            restic_env,
            "restic's default compression",
        ),
        Competitor(
            "borg-zstd",
            "`borg create --compression zstd`",
            "dedup",
            o / "borg-zstd",
            [["borg", "init", "-e", "none", str(o / "borg-zstd")]],
            [["borg", "create", "--compression", "zstd", f"{o / 'borg-zstd'}::bench", name]],
            borg_env,
            "zstd level 3 (borg's default for `zstd`); `-e none`",
        ),
    ]
    if borg19:
        out.append(
            Competitor(
                "borg-zstd19",
                "`borg create --compression zstd,19`",
                "dedup",
                o / "borg-zstd19",
                [["borg", "init", "-e", "none", str(o / "borg-zstd19")]],
                [
                    [
                        "borg",
                        "create",
                        "--compression",
                        "zstd,19",
                        f"{o / 'borg-zstd19'}::bench",
                        name,
                    ]
                ],
                borg_env,
                "zstd level 19 per chunk",
            )
        )
    out.append(
        Competitor(
            "tar-zstd",
            "`tar \\| zstd -19 --long=31 -T0` (solid)",
            "solid",
            o / "corpus.tar.zst",
            [],
            [
                f"tar --sort=name -cf - -C {shlex.quote(parent)} {shlex.quote(name)} "
                f"| zstd -19 --long=31 -T0 -q -o {shlex.quote(str(o / 'corpus.tar.zst'))}"
            ],
            {},
            "one solid archive: no block can be read alone",
        )
    )
    return out


def run_competitor(comp: Competitor, corpus: Corpus) -> dict[str, Any]:
    if comp.out.is_dir():
        shutil.rmtree(comp.out)
    elif comp.out.exists():
        comp.out.unlink()
    for cmd in comp.setup:
        run_timed(cmd, comp.env, cwd=corpus.root.parent)
    wall = cpu = 0.0
    for cmd in comp.ingest:
        w, c = run_timed(cmd, comp.env, cwd=corpus.root.parent)
        wall += w
        cpu += c
    return {"wall_s": wall, "cpu_s": cpu, **measure(comp.out)}


def comp_signature(comp: Competitor) -> str:
    return " && ".join(cmd_text(c) for c in [*comp.setup, *comp.ingest])


# --------------------------------------------------------------------------------------------
# sessctl: the importer, fsck, export and the repository's composition (run in a subprocess)
# --------------------------------------------------------------------------------------------


async def _worker_import(spec: dict[str, Any]) -> dict[str, Any]:
    from amplifier_session_storage.compat.config import StorageConfig
    from amplifier_session_storage.compat.migrator import SessionMigrator
    from amplifier_session_storage.compat.storage import LocalBlockStorage

    repo = Path(spec["repo"])
    storage = LocalBlockStorage(StorageConfig(user_id="bench", local_path=repo))
    migrator = SessionMigrator(storage, "bench")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c0, t0 = time.process_time(), time.perf_counter()
    sources = await _maybe_await(migrator.discover_sessions(Path(spec["source"])))
    t_disc = time.perf_counter() - t0
    batch = await _maybe_await(migrator.migrate_batch(sources))
    await storage.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {
        "wall_s": wall,
        "cpu_s": cpu,
        "discover_s": t_disc,
        "sources": len(sources),
        "batch": _describe(batch),
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "maxrss_before_kib": rss0,
        "import": measure(repo),
    }
    if spec.get("compact"):
        # what `sessctl archive` adds after the import (compat.amplifier.archive.import_tree
        # with compact=True): the object store repacked into one pack
        from amplifier_session_storage.repository.local import open_local

        r = await open_local(repo, user_id="bench", create=False)
        repack = getattr(r.objects, "repack", None)
        if repack is not None:
            c1, t1 = time.process_time(), time.perf_counter()
            from amplifier_session_storage.stores.segpack import (
                ARCHIVE_LEVEL,
                ARCHIVE_SEGMENT_BYTES,
            )

            out["repacked_objects"] = await repack(
                level=ARCHIVE_LEVEL, segment_bytes=ARCHIVE_SEGMENT_BYTES
            )
            await r.close()
            out["compact_wall_s"] = time.perf_counter() - t1
            out["compact_cpu_s"] = time.process_time() - c1
        else:
            await r.close()
    return out


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


def _describe(batch: Any) -> dict[str, Any]:
    """Summarise a migrate_batch result without depending on its exact shape."""
    out: dict[str, Any] = {"type": type(batch).__name__}
    results = None
    if isinstance(batch, list | tuple):
        results = list(batch)
    else:
        for attr in ("results", "sessions", "items"):
            if isinstance(getattr(batch, attr, None), list | tuple):
                results = list(getattr(batch, attr))
                break
        for attr in ("total", "succeeded", "failed", "skipped", "completed"):
            v = getattr(batch, attr, None)
            if isinstance(v, int | float):
                out[attr] = v
    if results is not None:
        statuses: dict[str, int] = {}
        errors = []
        for r in results:
            st = str(getattr(r, "status", "?"))
            st = st.split(".")[-1].lower()
            statuses[st] = statuses.get(st, 0) + 1
            err = getattr(r, "error", None) or getattr(r, "error_message", None)
            if err:
                errors.append(f"{getattr(r, 'session_id', '?')}: {err}")
        out["statuses"] = statuses
        out["errors"] = errors[:20]
    return out


async def _worker_check(spec: dict[str, Any]) -> dict[str, Any]:
    """fsck, then export the sample sessions and compare them byte for byte."""
    from amplifier_session_storage.repository.local import open_local
    from amplifier_session_storage.repository.maintenance import fsck

    repo = await open_local(Path(spec["repo"]), user_id="bench", create=False)
    t0 = time.perf_counter()
    report = await fsck(repo)
    fsck_s = time.perf_counter() - t0
    res: dict[str, Any] = {
        "fsck_ok": report.ok,
        "fsck_s": fsck_s,
        "objects": report.objects,
        "blocks": report.blocks,
        "chunks": report.chunks,
        "refs": report.refs,
        "problems": report.problems[:10],
    }
    await repo.close()
    res["export"] = await _export_check(
        Path(spec["repo"]), Path(spec["source"]), spec["sample"], Path(spec["export_dir"])
    )
    return res


async def _export_check(
    repo_root: Path, source: Path, sample: list[dict[str, Any]], export_dir: Path
) -> dict[str, Any]:
    from amplifier_session_storage.compat.amplifier import export_session
    from amplifier_session_storage.repository.local import open_local

    shutil.rmtree(export_dir, ignore_errors=True)
    export_dir.mkdir(parents=True)
    repo = await open_local(repo_root, user_id="bench", create=False)
    checked = []
    t0 = time.perf_counter()
    for rec in sample:
        sid = rec["session_id"]
        orig = source / rec["path"]
        dest = export_dir / sid
        mismatches: list[str] = []
        try:
            await _maybe_await(export_session(repo, sid, dest))
        except Exception as exc:  # report, never hide
            checked.append(
                {
                    "session_id": sid,
                    "kind": rec["kind"],
                    "why": rec.get("why", ""),
                    "ok": False,
                    "mismatches": [f"export failed: {type(exc).__name__}: {exc}"],
                }
            )
            continue
        names = sorted(p.name for p in orig.iterdir() if p.is_file())
        got = sorted(p.name for p in dest.iterdir() if p.is_file()) if dest.is_dir() else []
        for n in names:
            if n not in got:
                mismatches.append(f"{n} missing")
            elif (orig / n).read_bytes() != (dest / n).read_bytes():
                mismatches.append(f"{n} differs")
        mismatches += [f"{n} extra" for n in got if n not in names]
        checked.append(
            {
                "session_id": sid,
                "kind": rec["kind"],
                "why": rec.get("why", ""),
                "ok": not mismatches,
                "files": len(names),
                "bytes": file_bytes(orig),
                "mismatches": mismatches,
            }
        )
    await repo.close()
    return {
        "sessions": checked,
        "ok": sum(1 for c in checked if c["ok"]),
        "total": len(checked),
        "export_s": time.perf_counter() - t0,
    }


async def _worker_analyze(spec: dict[str, Any]) -> dict[str, Any]:
    """Which objects take the bytes: stored frame bytes by object kind, block type, event."""
    from amplifier_session_storage.core.codec import unframe
    from amplifier_session_storage.core.objects import decode_block, object_kind
    from amplifier_session_storage.repository.local import open_local

    root = Path(spec["repo"])
    repo = await open_local(root, user_id="bench", create=False)
    by: dict[str, list[int]] = {}  # class -> [count, stored, canonical]
    chunk_sizes: dict[Any, tuple[int, int]] = {}
    chunk_owner: dict[Any, str] = {}

    def add(cls: str, stored: int, canonical: int) -> None:
        row = by.setdefault(cls, [0, 0, 0])
        row[0] += 1
        row[1] += stored
        row[2] += canonical

    async for oid in repo.objects.list():
        stored = await repo.objects.get(oid)
        if stored is None:
            continue
        try:
            canonical = unframe(oid, stored)
            kind = object_kind(canonical)
        except Exception:
            add("unreadable", len(stored), 0)
            continue
        if kind == "c":
            chunk_sizes[oid] = (len(stored), len(canonical))
            continue
        if kind != "b":
            add(f"object kind {kind!r}", len(stored), len(canonical))
            continue
        block = decode_block(canonical, oid)
        btype = str(
            block.block_type.value if hasattr(block.block_type, "value") else block.block_type
        )
        cls = btype
        data = block.data
        ev = None
        if isinstance(data, dict):
            ev = data.get("event_type") or data.get("event")
        if btype == "event" and isinstance(ev, str):
            cls = f"event {ev}"
        add(f"block: {cls}", len(stored), len(canonical))
        for c in block.object_refs():
            chunk_owner.setdefault(c, cls)
    solid = (
        await _solid_stream(repo, spec.get("solid_levels", [3, 19]))
        if spec.get("solid", True)
        else {}
    )
    await repo.close()
    for oid, (stored, canon) in chunk_sizes.items():
        add(f"chunk of: {chunk_owner.get(oid, '(unreferenced)')}", stored, canon)
    dirs: dict[str, int] = {}
    for top in sorted(root.iterdir()):
        if top.name == "objects":
            pack = top / "pack"
            dirs["objects/pack"] = file_bytes(pack) if pack.exists() else 0
            dirs["objects (loose)"] = file_bytes(top) - dirs["objects/pack"]
        else:
            dirs[top.name] = file_bytes(top)
    return {"classes": by, "dirs": dirs, "solid": solid}


async def _solid_stream(repo: Any, levels: list[int]) -> dict[str, Any]:
    """Diagnostic: the repository's unique objects (canonical bytes, each once), in session
    and chain order, compressed as ONE stream. Separates what deduplication leaves (the
    stream's size) from what per-object compression loses against a solid archive."""
    import zstandard

    seen: set[Any] = set()
    parts: list[bytes] = []
    id_bytes = 0
    names = sorted([name async for name, _ in repo.refs.list()])
    for name in names:
        head = await repo.refs.get(name)
        if head is None:
            continue
        blocks = []
        async for b in repo.walk(head):
            if b.id in seen:
                break  # shared history (a fork's parent) is already in the stream
            blocks.append(b)
        for b in reversed(blocks):
            seen.add(b.id)
            parts.append(await repo.read_object(b.id))
            refs = b.object_refs()
            id_bytes += 32 * (len(b.parents) + len(refs))
            for c in refs:
                if c not in seen:
                    seen.add(c)
                    parts.append(await repo.read_object(c))
    data = b"".join(parts)
    out: dict[str, Any] = {"objects": len(seen), "bytes": len(data), "id_bytes": id_bytes}
    for level in levels:
        params = zstandard.ZstdCompressionParameters.from_level(
            level, enable_ldm=True, window_log=27, threads=0
        )
        t0 = time.perf_counter()
        out[f"zstd{level}_long27"] = len(
            zstandard.ZstdCompressor(compression_params=params).compress(data)
        )
        out[f"zstd{level}_s"] = time.perf_counter() - t0
    return out


def worker_main(kind: str, spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    fn = {"import": _worker_import, "check": _worker_check, "analyze": _worker_analyze}[kind]
    result = asyncio.run(fn(spec))
    Path(spec["result"]).write_text(json.dumps(result, default=str))


def run_worker(
    kind: str, spec: dict[str, Any], work: Path, timeout: float | None = None
) -> dict[str, Any]:
    spec_path = work / f"worker-{kind}.json"
    result_path = work / f"worker-{kind}.result.json"
    result_path.unlink(missing_ok=True)
    save_json(spec_path, {**spec, "result": str(result_path)})
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(spec_path)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0 or not result_path.exists():
        return {"error": f"worker {kind} exited {proc.returncode}", "stderr": proc.stderr[-6000:]}
    out: dict[str, Any] = json.loads(result_path.read_text())
    if proc.stderr.strip():
        out["stderr_tail"] = proc.stderr[-1500:]
    return out


def choose_sample(corpus: Corpus, n: int, seed: int) -> list[dict[str, Any]]:
    """A deterministic sample that covers every kind: forks, sub-sessions, resumed, killed,
    the largest session, then random others."""
    recs = corpus.manifest["records"]
    rng = random.Random(f"sample:{seed}")
    picked: list[dict[str, Any]] = []

    def take(cands: list[dict[str, Any]], k: int, why: str) -> None:
        cands = [r for r in cands if r["session_id"] not in {p["session_id"] for p in picked}]
        for r in rng.sample(cands, min(k, len(cands))):
            if len(picked) < n:
                picked.append({**r, "why": why})

    take([r for r in recs if r["kind"] == "fork"], 2, "fork")
    take([r for r in recs if r["kind"] == "sub"], 2, "sub-session")
    take([r for r in recs if r["resumes"] > 0], 2, "resumed")
    take([r for r in recs if r["killed"]], 1, "killed")
    take([max(recs, key=lambda r: r["events_bytes"])], 1, "largest")
    take(recs, n - len(picked), "random")
    return picked


def sessctl_measure(source: Path, repo: Path, work: Path, compact: bool) -> dict[str, Any]:
    """Import ``source`` into a fresh repository; ``files`` etc. are the final sizes (after
    the repack when ``compact``), ``import`` the sizes right after the import."""
    shutil.rmtree(repo, ignore_errors=True)
    res = run_worker("import", {"repo": str(repo), "source": str(source), "compact": compact}, work)
    if "error" in res:
        return res
    res.update(measure(repo))
    return res


def string_floor(root: Path, min_len: int = 256) -> dict[str, Any]:
    """Diagnostic of the corpus itself: every JSON string value of at least ``min_len``
    characters in every .jsonl line (message texts, thinking, tool outputs, system prompt,
    ...), counted in total and once per distinct value, and the distinct ones compressed as
    one stream. What a store that deduplicated by decoded string value would still hold."""
    import zstandard

    seen: set[bytes] = set()
    parts: list[bytes] = []
    stats = {"lines": 0, "raw": 0, "strings": 0, "string_bytes": 0, "other_bytes": 0}

    def walk(v: Any) -> None:
        if isinstance(v, str):
            if len(v) >= min_len:
                b = v.encode("utf-8")
                stats["strings"] += 1
                stats["string_bytes"] += len(b)
                h = hashlib.blake2b(b, digest_size=16).digest()
                if h not in seen:
                    seen.add(h)
                    parts.append(b)
            else:
                stats["other_bytes"] += len(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                stats["other_bytes"] += len(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    t0 = time.perf_counter()
    for path in sorted(root.rglob("*.jsonl")):
        with open(path, "rb") as fh:
            for line in fh:
                stats["lines"] += 1
                stats["raw"] += len(line)
                try:
                    walk(json.loads(line))
                except ValueError:
                    continue
    data = b"".join(parts)
    params = zstandard.ZstdCompressionParameters.from_level(19, enable_ldm=True, window_log=27)
    return {
        **stats,
        "min_len": min_len,
        "distinct": len(parts),
        "distinct_bytes": len(data),
        "distinct_zstd3": len(zstandard.ZstdCompressor(level=3).compress(data)),
        "distinct_zstd19_long27": len(
            zstandard.ZstdCompressor(compression_params=params).compress(data)
        ),
        "seconds": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The last run (its repository is the one on disk) with the median of every time."""
    last = dict(runs[-1])
    if "error" in last or len(runs) == 1:
        return last
    for key in ("wall_s", "cpu_s", "discover_s", "compact_wall_s", "compact_cpu_s"):
        vals = [r[key] for r in runs if key in r]
        if vals:
            last[key] = statistics.median(vals)
            last[f"{key}_runs"] = vals
    return last


def fork_delta(one: dict[str, Any], allr: dict[str, Any]) -> list[list[Any]]:
    """Object classes by the frame bytes the forks added: [class, count, stored, canonical]."""
    if "error" in one or "error" in allr:
        return []
    a, b = one["classes"], allr["classes"]
    rows = []
    for k in set(a) | set(b):
        x, y = a.get(k, [0, 0, 0]), b.get(k, [0, 0, 0])
        rows.append([k, y[0] - x[0], y[1] - x[1], y[2] - x[2]])
    rows.sort(key=lambda r: -r[2])
    return rows


def verdict(ok: bool) -> str:
    return "met" if ok else "**NOT MET**"


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=None, help="default 200 (quick: 20)")
    ap.add_argument("--target-bytes", default=None, help="default 1G (quick: 100M)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-archive"))
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20 sessions, 100 MiB, 20 MiB fork session; prints only",
    )
    ap.add_argument("--fork-bytes", default=None, help="fork test session size (100M; quick 20M)")
    ap.add_argument("--forks", type=int, default=10)
    ap.add_argument("--divergence", type=float, default=0.05)
    ap.add_argument("--sample", type=int, default=10, help="sessions exported and compared")
    ap.add_argument("--no-borg19", action="store_true", help="skip borg --compression zstd,19")
    ap.add_argument("--skip", default="", help="comma-separated competitors to leave out")
    ap.add_argument(
        "--remeasure",
        default="",
        help="comma-separated competitors to re-measure ('all' for every one)",
    )
    ap.add_argument("--no-forks", action="store_true", help="skip the fork test")
    ap.add_argument(
        "--import-runs",
        type=int,
        default=None,
        help="imports of the corpus into fresh repositories; times are their medians "
        "(default 3; quick: 1)",
    )
    ap.add_argument(
        "--no-compact",
        action="store_true",
        help="measure sessctl right after the import, without the repack that "
        "`sessctl archive` adds",
    )
    ap.add_argument(
        "--no-analysis", action="store_true", help="skip the breakdown of the repository's bytes"
    )
    ap.add_argument("--report", action="store_true", help="write docs/benchmarks.md (quick runs)")
    ap.add_argument("--no-report", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args()

    sessions = args.sessions or (20 if args.quick else 200)
    target = parse_size(args.target_bytes or ("100M" if args.quick else "1G"))
    fork_bytes = parse_size(args.fork_bytes or ("20M" if args.quick else "100M"))
    write_report = (args.report or not args.quick) and not args.no_report
    work: Path = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    setup_tools()
    versions = tool_versions()
    corpus = ensure_corpus(work, sessions, target, args.seed)

    # ---- competitors (cached by corpus key and command line)
    out_base = work / f"out-{corpus.key}"
    out_base.mkdir(exist_ok=True)
    cache_path = work / f"results-{corpus.key}.json"
    cache: dict[str, Any] = load_json(cache_path) or {}
    skip = {s for s in args.skip.split(",") if s}
    remeasure = {s for s in args.remeasure.split(",") if s}
    comps = [c for c in competitors(corpus, out_base, not args.no_borg19) if c.name not in skip]
    results: dict[str, dict[str, Any]] = {}
    for comp in comps:
        sig = comp_signature(comp)
        hit = cache.get(comp.name)
        fresh = "all" in remeasure or comp.name in remeasure
        if hit and hit.get("signature") == sig and not fresh:
            log(f"{comp.name}: cached ({human(hit['files'])}, {secs(hit['wall_s'])})")
            results[comp.name] = {**hit, "cached": True}
            continue
        log(f"{comp.name}: running {sig}")
        res = run_competitor(comp, corpus)
        res.update(
            signature=sig,
            version=versions.get(comp.name.split("-")[0], ""),
            measured_at=time.strftime("%Y-%m-%d %H:%M"),
        )
        log(
            f"{comp.name}: {human(res['files'])} in {secs(res['wall_s'])} "
            f"(CPU {secs(res['cpu_s'])})"
        )
        results[comp.name] = res
        cache[comp.name] = res
        save_json(cache_path, cache)

    # ---- sessctl
    repo = work / f"sessctl-{corpus.key}"
    log(f"sessctl: importing {corpus.root} into {repo}")
    n_runs = max(1, args.import_runs or (1 if args.quick else 3))
    runs = []
    for i in range(n_runs):
        runs.append(sessctl_measure(corpus.root, repo, work, not args.no_compact))
        if "error" in runs[-1]:
            break
        log(
            f"sessctl: import {i + 1}/{n_runs}: {secs(runs[-1]['wall_s'])} "
            f"(CPU {secs(runs[-1]['cpu_s'])})"
        )
    sess = median_run(runs)
    if "error" in sess:
        log(f"sessctl import FAILED: {sess['error']}\n{sess.get('stderr', '')}")
    else:
        log(
            f"sessctl: {human(sess['files'])} in {secs(sess['wall_s'])} "
            f"(CPU {secs(sess['cpu_s'])}); {sess['batch']}"
        )
    check: dict[str, Any] = {}
    analysis: dict[str, Any] = {}
    if "error" not in sess:
        sample = choose_sample(corpus, args.sample, args.seed)
        log(f"sessctl: fsck + export of {len(sample)} sessions")
        check = run_worker(
            "check",
            {
                "repo": str(repo),
                "source": str(corpus.root),
                "sample": sample,
                "export_dir": str(work / "export-check"),
            },
            work,
        )
        log(f"sessctl: check {json.dumps(check, default=str)[:600]}")
        if not args.no_analysis:
            log("sessctl: analysing the repository's bytes")
            analysis = run_worker("analyze", {"repo": str(repo)}, work)

    floor: dict[str, Any] = {}
    if not args.no_analysis:
        floor = cache.get("_strings") or {}
        if not floor or "all" in remeasure or "strings" in remeasure:
            log("corpus: distinct long strings (diagnostic)")
            floor = string_floor(corpus.root)
            cache["_strings"] = floor
            save_json(cache_path, cache)
        analysis["strings"] = floor

    # ---- forks
    forks: dict[str, Any] = {}
    if not args.no_forks:
        fm = ensure_forks(work, fork_bytes, args.forks, args.divergence, args.seed)
        base = Path(fm["base"])
        one = sessctl_measure(
            base / "single", work / "sessctl-fork-single", work, not args.no_compact
        )
        allr = sessctl_measure(base / "all", work / "sessctl-fork-all", work, not args.no_compact)
        forks = {"manifest": fm, "single": one, "all": allr}
        if not args.no_analysis and "error" not in one and "error" not in allr:
            forks["delta"] = fork_delta(
                run_worker(
                    "analyze", {"repo": str(work / "sessctl-fork-single"), "solid": False}, work
                ),
                run_worker(
                    "analyze", {"repo": str(work / "sessctl-fork-all"), "solid": False}, work
                ),
            )
        if "error" not in one and "error" not in allr:
            log(
                f"forks: one {human(one['files'])}, all {human(allr['files'])}: "
                f"{allr['files'] / one['files']:.2f}x"
            )
        else:
            log(f"forks: import FAILED {one.get('error') or allr.get('error')}")

    body = render(
        args,
        corpus,
        comps,
        results,
        sess,
        check,
        analysis,
        forks,
        versions,
        time.perf_counter() - t_start,
    )
    print(body)
    save_json(
        work / f"last-run-{corpus.key}.json",
        {
            "results": results,
            "sessctl": sess,
            "check": check,
            "analysis": analysis,
            "forks": forks,
            "versions": versions,
        },
    )
    if write_report:
        write_section(SECTION, body)
        log("wrote docs/benchmarks.md")
    return 0


def render(
    args: argparse.Namespace,
    corpus: Corpus,
    comps: list[Competitor],
    results: dict[str, dict[str, Any]],
    sess: dict[str, Any],
    check: dict[str, Any],
    analysis: dict[str, Any],
    forks: dict[str, Any],
    versions: dict[str, str],
    elapsed: float,
) -> str:
    m = corpus.manifest
    raw = corpus.raw_bytes
    lines = [
        f"Corpus: `scripts/generate_sessions.py`, {m['sessions']} sessions ({m['top_level']} "
        f"top-level, {m['forks']} forks, {m['sub_sessions']} sub-sessions, {m['resumed']} "
        f"resumed, {m['killed']} killed), seed {m['seed']}: {m['files']} files, "
        f"{raw:,} bytes ({human(raw)}), of which events.jsonl {m['events_bytes']:,} bytes "
        f"({m['events_lines']:,} lines, {m['llm_requests']:,} `llm:request`).",
        "",
        cache_note(results),
        "",
        "Stored bytes are the apparent sizes of the files each tool keeps (its repository "
        "directory or archive; restic's and borg's caches outside the repository are not "
        "counted); `du -sb` adds the directories' own sizes, allocated is "
        "`du -s --block-size=1`. Ingest time is wall clock (all cores unless said); CPU is "
        "user + system of the tool's processes. The corpus is in the page cache for every "
        "tool.",
        "",
        "| store | stored bytes | ratio to raw | du -sb | allocated | ingest (wall) | CPU "
        "| notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| raw corpus | {raw:,} | 1 | {raw:,} | | | | {m['files']} files |",
    ]
    for comp in comps:
        r = results.get(comp.name)
        if r is None:
            continue
        lines.append(
            f"| {comp.label} | {r['files']:,} | {raw / r['files']:.1f}x smaller | "
            f"{r['du_sb']:,} | {r['allocated']:,} | {secs(r['wall_s'])} | {secs(r['cpu_s'])} | "
            f"{comp.note} |"
        )
    ok_import = "error" not in sess
    if ok_import:
        imp = sess["import"]
        compacted = "compact_wall_s" in sess
        lines.append(
            f"| {'' if compacted else '**'}sessctl import{'' if compacted else '**'} "
            f"(`SessionMigrator.migrate_batch`) | {imp['files']:,} | "
            f"{raw / imp['files']:.1f}x smaller | {imp['du_sb']:,} | {imp['allocated']:,} | "
            f"{secs(sess['wall_s'])} | {secs(sess['cpu_s'])} | one process, fsync'd; "
            f"peak RSS {sess['maxrss_kib'] / 1024:,.0f} MiB |"
        )
        if compacted:
            lines.append(
                f"| **sessctl import + repack** (what `sessctl archive` does) | "
                f"**{sess['files']:,}** | {raw / sess['files']:.1f}x smaller | {sess['du_sb']:,} "
                f"| {sess['allocated']:,} | {secs(sess['wall_s'] + sess['compact_wall_s'])} | "
                f"{secs(sess['cpu_s'] + sess['compact_cpu_s'])} | repack: "
                f"{secs(sess['compact_wall_s'])}, {sess.get('repacked_objects', 0):,} objects "
                f"into one pack; the verdicts use this row |"
            )
    else:
        lines.append(f"| **sessctl** | import failed: {sess['error']} | | | | | | |")
    lines.append("")

    dedup = {
        n: r for n, r in results.items() if any(c.name == n and c.group == "dedup" for c in comps)
    }
    solid = results.get("tar-zstd")
    verdicts = []
    if ok_import and dedup:
        best_name = min(dedup, key=lambda n: dedup[n]["files"])
        best = dedup[best_name]["files"]
        label = next(c.label for c in comps if c.name == best_name)
        ratio = sess["files"] / best
        verdicts.append(
            f"- sessctl / best of per-file zstd, git, restic and borg ({label}, {best:,} bytes) "
            f"= **{ratio:.3f}x** (target <= 0.5x): {verdict(ratio <= 0.5)}"
        )
    if ok_import and solid:
        ratio = sess["files"] / solid["files"]
        verdicts.append(
            f"- sessctl / solid tar+zstd ({solid['files']:,} bytes) = **{ratio:.3f}x** "
            f"(target <= 1.25x): {verdict(ratio <= 1.25)}"
        )
        one_stream = (analysis.get("solid") or {}) if analysis else {}
        if one_stream.get("zstd19_long27"):
            floor = one_stream["zstd19_long27"]
            ids = one_stream["objects"] * 32
            verdicts.append(
                f"  - what the data model leaves: the repository's {one_stream['objects']:,} "
                f"objects (one block per line, 32-byte ids), all concatenated as ONE "
                f"`zstd -19 --long=27` stream with no index and no random access, are "
                f"{floor:,} bytes = {floor / solid['files']:.3f}x tar+zstd; their ids alone, "
                f"each stored once (a lookup needs them), are {ids:,} bytes = "
                f"{ids / solid['files']:.2f}x of it."
            )
    if ok_import:
        ev = corpus.events_bytes
        cpu_rate = ev / sess["cpu_s"] / MB
        wall_rate = ev / sess["wall_s"] / MB
        runs = sess.get("cpu_s_runs")
        spread = ""
        if runs:
            rates = sorted(ev / c / MB for c in runs)
            spread = (
                f"median of {len(runs)} imports into fresh repositories: "
                f"{', '.join(f'{r:,.0f}' for r in rates)} MB/s; "
            )
        verdicts.append(
            f"- import throughput: {ev / MB:,.0f} MB of events.jsonl in {sess['cpu_s']:.2f} s "
            f"CPU = **{cpu_rate:,.0f} MB/s per core** ({spread}{wall_rate:,.0f} MB/s wall, "
            f"{sess['wall_s']:.2f} s; discovery {sess['discover_s']:.2f} s of it) "
            f"(target >= 135 MB/s): {verdict(cpu_rate >= 135)}"
        )
    if forks:
        fm = forks["manifest"]
        one, allr = forks["single"], forks["all"]
        nf = len(fm["forks"])
        new = fm["fork_new_fraction"]
        if "error" in one or "error" in allr:
            verdicts.append(f"- forks: import failed: {one.get('error') or allr.get('error')}")
        else:
            ratio = allr["files"] / one["files"]
            cut = fm["copied_events_bytes"] / fm["parent_events_bytes"]
            verdicts.append(
                f"- forks: one session of {fm['parent_bytes']:,} bytes ({fm['parent_turns']} "
                f"turns) stores {one['files']:,} bytes; with {nf} forks (each forked at turn "
                f"{fm['fork_turn']}, after {cut:.1%} "
                f"of its events, then {min(new):.1%}-{max(new):.1%} (mean "
                f"{sum(new) / len(new):.1%}) new events; "
                f"{fm['all_bytes']:,} bytes raw in all) {allr['files']:,} bytes = "
                f"**{ratio:.2f}x** one session (target < 1.5x): {verdict(ratio < 1.5)}"
            )
    if check:
        if "error" in check:
            verdicts.append(f"- fsck / export check failed to run: {check['error']}")
        else:
            ex = check.get("export", {})
            whys: dict[str, int] = {}
            for s in ex.get("sessions", []):
                whys[s["why"]] = whys.get(s["why"], 0) + 1
            ex_bytes = sum(s.get("bytes", 0) for s in ex.get("sessions", []))
            verdicts.append(
                f"- fsck after the import{' and repack' if 'compact_wall_s' in sess else ''}: "
                f"{'ok' if check['fsck_ok'] else '**FAILED**'} "
                f"({check['objects']:,} objects, {check['blocks']:,} blocks, "
                f"{check['chunks']:,} chunks, {check['refs']} refs; {check['fsck_s']:.1f} s); "
                f"byte-identical export (every file of the folder compared): "
                f"**{ex.get('ok', 0)}/{ex.get('total', 0)}** sample sessions, {ex_bytes:,} bytes "
                f"({', '.join(f'{v} {k}' for k, v in whys.items())}; "
                f"{ex.get('export_s', 0):.1f} s)"
            )
            bad = [s for s in ex.get("sessions", []) if not s["ok"]]
            for s in bad[:5]:
                verdicts.append(
                    f"  - {s['session_id']} ({s['kind']}): {'; '.join(s['mismatches'])[:300]}"
                )
    lines += ["Verdicts:", "", *verdicts, ""]
    if analysis and "error" not in analysis:
        lines += render_analysis(analysis, sess.get("files", 0), raw, forks)
    lines += [
        "Tool versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()) + ".",
        f"Whole run {elapsed / 60:.1f} min.",
    ]
    return "\n".join(lines)


def cache_note(results: dict[str, dict[str, Any]]) -> str:
    cached = sorted(n for n, r in results.items() if r.get("cached"))
    base = (
        "Competitor figures are cached in the work directory per corpus and command line, "
        "so a re-run after an importer change re-measures sessctl only (`--remeasure all` "
        "redoes everything). "
    )
    if not cached:
        return base + "In this run every store was built and measured afresh."
    when = sorted(results[n].get("measured_at", "?") for n in cached)
    span = when[0] if when[0] == when[-1] else f"{when[0]} to {when[-1][-5:]}"
    return (
        base + f"In this run {', '.join(cached)} came from that cache (measured {span} UTC on "
        "the same corpus with the same commands)."
    )


def render_analysis(
    analysis: dict[str, Any], total: int, raw: int, forks: dict[str, Any]
) -> list[str]:
    out = ["### What takes sessctl's bytes", ""]
    classes = analysis.get("classes") or {}
    if classes:
        rows = sorted(classes.items(), key=lambda kv: -kv[1][1])
        stored_sum = sum(v[1] for v in classes.values()) or 1
        canon_sum = sum(v[2] for v in classes.values())
        out += [
            "Object frames in the corpus repository by class (a chunk is counted under the "
            "first block naming it; frames are zstd -3 per object when that is smaller):",
            "",
            "| objects | count | stored bytes | share | uncompressed |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, (count, stored, canon) in rows[:12]:
            out.append(
                f"| {name} | {count:,} | {stored:,} | {stored / stored_sum:.1%} | {canon:,} |"
            )
        rest = rows[12:]
        if rest:
            out.append(
                f"| ({len(rest)} more classes) | {sum(v[0] for _, v in rest):,} | "
                f"{sum(v[1] for _, v in rest):,} | "
                f"{sum(v[1] for _, v in rest) / stored_sum:.1%} | "
                f"{sum(v[2] for _, v in rest):,} |"
            )
        out.append(
            f"| **all objects** | {sum(v[0] for v in classes.values()):,} | "
            f"{stored_sum:,} | 100% | {canon_sum:,} |"
        )
        dirs = analysis.get("dirs", {})
        out += [
            "",
            "Repository files: "
            + ", ".join(f"{k} {v:,}" for k, v in dirs.items())
            + f" (total {total:,}; the pack files and indexes hold "
            f"{dirs.get('objects/pack', 0):,} bytes, "
            f"{dirs.get('objects/pack', 0) / max(stored_sum, 1):.2f}x the frames one by one).",
            "",
        ]
    solid = analysis.get("solid") or {}
    if solid:
        levels = sorted(int(k[4:-7]) for k in solid if k.endswith("_long27"))
        figs = "; ".join(
            f"`zstd -{lv} --long=27`: {solid[f'zstd{lv}_long27']:,} bytes" for lv in levels
        )
        out += [
            f"- Deduplication vs compression: the repository's {solid['objects']:,} "
            f"distinct objects, concatenated in session order, are {solid['bytes']:,} "
            f"canonical bytes ({raw / solid['bytes']:.1f}x less than raw: what "
            f"deduplication leaves; {solid['id_bytes']:,} of them are the 32-byte ids "
            f"naming parents, chunks and links). Compressed one by one they store "
            f"{sum(v[1] for v in classes.values()):,} bytes; as one solid stream: {figs}.",
        ]
    st = analysis.get("strings") or {}
    if st:
        out += [
            f"- The corpus's own redundancy: its JSON string values of at least "
            f"{st['min_len']} characters (message and thinking texts, tool outputs, system "
            f"prompt, tool schemas, in every representation: transcript, `llm:request`, "
            f"`llm:response`, `content_block:*`, `tool:post`, ...) are {st['strings']:,} "
            f"values, {st['string_bytes']:,} bytes, but only {st['distinct']:,} distinct "
            f"values, {st['distinct_bytes']:,} bytes ({st['distinct_zstd3']:,} as one "
            f"zstd -3 stream, {st['distinct_zstd19_long27']:,} at -19 --long=27); keys and "
            f"short values are {st['other_bytes']:,} bytes more.",
        ]
    delta = forks.get("delta") if forks else None
    if delta:
        added = sum(r[2] for r in delta) or 1
        top = ", ".join(
            f"{r[0]} {r[2]:,} ({r[2] / added:.0%}, {r[1]:,} objects)" for r in delta[:5]
        )
        out += [f"- Forks: the ten forks added {added:,} bytes of object frames; most: {top}."]
    out.append("")
    return out


if __name__ == "__main__":
    sys.exit(main())
