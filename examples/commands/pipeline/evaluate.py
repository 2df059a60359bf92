"""evaluate.py MODEL_JSON TEST_CSV — prints the model's mean squared error
on the test rows (the step's value: the last JSON line of stdout)."""
import json
import sys

model = json.load(open(sys.argv[1]))
rows = [tuple(map(float, line.split(","))) for line in open(sys.argv[2])]
mse = sum((model["w"] * x + model["b"] - y) ** 2 for x, y in rows) / len(rows)
print(json.dumps(mse))
