"""Model health and dashboards: what the platform measures about itself beyond the services'
own /metrics (docs/OBSERVABILITY.md)."""
