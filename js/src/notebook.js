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

/** A fractional-index key after `low` (notebook_doc/positions.py's `_after`). */
export function positionAfter(low) {
  if (!low) return "8";
  for (let i = 0; i < low.length; i++) {
    if (low[i] !== "f") return low.slice(0, i) + HEX[HEX.indexOf(low[i]) + 1];
  }
  return `${low}1`;
}

/** Inside A.change: append a cell; returns its id. */
export function appendCell(d, { source = "", cellType = "code", id = newCellId() } = {}) {
  const last = cells(d).at(-1);
  d.cells[id] = {
    id: new A.ImmutableString(id),
    cell_type: new A.ImmutableString(cellType),
    position: new A.ImmutableString(positionAfter(last?.position)),
    source, // a plain string is Text (a character-level CRDT) in automerge 3.x
    execution_count: new A.ImmutableString("null"),
    outputs: [],
    metadata: {},
  };
  return id;
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
