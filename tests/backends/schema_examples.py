"""schema_examples.py — runs the Python examples of docs/schema.md
("Reading it with Python") against the MongoDB server of
XP_TEST_MONGODB_URI (FerretDB in tests/run.sh): the quickstart program
records three trials there, then the documentation's block runs as
written, and what it computed is checked here. Debian's python3-pymongo
and python3-pandas; skipped (exit 77) without them or without a server."""
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse

SKIP = 77


def main():
    uri = os.environ.get("XP_TEST_MONGODB_URI")
    if not uri:
        print("skipping: XP_TEST_MONGODB_URI is not set (tests/run.sh "
              "starts a server)")
        return SKIP
    try:
        import pandas  # noqa: F401
        import pymongo  # noqa: F401
    except ImportError as e:
        print(f"skipping: {e} (apt install python3-pymongo python3-pandas)")
        return SKIP
    # A database of this run's own.
    parts = urllib.parse.urlsplit(uri)
    uri = urllib.parse.urlunsplit(parts._replace(path=f"/xp_docs_{os.getpid()}"))
    ex = "quickstart_pj"
    program = os.path.join(os.environ["XP_EXAMPLES_DIR"], "quickstart")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, XP_CACHE_DIR=cache)
        for a in (1, 2, 3):
            subprocess.run([program, f"a={a}", "b=2", "--seed", "1",
                            "--backend", uri], check=True, env=env,
                           stdout=subprocess.DEVNULL)
    docs = os.environ["XP_SCHEMA_MD"]
    text = open(docs, encoding="utf-8").read()
    section = text.split("### Reading it with Python", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {"uri": uri, "ex": ex}
    exec(compile(block, docs + " (Python example)", "exec"), scope)

    rows, df, metric, code = (scope[k] for k in ("rows", "df", "metric",
                                                 "code"))
    assert [r["parameters"]["a"] for r in rows] == [2, 1], rows
    assert list(df.index) == [1, 2, 3], df
    assert list(df["parameters.a"]) == [1, 2, 3], df
    assert (df["status"] == "succeeded").all(), df
    assert abs(df.loc[1, "result"] - 10 / 3) < 1e-12, df
    assert metric.shape == (100, 3), metric.shape
    assert list(metric.columns) == [1, 2, 3], metric.columns
    assert "calculate_score" in code and "prepare_data" in code, code
    try:  # cleanup only: the Python test server has no dropDatabase
        scope["pymongo"].MongoClient(uri).drop_database(
            f"xp_docs_{os.getpid()}")
    except Exception as e:  # noqa: BLE001
        print(f"(database xp_docs_{os.getpid()} left: {e})")
    print("docs/schema.md's Python example ran: "
          f"{len(df)} trials, metric {metric.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
