"""From MLflow in one line: `import runstore.mlflow as mlflow`.

    python python/examples/mlflow_move.py [STORE]      (default: mlflow_move.runs)
"""

import sys

import runstore.mlflow as mlflow  # was: import mlflow

mlflow.set_tracking_uri(sys.argv[1] if len(sys.argv) > 1 else "mlflow_move.runs")
mlflow.set_experiment("regression")
for alpha in (0.1, 0.5, 1.0):
    with mlflow.start_run(run_name=f"alpha-{alpha}"):
        mlflow.log_param("alpha", alpha)
        mlflow.set_tag("model", "ridge")
        for epoch in range(20):
            mlflow.log_metric("rmse", alpha + 1.0 / (epoch + 1), step=epoch)
        mlflow.log_metrics({"r2": 1 - alpha / 2})

best = mlflow.search_runs(filter_string="params.alpha < 1 and tags.model = 'ridge'",
                          order_by=["metrics.rmse ASC"])
print(best[["tags.mlflow.runName", "params.alpha", "metrics.rmse", "metrics.r2", "status"]])
