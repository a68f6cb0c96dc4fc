"""What the metrics add to one lean ``POST /token`` answer (issue 14), in process, without HTTP:
the two ``perf_counter`` reads and :class:`~trustanchor.web.metrics.RouteMeter`'s ``observe``
(one counter ``inc``, one histogram ``observe``), plus the ``token_issued`` count through the
services' relay, against the same calls with metrics off (``metrics.token`` empty: no meter).

Run each mode in a process of its own (prometheus_client picks its value class at import):

    .venv/bin/python bench/metrics_overhead.py                 # values in memory (one worker)
    .venv/bin/python bench/metrics_overhead.py --multiprocess  # values in mmap files (serve)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import timeit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--multiprocess", action="store_true", help="PROMETHEUS_MULTIPROC_DIR")
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    directory = None
    if args.multiprocess:
        directory = tempfile.mkdtemp(prefix="trustanchor-metrics-bench-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory

    from trustanchor.metrics import MetricsRelay
    from trustanchor.web.metrics import PrometheusMetrics

    prometheus = PrometheusMetrics(multiprocess_dir=directory)
    meter = prometheus.meter("POST", "/token")
    relay = MetricsRelay(prometheus)
    perf_counter = time.perf_counter

    def on() -> None:  # TokenRoute.__call__ with a meter, and token.py's count
        started = perf_counter()
        relay.token_issued("client_credentials")
        meter.observe(200, perf_counter() - started)

    off_relay = MetricsRelay()

    def off() -> None:  # metrics off: the relay's no-op count only
        off_relay.token_issued("client_credentials")

    try:
        for name, call in (("metrics on", on), ("metrics off", off)):
            runs = timeit.repeat(call, number=args.number, repeat=args.repeat)
            per_call = [run / args.number * 1e6 for run in runs]
            print(
                f"{name:12} {'multiprocess' if directory else 'in memory':12} "
                f"min {min(per_call):.2f} µs  median {statistics.median(per_call):.2f} µs "
                "per request"
            )
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
