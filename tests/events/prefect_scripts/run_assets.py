"""Run by tests/alerts/test_impact.py with the Prefect venv's Python: one real flow that
materializes a sales table and, from it, a finance dashboard and a forecast model, against
the server at PREFECT_API_URL. Prefect emits a materialization event per asset, naming the
upstream assets as related resources: the lineage tripwire learns downstream from.
Prints the flow run's final state type.
"""

from __future__ import annotations

import sys

from prefect import flow
from prefect.assets import Asset, AssetProperties, materialize

SALES = Asset(key="warehouse://sales-table", properties=AssetProperties(name="sales-table"))
DASHBOARD = Asset(
    key="bi://finance-dashboard", properties=AssetProperties(name="finance-dashboard")
)
FORECAST = Asset(key="ml://forecast-model", properties=AssetProperties(name="forecast-model"))


@materialize(SALES)  # type: ignore[untyped-decorator]
def load_sales() -> int:
    return 42


@materialize(DASHBOARD)  # type: ignore[untyped-decorator]
def build_dashboard(rows: int) -> int:
    return rows


@materialize(FORECAST)  # type: ignore[untyped-decorator]
def train_forecast(rows: int) -> int:
    return rows


@flow(name="sales-pipeline")  # type: ignore[untyped-decorator]
def sales_pipeline() -> None:
    # Futures carry the dependency, so Prefect names the sales table as each one's upstream.
    rows = load_sales.submit()
    for built in (build_dashboard.submit(rows), train_forecast.submit(rows)):
        built.result()


if __name__ == "__main__":
    state = sales_pipeline(return_state=True)
    print(state.type.value, flush=True)
    sys.exit(0 if state.is_completed() else 1)
