#!/usr/bin/env python3
"""Generates the matching benchmark's inputs: N workflows whose `on.push` filters differ by
repository and branch, and M NDJSON push events (~5 KB each, shaped like GitHub's real push
payload in tests/fixtures/github/push.branch.json) spread over those repositories.

usage: bench/gen.py OUT_DIR WORKFLOWS EVENTS
"""
import json
import os
import random
import sys

out, workflow_count, event_count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.makedirs(os.path.join(out, "workflows"), exist_ok=True)

for index in range(workflow_count):
    branch = ["main", "release/**", "develop"][index % 3]
    text = f"""version: 1
name: deploy-{index:04d}
on:
  push:
    repos: [acme/service-{index:04d}]
    branches: [{json.dumps(branch)}]
    paths-ignore: ["docs/**"]
if: event.actor != 'dependabot[bot]'
steps:
  - id: deploy
    run: ./deploy.sh {{{{ event.repo }}}} {{{{ event.sha[:12] }}}}
"""
    with open(os.path.join(out, "workflows", f"deploy-{index:04d}.yaml"), "w") as handle:
        handle.write(text)

with open(os.path.join(root, "tests/fixtures/github/push.branch.json")) as handle:
    template = json.load(handle)

# GitHub's payload is ~8 KB, most of it API URL templates of the repository; keeping the first
# few makes the ~5 KB event the benchmark is specified with.
url_keys = [key for key in template["repository"] if key.endswith("_url")]
for key in url_keys[12:]:
    del template["repository"][key]

random.seed(7)
with open(os.path.join(out, "events.ndjson"), "w") as handle:
    for number in range(event_count):
        event = json.loads(json.dumps(template))
        service = random.randrange(workflow_count)
        repo = f"acme/service-{service:04d}"
        branch = random.choice(["main", "release/1.2", "develop", "feature/x"])
        event["ref"] = f"refs/heads/{branch}"
        event["after"] = f"{number:040x}"
        event["repository"]["full_name"] = repo
        event["repository"]["name"] = f"service-{service:04d}"
        event["commits"][0]["id"] = event["after"]
        event["commits"][0]["modified"] = [f"src/module_{number % 50}.rs"]
        event["head_commit"]["id"] = event["after"]
        envelope = {"type": "push", "source": "github", "data": event}
        handle.write(json.dumps(envelope, separators=(",", ":")) + "\n")

with open(os.path.join(out, "push.json"), "w") as handle:
    event = json.loads(json.dumps(template))
    event["repository"]["full_name"] = "acme/service-0000"
    event["ref"] = "refs/heads/main"
    json.dump({"type": "push", "source": "github", "data": event}, handle)
