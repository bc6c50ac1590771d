"""Load generator, run as its own process so it does not share an interpreter with the
server: N concurrent HTTP/1.1 clients on asyncio streams, each sending one request at a
time (closed loop). Keep-alive is used when the server allows it; gunicorn's sync
workers close after every answer, so the client reconnects and the connect time is
part of the measured latency, as it is for a real sender.

Prints one JSON object: requests, statuses, elapsed, throughput, latency percentiles,
and the CPU time the generator itself used.

    python bench/loadgen.py --port 8000 --target pagerduty --token T --concurrency 8 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import resource
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

Body = Callable[[int], tuple[str, bytes]]


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def make_body(target: str, token: str, namespace: str, key_of: Callable[[int], int]) -> Body:
    """Return ``i -> (path, body)``; event ``i`` uses dedup key number ``key_of(i)``."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def pagerduty(i: int) -> tuple[str, bytes]:
        key = f"{namespace}-{key_of(i)}"
        return "/integrations/pagerduty/v2/enqueue", json.dumps({
            "routing_key": token,
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": f"High error rate on checkout ({key})",
                "source": f"web-{key_of(i) % 20}.prod",
                "severity": "error",
                "component": "checkout",
                "group": "payments",
                "class": "http_5xx",
                "custom_details": {"error_rate": "12%", "region": "eu-west-1", "event": i},
            },
            "links": [{"href": "https://grafana.example.com/d/checkout", "text": "Dashboard"}],
        }).encode()

    def alertmanager(i: int) -> tuple[str, bytes]:
        n = key_of(i)
        labels = {"alertname": "HighLatency", "instance": f"{namespace}-{n}:9100", "job": "node",
                  "severity": "warning"}
        return f"/integrations/alertmanager/{token}/", json.dumps({
            "version": "4",
            "groupKey": '{}:{alertname="HighLatency"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "ircore",
            "groupLabels": {"alertname": "HighLatency"},
            "commonLabels": labels,
            "commonAnnotations": {"summary": f"p99 latency above 1s on {labels['instance']}"},
            "externalURL": "http://alertmanager.example.com:9093",
            "alerts": [{
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"p99 latency above 1s on {labels['instance']}",
                                "description": "histogram_quantile(0.99, ...) > 1"},
                "startsAt": now,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up",
                "fingerprint": hashlib.sha1(f"{namespace}-{n}".encode()).hexdigest()[:16],
            }],
        }).encode()

    def generic(i: int) -> tuple[str, bytes]:
        key = f"{namespace}-{key_of(i)}"
        return f"/integrations/generic/{token}/", json.dumps({
            "summary": f"High error rate on checkout ({key})", "severity": "error", "dedup_key": key,
            "source": f"web-{key_of(i) % 20}.prod", "labels": {"region": "eu-west-1"},
        }).encode()

    def bare(i: int) -> tuple[str, bytes]:
        # The same bytes as a PagerDuty event, to a view that only parses and answers.
        return "/bench/bare/", pagerduty(i)[1]

    return {"pagerduty": pagerduty, "alertmanager": alertmanager, "generic": generic, "bare": bare}[target]


class Run:
    def __init__(self, args: argparse.Namespace, body: Body) -> None:
        self.args = args
        self.body = body
        self.next_index = 0
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.deadline = 0.0
        self.reconnects = 0

    def take(self) -> int | None:
        if self.args.requests and self.next_index >= self.args.requests:
            return None
        if self.args.duration and time.perf_counter() >= self.deadline:
            return None
        i = self.next_index
        self.next_index += 1
        return i

    async def client(self) -> None:
        host, port = self.args.host, self.args.port
        reader = writer = None
        while (i := self.take()) is not None:
            path, body = self.body(i)
            request = (
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nUser-Agent: ircore-bench\r\n\r\n"
            ).encode() + body
            start = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                    self.reconnects += 1
                writer.write(request)
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionError("server closed the connection")
                status = int(status_line.split()[1])
                length, close = 0, status_line.startswith(b"HTTP/1.0")
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                await reader.readexactly(length)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                self.errors[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            self.latencies.append(time.perf_counter() - start)
            self.statuses[status] += 1
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def main(self) -> dict:
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        self.deadline = start + (self.args.duration or 0)
        await asyncio.gather(*(self.client() for _ in range(self.args.concurrency)))
        elapsed = time.perf_counter() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        lat = sorted(self.latencies)
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        return {
            "target": self.args.target,
            "concurrency": self.args.concurrency,
            "requests": len(lat),
            "ok": ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "elapsed": elapsed,
            "rps": ok / elapsed if elapsed else 0.0,
            "p50_ms": percentile(lat, 50) * 1000,
            "p90_ms": percentile(lat, 90) * 1000,
            "p99_ms": percentile(lat, 99) * 1000,
            "max_ms": (lat[-1] if lat else 0.0) * 1000,
            "connections": self.reconnects,
            "loadgen_cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", choices=["bare", "pagerduty", "alertmanager", "generic"], required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--keys", type=int, default=200, help="distinct dedup keys, used in turn")
    parser.add_argument("--shuffle", action="store_true",
                        help="send each key requests/keys times in a random order (alert storm)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=0.0, help="seconds (no new request after)")
    parser.add_argument("--requests", type=int, default=0, help="stop after this many requests")
    args = parser.parse_args()
    if not (args.duration or args.requests):
        parser.error("give --duration or --requests")
    if args.shuffle:
        if not args.requests or args.requests % args.keys:
            parser.error("--shuffle needs --requests, a multiple of --keys")
        order = [k for k in range(args.keys) for _ in range(args.requests // args.keys)]
        random.Random(42).shuffle(order)
        key_of: Callable[[int], int] = order.__getitem__
    else:
        key_of = lambda i: i % args.keys  # noqa: E731
    run = Run(args, make_body(args.target, args.token, args.namespace, key_of))
    print(json.dumps(asyncio.run(run.main())))


if __name__ == "__main__":
    main()
