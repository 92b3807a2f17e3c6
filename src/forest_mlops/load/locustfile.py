"""Locust user of `make load`: single covertype records POSTed to inference's /predict, the
users together holding a constant total rate.

    locust -f locustfile.py --headless --host http://RELEASE-inference:8001 \
        --users N --spawn-rate N --run-time 60s --target-rate 20

Each of the N users (summary.users_for) sends one request every N/target-rate seconds on a fixed
schedule, the k-th user's shifted by k/target-rate seconds, so that together they send one
request every 1/target-rate seconds; the records are records.load()'s. When Locust quits the
locustfile prints its summary line (summary.RESULT_TAG): the Job's log carries it to
`forest_mlops.load.job`.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment

from forest_mlops.load import records, summary

BODIES = [json.dumps(r) for r in records.load()]
# Start order of the users (Locust spawns them all at once: --spawn-rate is --users).
_STARTED = itertools.count()


def _options(parser: Any, **_: Any) -> None:
    parser.add_argument(
        "--target-rate",
        type=float,
        env_var="FOREST_LOAD_RATE",
        default=20.0,
        help="requests per second all users together hold",
    )


class PredictUser(FastHttpUser):
    """Paced by its own schedule rather than Locust's constant_throughput: Locust starts every
    user at once and constant_throughput counts from the user's creation, so each user's
    requests would fall on the same instant every period and the rate would arrive as a burst
    of N requests. Such a burst queues in Locust's one process and in the service's event loop,
    outside the service's latency histogram. Locust's p99 was 1.15 to 2.3 times the service's
    in make e2e runs with bursts."""

    _period: float
    _due: float

    def on_start(self) -> None:
        options = self.environment.parsed_options
        assert options is not None
        self._period = options.num_users / options.target_rate
        # The rate is known only once the options are parsed.
        gevent.sleep((next(_STARTED) % options.num_users) / options.target_rate)
        self._due = time.monotonic()

    def wait_time(self) -> float:
        # Due one period after the previous request was due, not after it was answered: the
        # user keeps its place in the schedule. An answer later than a period sends the next
        # request at once, so the rate is still held.
        self._due += self._period
        return max(0.0, self._due - time.monotonic())

    @task
    def predict(self) -> None:
        body = BODIES[random.randrange(len(BODIES))]
        # Any answer but 200 (a 503 without a model, a 422) is a failure in Locust's figures.
        self.client.post("/predict", data=body, headers={"Content-Type": "application/json"})


def _report(environment: Environment, **_: Any) -> None:
    total = environment.stats.total
    options = environment.parsed_options
    assert options is not None
    errors = sorted(environment.stats.errors.values(), key=lambda e: -e.occurrences)
    line = summary.summary_line(
        {
            "target_rate_per_s": options.target_rate,
            "users": options.num_users,
            "requests": total.num_requests,
            "failures": total.num_failures,
            # Locust's percentiles, from its response-time histogram (ms, rounded to 2
            # significant digits above 100 ms).
            "p50_ms": total.get_response_time_percentile(0.50),
            "p95_ms": total.get_response_time_percentile(0.95),
            "p99_ms": total.get_response_time_percentile(0.99),
            "max_ms": total.max_response_time,
            "started_at": total.start_time,
            "ended_at": total.last_request_timestamp,
            "errors": [
                {"error": f"{e.method} {e.name}: {e.error}", "occurrences": e.occurrences}
                for e in errors[:5]
            ],
        }
    )
    print(line, flush=True)  # noqa: T201 - stdout is the Job's log: the summary's way out


# Registered by call, not as decorators: Locust's EventHook is untyped.
events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_report)  # type: ignore[no-untyped-call]
