"""The in-cluster load test (`make load`): a Locust user that posts covertype records to the
inference service (locustfile.py, run in the image images/load/Dockerfile), the Kubernetes Job
that runs it and the collection of its figures (job.py), and the reading of Locust's summary
out of the Job's log (summary.py).

Nothing here imports Locust except locustfile.py: Locust patches the standard library with
gevent when imported, which must never happen inside the CLI or the test process.
"""
