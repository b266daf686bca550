// The notebook schema (docs/schema.md, v3) read and written from JavaScript.
//
// Everything here works on a plain @automerge/automerge document; nothing knows about
// sockets. Reads return plain JSON, the same view as Python's NotebookDoc.to_json();
// writes follow the schema's JS rules: Str fields as ImmutableString, source as Text.
import * as A from "@automerge/automerge";

const HEX = "0123456789abcdef";
export const BLOB_HASH = /^[0-9a-f]{64}$/;

/** Plain JSON of an Automerge value: ImmutableString -> string, bigint (Uint) -> number. */
export function plain(value) {
  if (value instanceof A.ImmutableString) return value.val;
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

const str = (value) => (value === undefined ? "" : String(plain(value)));

/** Cells in notebook order: by (position, id), as the schema says. */
export function cells(doc) {
  const list = Object.values(doc.cells ?? {}).map((cell) => ({
    id: str(cell.id),
    cell_type: str(cell.cell_type),
    position: str(cell.position),
    source: str(cell.source),
    execution_count: JSON.parse(str(cell.execution_count) || "null"),
    outputs: plain(cell.outputs ?? []),
    metadata: plain(cell.metadata ?? {}),
    // Optional (docs/schema.md): queued, running, ok, error, aborted; null when unknown.
    execution_status: cell.execution_status ? str(cell.execution_status) : null,
  }));
  return list.sort((a, b) => compare(a.position, b.position) || compare(a.id, b.id));
}

/** Live comms (widget models) in open order: replaying by seq opens children first. */
export function comms(doc) {
  const list = Object.entries(doc.comms ?? {}).map(([commId, comm]) => ({
    comm_id: commId,
    target_name: str(comm.target_name),
    model_module: str(comm.model_module),
    model_name: str(comm.model_name),
    state: JSON.parse(str(comm.state) || "{}"),
    outputs: plain(comm.outputs ?? []),
    seq: plain(comm.seq ?? 0),
  }));
  return list.sort((a, b) => a.seq - b.seq || compare(a.comm_id, b.comm_id));
}

/** The same JSON view as Python's NotebookDoc.to_json(). */
export function view(doc) {
  const blank = doc.notebook_id === undefined;
  return {
    notebook_id: blank ? null : str(doc.notebook_id),
    schema_version: blank ? null : plain(doc.schema_version),
    metadata: plain(doc.metadata ?? {}),
    cells: cells(doc),
    comms: comms(doc),
  };
}

function compare(a, b) {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

/** A fractional-index key strictly between `before` and `after` (null: an end), the
 * same keys as notebook_doc/positions.py's `key_between`. */
export function positionBetween(before, after) {
  if (!before) return after ? positionBefore(after) : "8";
  if (!after) return positionAfter(before);
  if (before >= after) throw new Error(`position ${before} is not before ${after}`);
  return midpoint(before, after);
}

/** A fractional-index key after `low` (notebook_doc/positions.py's `_after`). */
function positionAfter(low) {
  if (!low) return "8";
  for (let i = 0; i < low.length; i++) {
    if (low[i] !== "f") return low.slice(0, i) + HEX[HEX.indexOf(low[i]) + 1];
  }
  return `${low}1`;
}

function positionBefore(high) {
  const digit = HEX.indexOf(high[0]);
  if (digit > 1) return HEX[digit - 1];
  if (digit === 1) return high.length > 1 ? "1" : "0f";
  return `0${positionBefore(high.slice(1))}`;
}

function midpoint(low, high) {
  if (high !== null) {
    let shared = 0;
    while (shared < high.length && (low[shared] ?? "0") === high[shared]) shared += 1;
    if (shared) return high.slice(0, shared) + midpoint(low.slice(shared), high.slice(shared));
  }
  const lowDigit = low ? HEX.indexOf(low[0]) : 0;
  const highDigit = high !== null ? HEX.indexOf(high[0]) : HEX.length;
  if (highDigit - lowDigit > 1) return HEX[Math.floor((lowDigit + highDigit) / 2)];
  if (high !== null && high.length > 1) return high[0];
  return HEX[lowDigit] + midpoint(low.slice(1), null);
}

/** Inside A.change: append a cell; returns its id. */
export function appendCell(d, { source = "", cellType = "code", id = newCellId() } = {}) {
  return insertCell(d, cells(d).length, { source, cellType, id });
}

/** Inside A.change: a new cell at `index` of the notebook order; returns its id. */
export function insertCell(d, index, { source = "", cellType = "code", id = newCellId() } = {}) {
  const list = cells(d);
  const position = positionBetween(list[index - 1]?.position, list[index]?.position);
  d.cells[id] = {
    id: new A.ImmutableString(id),
    cell_type: new A.ImmutableString(cellType),
    position: new A.ImmutableString(position),
    source, // a plain string is Text (a character-level CRDT) in automerge 3.x
    execution_count: new A.ImmutableString("null"),
    outputs: [],
    metadata: {},
  };
  return id;
}

/** Inside A.change: put back a cell `deleteCell` returned, at `index`, with its id. */
export function restoreCell(d, index, cell) {
  const id = insertCell(d, index, { source: cell.source, cellType: cell.cell_type, id: cell.id });
  const restored = d.cells[id];
  restored.execution_count = new A.ImmutableString(JSON.stringify(cell.execution_count));
  restored.outputs.push(...cell.outputs.map((entry) => new A.ImmutableString(entry)));
  for (const [key, value] of Object.entries(cell.metadata)) restored.metadata[key] = scalars(value);
  return id;
}

/** A JSON value as the schema stores native JSON: every string a Str, not Text. */
function scalars(value) {
  if (typeof value === "string") return new A.ImmutableString(value);
  if (Array.isArray(value)) return value.map(scalars);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scalars(v)]));
  }
  return value;
}

/** Inside A.change: remove a cell; returns its plain JSON (for an undo). */
export function deleteCell(d, cellId) {
  const cell = cells(d).find((c) => c.id === cellId);
  if (!cell) throw new Error(`no cell with id ${cellId}`);
  delete d.cells[cellId];
  return cell;
}

/** Inside A.change: move a cell `by` places (-1 up, 1 down) with a new position only. */
export function moveCell(d, cellId, by) {
  const list = cells(d);
  const from = list.findIndex((c) => c.id === cellId);
  if (from < 0) throw new Error(`no cell with id ${cellId}`);
  const to = from + by;
  if (to < 0 || to >= list.length) return false;
  const rest = list.filter((c) => c.id !== cellId);
  const position = positionBetween(rest[to - 1]?.position, rest[to]?.position);
  d.cells[cellId].position = new A.ImmutableString(position);
  return true;
}

/** Inside A.change: make a cell code, markdown or raw (outputs go with code). */
export function setCellType(d, cellId, cellType) {
  const cell = d.cells?.[cellId];
  if (!cell) throw new Error(`no cell with id ${cellId}`);
  if (str(cell.cell_type) === cellType) return;
  cell.cell_type = new A.ImmutableString(cellType);
  if (cellType !== "code") clearOutputs(d, cellId);
}

/** Inside A.change: no outputs and no execution count. */
export function clearOutputs(d, cellId) {
  const cell = d.cells?.[cellId];
  if (!cell) throw new Error(`no cell with id ${cellId}`);
  if (cell.outputs.length) cell.outputs.splice(0, cell.outputs.length);
  if (str(cell.execution_count) !== "null") cell.execution_count = new A.ImmutableString("null");
}

/** Inside A.change: make a cell's source `text`, as a minimal character diff. */
export function setSource(d, cellId, text) {
  if (!d.cells?.[cellId]) throw new Error(`no cell with id ${cellId}`);
  A.updateText(d, ["cells", cellId, "source"], text);
}

export function newCellId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
