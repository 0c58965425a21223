"""3LC's workflow on a store file: an input table, a run, a per-sample metrics table collected
with a numpy "model" and joined to the input by example_id, embeddings reduced, outputs added,
and the run found again by url.

    python python/examples/tlc_workflow.py [STORE]      (default: tlc_workflow.runs)
"""

import sys

import numpy as np

import runstore

path = sys.argv[1] if len(sys.argv) > 1 else "tlc_workflow.runs"
rng = np.random.default_rng(0)

# An input table: 2,000 examples of 16 features, 4 classes.
with runstore.open(path) as store:
    features = rng.normal(size=(2000, 16)).astype(np.float32)
    labels = (features[:, :4].argmax(axis=1)).astype(np.int32)
    data = store.create_table("cifar-ish", "train", {"features": features, "label": labels})

    # tlc.init: a run, made the active run; module-level calls act on it.
    run = runstore.init(project_name="cifar-ish", parameters={"lr": 0.01, "epochs": 3},
                        root_url=path)
    run.add_input_table(data)
    run.set_status_running()
    weights = rng.normal(size=(16, 4))
    for epoch in range(3):
        weights[:4, :4] += np.eye(4)  # "training"
        runstore.add_output_value({"epoch": epoch, "loss": 1.0 / (epoch + 1)})

    # collect_metrics: the model over the table, batch by batch, into one metrics table.
    def model(batch):
        return {"logits": batch["features"] @ weights, "embedding": batch["features"][:, :8]}

    metrics = runstore.collect_metrics(
        data,
        [runstore.ClassificationCollector(logits_key="logits", top_k=[2]),
         runstore.EmbeddingsCollector(key="embedding")],
        predictor=model,
        batch_size=256,
        split="train",
        progress=False,
    )
    print(f"{metrics.url}: {metrics.num_rows} rows, columns {metrics.schema.names}")

    # Embedding reduction, as tlc.reduce_embeddings_per_dataset.
    reduced = runstore.reduce_embeddings_per_dataset(delete_source_tables=False, method="pca",
                                                     n_components=2)
    print("reduced:", reduced)
    runstore.set_status_completed()
    url = f"{path}/{run.url}"

# Later, elsewhere: the run by its url (a store path, then the run url).
again = runstore.Run.from_url(url)
table = again.store.table(metrics.url).to_pandas()
print(f"{again.url}: status {again.status} ({again.status_name}), created {again.created}")
print(f"accuracy {table['correct'].mean():.3f}, mean loss {table['loss'].mean():.3f}")
again.store.close()
