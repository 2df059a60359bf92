"""prepare.py N NOISE — y = 3x - 1 + noise on N points, split 80/20 into
$XP_OUTPUT_DIR/train.csv and test.csv; reproducible from $XP_SEED."""
import os
import random
import sys

n, noise = int(sys.argv[1]), float(sys.argv[2])
rng = random.Random(int(os.environ["XP_SEED"]))
rows = []
for _ in range(n):
    x = rng.uniform(-1, 1)
    rows.append((x, 3 * x - 1 + rng.gauss(0, noise)))
cut = int(n * 0.8)
out = os.environ["XP_OUTPUT_DIR"]
for name, part in (("train.csv", rows[:cut]), ("test.csv", rows[cut:])):
    with open(os.path.join(out, name), "w") as f:
        f.writelines(f"{x:.6f},{y:.6f}\n" for x, y in part)
print(f"{cut} training rows, {n - cut} test rows", file=sys.stderr)
