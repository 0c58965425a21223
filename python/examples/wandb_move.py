"""From wandb (or trackio) in one line: `import runstore as wandb`.

    python python/examples/wandb_move.py [DIR]      (the store is DIR/runs.runs; default .)
"""

import math
import sys

import runstore as wandb  # was: import wandb   (or: import trackio as wandb)

directory = sys.argv[1] if len(sys.argv) > 1 else "."
for lr in (0.1, 0.01):
    run = wandb.init(project="sweep", config={"lr": lr, "batch_size": 64}, dir=directory)
    wandb.config.update({"optimizer": "adam"})
    for step in range(200):
        loss = math.exp(-lr * step) + 0.01
        wandb.log({"loss": loss, "lr": lr}, step=step)
        if step % 50 == 49:
            wandb.log({"val_acc": 1 - loss}, step=step)
    wandb.summary["final_loss"] = loss
    wandb.finish()
    print(f"{run.url}: config {dict(run.config)}, summary {dict(run.summary)}")
