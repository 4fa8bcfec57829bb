#!/usr/bin/env python3
"""A point-in-time checker for the integration tests: drives random pushes
into the repositories under a root while some writers archive them (the
service, a `gitwal backup` loop, ...), records the live state of every
repository at a moment after the archive caught up with each push, then
checks that `gitwal restore --until` that moment gives exactly that state
(refs, HEAD, connectivity) for a random sample of moments.

  pitr_check.py drive ROOT WORKDIR STEPS SECONDS OUT.json
      STEPS random operations (or until SECONDS have passed), each followed
      by a wait for the archive to reach the live state; OUT.json gets the
      checkpoints. $PITR_BEFORE_STEPS, when set, is a shell command run once
      the archive holds the starting state, before the first operation (to
      start a fault window, say).
      With PITR_SPOOLED_LOG=LOG (the archiver's log, for a store that is
      away), a step waits instead until the archiver has captured each
      repository it changed into its spool: one more `event=spooled repo=REL`
      line in LOG for it (restore cannot see the spool).
  pitr_check.py checkpoint ROOT OUT.json WHAT REL...
      Append to OUT.json (made when absent) a checkpoint of the live state
      of each REL now, named WHAT: for a test that drives its own pushes
      and waits itself until the archive holds each.
  pitr_check.py verify OUT.json SCRATCH COUNT SEED
      COUNT restores at randomly chosen checkpoints (with replacement when
      there are fewer), each compared with the recorded state; COUNT 0:
      every checkpoint once, in order.
  pitr_check.py caught-up ROOT SECONDS REL...
      Wait until the archive's newest state of each REL equals the live
      repository (absent from both when it was deleted); exit 1 after SECONDS.
      What tests wait for instead of a quiet period: once it holds, nothing
      more is written for these repositories until they change again.
      scripts/run.sh (the demo) waits on it too.

gitwal is $GITWAL_BIN; the store, index and root come from the environment
(GITWAL_STORE, GITWAL_STATE_DIR, GITWAL_ROOT), as for the writers.
Waits are for observable conditions, with generous timeouts: no fixed sleep.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import time

GITWAL = os.environ["GITWAL_BIN"]
CATCH_UP_SECONDS = 60


def git(*args, cwd=None, check=True):
    p = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and p.returncode != 0:
        sys.exit("git %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p.stdout


def live_state(path):
    """refs and HEAD of a bare repository, as the dry-run prints them."""
    refs = {}
    for line in git("-C", path, "for-each-ref", "--format=%(objectname) %(refname)").splitlines():
        oid, name = line.split(" ", 1)
        refs[name] = oid
    head = subprocess.run(["git", "-C", path, "symbolic-ref", "-q", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        refs["HEAD"] = "ref: " + head.stdout.strip()
    else:
        refs["HEAD"] = git("-C", path, "rev-parse", "HEAD").strip()
    return refs


def archived_state():
    """The archive's newest state of every repository, from `restore --dry-run --json` (None: not yet)."""
    p = subprocess.run([GITWAL, "restore", "--dry-run", "--json", "--to", "/nonexistent-gitwal-dry-run"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    out = {}
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line)
            if "refs" in d:
                out[d["repository"]] = d["refs"]
    return out


class Driver:
    def __init__(self, root, work, rng):
        self.root, self.work, self.rng = root, work, rng
        self.repos = sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, _ in os.walk(root)
                            for n in dirs if n.endswith(".git"))
        self.n = 0
        self.run = "%x" % (time.time_ns() % (1 << 32))  # names unique across drives of one root

    def clone(self, rel):
        w = os.path.join(self.work, rel)
        if not os.path.isdir(w):
            git("clone", "-q", os.path.join(self.root, rel), w)
        git("-C", w, "fetch", "-q", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*")
        return w

    def commit(self, w, base):
        self.n += 1
        git("-C", w, "checkout", "-q", "-B", "work", base)
        with open(os.path.join(w, "f%d.txt" % (self.n % 7)), "a") as f:
            f.write("change %d %d\n" % (self.n, self.rng.randrange(1 << 30)))
        git("-C", w, "add", "-A")
        git("-C", w, "commit", "-qm", "change %d" % self.n)

    def branches(self, rel):
        return sorted(l.split()[1][len("refs/heads/"):] for l in
                      git("-C", os.path.join(self.root, rel), "for-each-ref", "--format=%(objectname) %(refname)",
                          "refs/heads").splitlines())

    def step(self):
        rel = self.rng.choice(self.repos)
        w = self.clone(rel)
        branches = self.branches(rel)
        op = self.rng.choice(["push", "push", "push", "branch", "force", "delete", "tag", "atag"])
        if not branches:
            op = "push"
        b = self.rng.choice(branches) if branches else "main"
        if op == "push":
            self.commit(w, "origin/" + b if b in branches else "HEAD")
            git("-C", w, "push", "-q", "origin", "work:refs/heads/" + b)
        elif op == "branch":
            git("-C", w, "push", "-q", "origin", "origin/%s:refs/heads/topic-%s-%d" % (b, self.run, self.n))
            self.n += 1
        elif op == "force":
            # A rewind: the branch loses its last commit and gets another.
            parent = git("-C", w, "rev-parse", "-q", "--verify", "origin/%s~1" % b, check=False).strip()
            self.commit(w, parent or "origin/" + b)
            git("-C", w, "push", "-q", "-f", "origin", "work:refs/heads/" + b)
        elif op == "delete" and len(branches) > 1:
            victim = self.rng.choice([x for x in branches if x != "main"] or branches[1:])
            git("-C", w, "push", "-q", "origin", ":refs/heads/" + victim)
        elif op in ("tag", "atag"):
            name = "t%s-%d" % (self.run, self.n)
            self.n += 1
            if op == "atag":
                git("-C", w, "tag", "-a", "-m", name, name, "origin/" + b)
            else:
                git("-C", w, "tag", name, "origin/" + b)
            git("-C", w, "push", "-q", "origin", "refs/tags/" + name)
        return "%s %s %s" % (op, rel, b)

    def states(self):
        return {rel: live_state(os.path.join(self.root, rel)) for rel in self.repos}


def wait_caught_up(live, seconds=CATCH_UP_SECONDS):
    """live: {rel: state, or None when the repository must be absent from the archive's newest states}."""
    deadline = time.monotonic() + seconds
    delay = 0.02
    while True:
        got = archived_state()
        if got is not None and all(got.get(rel) == refs for rel, refs in live.items()):
            return
        if time.monotonic() > deadline:
            diff = {rel: (refs, (got or {}).get(rel)) for rel, refs in live.items() if (got or {}).get(rel) != refs}
            sys.exit("the archive did not reach the live state within %d s: %s" % (seconds, diff))
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def spooled_counts(log):
    counts = {}
    with open(log) as f:
        for line in f:
            if " event=spooled " in line:
                rel = line.split(" repo=", 1)[1].split(" ", 1)[0]
                counts[rel] = counts.get(rel, 0) + 1
    return counts


def wait_spooled(log, before, changed):
    """Until each repository in changed has one more spooled segment in log than in before."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    delay = 0.02
    while True:
        got = spooled_counts(log)
        if all(got.get(rel, 0) > before.get(rel, 0) for rel in changed):
            return got
        if time.monotonic() > deadline:
            sys.exit("the archiver did not spool %s within %d s (log %s)" % (sorted(changed), CATCH_UP_SECONDS, log))
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def drive(root, work, steps, seconds, out):
    rng = random.Random(int(os.environ.get("PITR_SEED", "1")))
    d = Driver(root, work, rng)
    log = os.environ.get("PITR_SPOOLED_LOG")
    checkpoints = []
    t_end = time.monotonic() + seconds
    live = d.states()
    if log:
        counts = spooled_counts(log)
    else:
        wait_caught_up(live)
    checkpoints.append({"time_us": time.time_ns() // 1000, "what": "start", "states": live})
    if os.environ.get("PITR_BEFORE_STEPS"):
        subprocess.run(os.environ["PITR_BEFORE_STEPS"], shell=True, check=True)
    for k in range(steps):
        if time.monotonic() > t_end:
            break
        what = d.step()
        before, live = live, d.states()
        if log:
            counts = wait_spooled(log, counts, [rel for rel in live if live[rel] != before[rel]])
        else:
            wait_caught_up(live)
        # A moment after the archive holds this state and before the next change.
        checkpoints.append({"time_us": time.time_ns() // 1000, "what": what, "states": live})
    with open(out, "w") as f:
        json.dump(checkpoints, f)
    print("%d steps driven" % (len(checkpoints) - 1))


def checkpoint(root, out, what, rels):
    cps = json.load(open(out)) if os.path.exists(out) else []
    cps.append({"time_us": time.time_ns() // 1000, "what": what,
                "states": {rel: live_state(os.path.join(root, rel)) for rel in rels}})
    with open(out + ".tmp", "w") as f:
        json.dump(cps, f)
    os.replace(out + ".tmp", out)


def restored_state(path):
    s = live_state(path)
    subprocess.run(["git", "-C", path, "fsck", "--connectivity-only", "--no-progress"], check=True,
                   capture_output=True)
    return s


def verify(out, scratch, count, seed):
    checkpoints = json.load(open(out))
    rng = random.Random(seed)
    chosen = checkpoints if count == 0 else [rng.choice(checkpoints) for _ in range(count)]
    for i, cp in enumerate(chosen):
        us = cp["time_us"]
        target = os.path.join(scratch, "r%d" % i)
        until = "@%d.%06d" % (us // 1000000, us % 1000000)
        p = subprocess.run([GITWAL, "restore", "--until", until, "--to", target], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("restore --until %s (after '%s') exited %d: %s" % (until, cp["what"], p.returncode, p.stderr))
        for rel, want in cp["states"].items():
            try:
                got = restored_state(os.path.join(target, rel))
            except subprocess.CalledProcessError as e:
                sys.exit("restore --until %s: %s is not connected: %s" % (until, rel, e.stderr))
            if got != want:
                sys.exit("restore --until %s (after '%s'): %s differs:\n  want %s\n  got  %s" %
                         (until, cp["what"], rel, want, got))
        shutil.rmtree(target, ignore_errors=True)
    print("%d point-in-time restores exact (%d checkpoints)" % (len(chosen), len(checkpoints)))


if __name__ == "__main__":
    if sys.argv[1] == "drive":
        drive(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    elif sys.argv[1] == "caught-up":
        root = sys.argv[2]
        wait_caught_up({rel: live_state(os.path.join(root, rel)) if os.path.isdir(os.path.join(root, rel)) else None
                        for rel in sys.argv[4:]}, float(sys.argv[3]))
    elif sys.argv[1] == "checkpoint":
        checkpoint(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif sys.argv[1] == "verify":
        verify(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("usage: pitr_check.py drive|caught-up|checkpoint|verify ...")
