"""From TensorBoard in one line: `from runstore import SummaryWriter`.

    python python/examples/tensorboard_move.py      (writes runs.runs; then: runstore ui runs.runs)
"""

import numpy as np

from runstore import SummaryWriter  # was: from torch.utils.tensorboard import SummaryWriter

rng = np.random.default_rng(0)
for name, lr in (("exp1", 0.1), ("exp2", 0.03)):
    with SummaryWriter(f"runs/{name}") as writer:  # the run `name` of the store runs.runs
        for step in range(300):
            loss = np.exp(-lr * step) + 0.02 * rng.random()
            writer.add_scalar("Loss/train", loss, step)
            writer.add_scalars("lr", {"base": lr, "warm": lr * min(1, step / 50)}, step)
        writer.add_histogram("weights", rng.normal(size=1000), 299)
        writer.add_text("notes", f"lr={lr}", 0)
        writer.add_embedding(rng.normal(size=(100, 32)), metadata=list(rng.integers(0, 10, 100)),
                             global_step=299)
        writer.add_hparams({"lr": lr}, {"hparam/loss": float(loss)})
        print(f"{writer.get_logdir()}: final loss {loss:.4f}")
