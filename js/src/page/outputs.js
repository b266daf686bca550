// Cell outputs as the doc stores them (runtimed/outputs.py), rendered the JupyterLab way.
//
// A doc entry is either an nbformat output as JSON or the 64-hex hash of an output
// manifest in the daemon's blob store; a long stream's manifest keeps its `text` as a
// list of {"$blob": hash} chunks (JSON strings) and a plain tail.
import { OutputArea, OutputAreaModel } from "@jupyterlab/outputarea";
import { Widget } from "@lumino/widgets";
import { BLOB_HASH } from "../notebook.js";
import { trustMark } from "./trust.js";

const WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";

/** Fetches blobs over HTTP from the daemon's port, each hash once. */
export class BlobCache {
  constructor(token) {
    this.token = token;
    this._blobs = new Map();
  }

  /** {json: true, value} for JSON blobs, {json: false, bytes} for anything else. */
  get(hash) {
    if (!this._blobs.has(hash)) {
      const pending = this._fetch(hash);
      pending.catch(() => this._blobs.delete(hash)); // a failure may be retried later
      this._blobs.set(hash, pending);
    }
    return this._blobs.get(hash);
  }

  async _fetch(hash) {
    const headers = { Authorization: `Bearer ${this.token}` };
    const response = await fetch(`/blob/${hash}`, { headers });
    if (!response.ok) throw new Error(`blob ${hash}: HTTP ${response.status}`);
    const type = response.headers.get("Content-Type") ?? "";
    if (/^application\/(.*\+)?json/.test(type)) return { json: true, value: await response.json() };
    return { json: false, bytes: new Uint8Array(await response.arrayBuffer()) };
  }
}

/** One doc output entry as a plain nbformat output. */
export async function resolveOutput(entry, blobs) {
  if (!BLOB_HASH.test(entry)) return JSON.parse(entry);
  const { value: output } = await blobs.get(entry);
  if (output.output_type === "stream" && Array.isArray(output.text)) {
    const parts = await Promise.all(
      output.text.map(async (part) =>
        typeof part === "string" ? part : (await blobs.get(part.$blob)).value,
      ),
    );
    return { ...output, text: parts.join("") };
  }
  return output;
}

/** A cell's output area; `show(entries, trusted, widgetGeneration)` re-renders only when one
 * changed (`widgetGeneration` moves when widget models close, so their views fall back)
 * and resolves to whether it did.
 * Lumino attaches only to a node in the document, so the area attaches on first show.
 * Untrusted outputs render as JupyterLab renders them for an untrusted notebook. */
export class CellOutputs {
  constructor(host, { rendermime, blobs, widgets }) {
    this.blobs = blobs;
    this.widgets = widgets;
    this.model = new OutputAreaModel({ trusted: false });
    this.area = new OutputArea({ model: this.model, rendermime });
    this.host = host;
    this.mark = trustMark();
    host.append(this.mark);
    this._shown = "[]";
    this._generation = 0;
    this.failed = false; // an error output is among them (the prompt marks the cell)
  }

  async show(entries, trusted, widgetGeneration = 0) {
    if (!this.area.isAttached && this.host.isConnected) Widget.attach(this.area, this.host);
    const key = JSON.stringify([trusted, widgetGeneration, entries]);
    if (key === this._shown) return false;
    this._shown = key;
    const generation = ++this._generation;
    const outputs = await Promise.all(
      entries.map((entry) =>
        resolveOutput(entry, this.blobs).catch((error) => ({
          output_type: "stream",
          name: "stderr",
          text: `[output unavailable: ${error.message}]\n`,
        })),
      ),
    );
    // A widget view needs the widget chunk (its renderer) and its model registered first.
    if (outputs.some((output) => output.data?.[WIDGET_VIEW])) await this.widgets.load();
    await this.widgets.settled();
    if (generation !== this._generation) return false; // a newer list arrived meanwhile
    this.model.clear();
    this.model.trusted = trusted;
    this.mark.hidden = trusted || outputs.length === 0;
    this.failed = outputs.some((output) => output.output_type === "error");
    this.model.fromJSON(outputs);
    return true;
  }

  dispose() {
    this.area.dispose();
  }
}
