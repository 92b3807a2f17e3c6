"""forest-mlops: the shared domain package (schema, data access, ingestion, training, registry).

The data API, the inference service, the Airflow DAGs and the retraining Job all import it.
"""

__version__ = "0.1.0"
