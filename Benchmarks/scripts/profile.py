#!/usr/bin/env python3
"""profile: one server under one workload of the reference load generator — context switches per operation,
per-thread CPU, and optionally a perf profile of the server.

usage: profile.py [--perf cpu|wakeup] [--seconds S] [--loadgen PATH] [--out PREFIX] WORKLOAD SERVER_COMMAND

Starts `exec SERVER_COMMAND --port 0`, runs the load generator with --marks for the workload (as compare does:
rr1, rr64, stream1, stream8, connect8, udp), samples /proc/PID/task/*/status (voluntary and nonvoluntary context
switches) and /proc/PID/task/*/stat (CPU per thread) at MARK begin and MARK end, and with --perf records the
server for the middle of the window: `perf record -e cpu-clock -g` (cpu) or `-e sched:sched_wakeup -g` system-wide
(wakeup). Prints a short report; perf's own output goes to PREFIX.perf.txt.
"""
import argparse, os, select, signal, subprocess, sys, time

WORKLOADS = {
    "rr1": ["rr", "--conns", "1", "--busy-poll"], "rr64": ["rr", "--conns", "64"],
    "stream1": ["stream", "--conns", "1"], "stream8": ["stream", "--conns", "8"],
    "connect8": ["connect", "--conns", "8"], "udp": ["udp", "--conns", "1", "--window", "64"],
}
TCK = os.sysconf("SC_CLK_TCK")


def threads(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            st = open(f"/proc/{pid}/task/{tid}/status").read().splitlines()
            f = dict(l.split(":", 1) for l in st if ":" in l)
            stat = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            out[tid] = (f["Name"].strip(), int(f["voluntary_ctxt_switches"]), int(f["nonvoluntary_ctxt_switches"]),
                        int(stat[11]) + int(stat[12]))
        except (OSError, KeyError, IndexError):
            pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--perf", choices=["cpu", "wakeup", "syscalls"])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--loadgen", default=os.path.join(os.path.dirname(__file__), "..", "bin", "ref-loadgen"))
    ap.add_argument("--out", default="/tmp/profile")
    ap.add_argument("workload")
    ap.add_argument("server")
    a = ap.parse_args()
    srv = subprocess.Popen(["bash", "-c", f"exec {a.server} --port 0"], stdout=subprocess.PIPE, text=True)
    line = srv.stdout.readline()
    port = int(line.strip().rsplit(":", 1)[1])
    time.sleep(0.3)
    lg = subprocess.Popen([a.loadgen] + WORKLOADS[a.workload] + ["--port", str(port), "--seconds", str(a.seconds),
                          "--warmup", "1", "--marks"], stdout=subprocess.PIPE, text=True)
    before = after = None
    perf = None
    kv = {}
    syscall_counts = None
    stat = None
    t0 = t1 = 0
    for l in lg.stdout:
        if l.startswith("MARK begin"):
            before, t0 = threads(srv.pid), time.monotonic()
            if a.perf:
                if a.perf == "syscalls":
                    calls = ["epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "read", "recvfrom", "recvmsg", "recvmmsg",
                             "write", "sendto", "sendmsg", "sendmmsg", "writev", "futex", "accept4", "close",
                             "shutdown"]
                    ev = ",".join(f"syscalls:sys_enter_{c}" for c in calls)
                    # Counted over the whole window (stopped at MARK end), so counts and operations match.
                    stat = subprocess.Popen(["perf", "stat", "-x", ",", "-e", ev, "-p", str(srv.pid)],
                                            stderr=subprocess.PIPE, text=True)
                    continue
                time.sleep(1)   # into the window
                cmd = (["perf", "record", "-q", "-e", "cpu-clock", "-g", "-p", str(srv.pid), "-o", a.out + ".data"]
                       if a.perf == "cpu" else
                       ["perf", "record", "-q", "-e", "sched:sched_wakeup", "-g", "-a", "-o", a.out + ".data"])
                perf = subprocess.Popen(cmd + ["--", "sleep", "5"] if a.perf == "wakeup" else cmd,
                                        stderr=subprocess.DEVNULL)
                if a.perf == "cpu":
                    time.sleep(5)
                    perf.send_signal(signal.SIGINT)
                perf.wait()
        elif l.startswith("MARK end"):
            after, t1 = threads(srv.pid), time.monotonic()
            if stat is not None:
                stat.send_signal(signal.SIGINT)
                err = stat.communicate()[1]
                syscall_counts = {l.split(",")[2].split("sys_enter_")[1]: float(l.split(",")[0])
                                  for l in err.splitlines() if "sys_enter_" in l and l[0].isdigit()}
        elif l.startswith("mode="):
            kv = dict(p.split("=", 1) for p in l.split() if "=" in p)
        elif l.strip():
            print(l.strip())
    lg.wait()
    srv.send_signal(signal.SIGTERM)
    srv.wait()
    ops = float(kv.get("ops", 0)) if not a.workload.startswith("stream") else float(kv.get("bytes", 0)) / 65536
    unit = "64 KiB block" if a.workload.startswith("stream") else "op"
    vol = sum(after[t][1] - before[t][1] for t in after if t in before)
    inv = sum(after[t][2] - before[t][2] for t in after if t in before)
    print(f"{a.workload} on {a.server}: {float(kv.get('ops_per_s', 0)):,.0f}/s; window {t1 - t0:.1f} s; "
          f"{len(after)} threads; per {unit}: {vol / ops:.3f} voluntary + {inv / ops:.3f} involuntary context switches")
    by_name = {}
    for t, (name, v, i, c) in after.items():
        if t in before:
            d = by_name.setdefault(name, [0, 0, 0, 0])
            d[0] += 1
            d[1] += v - before[t][1]
            d[2] += i - before[t][2]
            d[3] += c - before[t][3]
    for name, (n, v, i, c) in sorted(by_name.items(), key=lambda x: -x[1][3]):
        print(f"  {name!r} x{n}: CPU {100 * c / TCK / (t1 - t0):.0f}%, voluntary {v / ops:.3f}/{unit}, "
              f"involuntary {i / ops:.3f}/{unit}")
    if syscall_counts is not None:
        print(f"  system calls per {unit} (perf stat over the window): " + ", ".join(
            f"{k} {v / ops:.2f}" for k, v in sorted(syscall_counts.items(), key=lambda x: -x[1]) if v > 0))
    if a.perf in ("cpu", "wakeup"):
        rep = subprocess.run(["perf", "report", "--stdio", "-i", a.out + ".data", "--no-children",
                              "--percent-limit", "1.5"] + (["--comm", ""] if False else []),
                             capture_output=True, text=True)
        open(a.out + ".perf.txt", "w").write(rep.stdout)
        print(f"  perf report: {a.out}.perf.txt")


if __name__ == "__main__":
    main()
