#!/usr/bin/env python3
"""agreement: does our load generator (Benchmarks/loadgen) agree with the reference one on the C server?

usage: agreement.py --server CMD --ours PATH --reference PATH [--rounds R] [--seconds S] [--warmup W]
                    [--workloads rr1,rr64,...] [--json FILE]

The rule (../../shared/bench/README.md): a project's own load generator must agree with the reference one within
15% on the C server, workload by workload, in the same session. For each round the server is started fresh
(`exec CMD --port 0`, its port read from the listening line); every workload then runs once with each load
generator, back to back, the order alternating from round to round so drift on the shared machine falls on both.
Prints a Markdown section: medians, our/reference ratio of the medians, every round's pair, and a verdict.
"""
import argparse, json, os, resource, select, shlex, signal, statistics, subprocess, sys, time

WORKLOADS = {
    "rr1": (["rr", "--conns", "1", "--busy-poll"], "round trips/s"),
    "rr64": (["rr", "--conns", "64"], "round trips/s"),
    "stream1": (["stream", "--conns", "1"], "MB/s"),
    "stream8": (["stream", "--conns", "8"], "MB/s"),
    "connect8": (["connect", "--conns", "8"], "connections/s"),
    "udp": (["udp", "--conns", "1", "--window", "64"], "datagrams/s"),
}
TOLERANCE = 0.15


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(cmd):
    proc = subprocess.Popen(["bash", "-c", f"exec {cmd} --port 0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, preexec_fn=raise_nofile, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            line = proc.stdout.readline()
            if line.startswith("echo-server listening on "):
                time.sleep(0.2)
                return proc, int(line.strip().rsplit(":", 1)[1])
            if not line:
                break
    stop(proc)
    sys.exit(f"agreement: {cmd} did not print its listening line")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(loadgen, args, seconds, warmup):
    cmd = [loadgen] + args + ["--seconds", str(seconds), "--warmup", str(warmup)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup + 60)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    kv = {}
    for line in out.stdout.splitlines():
        if line.startswith("mode="):
            kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
    note = "" if out.returncode == 0 else f"exit {out.returncode}: {(out.stderr.strip().splitlines() or [''])[0]}"
    return (float(kv["ops_per_s"]) if "ops_per_s" in kv else None), note


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--json")
    a = ap.parse_args()
    workloads = [w for w in a.workloads.split(",") if w]
    raise_nofile()
    runs = {w: {"ours": [], "reference": [], "notes": []} for w in workloads}
    for rnd in range(1, a.rounds + 1):
        print(f"agreement round {rnd}/{a.rounds}", file=sys.stderr, flush=True)
        proc, port = start(a.server)
        try:
            for w in workloads:
                args = WORKLOADS[w][0] + ["--port", str(port)]
                order = [("reference", a.reference), ("ours", a.ours)]
                if rnd % 2 == 0:
                    order.reverse()
                for who, path in order:
                    value, note = measure(path, args, a.seconds, a.warmup)
                    runs[w][who].append(value)
                    if note:
                        runs[w]["notes"].append(f"r{rnd} {who}: {note}")
                print(f"  {w}: reference {runs[w]['reference'][-1]}, ours {runs[w]['ours'][-1]}", file=sys.stderr,
                      flush=True)
        finally:
            stop(proc)

    out = []
    p = out.append
    p("## Agreement: our load generator vs the reference, on the C server")
    p("")
    p(f"Server `{a.server}`; {a.rounds} rounds, {a.seconds:g} s windows after {a.warmup:g} s warm-up; in each round "
      "both load generators ran every workload back to back (order alternating by round). Ratio = median of ours / "
      f"median of the reference; agreement means within {TOLERANCE:.0%}.")
    p("")
    p("| workload | unit | reference | ours | ratio | per-round ratios | verdict | notes |")
    p("|---|---|---:|---:|---:|---|---|---|")
    verdicts = {}
    for w in workloads:
        r, o = med(runs[w]["reference"]), med(runs[w]["ours"])
        ratio = o / r if r and o is not None else None
        pairs = [f"{x / y:.2f}" if x is not None and y else "—" for x, y in zip(runs[w]["ours"], runs[w]["reference"])]
        ok = ratio is not None and abs(ratio - 1) <= TOLERANCE
        verdicts[w] = {"reference": r, "ours": o, "ratio": ratio, "agrees": ok,
                       "rounds": {"ours": runs[w]["ours"], "reference": runs[w]["reference"]}}
        fmt = lambda v: "—" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
        p(f"| {w} | {WORKLOADS[w][1]} | {fmt(r)} | {fmt(o)} | {'—' if ratio is None else f'{ratio:.2f}'} | "
          f"{' '.join(pairs)} | {'agrees' if ok else '**disagrees**'} | {'; '.join(runs[w]['notes'])} |")
    p("")
    bad = [w for w in workloads if not verdicts[w]["agrees"]]
    p("Verdict: " + ("all workloads agree within 15%." if not bad else
                     f"**{', '.join(bad)} outside 15%**: for those, only the reference load generator's figures count."))
    p("")
    print("\n".join(out), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(verdicts, f, indent=1)


if __name__ == "__main__":
    main()
