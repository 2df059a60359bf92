"""train.py TRAIN_CSV LR EPOCHS — fits y = w x + b by gradient descent,
appending {"name": "loss", "epoch": e, "value": mse} to $XP_METRICS_FILE
each epoch, and writes $XP_OUTPUT_DIR/model.json."""
import json
import os
import sys

path, lr, epochs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
data = [tuple(map(float, line.split(","))) for line in open(path)]
w = b = 0.0
with open(os.environ["XP_METRICS_FILE"], "a") as metrics:
    for epoch in range(epochs):
        gw = sum((w * x + b - y) * x for x, y in data) * 2 / len(data)
        gb = sum((w * x + b - y) for x, y in data) * 2 / len(data)
        w, b = w - lr * gw, b - lr * gb
        loss = sum((w * x + b - y) ** 2 for x, y in data) / len(data)
        metrics.write(json.dumps({"name": "loss", "epoch": epoch,
                                  "value": loss}) + "\n")
        metrics.flush()
with open(os.path.join(os.environ["XP_OUTPUT_DIR"], "model.json"), "w") as f:
    json.dump({"w": w, "b": b}, f)
