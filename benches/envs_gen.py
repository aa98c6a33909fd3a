#!/usr/bin/env python3
"""benches/envs_gen.py — a `git fast-import` stream of promotion commits with the exact shape of two real
ones (used by benches/envs.sh to give env/<env> a long deployment history quickly).

usage: envs_gen.py REPO BRANCH COUNT FIRST_SECS STEP_SECS TEMPLATE_A TEMPLATE_B > stream

TEMPLATE_A and TEMPLATE_B are two real promotion commits made by `mlgit promote` that alternate: A
deployed tag a with previous tag b, B deployed b with previous a, and BRANCH's tip is one of them. The
stream appends COUNT commits to BRANCH that alternate likewise, starting with the template whose tag does
not serve now. Each generated commit is its template with only the time changed:

- parents: [previous tip, the template's second parent (the snapshot commit)];
- tree: the template's tree, with `promoted_at` in DEPLOYMENT.yaml set to the commit's time;
- message, author and committer identity: the template's; the dates FIRST_SECS + i * STEP_SECS (UTC).
"""

import re
import subprocess
import sys
from datetime import datetime, timezone


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout


def template(repo, commit):
    raw = git(repo, "cat-file", "commit", commit)
    header, message = raw.split(b"\n\n", 1)
    parents, ident = [], {}
    for line in header.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == b"parent":
            parents.append(value.decode())
        elif key in (b"author", b"committer"):
            # "Name <email> <secs> <tz>": keep the identity, the date is replaced.
            ident[key] = value.rsplit(b" ", 2)[0]
    if len(parents) != 2:
        sys.exit(f"envs_gen.py: {commit} has {len(parents)} parents; a promotion commit has 2")
    tree = {}
    for entry in git(repo, "ls-tree", "-r", "-z", commit).split(b"\0"):
        if entry:
            meta, path = entry.split(b"\t", 1)
            mode, _, sha = meta.split(b" ")
            tree[path] = (mode, sha)
    deployment = git(repo, "show", f"{commit}:DEPLOYMENT.yaml").decode()
    m = re.search(r"^promoted_at: (['\"]?)(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)([^'\"\n]*)\1$", deployment, re.M)
    if not m:
        sys.exit(f"envs_gen.py: no promoted_at line in {commit}:DEPLOYMENT.yaml")
    tag = git(repo, "show", f"{commit}:DEPLOYED_TAG").decode().strip()
    return {"snapshot": parents[1], "ident": ident, "message": message, "tree": tree,
            "deployment": deployment, "promoted_at": m, "tag": tag}


def quoted(path):
    """A path as fast-import reads it: C-style quoted when it starts with a quote or holds a newline."""
    if not (path.startswith(b'"') or b"\n" in path or b"\\" in path):
        return path
    return b'"' + path.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n") + b'"'


def main():
    repo, branch, count, first, step, a, b = sys.argv[1:8]
    count, first, step = int(count), int(first), int(step)
    ta, tb = template(repo, a), template(repo, b)
    tip = git(repo, "rev-parse", f"refs/heads/{branch}").decode().strip()
    serving = git(repo, "show", f"{tip}:DEPLOYED_TAG").decode().strip()
    order = [tb, ta] if serving == ta["tag"] else [ta, tb]
    out = sys.stdout.buffer
    current = template(repo, tip)["tree"]
    for i in range(count):
        t = order[i % 2]
        secs = first + i * step
        m = t["promoted_at"]
        when = datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        quote = m.group(1)
        deployment = (t["deployment"][: m.start()] + f"promoted_at: {quote}{when}{m.group(3)}{quote}"
                      + t["deployment"][m.end():]).encode()
        out.write(f"commit refs/heads/{branch}\n".encode())
        for key in (b"author", b"committer"):
            out.write(key + b" " + t["ident"][key] + f" {secs} +0000\n".encode())
        out.write(f"data {len(t['message'])}\n".encode() + t["message"] + b"\n")
        if i == 0:
            out.write(f"from {tip}\n".encode())
        out.write(f"merge {t['snapshot']}\n".encode())
        # Only what differs from the previous commit's tree (fast-import starts from the first parent's).
        for path in sorted(set(current) - set(t["tree"])):
            out.write(b"D " + quoted(path) + b"\n")
        for path, (mode, sha) in sorted(t["tree"].items()):
            if path != b"DEPLOYMENT.yaml" and current.get(path) != (mode, sha):
                out.write(b"M " + mode + b" " + sha + b" " + quoted(path) + b"\n")
        out.write(b"M 100644 inline DEPLOYMENT.yaml\n" + f"data {len(deployment)}\n".encode() + deployment + b"\n")
        current = t["tree"]
    out.write(b"done\n")


if __name__ == "__main__":
    main()
