"""calculate_score.py — the quickstart's score step: 10 / s, failing on
division by zero, with a dummy_score metric per epoch (no xp library: JSON
lines appended to $XP_METRICS_FILE, randomness seeded from $XP_SEED)."""
import json
import os
import random
import sys

s = float(sys.argv[1])
rng = random.Random(int(os.environ["XP_SEED"]))
with open(os.environ["XP_METRICS_FILE"], "a") as metrics:
    for epoch in range(100):
        point = {"name": "dummy_score", "epoch": epoch,
                 "value": 100 - rng.random() * epoch}
        metrics.write(json.dumps(point) + "\n")
if s == 0:
    sys.exit("division by zero")
print(json.dumps(10 / s))
