#!/usr/bin/env python3
"""Issue 15's benchmarks: the workloads users write, measured whole-process, three runs each.

  bench/workloads.py rules  VANE [--events N] [--peer-events N] [--runs 3] [--no-peer]
  bench/workloads.py deploy VANE [--events N] [--runs 3]

`rules`: EDA's own rule shape. R workflows (R = 100 and 1,000), each
    on: {push: {}}
    if: event.repo == "acme/repo-K" and event.ref == "refs/heads/main"
fed envelope events whose `data` is what ../shared/peers/sources/github_push.py makes (~1.1 KB:
three commits, 75 % of them on main, cycling over R repositories). Beside vane, in the same run,
ansible-rulebook 1.3.2 with the same rules (`condition: event.type == "push" and event.repo ==
... and event.ref == ...`, action `none`) through the peers' own harness (bench_rulebook.py):
its cold start (launch to exit for one event), its steady-state events/s (inside its source
plugin) and its peak RSS.

`deploy`: the realistic deploy workload. W workflows (100 and 1,000) with `repos`/`branches`/
`paths-ignore` filters, an `if`, `vars` and two steps (run + notify), fed GitHub's real push
payload (tests/fixtures/github/push.branch.json, untrimmed, ~8 KB) for W repositories.

Figures: cold start = median wall time of `vane plan --quiet` for one event (whole process);
throughput = events / wall time of `vane run --dry-run --quiet` over the whole stream (whole
process, cold start included); peak RSS = the process's maxrss (wait4). Every figure is the median
of --runs runs, with min–max.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("BENCH_DIR", "/tmp/vane-bench-workloads")
PEERS = os.environ.get("PEERS", os.path.join(ROOT, "..", "shared", "peers"))


def timed(argv, stdin_path, cwd):
    """Runs argv with stdin from a file; returns (seconds, peak RSS in KiB, stdout)."""
    with open(stdin_path, "rb") as stdin:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, cwd=cwd)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(argv)} exited {code}: {output.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss, output.decode(errors="replace").strip()


def spread(values, unit="", scale=1.0, digits=1):
    values = [v * scale for v in values]
    median = statistics.median(values)
    return (f"{median:,.{digits}f}{unit} (min–max {min(values):,.{digits}f}–"
            f"{max(values):,.{digits}f}{unit}, {len(values)} runs)"), median


def cold_start(vane, folder, event, runs):
    """Median of `runs` rounds of 10 cold starts each (whole process, one event)."""
    argv = [vane, "plan", "--quiet", "--state", ":memory:"]
    timed(argv, event, folder)  # page cache
    rounds = []
    for _ in range(runs):
        rounds.append(statistics.median(timed(argv, event, folder)[0] for _ in range(10)))
    return rounds


def throughput(vane, folder, events_path, count, runs):
    argv = [vane, "run", "--dry-run", "--quiet", "--state", ":memory:"]
    rates, rss, summary = [], [], ""
    for _ in range(runs):
        seconds, peak, summary = timed(argv, events_path, folder)
        rates.append(count / seconds)
        rss.append(peak)
    return rates, rss, summary


# ---------------------------------------------------------------- rules (EDA's shape)

def write_rules(folder, rules):
    os.makedirs(os.path.join(folder, "workflows"), exist_ok=True)
    for k in range(rules):
        with open(os.path.join(folder, "workflows", f"rule-{k:04d}.yaml"), "w") as handle:
            handle.write(
                f"version: 1\nname: push-main-repo-{k}\non: {{ push: {{}} }}\n"
                f"if: event.repo == \"acme/repo-{k}\" and event.ref == \"refs/heads/main\"\n"
                "steps:\n  - run: \"true\"\n")


def rule_events(path, count, repos):
    sys.path.insert(0, os.path.join(PEERS, "sources"))
    from github_push import make_event  # the peers' own generator: the same stream for both

    with open(path, "w") as handle:
        for i in range(count):
            data = make_event(i, repos, 4, 3)
            envelope = {"type": "push", "source": "bench", "repo": data["repo"],
                        "ref": data["ref"], "data": data}
            handle.write(json.dumps(envelope, separators=(",", ":")) + "\n")


def peer(rules, events, runs):
    """ansible-rulebook through the peers' harness: cold start (N=1), then throughput (N)."""
    harness = os.path.join(PEERS, "bench_rulebook.py")
    out = os.path.join(WORK, "peer.jsonl")

    def once(count):
        result = subprocess.run(
            [sys.executable, harness, "--rules", str(rules), "--events", str(count),
             "--action", "none", "--timeout", "900", "--out", out,
             "--logdir", os.path.join(WORK, "peer-logs")],
            capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"ansible-rulebook failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    cold = [once(1)["wall_s"] for _ in range(runs)]
    runs_n = [once(events) for _ in range(runs)]
    return cold, [r["internal_eps"] for r in runs_n], [r["maxrss_kb"] for r in runs_n]


def rules_bench(args):
    have_peer = not args.no_peer and os.path.exists(os.path.join(PEERS, "venv", "bin", "ansible-rulebook"))
    if not args.no_peer and not have_peer:
        sys.exit(f"no ansible-rulebook under {PEERS}/venv: run {PEERS}/setup.sh (or pass --no-peer)")
    print(f"== rules as conditions: EDA's rule shape, {args.events:,} envelope events "
          f"(github_push.py data), whole process, {args.runs} runs")
    for rules in (100, 1000):
        folder = os.path.join(WORK, f"rules-{rules}")
        events = os.path.join(folder, f"events-{args.events}.ndjson")
        one = os.path.join(folder, "one.ndjson")
        if not os.path.exists(events):
            write_rules(folder, rules)
            rule_events(events, args.events, rules)
            rule_events(one, 1, rules)
        size = os.path.getsize(events) / args.events
        cold = cold_start(args.vane, folder, one, args.runs)
        rates, rss, summary = throughput(args.vane, folder, events, args.events, args.runs)
        cold_text, cold_median = spread(cold, " ms", 1000)
        rate_text, rate_median = spread(rates, " events/s", digits=0)
        rss_text, rss_median = spread(rss, " MiB", 1 / 1024)
        goal = 100_000 if rules == 100 else 50_000
        print(f"-- {rules} rules (events of {size:,.0f} B)")
        print(f"vane cold start       {cold_text}")
        print(f"vane throughput       {rate_text}   goal ≥ {goal:,}: "
              f"{'met' if rate_median >= goal else 'NOT met'}")
        print(f"vane peak RSS         {rss_text}")
        print(f"vane says             {summary}")
        if have_peer:
            p_cold, p_rates, p_rss = peer(rules, args.peer_events, args.runs)
            p_cold_text, p_cold_median = spread(p_cold, " ms", 1000)
            p_rate_text, p_rate_median = spread(p_rates, " events/s", digits=0)
            p_rss_text, p_rss_median = spread(p_rss, " MiB", 1 / 1024)
            print(f"ansible-rulebook cold start  {p_cold_text}")
            print(f"ansible-rulebook throughput  {p_rate_text} (steady state, {args.peer_events:,} events)")
            print(f"ansible-rulebook peak RSS    {p_rss_text}")
            print(f"ratios: throughput {rate_median / p_rate_median:,.1f}× (goal ≥ 30×), "
                  f"cold start {p_cold_median / cold_median:,.0f}× (goal ≥ 300×), "
                  f"memory {p_rss_median / rss_median:,.1f}× less (goal ≥ 5×)")
        sys.stdout.flush()


# ---------------------------------------------------------------- deploy (realistic)

def write_deploy(folder, count):
    os.makedirs(os.path.join(folder, "workflows"), exist_ok=True)
    for index in range(count):
        branch = ["main", "release/**", "develop"][index % 3]
        text = f"""version: 1
name: deploy-{index:04d}
on:
  push:
    repos: [acme/service-{index:04d}]
    branches: [{json.dumps(branch)}]
    paths-ignore: ["docs/**"]
if: event.actor != 'dependabot[bot]'
vars:
  app: "{{{{ event.repo | replace('/', '-') }}}}"
  image: "ghcr.io/acme/service-{index:04d}:{{{{ event.sha[:12] }}}}"
steps:
  - id: deploy
    run: ./deploy.sh {{{{ vars.app }}}} {{{{ vars.image }}}}
  - id: tell
    if: always()
    notify:
      slack: {{ webhook: "http://127.0.0.1:9/hooks/deploys" }}
      text: "{{{{ workflow.name }}}}: deploy {{{{ steps.deploy.outcome }}}} for {{{{ vars.image }}}}"
"""
        with open(os.path.join(folder, "workflows", f"deploy-{index:04d}.yaml"), "w") as handle:
            handle.write(text)


def deploy_events(path, count, services, seed=7):
    import random

    with open(os.path.join(ROOT, "tests/fixtures/github/push.branch.json")) as handle:
        template = json.load(handle)
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for number in range(count):
            event = json.loads(json.dumps(template))
            service = rng.randrange(services)
            branch = rng.choice(["main", "release/1.2", "develop", "feature/x"])
            event["ref"] = f"refs/heads/{branch}"
            event["after"] = f"{number:040x}"
            event["repository"]["full_name"] = f"acme/service-{service:04d}"
            event["repository"]["name"] = f"service-{service:04d}"
            event["commits"][0]["id"] = event["after"]
            event["commits"][0]["modified"] = [f"src/module_{number % 50}.rs"]
            event["head_commit"]["id"] = event["after"]
            envelope = {"type": "push", "source": "github", "data": event}
            handle.write(json.dumps(envelope, separators=(",", ":")) + "\n")


def deploy_bench(args):
    print(f"== realistic deploy workload: two steps + vars, GitHub's untrimmed push payload, "
          f"whole process, {args.runs} runs")
    for count in (100, 1000):
        folder = os.path.join(WORK, f"deploy-{count}")
        events = os.path.join(folder, f"events-{args.events}.ndjson")
        one = os.path.join(folder, "one.ndjson")
        if not os.path.exists(events):
            write_deploy(folder, count)
            deploy_events(events, args.events, count)
            deploy_events(one, 1, count, seed=1)
        cold_text, cold_median = spread(cold_start(args.vane, folder, one, args.runs), " ms", 1000)
        goal = 10 if count == 100 else 30
        print(f"-- {count} workflows (events of {os.path.getsize(events) / args.events:,.0f} B)")
        print(f"vane cold start       {cold_text}   goal ≤ {goal} ms: "
              f"{'met' if cold_median <= goal else 'NOT met'}")
        if count == 1000:
            rates, rss, summary = throughput(args.vane, folder, events, args.events, args.runs)
            rate_text, rate_median = spread(rates, " events/s", digits=0)
            rss_text, rss_median = spread(rss, " MiB", 1 / 1024)
            print(f"vane throughput       {rate_text}   goal ≥ 100,000: "
                  f"{'met' if rate_median >= 100_000 else 'NOT met'}")
            print(f"vane peak RSS         {rss_text}   goal ≤ 50 MiB: "
                  f"{'met' if rss_median <= 50 else 'NOT met'}")
            print(f"vane says             {summary}")
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["rules", "deploy"])
    parser.add_argument("vane")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--peer-events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    args.vane = os.path.abspath(args.vane)
    os.makedirs(WORK, exist_ok=True)
    (rules_bench if args.workload == "rules" else deploy_bench)(args)


if __name__ == "__main__":
    main()
