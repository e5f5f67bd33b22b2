#!/usr/bin/env python3
"""summary: the top of RESULTS.md — Sockets' ratios to SwiftNIO (classic) and to C, against the targets.

usage: summary.py COMPARE_JSON [AGREEMENT_JSON] [--ours sockets] [--nio nio-classic] [--c c-epoll]

Reads the JSON that ../../shared/bench/compare writes (--json) and computes the same medians it reports.
"""
import argparse, json, statistics

# workload: (minimum ratio to C, minimum ratio to NIO classic)
TARGETS = {
    "rr1": (0.95, 0.95),
    "rr64": (0.90, 1.35),
    "stream1": (0.90, 1.00),
    "stream8": (0.90, 0.95),
    "connect8": (0.95, 0.95),
    "udp": (0.80, 1.25),
}
CPU_TARGET = 1.25   # Sockets' server CPU per operation at most this times NIO classic's


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("compare_json")
    ap.add_argument("agreement_json", nargs="?")
    ap.add_argument("--ours", default="sockets")
    ap.add_argument("--nio", default="nio-classic")
    ap.add_argument("--c", default="c-epoll")
    a = ap.parse_args()
    data = json.load(open(a.compare_json))
    results, idle = data["results"], data.get("idle", {})

    def value(server, w, key="value"):
        return med([r.get(key) for r in results.get(f"{server}/{w}", [])])

    def ratio(x, y):
        return x / y if x is not None and y else None

    def f2(v, target=None):
        """Two decimals, or four where two would print the target itself and hide which side of it v is."""
        if v is None:
            return "—"
        if target is not None and f"{v:.2f}" == f"{target:.2f}" and v != target:
            return f"{v:.4f}"
        return f"{v:.2f}"

    def verdict(r, target, higher_is_better=True):
        if r is None:
            return "—"
        ok = r >= target if higher_is_better else r <= target
        return "met" if ok else "**missed**"

    lines = []
    p = lines.append
    p(f"| workload | Sockets ÷ NIO classic | target | | Sockets ÷ C | target | | CPU/op Sockets ÷ NIO (≤ {CPU_TARGET}) | |")
    p("|---|---:|---:|---|---:|---:|---|---:|---|")
    missed = []
    workloads = [w for w in TARGETS if f"{a.ours}/{w}" in results]
    for w in workloads:
        to_c, to_nio = TARGETS[w]
        rn = ratio(value(a.ours, w), value(a.nio, w))
        rc = ratio(value(a.ours, w), value(a.c, w))
        cpu = ratio(value(a.ours, w, "cpu_us_per_op"), value(a.nio, w, "cpu_us_per_op"))
        vn, vc, vcpu = verdict(rn, to_nio), verdict(rc, to_c), verdict(cpu, CPU_TARGET, False)
        for name, v in ((f"{w} vs NIO", vn), (f"{w} vs C", vc), (f"{w} CPU/op", vcpu)):
            if v != "met":
                missed.append(name)
        p(f"| {w} | {f2(rn, to_nio)} | ≥ {to_nio:.2f} | {vn} | {f2(rc, to_c)} | ≥ {to_c:.2f} | {vc} | "
          f"{f2(cpu, CPU_TARGET)} | {vcpu} |")
    if idle:
        ours = med([r.get("value") for r in idle.get(a.ours, [])])
        nio = med([r.get("value") for r in idle.get(a.nio, [])])
        c = med([r.get("value") for r in idle.get(a.c, [])])
        r = ratio(ours, nio)
        v = verdict(r, 1.0, False)
        if v != "met":
            missed.append("idle RSS")
        fk = lambda x: "—" if x is None else f"{x:.1f}"
        p(f"| idle RSS/conn (KiB; lower is better) | {f2(r, 1.0)} ({fk(ours)} vs {fk(nio)}) | ≤ 1.00 | {v} | "
          f"{f2(ratio(ours, c))} (C: {fk(c)}) | | | | |")
    p("")
    p("Targets met: " + ("all." if not missed else f"all but {len(missed)}: " + ", ".join(missed) + "."))
    if a.agreement_json:
        ag = json.load(open(a.agreement_json))
        bad = [w for w, v in ag.items() if not v.get("agrees")]
        p("")
        p("Our load generator against the reference on the C server: "
          + ", ".join(f"{w} {v['ratio']:.2f}" if v.get("ratio") is not None else f"{w} —" for w, v in ag.items())
          + (" — all within 15%." if not bad else f" — **{', '.join(bad)} outside 15%**."))
    problems = data.get("problems", [])
    p("")
    p(f"Problems reported by compare: {len(problems)}" + (" (see the Problems section below)." if problems else "."))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
