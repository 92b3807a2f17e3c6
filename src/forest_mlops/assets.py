"""Airflow Assets shared by the DAGs: extraction updates them, training is scheduled on them.

Importing this module needs Airflow (the `airflow` extra); the rest of forest_mlops does not.
"""

from __future__ import annotations

from airflow.sdk import Asset

# The training table. An update means "new rows landed in forest_cover_data"; the event's extra
# carries the ingestion run id and the counts.
FOREST_COVER_DATA = Asset(
    name="forest_cover_data",
    uri="mysql://train_data/forest_cover_data",
    group="forest-mlops",
)
