#!/usr/bin/env node
/*
 * Cosmos DB (NoSQL API) emulator launcher for tests.
 *
 * Loads @vercel/cosmosdb-server@1.0.1 (its account model, its resource
 * handlers for databases / containers / partition key ranges and its SQL
 * engine @zeit/cosmosdb-query) and REPLACES every document-level request
 * handler, whose stock behaviour differs from real Cosmos DB.  See
 * docs/emulators.md for the list of gaps and how each one is handled.
 *
 * Rule of thumb: where the harness can reproduce real Cosmos DB behaviour it
 * does; where it cannot, it REFUSES the request with HTTP 400 and a message
 * that starts with "cosmos-harness:" so that no test can pass on behaviour
 * that real Cosmos DB lacks.
 *
 * Usage: node cosmos-launcher.js [--port 8081] [--host 127.0.0.1]
 * Env:   COSMOSDB_SERVER_DIR  directory of the @vercel/cosmosdb-server package
 *                             (default: <repo>/.emulators/node_modules/@vercel/cosmosdb-server)
 *        COSMOS_HARNESS_TRACE=1  log every request (method, path, status) to stderr
 */
"use strict";

const fs = require("fs");
const https = require("https");
const path = require("path");
const crypto = require("crypto");
const { URL } = require("url");

const EXPECTED_VERSION = "1.0.1";
const MAX_ITEM_BYTES = 2 * 1024 * 1024; // real Cosmos DB: an item is at most 2 MB
const MAX_REQUEST_BYTES = 2 * 1024 * 1024 + 64 * 1024; // request payload limit (~2 MB)
const MAX_BATCH_OPERATIONS = 100; // real Cosmos DB: transactional batch limit
const MAX_PATCH_OPERATIONS = 10; // real Cosmos DB: patch limit
const KEEP_ALIVE_MS = 75 * 1000; // longer than aiohttp's 15 s idle timeout
// Sent on every response so that tests can tell this harness from a stock server.
const HARNESS_ID = "cosmos-launcher/1";

// ---------------------------------------------------------------------------
// Arguments and package loading
// ---------------------------------------------------------------------------

function parseArgs(argv) {
  const args = { port: 8081, host: "127.0.0.1" };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === "-p" || a === "--port") args.port = parseInt(argv[(i += 1)], 10);
    else if (a === "--host") args.host = argv[(i += 1)];
    else if (a === "-h" || a === "--help") args.help = true;
    else {
      process.stderr.write(`cosmos-launcher: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
    process.stderr.write("cosmos-launcher: invalid --port\n");
    process.exit(2);
  }
  return args;
}

function locatePackage() {
  const candidates = [];
  if (process.env.COSMOSDB_SERVER_DIR) candidates.push(process.env.COSMOSDB_SERVER_DIR);
  candidates.push(
    path.resolve(__dirname, "..", "..", ".emulators", "node_modules", "@vercel", "cosmosdb-server")
  );
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
  }
  process.stderr.write(
    `cosmos-launcher: @vercel/cosmosdb-server not found (looked in ${candidates.join(", ")}); ` +
      "run scripts/emulators/install.sh\n"
  );
  process.exit(3);
  return null;
}

const PKG_DIR = locatePackage();
const PKG_VERSION = JSON.parse(fs.readFileSync(path.join(PKG_DIR, "package.json"), "utf8")).version;
if (PKG_VERSION !== EXPECTED_VERSION) {
  // The handlers below rely on the internals of exactly this version.
  process.stderr.write(
    `cosmos-launcher: expected @vercel/cosmosdb-server@${EXPECTED_VERSION}, found ${PKG_VERSION}\n`
  );
  process.exit(3);
}
const LIB = path.join(PKG_DIR, "lib");
const Account = require(path.join(LIB, "account")).default;
const Items = require(path.join(LIB, "account", "items")).default;
const stockRoutes = require(path.join(LIB, "routes")).default;
// The SQL engine is a dependency of the server package; resolve it from there.
const cosmosQueryModule = require(require.resolve("@zeit/cosmosdb-query", { paths: [PKG_DIR] }));
const parseQuery = cosmosQueryModule.default;
const QuerySyntaxError = cosmosQueryModule.SyntaxError;

// ---------------------------------------------------------------------------
// Storage model fix: typed logical-partition keys.
//
// The stock index key is `${partition || id}:${keyPath}:${id}`, which
//   - merges partition key values 1 and "1" (real Cosmos keeps them apart),
//   - files documents whose partition key is "", 0, false or null under their id,
//   - merges a missing partition key (undefined) with null.
// Replace it with an unambiguous, type-aware key.  Databases, containers and
// UDFs pass their own id as "partition", so they are unaffected.
// ---------------------------------------------------------------------------

const UNDEFINED_PK = { "$harness": "undefined-partition-key" };
Items.prototype._getId = function getId(keyPath, id, partition) {
  return JSON.stringify([partition === undefined ? UNDEFINED_PK : partition, keyPath, id]);
};

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

class HttpError extends Error {
  constructor(statusCode, code, message, extra) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
    this.extra = extra || {};
  }
}

const refuse = msg => new HttpError(400, "BadRequest", `cosmos-harness: ${msg} (see docs/emulators.md)`);
const badRequest = msg => new HttpError(400, "BadRequest", msg);
const notFound = (msg = "Entity with the specified id does not exist in the system.") =>
  new HttpError(404, "NotFound", msg);
const conflict = (msg = "Entity with the specified id already exists in the system.") =>
  new HttpError(409, "Conflict", msg);
const preconditionFailed = () =>
  new HttpError(
    412,
    "PreconditionFailed",
    "Operation cannot be performed because one of the specified precondition is not met."
  );
const tooLarge = () => new HttpError(413, "RequestEntityTooLarge", "Request size is too large");

function header(req, name) {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isTrue(req, name) {
  const v = header(req, name);
  return typeof v === "string" && v.toLowerCase() === "true";
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let failed = false;
    // Oversized bodies are drained before answering 413, so that the client
    // reads the answer instead of failing on a reset connection.
    req.on("data", c => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) failed = true;
      if (!failed) chunks.push(c);
    });
    req.on("end", () => {
      if (failed) reject(tooLarge());
      else resolve(Buffer.concat(chunks));
    });
    req.on("error", reject);
  });
}

async function readJson(req) {
  const buf = await readBody(req);
  try {
    return JSON.parse(buf.toString("utf8"));
  } catch (err) {
    throw badRequest(`The request payload is invalid: ${err.message}`);
  }
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(k => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
}

// Canonical JSON (sorted keys) used for DISTINCT.
function canonical(v) {
  if (v === undefined) return "u";
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  return `{${Object.keys(v)
    .filter(k => v[k] !== undefined)
    .sort()
    .map(k => `${JSON.stringify(k)}:${canonical(v[k])}`)
    .join(",")}}`;
}

// ---------------------------------------------------------------------------
// Per-container harness state (kept on the container's Documents object so
// that it follows the documents when a container is replaced).
//
// Costs are kept proportional to what a request touches, as in real Cosmos
// DB: every logical partition has its own list of documents (in creation
// order), so a partition-scoped query reads that partition only, and a
// transactional batch is made atomic with an undo journal of the documents it
// touches instead of a copy of the whole container.
// ---------------------------------------------------------------------------

function stateOf(docs) {
  if (!docs.__harness) {
    docs.__harness = {
      seq: 0, // creation order (real Cosmos orders unsorted results by _rid)
      order: new Map(), // _rid -> creation sequence (Map order = creation order)
      lsn: 0, // logical sequence number for the change feed
      docLsn: new Map(), // _rid -> lsn of the last write
      parts: new Map() // partition key (typed, see partKey) -> Map(_rid -> true), creation order
    };
  }
  return docs.__harness;
}

// The typed identity of a partition key value (1 and "1" differ, null and
// missing differ); null for values that cannot be partition keys (objects),
// which then fall back to a scan.
function partKey(value) {
  if (value === undefined) return "u";
  if (value !== null && typeof value === "object") return null;
  return `v${JSON.stringify(value)}`;
}

function partitionOf(docs, doc) {
  return partKey(docs._getPartition(doc));
}

// Undo journal of the running transactional batch (null outside batches).
let journal = null;

function journalTouch(docs, rid, existed) {
  if (journal === null || journal.docs !== docs || journal.touched.has(rid)) return;
  const st = stateOf(docs);
  journal.touched.set(rid, {
    item: existed ? docs._data.get(rid) : undefined,
    order: st.order.get(rid),
    lsn: st.docLsn.get(rid)
  });
}

function beginJournal(docs) {
  const st = stateOf(docs);
  journal = { docs, touched: new Map(), ridCount: docs._ridCount, seq: st.seq, lsn: st.lsn };
}

function uniqueKeys(docs, doc) {
  const partition = docs._getPartition(doc);
  return docs._uniqueKeyPaths.map(keyPath => {
    let v = doc;
    for (const k of keyPath.slice(1).split("/")) v = v === undefined || v === null ? undefined : v[k];
    return docs._getId(keyPath, v, partition);
  });
}

function removeEntry(docs, rid) {
  const st = stateOf(docs);
  const item = docs._data.get(rid);
  const doc = item ? item.read() : undefined;
  if (doc) {
    for (const key of uniqueKeys(docs, doc)) if (docs._index.get(key) === rid) docs._index.delete(key);
    const part = st.parts.get(partitionOf(docs, doc));
    if (part) part.delete(rid);
  }
  docs._data.delete(rid);
  st.order.delete(rid);
  st.docLsn.delete(rid);
}

// Undo every write of the batch: the documents, their index entries, their
// partition lists, creation order and change-feed positions, and the counters.
function rollbackJournal() {
  const { docs, touched, ridCount, seq, lsn } = journal;
  journal = null;
  const st = stateOf(docs);
  const reorder = new Set();
  for (const [rid, before] of [...touched.entries()].reverse()) {
    removeEntry(docs, rid);
    if (!before.item) continue;
    const doc = before.item.read();
    docs._data.set(rid, before.item);
    for (const key of uniqueKeys(docs, doc)) docs._index.set(key, rid);
    if (before.order !== undefined) st.order.set(rid, before.order);
    if (before.lsn !== undefined) st.docLsn.set(rid, before.lsn);
    const pkey = partitionOf(docs, doc);
    if (!st.parts.has(pkey)) st.parts.set(pkey, new Map());
    st.parts.get(pkey).set(rid, true);
    reorder.add(pkey);
  }
  docs._ridCount = ridCount;
  st.seq = seq;
  st.lsn = lsn;
  // Re-inserted documents go back to their creation position.
  const bySeq = (a, b) => (st.order.get(a) || 0) - (st.order.get(b) || 0);
  for (const pkey of reorder) {
    const part = st.parts.get(pkey);
    st.parts.set(pkey, new Map([...part.keys()].sort(bySeq).map(r => [r, true])));
  }
  if (reorder.size) st.order = new Map([...st.order.entries()].sort((a, b) => a[1] - b[1]));
}

function recordWrite(docs, doc, isNew) {
  const st = stateOf(docs);
  if (isNew || !st.order.has(doc._rid)) {
    st.seq += 1;
    st.order.set(doc._rid, st.seq);
  }
  st.lsn += 1;
  st.docLsn.set(doc._rid, st.lsn);
  const pkey = partitionOf(docs, doc);
  if (pkey !== null) {
    if (!st.parts.has(pkey)) st.parts.set(pkey, new Map());
    const part = st.parts.get(pkey);
    if (!part.has(doc._rid)) part.set(doc._rid, true);
  }
}

function recordDelete(docs, doc) {
  const st = stateOf(docs);
  st.order.delete(doc._rid);
  st.docLsn.delete(doc._rid);
  const part = st.parts.get(partitionOf(docs, doc));
  if (part) {
    part.delete(doc._rid);
    if (!part.size) st.parts.delete(partitionOf(docs, doc));
  }
}

// ---------------------------------------------------------------------------
// Containers, partition keys, documents
// ---------------------------------------------------------------------------

let account; // set when the server listens

function getContainer(dbId, collId) {
  const db = account.database(dbId);
  if (!db.read()) throw notFound(`Owner resource does not exist: database '${dbId}'`);
  const coll = db.collection(collId);
  if (!coll.read()) throw notFound(`Owner resource does not exist: container '${collId}'`);
  return coll;
}

function hasPartitionKeyDefinition(coll) {
  const pk = coll.read().partitionKey;
  return Boolean(pk && Array.isArray(pk.paths) && pk.paths.length);
}

function docPartitionKey(coll, doc) {
  return coll.documents._getPartition(doc);
}

// Parses x-ms-documentdb-partitionkey.  Returns {present:false} or
// {present:true, value} where value undefined means "None"/[{}].
function parsePkHeader(req) {
  const raw = header(req, "x-ms-documentdb-partitionkey");
  if (raw === undefined) return { present: false };
  let v;
  try {
    v = JSON.parse(raw);
  } catch (err) {
    throw badRequest(`Partition key ${raw} is invalid.`);
  }
  if (!Array.isArray(v)) throw badRequest(`Partition key ${raw} is invalid.`);
  if (v.length > 1) throw refuse("hierarchical (multi-component) partition keys are not supported");
  if (v.length === 0) throw refuse("the empty partition key (PartitionKey.Empty) is not supported");
  const [value] = v;
  if (value !== null && typeof value === "object") {
    if (Object.keys(value).length === 0) return { present: true, value: undefined };
    throw badRequest(`Partition key ${raw} is invalid.`);
  }
  return { present: true, value };
}

function requirePk(req, coll) {
  const pk = parsePkHeader(req);
  if (!pk.present && hasPartitionKeyDefinition(coll)) {
    throw badRequest(
      "PartitionKey value must be supplied for this operation. " +
        "(x-ms-documentdb-partitionkey header is missing)"
    );
  }
  return pk;
}

function pkMatches(coll, doc, pk) {
  if (!pk.present || !hasPartitionKeyDefinition(coll)) return true;
  return deepEqual(docPartitionKey(coll, doc), pk.value);
}

function findDoc(coll, id, pk) {
  const docs = coll.documents;
  if (pk.present && hasPartitionKeyDefinition(coll)) {
    const rid = docs._index.get(docs._getId("/id", id, pk.value));
    const item = rid !== undefined ? docs._data.get(rid) : undefined;
    const data = item ? item.read() : undefined;
    return data && data.id === id ? data : undefined;
  }
  // container without partition key definition: ids are unique container-wide
  for (const item of docs._data.values()) {
    const d = item.read();
    if (d && d.id === id) return d;
  }
  return undefined;
}

// Every document of the container in creation order.
function allDocs(coll) {
  purgeExpired(coll);
  const docs = coll.documents;
  const st = stateOf(docs);
  const list = [];
  for (const rid of st.order.keys()) {
    const item = docs._data.get(rid);
    const d = item ? item.read() : undefined;
    if (d) list.push(d);
  }
  if (list.length !== docs._data.size) {
    // documents the harness did not see being written (none expected): last
    const seen = new Set(list.map(d => d._rid));
    for (const item of docs._data.values()) {
      const d = item.read();
      if (d && !seen.has(d._rid)) list.push(d);
    }
  }
  return list;
}

// The documents of one logical partition (pk as parsed by parsePkHeader) in
// creation order: only that partition is read.
function partitionDocs(coll, pk) {
  if (!pk.present || !hasPartitionKeyDefinition(coll)) return allDocs(coll);
  const key = partKey(pk.value);
  if (key === null) return allDocs(coll).filter(d => pkMatches(coll, d, pk));
  purgeExpired(coll);
  const docs = coll.documents;
  const part = stateOf(docs).parts.get(key);
  const list = [];
  if (part) {
    for (const rid of part.keys()) {
      const item = docs._data.get(rid);
      const d = item ? item.read() : undefined;
      if (d) list.push(d);
    }
  }
  return list;
}

// Time to live, enforced lazily on every document access (real Cosmos DB
// deletes in the background but never returns an expired item).
function purgeExpired(coll) {
  const props = coll.read();
  const defaultTtl = props.defaultTtl;
  if (defaultTtl === undefined || defaultTtl === null) return; // TTL off
  const now = Date.now() / 1000;
  const docs = coll.documents;
  for (const item of [...docs._data.values()]) {
    const d = item.read();
    if (!d) continue;
    let ttl = defaultTtl;
    if (typeof d.ttl === "number") ttl = d.ttl;
    if (typeof ttl !== "number" || ttl <= 0) continue; // -1: never expires
    if (d._ts + ttl <= now) {
      docs.delete(d.id, docPartitionKey(coll, d));
      recordDelete(docs, d);
    }
  }
}

function validateId(id) {
  if (typeof id !== "string" || id.length === 0) {
    throw badRequest("The input content is invalid because the required properties - 'id; ' - are missing");
  }
  if (id.length > 255) throw badRequest("The id is too long (at most 255 characters).");
  if (/[/\\?#]/.test(id)) {
    throw badRequest(`The id '${id}' contains an invalid character ('/', '\\\\', '?' or '#').`);
  }
}

function checkItemSize(doc) {
  if (Buffer.byteLength(JSON.stringify(doc), "utf8") > MAX_ITEM_BYTES) throw tooLarge();
}

function checkBodyPk(coll, body, pk) {
  if (!pk.present || !hasPartitionKeyDefinition(coll)) return;
  if (!deepEqual(docPartitionKey(coll, body), pk.value)) {
    throw badRequest("PartitionKey extracted from document doesn't match the one specified in the header.");
  }
}

function ifMatchFails(ifMatch, doc) {
  return ifMatch !== undefined && ifMatch !== null && ifMatch !== "*" && ifMatch !== doc._etag;
}

function wrapStoreError(err) {
  if (err instanceof HttpError) return err;
  if (err && err.conflict) return conflict(err.message);
  if (err && err.badRequest) return badRequest(err.message);
  return err;
}

// ---- the primitive operations (shared by single requests and batches) ----

function opCreate(coll, body, pk) {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw badRequest("The request payload is invalid.");
  validateId(body.id);
  checkBodyPk(coll, body, pk);
  checkItemSize(body);
  const effPk = { present: true, value: docPartitionKey(coll, body) };
  if (findDoc(coll, body.id, effPk)) throw conflict();
  let created;
  try {
    created = coll.documents.create(body);
  } catch (err) {
    throw wrapStoreError(err);
  }
  journalTouch(coll.documents, created._rid, false);
  recordWrite(coll.documents, created, true);
  return { statusCode: 201, body: created };
}

function opReplace(coll, id, body, pk, ifMatch) {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw badRequest("The request payload is invalid.");
  validateId(body.id);
  if (body.id !== id) throw badRequest(`The id in the body ('${body.id}') does not match the id in the request ('${id}').`);
  const existing = findDoc(coll, id, pk);
  if (!existing) throw notFound();
  if (ifMatchFails(ifMatch, existing)) throw preconditionFailed();
  checkBodyPk(coll, body, pk);
  checkItemSize(body);
  journalTouch(coll.documents, existing._rid, true);
  let replaced;
  try {
    replaced = coll.documents.replace(body, existing);
  } catch (err) {
    throw wrapStoreError(err);
  }
  recordWrite(coll.documents, replaced, false);
  return { statusCode: 200, body: replaced };
}

function opUpsert(coll, body, pk, ifMatch) {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw badRequest("The request payload is invalid.");
  validateId(body.id);
  checkBodyPk(coll, body, pk);
  const effPk = { present: true, value: docPartitionKey(coll, body) };
  const existing = findDoc(coll, body.id, hasPartitionKeyDefinition(coll) ? effPk : pk);
  if (existing) return opReplace(coll, body.id, body, effPk, ifMatch);
  // Real Cosmos DB creates the item when it does not exist, even with If-Match.
  return opCreate(coll, body, pk);
}

function opRead(coll, id, pk, ifNoneMatch) {
  const existing = findDoc(coll, id, pk);
  if (!existing) throw notFound();
  if (ifNoneMatch !== undefined && (ifNoneMatch === "*" || ifNoneMatch === existing._etag)) {
    return { statusCode: 304, body: undefined };
  }
  return { statusCode: 200, body: existing };
}

function opDelete(coll, id, pk, ifMatch) {
  const existing = findDoc(coll, id, pk);
  if (!existing) throw notFound();
  if (ifMatchFails(ifMatch, existing)) throw preconditionFailed();
  journalTouch(coll.documents, existing._rid, true);
  coll.documents.delete(existing.id, docPartitionKey(coll, existing));
  recordDelete(coll.documents, existing);
  return { statusCode: 204, body: undefined };
}

// ---- patch (JSON-patch-like operations of Cosmos DB) ----

function splitPath(p) {
  if (typeof p !== "string" || !p.startsWith("/") || p === "/") throw badRequest("Invalid path in patch operation.");
  return p
    .slice(1)
    .split("/")
    .map(s => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(doc, segs, opName) {
  let cur = doc;
  for (let i = 0; i < segs.length - 1; i += 1) {
    const s = segs[i];
    if (Array.isArray(cur)) {
      const idx = Number(s);
      if (!Number.isInteger(idx) || idx < 0 || idx >= cur.length) {
        throw badRequest(`${opName}: the path '/${segs.join("/")}' does not exist.`);
      }
      cur = cur[idx];
    } else if (cur && typeof cur === "object" && Object.prototype.hasOwnProperty.call(cur, s)) {
      cur = cur[s];
    } else {
      throw badRequest(`${opName}: the path '/${segs.join("/")}' does not exist.`);
    }
    if (cur === null || typeof cur !== "object") {
      throw badRequest(`${opName}: the path '/${segs.join("/")}' does not exist.`);
    }
  }
  return cur;
}

function arrayIndex(arr, key, allowEnd) {
  if (key === "-" && allowEnd) return arr.length;
  const idx = Number(key);
  const max = allowEnd ? arr.length : arr.length - 1;
  if (!Number.isInteger(idx) || idx < 0 || idx > max) throw badRequest("Index to operate on is out of array bounds.");
  return idx;
}

function applyPatch(doc, operations, coll) {
  if (!Array.isArray(operations) || operations.length === 0) {
    throw badRequest("Invalid patch request: no operations.");
  }
  if (operations.length > MAX_PATCH_OPERATIONS) {
    throw badRequest(`The number of patch operations can't exceed ${MAX_PATCH_OPERATIONS}.`);
  }
  const result = JSON.parse(JSON.stringify(doc));
  const pkPath = hasPartitionKeyDefinition(coll) ? `/${coll.documents._getPartitionKeyPath().join("/")}` : null;
  operations.forEach((op, i) => {
    const where = `For Operation(${i}): `;
    if (!op || typeof op !== "object") throw badRequest(`${where}invalid operation.`);
    const p = op.path;
    if (typeof p === "string" && (p === "/id" || p.startsWith("/_") || (pkPath && (p === pkPath || pkPath.startsWith(`${p}/`))))) {
      throw badRequest(`${where}Replacing id, system properties or the partition key path '${p}' is not allowed.`);
    }
    const segs = splitPath(p);
    const key = segs[segs.length - 1];
    switch (op.op) {
      case "set":
      case "add": {
        const parent = parentOf(result, segs, op.op);
        if (Array.isArray(parent)) {
          const idx = arrayIndex(parent, key, true);
          if (op.op === "add") parent.splice(idx, 0, op.value);
          else parent[idx] = op.value;
        } else parent[key] = op.value;
        break;
      }
      case "replace": {
        const parent = parentOf(result, segs, op.op);
        if (Array.isArray(parent)) parent[arrayIndex(parent, key, false)] = op.value;
        else if (Object.prototype.hasOwnProperty.call(parent, key)) parent[key] = op.value;
        else throw badRequest(`${where}the path '${p}' does not exist.`);
        break;
      }
      case "remove": {
        const parent = parentOf(result, segs, op.op);
        if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false), 1);
        else if (Object.prototype.hasOwnProperty.call(parent, key)) delete parent[key];
        else throw badRequest(`${where}Node to be removed is absent.`);
        break;
      }
      case "incr": {
        if (typeof op.value !== "number") throw badRequest(`${where}Increment value must be a number.`);
        const parent = parentOf(result, segs, op.op);
        const k = Array.isArray(parent) ? arrayIndex(parent, key, false) : key;
        const cur = parent[k];
        if (cur === undefined) parent[k] = op.value;
        else if (typeof cur === "number") parent[k] = cur + op.value;
        else throw badRequest(`${where}Cannot increment a non-numeric value.`);
        break;
      }
      case "move": {
        const fromSegs = splitPath(op.from);
        if (op.from === p) throw badRequest(`${where}Cannot move a value to itself.`);
        if (p.startsWith(`${op.from}/`)) throw badRequest(`${where}Cannot move a value to a child of itself.`);
        const fromParent = parentOf(result, fromSegs, op.op);
        const fromKey = fromSegs[fromSegs.length - 1];
        if (Array.isArray(fromParent) || !Object.prototype.hasOwnProperty.call(fromParent, fromKey)) {
          throw badRequest(`${where}Source location for move operation does not exist.`);
        }
        const v = fromParent[fromKey];
        delete fromParent[fromKey];
        const parent = parentOf(result, segs, op.op);
        if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, v);
        else parent[key] = v;
        break;
      }
      default:
        throw badRequest(`${where}Unsupported patch operation: ${op.op}`);
    }
  });
  return result;
}

function conditionMatches(coll, doc, condition) {
  // Keep the predicate exactly as written (the stock server lower-cased it).
  const m = /^\s*from\s+([A-Za-z_][A-Za-z0-9_]*)\s+where\s+([\s\S]+)$/i.exec(condition);
  if (!m) throw badRequest(`Invalid condition in patch request: '${condition}' (expected 'FROM c WHERE ...').`);
  const sql = `SELECT VALUE 1 FROM ${m[1]} WHERE ${m[2]}`;
  let q;
  try {
    q = parseQuery(sql);
  } catch (err) {
    throw badRequest(`Invalid condition in patch request: ${err.message}`);
  }
  try {
    return q.exec([doc], {}).result.length > 0;
  } catch (err) {
    throw badRequest(`Invalid condition in patch request: ${err.message}`);
  }
}

function opPatch(coll, id, pk, patchBody, ifMatch) {
  let operations;
  let condition;
  if (Array.isArray(patchBody)) operations = patchBody;
  else if (patchBody && Array.isArray(patchBody.operations)) {
    operations = patchBody.operations;
    condition = patchBody.condition;
  } else throw badRequest("Invalid patch request: check syntax of patch specification.");
  const existing = findDoc(coll, id, pk);
  if (!existing) throw notFound();
  if (ifMatchFails(ifMatch, existing)) throw preconditionFailed();
  if (condition !== undefined && condition !== null && !conditionMatches(coll, existing, condition)) {
    throw preconditionFailed();
  }
  const patched = applyPatch(existing, operations, coll);
  checkItemSize(patched);
  journalTouch(coll.documents, existing._rid, true);
  let replaced;
  try {
    replaced = coll.documents.replace(patched, existing);
  } catch (err) {
    throw wrapStoreError(err);
  }
  recordWrite(coll.documents, replaced, false);
  return { statusCode: 200, body: replaced };
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

const AGGREGATES = new Set(["COUNT", "SUM", "MIN", "MAX", "AVG", "COUNTIF"]);

function hasAggregate(node) {
  if (!node || typeof node !== "object") return false;
  if (Array.isArray(node)) return node.some(hasAggregate);
  if (typeof node.type === "string" && (node.type.endsWith("_subquery_expression") || node.type === "select_query")) {
    return false;
  }
  if (node.type === "scalar_function_expression" && node.name && AGGREGATES.has(String(node.name.name).toUpperCase())) {
    return true;
  }
  return Object.values(node).some(hasAggregate);
}

function paramValue(token, parameters, what) {
  if (/^\d+$/.test(token)) return parseInt(token, 10);
  const p = (parameters || []).find(x => x && x.name === token);
  if (!p || !Number.isInteger(p.value) || p.value < 0) {
    throw badRequest(`The ${what} value ${token} must be a non-negative integer.`);
  }
  return p.value;
}

// Rewrites the clauses that the stock SQL parser cannot read (DISTINCT,
// OFFSET/LIMIT) into post-processing steps executed by the harness.
function analyseQuery(sqlText, parameters) {
  let sql = sqlText.trim().replace(/;\s*$/, "");
  const plan = { distinct: false, top: null, offset: null, limit: null };
  const off = /\s+OFFSET\s+(\d+|@[A-Za-z_][A-Za-z0-9_]*)\s+LIMIT\s+(\d+|@[A-Za-z_][A-Za-z0-9_]*)\s*$/i.exec(sql);
  if (off) {
    plan.offset = paramValue(off[1], parameters, "OFFSET");
    plan.limit = paramValue(off[2], parameters, "LIMIT");
    sql = sql.slice(0, off.index);
  }
  const head = /^SELECT\s+(DISTINCT\s+)?(TOP\s+(\d+|@[A-Za-z_][A-Za-z0-9_]*)\s+)?(DISTINCT\s+)?/i.exec(sql);
  if (head && (head[1] || head[4])) {
    if (head[1] && head[4]) throw badRequest("Syntax error, DISTINCT specified twice.");
    plan.distinct = true;
    if (head[2]) plan.top = paramValue(head[3], parameters, "TOP");
    sql = `SELECT ${sql.slice(head[0].length)}`;
  }
  if (plan.offset !== null && head && head[2]) {
    throw badRequest("Syntax error: TOP and OFFSET LIMIT cannot be used together.");
  }
  return { sql, plan };
}

function explainSyntaxError(sqlText, err) {
  const unsupported = [
    [/\bGROUP\s+BY\b/i, "GROUP BY"],
    [/\bLIKE\b/i, "LIKE"],
    [/\bDISTINCT\b/i, "DISTINCT inside a subquery or aggregate"],
    [/\bOFFSET\b|\bLIMIT\b/i, "OFFSET/LIMIT inside a subquery"],
    [/\bHAVING\b/i, "HAVING"]
  ];
  for (const [re, what] of unsupported) {
    if (re.test(sqlText)) {
      return refuse(`the emulator's SQL engine cannot run ${what}; query: ${sqlText}`);
    }
  }
  return badRequest(`Syntax error in query: ${err.message}; query: ${sqlText}`);
}

// Compiled queries, by text (the SDKs send the same parameterised texts again
// and again; parsing is most of the cost of a small query).
const QUERY_CACHE_SIZE = 256;
const queryCache = new Map();

function compileQuery(sqlText) {
  const hit = queryCache.get(sqlText);
  if (hit) return hit;
  let q;
  try {
    q = parseQuery(sqlText);
  } catch (err) {
    if (err instanceof QuerySyntaxError || err.name === "SyntaxError") throw explainSyntaxError(sqlText, err);
    throw err;
  }
  if (queryCache.size >= QUERY_CACHE_SIZE) queryCache.delete(queryCache.keys().next().value);
  queryCache.set(sqlText, q);
  return q;
}

// ---- the index on id, as real Cosmos DB uses it ----
//
// A partition-scoped query whose WHERE clause is a conjunction (AND) with a
// condition on the root document's id -- `c.id = v`, `c.id IN (v, ...)` or
// `ARRAY_CONTAINS(@list, c.id)` -- is run on the documents with those ids
// only (looked up by id, in creation order), instead of on the whole
// partition.  The whole query is still run on them, so the result is the
// same; only the cost changes, as with real Cosmos DB's index.

function rootAlias(ast) {
  const src = ast.from && ast.from.source;
  if (!src || src.type !== "from_source" || !src.expression) return null;
  const coll = src.expression;
  if (coll.type !== "collection_expression" || !coll.expression || coll.expression.type !== "identifier") return null;
  return src.alias ? src.alias.name : coll.expression.name;
}

function isRootId(node, alias) {
  if (!node || node.type !== "scalar_member_expression" || !node.object) return false;
  if (node.object.type !== "identifier" || node.object.name !== alias) return false;
  const p = node.property;
  if (!node.computed) return p && p.type === "identifier" && p.name === "id";
  return p && p.type === "string_constant" && p.value === "id";
}

const NO_VALUE = Symbol("no value");

function constantValue(node, parameters) {
  if (!node) return NO_VALUE;
  if (node.type === "string_constant" || node.type === "number_constant" || node.type === "boolean_constant") {
    return node.value;
  }
  if (node.type === "null_constant") return null;
  if (node.type === "parameter_name") {
    const p = parameters.find(x => x && x.name === node.name);
    return p ? p.value : NO_VALUE;
  }
  return NO_VALUE;
}

function conjuncts(node, out) {
  if (node && node.type === "scalar_binary_expression" && String(node.operator).toUpperCase() === "AND") {
    conjuncts(node.left, out);
    conjuncts(node.right, out);
  } else if (node) out.push(node);
  return out;
}

// The ids one conjunct allows (a Set of strings), or null when it says nothing about ids.
function idsOf(cond, alias, parameters) {
  const strings = values => new Set(values.filter(v => typeof v === "string"));
  if (cond.type === "scalar_binary_expression" && cond.operator === "=") {
    const [idSide, other] = isRootId(cond.left, alias) ? [cond.left, cond.right] : [cond.right, cond.left];
    if (!isRootId(idSide, alias)) return null;
    const v = constantValue(other, parameters);
    return v === NO_VALUE ? null : strings([v]);
  }
  if (cond.type === "scalar_in_expression" && isRootId(cond.value, alias)) {
    const vs = cond.list.map(n => constantValue(n, parameters));
    return vs.includes(NO_VALUE) ? null : strings(vs);
  }
  if (
    cond.type === "scalar_function_expression" &&
    cond.name && String(cond.name.name).toUpperCase() === "ARRAY_CONTAINS" && !cond.udf &&
    cond.arguments.length === 2 && isRootId(cond.arguments[1], alias)
  ) {
    let v = constantValue(cond.arguments[0], parameters);
    const kind = cond.arguments[0].type;
    if (v === NO_VALUE && (kind === "scalar_array_expression" || kind === "array_constant")) {
      v = cond.arguments[0].elements.map(n => constantValue(n, parameters));
      if (v.includes(NO_VALUE)) return null;
    }
    if (v === NO_VALUE) return null;
    return Array.isArray(v) ? strings(v) : new Set();
  }
  return null;
}

// The documents a query must look at: the partition's, or fewer (the index on id).
function queryCandidates(coll, pk, ast, parameters) {
  if (!pk.present || !hasPartitionKeyDefinition(coll)) return allDocs(coll);
  const alias = rootAlias(ast);
  const where = ast.where && ast.where.condition;
  let ids = null;
  if (alias && where) {
    for (const cond of conjuncts(where, [])) {
      const allowed = idsOf(cond, alias, parameters);
      if (allowed && (ids === null || allowed.size < ids.size)) ids = allowed;
    }
  }
  if (ids === null) return partitionDocs(coll, pk);
  purgeExpired(coll);
  const st = stateOf(coll.documents);
  const found = [];
  for (const id of ids) {
    const d = findDoc(coll, id, pk);
    if (d) found.push(d);
  }
  const ord = d => (st.order.has(d._rid) ? st.order.get(d._rid) : Number.MAX_SAFE_INTEGER);
  return found.sort((a, b) => ord(a) - ord(b));
}

// ARRAY_CONTAINS(array, value) of the SQL engine compares value with every
// element (deepEqual).  For a primitive value and no "partial" argument that
// is a strict-equality test, answered here from a Set built once per array.
const builtinFunctions = require(require.resolve("@zeit/cosmosdb-query/lib/builtin-functions", { paths: [PKG_DIR] }));
const stockArrayContains = builtinFunctions.ARRAY_CONTAINS;
const arraySets = new WeakMap();
builtinFunctions.ARRAY_CONTAINS = function arrayContains(...a) {
  const [arr, value] = a;
  if (a.length === 2 && Array.isArray(arr) && arr.length > 16 && (value === null || typeof value !== "object")) {
    let set = arraySets.get(arr);
    if (!set) {
      set = new Set(arr.filter(v => v === null || typeof v !== "object"));
      arraySets.set(arr, set);
    }
    return set.has(value);
  }
  return stockArrayContains(...a);
};

// The SQL engine orders unsorted results, and ties of ORDER BY, by comparing
// _rid strings; the stock _rid is a base64 counter, whose string order is not
// the creation order past a few dozen documents.  The harness keeps real
// Cosmos DB's creation (_rid) order: while a query runs, the rid key is the
// document's creation sequence.
const queryHelpers = require(require.resolve("@zeit/cosmosdb-query/lib/helpers", { paths: [PKG_DIR] }));
const stockSort = queryHelpers.sort;
let creationOrder = null; // the running query's container: _rid -> creation sequence
queryHelpers.sort = function sort(collection, getRid, ...rest) {
  const order = creationOrder;
  const key = order === null ? getRid : d => {
    const rid = getRid(d);
    const seq = order.get(rid);
    return seq === undefined ? Number.MAX_SAFE_INTEGER : seq;
  };
  return stockSort(collection, key, ...rest);
};

function runQuery(coll, q, docs, parameters) {
  const parent = coll.read();
  const compositeIndexes = (parent.indexingPolicy ? parent.indexingPolicy.compositeIndexes : null) || [];
  creationOrder = stateOf(coll.documents).order;
  try {
    return q.exec(docs, {
      parameters,
      udf: coll.documents._userDefinedFunctions() || {},
      compositeIndexes
    }).result;
  } catch (err) {
    throw badRequest(err.message);
  } finally {
    creationOrder = null;
  }
}

function tokenFor(fingerprint, offset) {
  return `harness:${Buffer.from(JSON.stringify({ f: fingerprint, o: offset })).toString("base64")}`;
}

function parseToken(raw, fingerprint) {
  const m = /^harness:(.+)$/.exec(raw || "");
  let t;
  try {
    t = m ? JSON.parse(Buffer.from(m[1], "base64").toString("utf8")) : null;
  } catch (err) {
    t = null;
  }
  if (!t || typeof t.o !== "number") throw badRequest(`Invalid continuation token ${raw}`);
  if (t.f !== fingerprint) {
    throw badRequest("The continuation token does not belong to this query (query, parameters or partition changed).");
  }
  return t.o;
}

function paginate(req, rows, fingerprint) {
  const maxHeader = header(req, "x-ms-max-item-count");
  let max = maxHeader !== undefined ? parseInt(maxHeader, 10) : 100;
  if (!Number.isInteger(max) || max <= 0) max = 100; // -1: "dynamic" page size
  const cont = header(req, "x-ms-continuation");
  const offset = cont ? parseToken(cont, fingerprint) : 0;
  const page = rows.slice(offset, offset + max);
  const next = offset + max < rows.length ? tokenFor(fingerprint, offset + max) : null;
  return { page, next };
}

function checkNoEpkScope(req) {
  if (header(req, "x-ms-read-key-type") || header(req, "x-ms-start-epk") || header(req, "x-ms-end-epk")) {
    throw refuse("effective-partition-key (feed range) scoped requests are not supported");
  }
}

function checkPkRangeId(req) {
  const r = header(req, "x-ms-documentdb-partitionkeyrangeid");
  if (r !== undefined && String(r).split(",")[0] !== "0") {
    throw new HttpError(410, "Gone", `Partition key range ${r} is gone.`, { substatus: "1002" });
  }
  return r !== undefined;
}

async function handleQuery(req, res, { dbId, collId }) {
  const body = await readJson(req);
  const coll = getContainer(dbId, collId);
  if (!body || typeof body.query !== "string") throw badRequest("The query is missing.");
  if (isTrue(req, "x-ms-cosmos-is-query-plan-request")) {
    throw refuse("query plan requests are not supported (the harness never asks for one)");
  }
  checkNoEpkScope(req);
  const onRange = checkPkRangeId(req);
  const pk = hasPartitionKeyDefinition(coll) ? parsePkHeader(req) : { present: false };
  const crossPartition = !pk.present && (onRange || isTrue(req, "x-ms-documentdb-query-enablecrosspartition") || !hasPartitionKeyDefinition(coll));
  if (!pk.present && !crossPartition) {
    throw new HttpError(
      400,
      "BadRequest",
      "Cross partition query is required but disabled. Please set x-ms-documentdb-query-enablecrosspartition to true, " +
        "specify x-ms-documentdb-partitionkey, or revise your query to avoid this exception."
    );
  }
  const parameters = Array.isArray(body.parameters) ? body.parameters : [];
  const { sql, plan } = analyseQuery(body.query, parameters);
  const q = compileQuery(sql);
  const ast = q.ast.body;
  const needsQueryPlan =
    Boolean(ast.orderBy) || Boolean(ast.top) || plan.distinct || plan.offset !== null || hasAggregate(ast.select);

  // A query addressed to one partition key, or to the (single) physical
  // partition key range, is executed by the backend with continuation tokens.
  const scoped = pk.present || onRange;
  if (!scoped && needsQueryPlan) {
    // Real Cosmos DB answers such cross-partition queries with "needs a query
    // plan" and the Python SDK then runs them itself, partition by partition.
    if (hasAggregate(ast.select) && !ast.select.value) {
      throw badRequest("Cross partition query only supports 'VALUE <AggregateFunc>' for aggregates");
    }
    if (header(req, "x-ms-continuation")) {
      throw refuse(
        "resuming a cross-partition ORDER BY/TOP/DISTINCT/OFFSET/aggregate query from a continuation token " +
          "is not supported by real Cosmos DB through the Python SDK; page within one partition instead"
      );
    }
  }

  const docs = queryCandidates(coll, pk, ast, parameters);
  res.harnessRetrieved = docs.length; // reported in the query metrics
  let rows = runQuery(coll, q, docs, parameters);
  if (plan.distinct) {
    const seen = new Set();
    rows = rows.filter(r => {
      const k = canonical(r);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    if (plan.top !== null) rows = rows.slice(0, plan.top);
  }
  if (plan.offset !== null) rows = rows.slice(plan.offset, plan.offset + plan.limit);

  let page = rows;
  let next = null;
  if (scoped || !needsQueryPlan) {
    const fingerprint = crypto
      .createHash("sha1")
      .update(JSON.stringify([body.query, parameters, pk.present ? [pk.value === undefined ? UNDEFINED_PK : pk.value] : onRange]))
      .digest("hex");
    ({ page, next } = paginate(req, rows, fingerprint));
  }
  if (next) res.setHeader("x-ms-continuation", next);
  res.setHeader("x-ms-item-count", String(page.length));
  res.harnessOutput = page.length;
  res.statusCode = 200;
  return { _rid: coll.read()._rid, Documents: page, _count: page.length };
}

// ---------------------------------------------------------------------------
// Read feed and change feed (GET .../docs)
// ---------------------------------------------------------------------------

function handleReadFeed(req, res, { dbId, collId }) {
  const coll = getContainer(dbId, collId);
  checkNoEpkScope(req);
  checkPkRangeId(req);
  if (header(req, "a-im")) return handleChangeFeed(req, res, coll);
  const pk = hasPartitionKeyDefinition(coll) ? parsePkHeader(req) : { present: false };
  const rows = partitionDocs(coll, pk);
  const fingerprint = `readfeed:${pk.present ? JSON.stringify([pk.value === undefined ? UNDEFINED_PK : pk.value]) : "*"}`;
  const { page, next } = paginate(req, rows, fingerprint);
  if (next) res.setHeader("x-ms-continuation", next);
  res.setHeader("x-ms-item-count", String(page.length));
  res.statusCode = 200;
  return { _rid: coll.read()._rid, Documents: page, _count: page.length };
}

// Change feed, "latest version" mode, whole container only.
function handleChangeFeed(req, res, coll) {
  const aim = String(header(req, "a-im"));
  if (aim.toLowerCase() !== "incremental feed") {
    throw refuse(`change feed mode '${aim}' (all versions and deletes) is not supported`);
  }
  if (parsePkHeader(req).present) throw refuse("a change feed scoped to one partition key is not supported");
  const docs = coll.documents;
  const st = stateOf(docs);
  const all = allDocs(coll);
  const inm = header(req, "if-none-match");
  let since = 0;
  if (inm === "*") {
    since = st.lsn; // start from now
  } else if (inm) {
    since = parseInt(String(inm).replace(/"/g, ""), 10);
    if (!Number.isInteger(since)) throw badRequest(`Invalid change feed continuation ${inm}`);
  }
  let minTs = null;
  const ims = header(req, "if-modified-since");
  if (ims && !inm) {
    const t = Date.parse(ims);
    if (Number.isNaN(t)) throw badRequest(`Invalid If-Modified-Since ${ims}`);
    minTs = Math.floor(t / 1000);
  }
  const maxHeader = header(req, "x-ms-max-item-count");
  let max = maxHeader !== undefined ? parseInt(maxHeader, 10) : 100;
  if (!Number.isInteger(max) || max <= 0) max = 100;
  const changed = all
    .filter(d => (st.docLsn.get(d._rid) || 0) > since && (minTs === null || d._ts >= minTs))
    .sort((a, b) => st.docLsn.get(a._rid) - st.docLsn.get(b._rid));
  const page = changed.slice(0, max).map(d => ({ ...d, _lsn: st.docLsn.get(d._rid) }));
  const last = page.length ? page[page.length - 1]._lsn : Math.max(since, minTs === null ? since : st.lsn);
  res.setHeader("etag", `"${last}"`);
  res.setHeader("x-ms-item-count", String(page.length));
  if (!page.length) {
    res.statusCode = 304;
    return undefined;
  }
  res.statusCode = 200;
  return { _rid: coll.read()._rid, Documents: page, _count: page.length };
}

// ---------------------------------------------------------------------------
// Point operations
// ---------------------------------------------------------------------------

function rejectTriggers(req) {
  if (header(req, "x-ms-documentdb-pre-trigger-include") || header(req, "x-ms-documentdb-post-trigger-include")) {
    throw refuse("triggers are not supported");
  }
}

function sendResult(res, result) {
  res.statusCode = result.statusCode;
  return result.body;
}

async function handleDocPost(req, res, params) {
  if (isTrue(req, "x-ms-documentdb-isquery") || String(header(req, "content-type") || "").startsWith("application/query+json")) {
    return handleQuery(req, res, params);
  }
  rejectTriggers(req);
  if (isTrue(req, "x-ms-cosmos-is-batch-request")) return handleBatch(req, res, params);
  const body = await readJson(req);
  const coll = getContainer(params.dbId, params.collId);
  purgeExpired(coll);
  const pk = requirePk(req, coll);
  if (isTrue(req, "x-ms-documentdb-is-upsert")) {
    return sendResult(res, opUpsert(coll, body, pk, header(req, "if-match")));
  }
  return sendResult(res, opCreate(coll, body, pk));
}

async function handleDocRead(req, res, { dbId, collId, docId }) {
  const coll = getContainer(dbId, collId);
  purgeExpired(coll);
  const pk = requirePk(req, coll);
  return sendResult(res, opRead(coll, docId, pk, header(req, "if-none-match")));
}

async function handleDocReplace(req, res, { dbId, collId, docId }) {
  rejectTriggers(req);
  const body = await readJson(req);
  const coll = getContainer(dbId, collId);
  purgeExpired(coll);
  const pk = requirePk(req, coll);
  return sendResult(res, opReplace(coll, docId, body, pk, header(req, "if-match")));
}

async function handleDocDelete(req, res, { dbId, collId, docId }) {
  rejectTriggers(req);
  const coll = getContainer(dbId, collId);
  purgeExpired(coll);
  const pk = requirePk(req, coll);
  return sendResult(res, opDelete(coll, docId, pk, header(req, "if-match")));
}

async function handleDocPatch(req, res, { dbId, collId, docId }) {
  rejectTriggers(req);
  const body = await readJson(req);
  const coll = getContainer(dbId, collId);
  purgeExpired(coll);
  const pk = requirePk(req, coll);
  return sendResult(res, opPatch(coll, docId, pk, body, header(req, "if-match")));
}

// ---------------------------------------------------------------------------
// Transactional batch
// ---------------------------------------------------------------------------

function runBatchOp(coll, op, pk) {
  if (!op || typeof op !== "object") throw badRequest("Invalid batch operation.");
  const { operationType, id, resourceBody, ifMatch, ifNoneMatch } = op;
  if (op.partitionKey !== undefined) {
    let opPk;
    try {
      opPk = JSON.parse(op.partitionKey);
    } catch (err) {
      throw badRequest(`Invalid partition key ${op.partitionKey} in batch operation.`);
    }
    if (!Array.isArray(opPk) || !deepEqual(opPk[0], pk.value)) {
      throw badRequest("All operations of a transactional batch must target the batch's partition key.");
    }
  }
  switch (operationType) {
    case "Create":
      return opCreate(coll, resourceBody, pk);
    case "Upsert":
      return opUpsert(coll, resourceBody, pk, ifMatch);
    case "Read":
      return opRead(coll, id, pk, ifNoneMatch);
    case "Replace":
      return opReplace(coll, id, resourceBody, pk, ifMatch);
    case "Delete":
      return opDelete(coll, id, pk, ifMatch);
    case "Patch":
      return opPatch(coll, id, pk, resourceBody, ifMatch);
    default:
      throw badRequest(`Operation type '${operationType}' is not supported in a transactional batch.`);
  }
}

async function handleBatch(req, res, { dbId, collId }) {
  const ops = await readJson(req);
  const coll = getContainer(dbId, collId);
  purgeExpired(coll);
  if (!isTrue(req, "x-ms-cosmos-batch-atomic")) throw refuse("non-atomic (bulk) batches are not supported");
  if (isTrue(req, "x-ms-cosmos-batch-continue-on-error")) {
    throw refuse("continue-on-error batches are not supported");
  }
  if (!Array.isArray(ops)) throw badRequest("The request payload is invalid: expected an array of operations.");
  if (ops.length === 0) throw badRequest("Batch request has no operations.");
  if (ops.length > MAX_BATCH_OPERATIONS) {
    throw badRequest(
      `Batch request has more operations than what is supported: ${ops.length} > ${MAX_BATCH_OPERATIONS}.`
    );
  }
  const pk = requirePk(req, coll);
  if (!pk.present) throw badRequest("A transactional batch requires a partition key.");
  beginJournal(coll.documents);
  try {
    return runBatch(coll, ops, pk, res);
  } finally {
    journal = null;
  }
}

function runBatch(coll, ops, pk, res) {
  const results = [];
  for (let i = 0; i < ops.length; i += 1) {
    let r;
    try {
      r = runBatchOp(coll, ops[i], pk);
    } catch (err) {
      if (!(err instanceof HttpError)) {
        rollbackJournal();
        throw err;
      }
      // Atomic: undo everything, report the failing operation and 424 for all others.
      rollbackJournal();
      const failed = ops.map((_, j) =>
        j === i
          ? { statusCode: err.statusCode, requestCharge: 0, message: err.message }
          : { statusCode: 424, requestCharge: 0 }
      );
      res.statusCode = 207;
      res.setHeader("x-ms-substatus", "0");
      return failed;
    }
    const entry = { statusCode: r.statusCode, requestCharge: 1 };
    if (r.body && typeof r.body === "object") {
      entry.eTag = r.body._etag;
      entry.resourceBody = r.body;
    }
    results.push(entry);
  }
  res.statusCode = 200;
  return results;
}

// ---------------------------------------------------------------------------
// Container-level fixes
// ---------------------------------------------------------------------------

function wrapCreateCollection(stockHandler) {
  return async (acct, req, res, params) => {
    const buf = await readBody(req);
    let body;
    try {
      body = JSON.parse(buf.toString("utf8"));
    } catch (err) {
      throw badRequest("The request payload is invalid.");
    }
    const pk = body && body.partitionKey;
    if (pk && (pk.kind === "MultiHash" || (Array.isArray(pk.paths) && pk.paths.length > 1))) {
      throw refuse("hierarchical (MultiHash) partition keys are not supported");
    }
    // hand the already-read body to the stock handler
    return stockHandler(acct, replayable(req, buf), res, params);
  };
}

// A readable stand-in for an already-consumed request body.
function replayable(req, buf) {
  const { Readable } = require("stream");
  const r = Readable.from([buf]);
  r.headers = req.headers;
  r.method = req.method;
  r.url = req.url;
  return r;
}

// The stock replace-container creates a fresh, EMPTY container object: real
// Cosmos DB keeps the documents.  Carry them (and UDFs) over.
function wrapReplaceCollection(stockHandler) {
  return async (acct, req, res, params) => {
    const before = acct.database(params.dbId).collection(params.collId);
    const oldDocs = before.read() ? before.documents : null;
    const oldUdfs = before.read() ? before.userDefinedFunctions : null;
    const oldProps = before.read();
    const buf = await readBody(req);
    let body;
    try {
      body = JSON.parse(buf.toString("utf8"));
    } catch (err) {
      throw badRequest("The request payload is invalid.");
    }
    if (oldProps && body && body.partitionKey && !deepEqual(body.partitionKey.paths, (oldProps.partitionKey || {}).paths)) {
      throw badRequest("The partition key of a container cannot be changed.");
    }
    const out = await stockHandler(acct, replayable(req, buf), res, params);
    const after = acct.database(params.dbId).collection(params.collId);
    if (oldDocs && after.read() && after !== before) {
      after.documents = oldDocs;
      oldDocs._parent = after;
      after.userDefinedFunctions = oldUdfs;
      oldUdfs._parent = after;
    }
    return out;
  };
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

function normalisePath(url) {
  let { pathname } = new URL(url, "https://localhost");
  if (pathname.startsWith("//")) pathname = pathname.slice(1);
  while (pathname.length > 1 && pathname.endsWith("/")) pathname = pathname.slice(0, -1);
  return pathname;
}

function route(req) {
  const r = matchRoute(req);
  if (!r || r[2]) return r;
  const [params, fn] = r;
  return [params, (acct, rq, rs, p) => fn(rq, rs, p), false];
}

function matchRoute(req) {
  const pathname = normalisePath(req.url);
  const seg = pathname.split("/").slice(1).map(s => decodeURIComponent(s));
  const m = req.method;
  if (seg[0] === "dbs" && seg[2] === "colls") {
    const dbId = seg[1];
    const collId = seg[3];
    if (seg.length === 5 && seg[4] === "docs") {
      if (m === "GET") return [{ dbId, collId }, handleReadFeed, false];
      if (m === "POST") return [{ dbId, collId }, handleDocPost, false];
    }
    if (seg.length === 6 && seg[4] === "docs") {
      const p = { dbId, collId, docId: seg[5] };
      if (m === "GET") return [p, handleDocRead, false];
      if (m === "PUT") return [p, handleDocReplace, false];
      if (m === "DELETE") return [p, handleDocDelete, false];
      if (m === "PATCH") return [p, handleDocPatch, false];
    }
    if (seg[4] === "docs" && seg.length <= 6) {
      return [{}, () => { throw badRequest(`no route for ${m} ${pathname}`); }, false];
    }
  }
  const stock = stockRoutes(req);
  if (!stock) return undefined;
  const [params, handler] = stock;
  if (m === "POST" && seg.length === 3 && seg[0] === "dbs" && seg[2] === "colls" && !isTrue(req, "x-ms-documentdb-isquery") &&
      header(req, "content-type") !== "application/query+json") {
    return [params, wrapCreateCollection(handler), true];
  }
  if (m === "PUT" && seg.length === 4 && seg[0] === "dbs" && seg[2] === "colls") {
    return [params, wrapReplaceCollection(handler), true];
  }
  return [params, handler, true];
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

const TRACE = process.env.COSMOS_HARNESS_TRACE === "1";

function handleRequest(req, res) {
  (async () => {
    const r = route(req);
    let body;
    let stock = false;
    if (!r) {
      res.statusCode = 400;
      body = { code: "BadRequest", message: `cosmos-harness: no route for ${req.method} ${req.url}` };
    } else {
      const [params, handler, isStock] = r;
      stock = isStock;
      try {
        body = await handler(account, req, res, params);
      } catch (err) {
        if (err instanceof HttpError) {
          res.statusCode = err.statusCode;
          if (err.extra.substatus) res.setHeader("x-ms-substatus", err.extra.substatus);
          body = { code: err.code, message: err.message };
        } else {
          process.stderr.write(`cosmos-launcher: internal error on ${req.method} ${req.url}: ${err && err.stack}\n`);
          res.statusCode = 500;
          body = { code: "InternalServerError", message: `cosmos-harness internal error: ${err && err.message}` };
        }
      }
      if (res.statusCode > 399 && body && typeof body === "object" && !Array.isArray(body) && !body.message) {
        body.message = "";
      }
    }
    if (body && body._etag && !res.getHeader("etag")) res.setHeader("etag", body._etag);
    res.setHeader("content-type", "application/json");
    res.setHeader("content-location", `https://${req.headers.host}${req.url}`);
    res.setHeader("x-ms-activity-id", crypto.randomUUID());
    res.setHeader("x-cosmos-harness", HARNESS_ID);
    if (!res.getHeader("x-ms-request-charge")) res.setHeader("x-ms-request-charge", "1");
    if (req.headers["x-ms-documentdb-populatequerymetrics"]) {
      res.setHeader(
        "x-ms-documentdb-query-metrics",
        "totalExecutionTimeInMs=0.00;queryCompileTimeInMs=0.00;queryLogicalPlanBuildTimeInMs=0.00;" +
          "queryPhysicalPlanBuildTimeInMs=0.00;queryOptimizationTimeInMs=0.00;VMExecutionTimeInMs=0.00;" +
          "indexLookupTimeInMs=0.00;documentLoadTimeInMs=0.00;systemFunctionExecuteTimeInMs=0.00;" +
          `userFunctionExecuteTimeInMs=0.00;retrievedDocumentCount=${res.harnessRetrieved || 0};` +
          `retrievedDocumentSize=0;outputDocumentCount=${res.harnessOutput || 0};` +
          "outputDocumentSize=0;writeOutputTimeInMs=0.00;indexUtilizationRatio=0.00"
      );
    }
    // Stock behaviour kept for the stock routes: the partition key range feed
    // (A-IM) is answered with 304 once the client has seen it.
    if (stock && req.headers["a-im"] && res.statusCode === 200) {
      if (req.headers["if-none-match"]) res.statusCode = 304;
      res.setHeader("etag", "1");
    }
    if (TRACE) process.stderr.write(`cosmos-harness: ${req.method} ${req.url} -> ${res.statusCode}\n`);
    if (res.statusCode === 204 || res.statusCode === 304 || body === undefined) res.end();
    else res.end(JSON.stringify(body));
  })().catch(err => {
    process.stderr.write(`cosmos-launcher: fatal error on ${req.method} ${req.url}: ${err && err.stack}\n`);
    if (!res.headersSent) {
      res.statusCode = 500;
      res.end("");
    } else res.destroy();
  });
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write("Usage: node cosmos-launcher.js [--port 8081] [--host 127.0.0.1]\n");
    return;
  }
  const server = https.createServer(
    {
      cert: fs.readFileSync(path.join(PKG_DIR, "cert.pem")),
      key: fs.readFileSync(path.join(PKG_DIR, "key.pem")),
      minVersion: "TLSv1.2",
      keepAlive: true
    },
    handleRequest
  );
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 5000;
  server.requestTimeout = 0;
  server.on("listening", () => {
    const { port } = server.address();
    account = new Account(args.host, port);
    process.stdout.write(`Ready to accept HTTPS connections at ${args.host}:${port}\n`);
  });
  server.on("error", err => {
    process.stderr.write(`cosmos-launcher: ${err.message}\n`);
    process.exit(1);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    if (server.closeAllConnections) server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  server.listen(args.port, args.host);
}

main();
