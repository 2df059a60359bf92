#!/usr/bin/python3
"""mongo_test_server.py — a MongoDB wire-protocol test server for xp's tests.

mockupdb speaks the wire protocol (OP_QUERY handshake, OP_MSG commands) and
mongomock executes the commands against in-memory collections, including
unique-index violations. Exactly the commands the xp MongoDB backend and
mongo-c-driver 1.23 send are implemented; anything else is answered with
`{ok: 0, code: 59, errmsg: "unsupported command: NAME"}` so an unsupported
command fails a test instead of passing silently.

    /usr/bin/python3 mongo_test_server.py --port PORT [--verbose]

Listens on 127.0.0.1:PORT, prints `ready` once listening, keeps its state in
memory and runs until killed. mockupdb serves every connection on its own
thread and runs the handler under one lock, so commands are atomic.
"""
import argparse
import datetime
import itertools
import sys
import threading
import time

import bson
import mockupdb
import mongomock
from bson import Int64
from bson.raw_bson import RawBSONDocument
from bson.son import SON
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

MAX_WIRE_VERSION = 13  # MongoDB 5.0; mongo-c-driver 1.23 accepts 6..17
MAX_BSON_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48000000
BATCH_BYTES = 4 * 1024 * 1024  # cursor batches stay well below 16 MB
FIRST_BATCH_DOCS = 101
PASSTHROUGH = ("$db", "lsid", "$clusterTime", "$readPreference",
               "writeConcern", "readConcern", "txnNumber", "apiVersion",
               "apiStrict", "apiDeprecationErrors", "comment",
               "maxTimeMS", "bypassDocumentValidation")


def _quiet_repr(self):
    return "<%s>" % type(self).__name__


# mockupdb formats every request and reply with repr() for its (disabled)
# verbose log even when nothing is printed; for megabyte GridFS chunks and
# metric buckets that costs more than executing the command.
for _cls in vars(mockupdb).values():
    if isinstance(_cls, type) and issubclass(_cls, (mockupdb.Request,
                                                    mockupdb.Reply)):
        _cls.__repr__ = _quiet_repr


class CommandError(Exception):
    def __init__(self, code, errmsg, code_name=None):
        super().__init__(errmsg)
        self.code = code
        self.errmsg = errmsg
        self.code_name = code_name


def _dup_key_message(ns, exc):
    return "E11000 duplicate key error collection: %s (%s)" % (ns, exc)


class MongoTestServer:
    """Executes wire-protocol commands on a mongomock client."""

    def __init__(self, verbose=False):
        self.client = mongomock.MongoClient()
        self.cursors = {}
        self.cursor_ids = itertools.count(1)
        self.connection_ids = itertools.count(1)
        self.lock = threading.Lock()
        self.verbose = verbose
        self.commands = {
            "hello": self.cmd_hello,
            "ismaster": self.cmd_hello,
            "ping": self.cmd_ping,
            "endsessions": self.cmd_ping,
            "find": self.cmd_find,
            "distinct": self.cmd_distinct,
            "aggregate": self.cmd_aggregate,
            "getmore": self.cmd_get_more,
            "killcursors": self.cmd_kill_cursors,
            "insert": self.cmd_insert,
            "update": self.cmd_update,
            "delete": self.cmd_delete,
            "findandmodify": self.cmd_find_and_modify,
            "createindexes": self.cmd_create_indexes,
            "listindexes": self.cmd_list_indexes,
        }

    # ---------------------------------------------------------- dispatch

    def handle(self, request):
        """mockupdb autoresponder: answers every request."""
        if not isinstance(request, (mockupdb.OpMsg, mockupdb.Command)):
            return request.fail("unsupported wire protocol operation %s"
                                % type(request).__name__)
        doc = request.doc
        name = next(iter(doc), "")
        try:
            with self.lock:
                handler = self.commands.get(name.lower())
                if handler is None:
                    raise CommandError(59, "unsupported command: %s" % name,
                                       "CommandNotFound")
                db = doc.get("$db") or request.namespace or "test"
                reply = handler(self.client[db], db, doc)
        except CommandError as e:
            reply = {"ok": 0, "errmsg": e.errmsg, "code": e.code}
            if e.code_name:
                reply["codeName"] = e.code_name
        except DuplicateKeyError as e:
            reply = {"ok": 0, "errmsg": "E11000 duplicate key error (%s)" % e,
                     "code": 11000, "codeName": "DuplicateKey"}
        except Exception as e:  # never leave a client waiting for a reply
            reply = {"ok": 0, "code": 1, "codeName": "InternalError",
                     "errmsg": "test server error in %s: %s: %s"
                               % (name, type(e).__name__, e)}
        if self.verbose:
            print("%s -> ok=%s" % (name, reply.get("ok", 1)), flush=True)
        return request.replies(reply)

    @staticmethod
    def _collection_name(doc, name):
        coll = doc.get(name)
        if not isinstance(coll, str) or not coll:
            raise CommandError(73, "invalid collection name for %s" % name,
                               "InvalidNamespace")
        return coll

    # ---------------------------------------------------------- handshake

    def cmd_hello(self, db, dbname, doc):
        return {
            "ismaster": True,
            "isWritablePrimary": True,
            "helloOk": True,
            "maxBsonObjectSize": MAX_BSON_SIZE,
            "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
            "maxWriteBatchSize": 100000,
            "localTime": datetime.datetime.utcnow(),
            "connectionId": next(self.connection_ids),
            "minWireVersion": 0,
            "maxWireVersion": MAX_WIRE_VERSION,
            "readOnly": False,
            "ok": 1,
        }

    def cmd_ping(self, db, dbname, doc):
        return {"ok": 1}

    # ---------------------------------------------------------- cursors

    def _batch(self, docs, limit_docs):
        """Pops the next batch: at most limit_docs documents and about
        BATCH_BYTES bytes (at least one document), encoded once."""
        batch, size = [], 0
        while docs and len(batch) < limit_docs:
            raw = docs[0]
            if not isinstance(raw, RawBSONDocument):
                raw = RawBSONDocument(bson.BSON.encode(raw))
            if batch and size + len(raw.raw) > BATCH_BYTES:
                docs[0] = raw
                break
            docs.pop(0)
            batch.append(raw)
            size += len(raw.raw)
        return batch

    def _cursor_reply(self, ns, docs, batch_size, single_batch,
                      key="firstBatch"):
        first = self._batch(docs, batch_size or FIRST_BATCH_DOCS)
        cursor_id = 0
        if docs and not single_batch:
            cursor_id = next(self.cursor_ids)
            self.cursors[cursor_id] = (ns, docs)
        return {"cursor": {"id": Int64(cursor_id), "ns": ns, key: first},
                "ok": 1}

    def cmd_find(self, db, dbname, doc):
        name = self._collection_name(doc, "find")
        projection = doc.get("projection") or None
        cursor = db[name].find(doc.get("filter") or {}, projection)
        sort = doc.get("sort")
        if sort:
            cursor = cursor.sort(list(sort.items()))
        skip = int(doc.get("skip", 0) or 0)
        if skip:
            cursor = cursor.skip(skip)
        limit = int(doc.get("limit", 0) or 0)
        single = bool(doc.get("singleBatch", False)) or limit < 0
        limit = abs(limit)
        if limit:
            cursor = cursor.limit(limit)
        docs = list(cursor)
        batch_size = int(doc.get("batchSize", 0) or 0)
        return self._cursor_reply("%s.%s" % (dbname, name), docs, batch_size,
                                  single)

    def cmd_distinct(self, db, dbname, doc):
        name = self._collection_name(doc, "distinct")
        key = doc.get("key")
        if not isinstance(key, str) or not key:
            raise CommandError(2, "distinct needs a key", "BadValue")
        values = db[name].distinct(key, doc.get("query") or {})
        return {"values": values, "ok": 1}

    # Stages a count_documents pipeline uses ({$match}, {$skip}, {$limit},
    # {$group}); mongomock runs them.
    AGGREGATE_STAGES = ("$match", "$skip", "$limit", "$group")

    def cmd_aggregate(self, db, dbname, doc):
        name = self._collection_name(doc, "aggregate")
        pipeline = doc.get("pipeline") or []
        for stage in pipeline:
            op = next(iter(stage), "")
            if op not in self.AGGREGATE_STAGES:
                raise CommandError(59, "aggregate stage %s is not supported "
                                   "by the test server" % op)
        docs = list(db[name].aggregate(pipeline))
        batch = int((doc.get("cursor") or {}).get("batchSize", 0) or 0)
        return self._cursor_reply("%s.%s" % (dbname, name), docs, batch,
                                  False)

    def cmd_get_more(self, db, dbname, doc):
        cursor_id = int(doc["getMore"])
        entry = self.cursors.get(cursor_id)
        if entry is None:
            raise CommandError(43, "cursor id %d not found" % cursor_id,
                               "CursorNotFound")
        ns, docs = entry
        batch = self._batch(docs, int(doc.get("batchSize", 0) or 0)
                            or sys.maxsize)
        if not docs:
            del self.cursors[cursor_id]
            cursor_id = 0
        return {"cursor": {"id": Int64(cursor_id), "ns": ns,
                           "nextBatch": batch}, "ok": 1}

    def cmd_kill_cursors(self, db, dbname, doc):
        killed, missing = [], []
        for cursor_id in doc.get("cursors", []):
            if self.cursors.pop(int(cursor_id), None) is None:
                missing.append(cursor_id)
            else:
                killed.append(cursor_id)
        return {"cursorsKilled": killed, "cursorsNotFound": missing,
                "cursorsAlive": [], "cursorsUnknown": [], "ok": 1}

    # ---------------------------------------------------------- writes

    @staticmethod
    def _write_error(index, exc, ns):
        if isinstance(exc, DuplicateKeyError):
            return {"index": index, "code": 11000,
                    "errmsg": _dup_key_message(ns, exc)}
        code = getattr(exc, "code", None) or 2
        return {"index": index, "code": code, "errmsg": str(exc)}

    @staticmethod
    def _write_reply(n, errors, **extra):
        reply = {"n": n}
        reply.update(extra)
        if errors:
            reply["writeErrors"] = errors
        reply["ok"] = 1
        return reply

    def cmd_insert(self, db, dbname, doc):
        name = self._collection_name(doc, "insert")
        ns = "%s.%s" % (dbname, name)
        ordered = doc.get("ordered", True)
        n, errors = 0, []
        for i, item in enumerate(doc.get("documents", [])):
            try:
                db[name].insert_one(item)
                n += 1
            except (OperationFailure, ValueError) as e:
                errors.append(self._write_error(i, e, ns))
                if ordered:
                    break
        return self._write_reply(n, errors)

    @staticmethod
    def _is_replacement(update):
        return not any(k.startswith("$") for k in update)

    def cmd_update(self, db, dbname, doc):
        name = self._collection_name(doc, "update")
        ns = "%s.%s" % (dbname, name)
        coll = db[name]
        ordered = doc.get("ordered", True)
        n = modified = 0
        upserted, errors = [], []
        for i, stmt in enumerate(doc.get("updates", [])):
            try:
                query, update = stmt.get("q", {}), stmt.get("u")
                upsert = bool(stmt.get("upsert", False))
                if not isinstance(update, dict):
                    raise OperationFailure("pipeline updates are not "
                                           "supported by the test server",
                                           code=59)
                if self._is_replacement(update):
                    result = coll.replace_one(query, update, upsert=upsert)
                elif stmt.get("multi", False):
                    result = coll.update_many(query, update, upsert=upsert)
                else:
                    result = coll.update_one(query, update, upsert=upsert)
                n += result.matched_count
                modified += result.modified_count
                if result.upserted_id is not None:
                    n += 1
                    upserted.append({"index": i, "_id": result.upserted_id})
            except (OperationFailure, ValueError) as e:
                errors.append(self._write_error(i, e, ns))
                if ordered:
                    break
        extra = {"nModified": modified}
        if upserted:
            extra["upserted"] = upserted
        return self._write_reply(n, errors, **extra)

    def cmd_delete(self, db, dbname, doc):
        name = self._collection_name(doc, "delete")
        coll = db[name]
        n = 0
        for stmt in doc.get("deletes", []):
            if int(stmt.get("limit", 0)) == 1:
                n += coll.delete_one(stmt.get("q", {})).deleted_count
            else:
                n += coll.delete_many(stmt.get("q", {})).deleted_count
        return self._write_reply(n, [])

    def cmd_find_and_modify(self, db, dbname, doc):
        name = next(v for k, v in doc.items() if k.lower() == "findandmodify")
        coll = db[name]
        query = doc.get("query") or {}
        sort = doc.get("sort")
        sort = list(sort.items()) if sort else None
        fields = doc.get("fields") or None
        upsert = bool(doc.get("upsert", False))
        existed = coll.find_one(query) is not None
        if doc.get("remove"):
            value = coll.find_one_and_delete(query, projection=fields,
                                             sort=sort)
        else:
            update = doc.get("update")
            if not isinstance(update, dict):
                raise CommandError(59, "findAndModify without an update "
                                       "document is not supported by the "
                                       "test server")
            after = (ReturnDocument.AFTER if doc.get("new")
                     else ReturnDocument.BEFORE)
            method = (coll.find_one_and_replace
                      if self._is_replacement(update)
                      else coll.find_one_and_update)
            value = method(query, update, projection=fields, sort=sort,
                           upsert=upsert, return_document=after)
        last = {"n": 1 if existed or upsert else 0,
                "updatedExisting": existed}
        if upsert and not existed and isinstance(value, dict) \
                and "_id" in value:
            last["upserted"] = value["_id"]
        return {"lastErrorObject": last, "value": value, "ok": 1}

    # ---------------------------------------------------------- indexes

    def cmd_create_indexes(self, db, dbname, doc):
        name = self._collection_name(doc, "createIndexes")
        coll = db[name]
        created = name not in db.list_collection_names()
        before = len(coll.index_information())
        for spec in doc.get("indexes", []):
            options = {k: v for k, v in spec.items()
                       if k in ("unique", "sparse", "name",
                                "expireAfterSeconds")}
            try:
                coll.create_index(list(spec["key"].items()), **options)
            except DuplicateKeyError as e:
                raise CommandError(11000, _dup_key_message(
                    "%s.%s" % (dbname, name), e), "DuplicateKey")
        after = len(coll.index_information())
        return {"createdCollectionAutomatically": created,
                "numIndexesBefore": before, "numIndexesAfter": after,
                "ok": 1}

    def cmd_list_indexes(self, db, dbname, doc):
        name = self._collection_name(doc, "listIndexes")
        if name not in db.list_collection_names():
            raise CommandError(26, "ns does not exist: %s.%s"
                               % (dbname, name), "NamespaceNotFound")
        docs = []
        for index_name, info in db[name].index_information().items():
            spec = SON([("v", 2), ("key", SON(info["key"])),
                        ("name", index_name)])
            if info.get("unique"):
                spec["unique"] = True
            docs.append(spec)
        batch = int((doc.get("cursor") or {}).get("batchSize", 0) or 0)
        return self._cursor_reply("%s.%s" % (dbname, name), docs, batch,
                                  False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--verbose", action="store_true",
                        help="print each command name and outcome")
    args = parser.parse_args()

    server = mockupdb.MockupDB(port=args.port, request_timeout=int(1e6))
    server._address = ("127.0.0.1", args.port)  # not "localhost"
    executor = MongoTestServer(verbose=args.verbose)
    server.autoresponds(executor.handle)
    server.run()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
