#!/usr/bin/env python3
"""SQLite FTS5 as the reference for the search benchmark (benches/search.rs): the same corpus,
the same queries, the same figures, in the same JSON-lines format (target "sqlite-fts5").

Usage: benches/search-fts5.py [N]    (N messages, default SEARCH_BENCH_MESSAGES or 1,000,000)
  SEARCH_BENCH_DIR, SEARCH_BENCH_RESULTS, SEARCH_BENCH_RUN   as for benches/search.rs
  FTS5_SYNCHRONOUS=FULL       PRAGMA synchronous (FULL: every commit is fsynced, as tantivy's)
  FTS5_PREFIX_INDEX=""        e.g. "3 4 5": FTS5's prefix= option (extra prefix indexes)
  FTS5_PREFIX_ON=stems        "words": prefixes match unstemmed words, as Switchboard's do, in a
                              second FTS5 table (unicode61 remove_diacritics 2, detail=none: the
                              counterpart of the tantivy index's `words` field); it is filled
                              in the same transactions and counted in the size
Needs the corpus and queries from benches/search-corpus N. Python 3 standard library only.

The setup is what an application would run: a file database under the cache directory in WAL
mode; a content table `messages` (one row per message, a unique index on its conversation and
message id as the search index's document key) and an external-content FTS5 table over its
text with the tokenizer `porter unicode61 remove_diacritics 2` (case and mark folding, English
stems, as Switchboard's analyzer does; its differences are listed below); every 1,024 messages
are inserted in one transaction, into both tables, as Switchboard's indexer commits.
The size is that of the database and its WAL after a checkpoint.

A query is one statement: the FTS5 MATCH, joined to `messages` on the rowid, restricted to the
user's conversations (`conversation_id IN (...)`, the same scope Switchboard's request
carries) and to the query's filter, ordered by `rank` (bm25) LIMIT 20, or by `sent_at` DESC,
message id DESC LIMIT 20 for newest-first; it reads whole rows, as Switchboard's page reads its
stored documents (highlights are not computed here). Translation: a word is the FTS5 string
"word"; a phrase "w1 w2 w3"; a prefix "abc"*; `from:U` is `sender_id = U`; `in:C` is
`conversation_id = C`; `after:D` is `sent_at >=` the end of day D (as Switchboard reads it).
Differences of analysis that remain: FTS5's porter is Porter's original stemmer where
Switchboard's is Snowball English (Porter2); FTS5 splits words at apostrophes (`don't` is two
tokens) and does not cut Chinese into character pairs; and a prefix here matches the start of a
stem, where Switchboard matches the start of a folded word. The query set avoids words with
apostrophes and Chinese, so both should find nearly the same messages; benches/run-search
compares the hits.

Each query is run once to warm up and once timed; each query's latency and hits are written to
<dir>/hits-fts5-N.tsv (kind, sort, number within its kind, ms, hit count, message ids).
"""
import calendar
import json
import math
import os
import sqlite3
import sys
import time

BATCH_SIZE = 1024
LIMIT = 20
DAY_MS = 24 * 3600 * 1000
KINDS = ["one-word", "phrase", "prefix", "filtered"]


def say(text):
    print(f"==> {text}", file=sys.stderr, flush=True)


def nearest_rank(ordered, point):
    rank = max(1, min(len(ordered), math.ceil(point * len(ordered))))
    return ordered[rank - 1]


def read_corpus(path):
    with open(path, encoding="utf-8") as corpus:
        for line in corpus:
            if line.startswith("#") or line == "\n":
                continue
            conversation, message, seq, sender, sent_at, attachment, text = line.rstrip("\n").split("\t", 6)
            yield conversation, message, int(seq), sender, int(sent_at), int(attachment), text


def read_queries(path):
    queries = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.startswith("#") or line == "\n":
                continue
            kind, user, terms, filter_text, query, scope = line.rstrip("\n").split("\t")
            queries.append({"kind": kind, "user": user, "terms": terms, "filter": filter_text,
                            "query": query, "scope": scope.split(",")})
    return queries


def fts5_string(text):
    return '"' + text.replace('"', '""') + '"'


def statement(query, sort, prefix_table):
    """The SQL and its parameters for one query."""
    table = "messages_fts"
    if query["kind"] == "prefix":
        match = fts5_string(query["terms"]) + "*"
        table = prefix_table
    else:
        match = fts5_string(query["terms"])
    conditions = [f"{table} MATCH ?", f"m.conversation_id IN ({','.join('?' * len(query['scope']))})"]
    parameters = [match, *query["scope"]]
    if query["filter"]:
        name, value = query["filter"].split(":", 1)
        if name == "from":
            conditions.append("m.sender_id = ?")
            parameters.append(value)
        elif name == "in":
            conditions.append("m.conversation_id = ?")
            parameters.append(value)
        elif name == "after":
            year, month, day = (int(part) for part in value.split("-"))
            conditions.append("m.sent_at >= ?")
            parameters.append(calendar.timegm((year, month, day, 0, 0, 0)) * 1000 + DAY_MS)
        else:
            raise SystemExit(f"unknown filter {query['filter']}")
    order = f"{table}.rank" if sort == "relevance" else "m.sent_at DESC, m.message_id DESC"
    sql = ("SELECT m.id, m.conversation_id, m.message_id, m.seq, m.sender_id, m.sent_at, "
           f"m.has_attachment, m.text FROM {table} JOIN messages AS m ON m.id = {table}.rowid "
           f"WHERE {' AND '.join(conditions)} ORDER BY {order} LIMIT {LIMIT}")
    return sql, parameters


def directories():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    directory = os.environ.get("SEARCH_BENCH_DIR") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target")), "search-bench")
    results = os.environ.get("SEARCH_BENCH_RESULTS") or os.path.join(
        root, "benches", "results", time.strftime("%Y-%m-%d-search.jsonl", time.gmtime()))
    return directory, results


def main():
    arguments = [argument for argument in sys.argv[1:] if not argument.startswith("-")]
    n_messages = int((arguments[0] if arguments else os.environ.get("SEARCH_BENCH_MESSAGES", "1000000")).replace("_", ""))
    directory, results_path = directories()
    run = os.environ.get("SEARCH_BENCH_RUN", "")
    synchronous = os.environ.get("FTS5_SYNCHRONOUS", "FULL")
    prefix_index = os.environ.get("FTS5_PREFIX_INDEX", "").strip()
    prefix_on = os.environ.get("FTS5_PREFIX_ON", "stems")
    if prefix_on not in ("stems", "words"):
        raise SystemExit(f"FTS5_PREFIX_ON is {prefix_on!r}: stems or words")
    prefix_table = "messages_words" if prefix_on == "words" else "messages_fts"
    corpus_path = os.path.join(directory, f"corpus-{n_messages}.tsv")
    queries_path = os.path.join(directory, f"queries-{n_messages}.tsv")
    if not os.path.exists(corpus_path):
        raise SystemExit(f"no corpus at {corpus_path}: run benches/search-corpus {n_messages}")
    rows = list(read_corpus(corpus_path))
    if len(rows) != n_messages:
        raise SystemExit(f"{corpus_path} holds {len(rows)} messages, not {n_messages}")
    queries = read_queries(queries_path)
    text_bytes = sum(len(row[6].encode("utf-8")) for row in rows)

    database_path = os.path.join(directory, f"fts5-{n_messages}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(database_path + suffix):
            os.unlink(database_path + suffix)
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE probe USING fts5(text)")
    except sqlite3.OperationalError as error:
        raise SystemExit(f"this Python's SQLite {sqlite3.sqlite_version} has no FTS5: {error}")
    connection = sqlite3.connect(database_path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {synchronous}")
    connection.execute("""CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        sender_id TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        has_attachment INTEGER NOT NULL,
        text TEXT NOT NULL)""")
    connection.execute("CREATE UNIQUE INDEX messages_by_key ON messages (conversation_id, message_id)")
    options = "content='messages', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'"
    if prefix_index:
        options += f", prefix='{prefix_index}'"
    connection.execute(f"CREATE VIRTUAL TABLE messages_fts USING fts5(text, {options})")
    if prefix_on == "words":
        connection.execute("CREATE VIRTUAL TABLE messages_words USING fts5(text, content='messages', "
                           "content_rowid='id', tokenize='unicode61 remove_diacritics 2', detail=none)")

    say(f"indexing {n_messages} messages in transactions of {BATCH_SIZE} (SQLite {sqlite3.sqlite_version}, "
        f"synchronous={synchronous})")
    cpu_before = time.process_time()
    started = time.perf_counter()
    for start in range(0, n_messages, BATCH_SIZE):
        batch = rows[start:start + BATCH_SIZE]
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO messages (id, conversation_id, message_id, seq, sender_id, sent_at, has_attachment, text) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ((start + offset + 1, *row) for offset, row in enumerate(batch)))
        connection.executemany(
            "INSERT INTO messages_fts (rowid, text) VALUES (?, ?)",
            ((start + offset + 1, row[6]) for offset, row in enumerate(batch)))
        if prefix_on == "words":
            connection.executemany(
                "INSERT INTO messages_words (rowid, text) VALUES (?, ?)",
                ((start + offset + 1, row[6]) for offset, row in enumerate(batch)))
        connection.execute("COMMIT")
    indexing_seconds = time.perf_counter() - started
    indexing_cpu = time.process_time() - cpu_before
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    index_bytes = sum(os.path.getsize(database_path + suffix) for suffix in ("", "-wal", "-shm")
                      if os.path.exists(database_path + suffix))
    del rows

    say("warming up: every query once")
    prepared = []
    for query in queries:
        for sort in ("relevance", "newest") if query["kind"] == "one-word" else ("relevance",):
            sql, parameters = statement(query, sort, prefix_table)
            connection.execute(sql, parameters).fetchall()
            prepared.append((query["kind"], sort, sql, parameters))

    figures = []
    dump = []
    for kind, sort in [(kind, "relevance") for kind in KINDS] + [("one-word", "newest")]:
        latencies, hits = [], []
        cpu_before = time.process_time()
        for number, (_, _, sql, parameters) in enumerate(
                [entry for entry in prepared if entry[0] == kind and entry[1] == sort]):
            started = time.perf_counter()
            found = connection.execute(sql, parameters).fetchall()
            latencies.append((time.perf_counter() - started) * 1000)
            hits.append(len(found))
            dump.append(f"{kind}\t{sort}\t{number}\t{latencies[-1]:.3f}\t{len(found)}\t"
                        f"{','.join(row[2] for row in found)}\n")
        cpu = time.process_time() - cpu_before
        ordered = sorted(latencies)
        figures.append({
            "kind": kind, "sort": sort, "n": len(ordered),
            "p50": nearest_rank(ordered, 0.5), "p99": nearest_rank(ordered, 0.99), "max": ordered[-1],
            "mean": sum(ordered) / len(ordered), "mean_hits": sum(hits) / len(hits),
            "zero_hit_queries": sum(1 for count in hits if count == 0), "cpu_s": cpu,
        })
    connection.close()
    with open(os.path.join(directory, f"hits-fts5-{n_messages}.tsv"), "w", encoding="utf-8") as file:
        file.writelines(dump)

    messages_per_second = n_messages / indexing_seconds
    print(f"\nSQLite FTS5 (SQLite {sqlite3.sqlite_version}), {n_messages} messages "
          f"({text_bytes / n_messages:.0f} bytes of text each)")
    print(f"indexing: {messages_per_second:.0f} messages/s, {indexing_seconds:.1f} s wall, {indexing_cpu:.1f} s CPU")
    print(f"index: {index_bytes} bytes on disk, {index_bytes / n_messages:.0f} bytes per message "
          "(database with the text, the key index and FTS5)")
    print("\n| query | sort | n | p50 ms | p99 ms | max ms | mean ms | mean hits | no hit | CPU s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for figure in figures:
        print(f"| {figure['kind']} | {figure['sort']} | {figure['n']} | {figure['p50']:.3f} | {figure['p99']:.3f} | "
              f"{figure['max']:.3f} | {figure['mean']:.3f} | {figure['mean_hits']:.1f} | "
              f"{figure['zero_hit_queries']} | {figure['cpu_s']:.2f} |")

    common = {"bench": "search", "run": run, "target": "sqlite-fts5",
              "engine": f"SQLite {sqlite3.sqlite_version} FTS5 (porter unicode61 remove_diacritics 2"
                        + (f", prefix='{prefix_index}'" if prefix_index else "")
                        + (", prefixes on a words table" if prefix_on == "words" else "")
                        + f", synchronous={synchronous})",
              "messages": n_messages, "text_bytes_per_message": round(text_bytes / n_messages, 3)}
    lines = [{"figure": "indexing", "batch": BATCH_SIZE, "seconds": round(indexing_seconds, 3),
              "messages_per_s": round(messages_per_second), "cpu_s": round(indexing_cpu, 3),
              "index_bytes": index_bytes, "bytes_per_message": round(index_bytes / n_messages, 3)}]
    for figure in figures:
        lines.append({"figure": "query", "kind": figure["kind"], "sort": figure["sort"], "limit": LIMIT,
                      "latency_ms": {key: round(figure[key], 3) if key != "n" else figure[key]
                                     for key in ("n", "p50", "p99", "max", "mean")},
                      "mean_hits": round(figure["mean_hits"], 3),
                      "zero_hit_queries": figure["zero_hit_queries"], "cpu_s": round(figure["cpu_s"], 3)})
    os.makedirs(os.path.dirname(os.path.abspath(results_path)), exist_ok=True)
    with open(results_path, "a", encoding="utf-8") as results:
        for line in lines:
            results.write(json.dumps({**line, **common}, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"\nresults appended to {results_path}")


if __name__ == "__main__":
    main()
