"""`forest-mlops retrain`: start a retraining Job from the retraining CronJob in the cluster.

Exit codes: 0 the Job was created (or, with --wait/--follow, completed); 1 the Job failed or
did not finish in --timeout; 2 it could not be started (no kubeconfig, no CronJob).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="start a retraining Job from the retraining CronJob (kubectl create job --from)",
        description="Create a Job from the retraining CronJob of k8s/ in the current kube "
        "context, optionally follow its logs, and exit with its result.",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("FOREST_NAMESPACE"),
        help="namespace of the platform (default: $FOREST_NAMESPACE, else forest-mlops)",
    )
    parser.add_argument(
        "--cronjob",
        help="CronJob name (default: the one labelled app.kubernetes.io/component=retrain)",
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--wait", action="store_true", help="wait for the Job to finish")
    parser.add_argument(
        "--follow", action="store_true", help="stream the pod logs until the Job finishes"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=7200.0,
        help="seconds to wait with --wait/--follow (default: 7200; the Job keeps running)",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=2.0, help="seconds between status checks"
    )
    parser.set_defaults(handler=run)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _api_message(exc: Exception) -> str:
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    return f"{status} {reason}" if status else str(exc)


def run(args: argparse.Namespace) -> int:
    import urllib3
    from kubernetes.client.exceptions import ApiException

    from forest_mlops.retrain import DEFAULT_NAMESPACE, Retrainer, RetrainError, api_client

    namespace = args.namespace or DEFAULT_NAMESPACE
    try:
        retrainer = Retrainer(api_client(args.context), namespace, poll_interval=args.poll_interval)
        cronjob = retrainer.find_cronjob(args.cronjob)
        job_name = retrainer.start(cronjob)
    except RetrainError as exc:
        logger.error("%s", exc)
        return 2
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        logger.error("the Kubernetes API refused or did not answer: %s", _api_message(exc))
        return 2
    _write(f"job.batch/{job_name} created in namespace {namespace}\n")
    if not (args.wait or args.follow):
        return 0
    try:
        if args.follow:
            result = retrainer.follow(job_name, _write, timeout=args.timeout)
        else:
            result = retrainer.wait(job_name, timeout=args.timeout)
    except TimeoutError as exc:
        logger.error("%s", exc)
        return 1
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        logger.error(
            "lost the Kubernetes API while following Job %s (it keeps running): %s",
            job_name,
            _api_message(exc),
        )
        return 1
    outcome = "succeeded" if result.succeeded else "failed"
    _write(f"job.batch/{job_name} {outcome}: {result.reason}\n")
    return 0 if result.succeeded else 1
