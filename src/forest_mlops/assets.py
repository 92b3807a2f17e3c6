"""Airflow Assets shared by the DAGs: extraction updates them, training is scheduled on them.

Importing this module needs Airflow (the `airflow` extra); the rest of forest_mlops does not.
"""

from __future__ import annotations

from airflow.sdk import Asset

# The training table. An update means "new rows landed in forest_cover_data"; the event's extra
# carries the ingestion run id and the counts.
# The URI names the table, not a server: its own scheme, because apache-airflow-providers-mysql
# (in the Airflow image) validates every mysql:// URI as mysql://host:port/db/table and a DAG
# that declares anything else fails to import. A host in the URI would make the asset's identity
# depend on where the database runs (kind, a laptop, CI) while the producer and the consumer
# must agree on it.
FOREST_COVER_DATA = Asset(
    name="forest_cover_data",
    uri="forest-mlops://train_data/forest_cover_data",
    group="forest-mlops",
)
