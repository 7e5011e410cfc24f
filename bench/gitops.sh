#!/usr/bin/env bash
# A `gitops` promotion into a config repository of 10,000 files and 5,000 commits (a bare local
# remote): `vane run` with a cold cache (no cache under the state folder: a full fetch), then with
# a warm one (a fetch that brings nothing new), next to the same change made with the git CLI in a
# clone (`git pull && sed -i && git commit -am && git push`). Every measured run is a real one-line
# change, commit and push: hyperfine's prepare step picks the next tag before each run.
#
# usage: bench/gitops.sh [RUNS]     (default: 10 hyperfine runs; 3 for the cold cache)
set -euo pipefail

runs=${1:-10}
files=10000
commits=5000
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
vane="$root/target/release/vane"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# The history in one `git fast-import` stream: a first commit with every file, then commits that
# each change one app's tag, as a promotion bot's history does.
python3 - "$files" "$commits" > history.fi <<'PY'
import sys
files, commits = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer

def values(app, tag):
    return (f"# Values for {app}.\nreplicaCount: 2\n\nimage:\n"
            f"  repository: ghcr.io/acme/{app}\n  tag: \"{tag}\"   # promoted by vane\n"
            f"resources:\n  limits: {{ cpu: 500m, memory: 256Mi }}\n").encode()

def data(blob):
    out.write(b"data %d\n" % len(blob) + blob + b"\n")

apps = ["api"] + [f"app-{n:05d}" for n in range(files - 1)]
when = 1_700_000_000
for n in range(commits):
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer bench <bench@localhost> %d +0000\n" % (when + n))
    if n == 0:
        data(b"seed")
        for app in apps:
            out.write(f"M 100644 inline apps/{app}/values.yaml\n".encode())
            data(values(app, "v0"))
    else:
        app = apps[1 + n % (len(apps) - 1)]
        data(f"deploy {app} v{n}".encode())
        out.write(f"M 100644 inline apps/{app}/values.yaml\n".encode())
        data(values(app, f"v{n}"))
PY
git init --quiet --bare remote.git
git -C remote.git fast-import --quiet < history.fi
git -C remote.git symbolic-ref HEAD refs/heads/main
git -C remote.git gc --quiet
echo "config repository: $(git -C remote.git ls-tree -r main | wc -l) files," \
    "$(git -C remote.git rev-list --count main) commits," \
    "$(du -sh remote.git | cut -f1) packed"

mkdir -p workflows
cat > workflows/promote.yaml <<YAML
version: 1
name: promote
on: { deploy: {} }
steps:
  - gitops:
      repo: $work/remote.git
      branch: main
      files:
        - path: apps/api/values.yaml
          set: { image.tag: "{{ event.data.tag }}" }
      message: "deploy api {{ event.data.tag }}"
YAML
# The next tag, written where the measured command reads it (an event for vane, a file for git).
cat > next-tag.sh <<'SH'
n=$(cat counter 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > counter
printf '{"type":"deploy","data":{"tag":"bench-%s"}}' "$n" > event.json
echo "bench-$n" > tag
SH
git clone --quiet remote.git clone
git -C clone config user.name bench
git -C clone config user.email bench@localhost

before=$(git -C remote.git rev-list --count main)
hyperfine --style basic --runs 3 \
    --prepare 'rm -rf state; sh next-tag.sh' \
    --export-json cold.json \
    --command-name 'vane run, cold cache' "$vane run --quiet --state state/state.db --event event.json"
hyperfine --style basic --warmup 1 --runs "$runs" \
    --export-json warm.json \
    --prepare 'sh next-tag.sh' \
    --command-name 'vane run, warm cache' "$vane run --quiet --state state/state.db --event event.json" \
    --prepare 'sh next-tag.sh' \
    --command-name 'git pull, sed, commit, push' \
    'cd clone && git pull --quiet && sed -i "s/^  tag: .*/  tag: \"$(cat ../tag)\"   # promoted by vane/" apps/api/values.yaml && git commit --quiet -am "deploy api $(cat ../tag)" && git push --quiet'

# Each measured run (and each warmup) must have landed one commit, or the figures mean nothing.
after=$(git -C remote.git rev-list --count main)
expected=$((3 + 2 * (runs + 1)))
if [ $((after - before)) -ne "$expected" ]; then
    echo "expected $expected new commits on the remote, found $((after - before))" >&2
    exit 1
fi
git -C remote.git show main:apps/api/values.yaml | grep -q "tag: \"bench-$(cat counter)\"   # promoted by vane"

python3 - cold.json warm.json <<'PY'
import json, sys
for name in sys.argv[1:]:
    for result in json.load(open(name))["results"]:
        times = sorted(result["times"])
        print(f"{result['command']:<30} median {result['median'] * 1000:7.1f} ms"
              f"  (min {times[0] * 1000:.1f}, max {times[-1] * 1000:.1f}, {len(times)} runs)")
PY
