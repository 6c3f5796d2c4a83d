"""sessctl remote/push/pull/fetch/clone/status --remote/fsck --remote, as subprocesses."""

from __future__ import annotations

import json

from sync_support import SyncEnv, big_event, make_session, message

from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.remote.lazy import load_promisors
from amplifier_session_storage.repository.local import init_local


async def test_remote_add_list_remove_and_no_secrets_on_disk(sync_env: SyncEnv) -> None:
    root = sync_env.root("a")
    init_local(root)
    ok = sync_env.sessctl("remote", "add", "origin", *sync_env.spec_args(), repo=root)
    assert ok.returncode == 0, ok.stderr
    again = sync_env.sessctl("remote", "add", "origin", *sync_env.spec_args(), repo=root)
    assert again.returncode == 2 and "already exists" in again.stderr
    other = sync_env.sessctl(
        "remote", "add", "backup", "--cosmos-endpoint", "https://acct.documents.azure.com:443/",
        "--user", "u1", "--blob-account-url", "https://acct.blob.core.windows.net", repo=root,
    )
    assert other.returncode == 0, other.stderr
    insecure = sync_env.sessctl(
        "remote", "add", "bad", "--cosmos-endpoint", "https://acct.documents.azure.com:443/",
        "--user", "u1", "--insecure-tls", repo=root,
    )
    assert insecure.returncode == 2 and "127.0.0.1" in insecure.stderr
    listed = json.loads(sync_env.sessctl("--json", "remote", "list", repo=root, check=True).stdout)
    assert [r["name"] for r in listed] == ["backup", "origin"]
    assert listed[1]["insecure_tls"] is True and "insecure_tls" not in listed[0]
    text = (root / "remotes.json").read_text()
    for secret in sync_env.environ.values():
        assert secret not in text
    assert "AccountKey" not in text
    table = sync_env.sessctl("remote", "list", repo=root, check=True).stdout
    assert "origin" in table and "backup" in table
    gone = sync_env.sessctl("remote", "remove", "backup", repo=root)
    assert gone.returncode == 0
    assert sync_env.sessctl("remote", "remove", "backup", repo=root).returncode == 3
    init = sync_env.sessctl("remote", "init", "origin", repo=root)
    assert init.returncode == 0, init.stderr


async def test_push_clone_pull_status_fetch_lazy_fsck_remote(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s1", 6, big=1)
    await make_session(a, "s2", 3)
    root_a, root_b, root_c = (sync_env.root(n) for n in "abc")

    usage = sync_env.sessctl("push", repo=root_a)
    assert usage.returncode == 2  # name sessions or --all
    pushed = sync_env.sessctl("push", "--all", repo=root_a)
    assert pushed.returncode == 0, pushed.stderr
    assert "created" in pushed.stdout and "requests" in pushed.stderr

    cloned = sync_env.sessctl("clone", str(root_b), *sync_env.spec_args(), repo=root_a)
    assert cloned.returncode == 0, cloned.stderr
    shown = sync_env.sessctl("--json", "show", "s1", repo=root_b, check=True)
    assert json.loads(shown.stdout)

    # A moves on: A is ahead; B pulls a fast-forward
    await a.append_many("s1", [(BlockType.MESSAGE, message(i, "new"), None) for i in range(3)])
    status = json.loads(
        sync_env.sessctl("--json", "status", "--remote", "origin", repo=root_a, check=True).stdout
    )
    by_id = {s["session_id"]: s for s in status}
    assert (by_id["s1"]["state"], by_id["s1"]["ahead"]) == ("ahead", 3)
    assert by_id["s2"]["state"] == "up-to-date"
    human = sync_env.sessctl("status", "--remote", "origin", repo=root_a, check=True)
    assert "AHEAD" in human.stdout and "s1" in human.stdout
    sync_env.sessctl("push", "s1", repo=root_a, check=True)
    pulled = json.loads(sync_env.sessctl("--json", "pull", repo=root_b, check=True).stdout)
    assert {s["session_id"]: s["integration"] for s in pulled["sessions"]} == {
        "s1": "fast-forward", "s2": "up-to-date"}
    assert pulled["requests"] > 0

    # a lazy fetch into a third repository: blocks only, the remote becomes a promisor
    init_local(root_c)
    sync_env.sessctl("remote", "add", "origin", *sync_env.spec_args(), repo=root_c, check=True)
    lazy = json.loads(sync_env.sessctl("--json", "fetch", "--lazy", repo=root_c,
                                       check=True).stdout)
    full = json.loads(sync_env.sessctl("--json", "fetch", repo=root_b, check=True).stdout)
    assert lazy["lazy"] is True and load_promisors(root_c) == ["origin"]
    assert lazy["objects"] == 11 + 4  # blocks only: s1 (created, 6 + 3 messages, event), s2
    assert full["objects"] == 0  # b is up to date

    fsck = sync_env.sessctl("fsck", "--remote", "origin", repo=root_a)
    assert fsck.returncode == 0, fsck.stderr + fsck.stdout
    assert fsck.stdout.strip().endswith("ok")
    sampled = json.loads(sync_env.sessctl("--json", "fsck", "--remote", "origin", "--sample", "3",
                                          repo=root_a, check=True).stdout)
    assert sampled["ok"] and sampled["sampled"] is True
    assert sync_env.sessctl("fsck", "--sample", "3", repo=root_a).returncode == 2


async def test_cli_push_that_is_not_a_fast_forward_exits_4(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s", 2)
    root_a, root_b = sync_env.root("a"), sync_env.root("b")
    sync_env.sessctl("push", "--all", repo=root_a, check=True)
    sync_env.sessctl("clone", str(root_b), *sync_env.spec_args(), repo=root_a, check=True)
    await a.append("s", BlockType.EVENT, big_event(2))
    sync_env.sessctl("push", "s", repo=root_a, check=True)
    b = await sync_env.repo("b")
    await b.append("s", BlockType.MESSAGE, message(1, "b"))
    rejected = sync_env.sessctl("push", "s", repo=root_b)
    assert rejected.returncode == 4
    assert "not a fast-forward" in rejected.stderr and "rejected" in rejected.stdout
    merged = json.loads(sync_env.sessctl("--json", "pull", "s", repo=root_b, check=True).stdout)
    assert merged["sessions"][0]["integration"] == "merged"
    assert sync_env.sessctl("push", "s", repo=root_b).returncode == 0
    forced = sync_env.sessctl("push", "--force", "s", repo=root_a)  # a is behind: forced back
    assert forced.returncode == 0 and "forced" in forced.stdout
