"""Training: split, candidate pipelines, search, evaluation, MLflow tracking and the registry.

The steps in `workflow` are what the training DAG's tasks and `forest-mlops train` run.
"""
