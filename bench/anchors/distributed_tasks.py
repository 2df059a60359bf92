"""distributed_tasks.py — the anchor of bench/distributed.sh: a
dask.distributed LocalCluster of 2 worker processes (SLOTS threads each)
runs the same shapes as xp's scheduler benchmark: 10,000 one-step tasks,
10,000 two-step chains (the quickstart graph), 20 fan-out graphs of 1,000
parts and their sum, and 1,000 sequential submit -> result round trips.
Prints one 'name value' line per figure."""
import argparse
import logging
import statistics
import sys
import time


def calculate(a, b):
    return a + b + 1


def prepare_data(a, b):
    return a + b


def calculate_score(s):
    return 10 / s


def part(x, i):
    return x * i + 1


def total(*parts):
    return sum(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slots", type=int, default=1)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--fanout-trials", type=int, default=20)
    ap.add_argument("--latency-n", type=int, default=1000)
    args = ap.parse_args()

    from dask import delayed
    from dask.distributed import Client, LocalCluster, wait

    cluster = LocalCluster(n_workers=2, threads_per_worker=args.slots,
                           processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    side = int(round(args.n ** 0.5))
    grid_a = [i for i in range(side) for _ in range(side)]
    grid_b = [j for _ in range(side) for j in range(side)]
    n = side * side
    # warm-up: functions shipped, workers connected
    client.gather(client.map(calculate, range(100), range(100), pure=False))

    t0 = time.monotonic()
    client.gather(client.map(calculate, grid_a, grid_b, pure=False))
    dt = time.monotonic() - t0
    print(f"one_step_per_s {n / dt:.1f}")

    t0 = time.monotonic()
    d = client.map(prepare_data, [a + 1 for a in grid_a],
                   [b + 1 for b in grid_b], pure=False)
    client.gather(client.map(calculate_score, d, pure=False))
    dt = time.monotonic() - t0
    print(f"two_step_per_s {n / dt:.1f}")
    del d

    # One graph per trial, as dask runs a fan-out: a dask.delayed graph
    # handed over whole (client.submit task by task is slower, ~300/s).
    width = 1000
    t0 = time.monotonic()
    graphs = [delayed(total, pure=False)(
        *[delayed(part, pure=False)(x, i) for i in range(width)])
        for x in range(args.fanout_trials)]
    totals = client.compute(graphs)
    wait(totals)
    dt = time.monotonic() - t0
    tasks = args.fanout_trials * (width + 1)
    print(f"fanout_tasks_per_s {tasks / dt:.1f}")
    del totals

    lat = []
    for i in range(args.latency_n):
        t0 = time.perf_counter()
        client.submit(calculate, i, 0, pure=False).result()
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    print(f"latency_median_ms {statistics.median(lat):.3f}")
    print(f"latency_p90_ms {lat[int(len(lat) * 0.9)]:.3f}")

    client.close()
    cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
