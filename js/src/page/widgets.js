// Live ipywidgets in the page: @jupyter-widgets/html-manager models driven by the daemon.
//
// The kernel's comms reach the page three ways, and all three feed the same models:
// - the doc's `comms` map (a late joiner has every model before any kernel round trip),
// - the `comm_sync` broadcast (the legacy full view: on join, and empty after a restart),
// - live `comm` broadcasts (open, update, close, in kernel order).
// A user's change goes back as a `send_comm` request; the daemon forwards it to the
// kernel, whose echo_update reaches every page.
// The manager itself is in the widget chunk (widget_manager.js), fetched with the
// notebook's first widget: what comes before it waits, in order.
import { Widget } from "@lumino/widgets";
import { fromBase64, toBase64 } from "../client.js";
import { comms as docComms } from "../notebook.js";

const WIDGET_TARGET = "jupyter.widget";

/** Stands in for a Jupyter kernel comm (IClassicComm) and talks to the daemon instead. */
class DaemonComm {
  constructor(bridge, commId, targetName) {
    this.bridge = bridge;
    this.comm_id = commId;
    this.target_name = targetName;
    this.sent = []; // updates awaiting their echo: {msgId, state}
    this._onMsg = null;
    this._onClose = null;
  }

  on_msg(callback) {
    this._onMsg = callback;
  }

  on_close(callback) {
    this._onClose = callback;
  }

  open() {
    return ""; // comms are opened by the kernel, never by the page
  }

  close() {
    return ""; // the protocol has no page-side comm_close; the kernel owns the model's life
  }

  send(data, callbacks, _metadata, buffers) {
    const msgId = this.bridge.nextMessageId();
    if (data.method === "update") this.sent.push({ msgId, state: data.state });
    const encoded = (buffers ?? []).map((buffer) => toBase64(bytesOf(buffer)));
    this.bridge.client
      .request("send_comm", { comm_id: this.comm_id, data, buffers: encoded })
      .catch((error) => this.bridge.report(`widget change not sent: ${error.message}`))
      // The daemon has forwarded it: release the model's one-in-flight throttle.
      .finally(() => callbacks?.iopub?.status?.({ content: { execution_state: "idle" } }));
    return msgId;
  }

  /** A comm_msg from the kernel, shaped as the Jupyter message the model expects. */
  deliver(data, buffers) {
    const msg = { content: { comm_id: this.comm_id, data }, buffers };
    if (data.method === "echo_update") msg.parent_header = { msg_id: this._echoOf(data.state) };
    this._onMsg?.(msg);
  }

  /** Which of our updates an echo answers: the model drops echoes that are not its own
   * latest for attributes it is still changing, so a drag never jumps backwards. */
  _echoOf(state) {
    const index = this.sent.findIndex(({ state: sent }) =>
      Object.keys(sent).every((key) => JSON.stringify(sent[key]) === JSON.stringify(state?.[key])),
    );
    if (index < 0) return "another-client";
    const [{ msgId }] = this.sent.splice(0, index + 1);
    return msgId;
  }

  closedByKernel() {
    this._onClose?.({ content: { comm_id: this.comm_id } });
  }
}

export class WidgetBridge {
  /** `rendermime` is the page's: Output widgets render with it, and it gets the
   * widget-view renderer when the manager is made. */
  constructor(client, { rendermime, fetchBlob, report = console.warn, onClose = () => {} }) {
    this.client = client;
    this.rendermime = rendermime;
    this.fetchBlob = fetchBlob;
    this.report = report;
    this.onClose = onClose;
    this.manager = null; // html-manager's, once the widget chunk is in (load)
    this._lib = null; // that chunk
    this._loading = null;
    this._waiting = []; // work for the manager that came before it, in arrival order
    this._resync = () => this.syncFromDoc(this.client.doc);
    // Bumped whenever models close, so outputs showing them render again (read only).
    this.generation = 0;
    this._saved = Promise.resolve(null); // widget state as it was before models closed
    this._frozen = null; // {saved, manager}: the read-only models built from _saved
    // comm_id -> {comm, model: Promise, docState: the state JSON last seen in the doc, or
    // null while the doc has not had this comm yet (a live comm_open can come first)}
    this.open = new Map();
    this._opening = new Set(); // doc comms whose {"$blob"} values are being fetched
    this._messageIds = 0;
    // Saved widget state becomes live models only once the daemon trusts it; comms the
    // kernel opens live (`comm` broadcasts) are its own and always are.
    this.commsTrusted = false;
    client.on("broadcast", (message) => this._onBroadcast(message));
  }

  nextMessageId() {
    this._messageIds += 1;
    return `page-${this._messageIds}`;
  }

  /** Fetch the widget chunk and its styles and make the manager, once; never rejects
   * (without it, widget outputs show their text). */
  load() {
    this._loading ??= Promise.all([import("./widget_manager.js"), linkStyles()]).then(
      ([lib]) => {
        this._lib = lib;
        this.manager = lib.pageManager(this.rendermime, (modelId, host) =>
          this.savedView(modelId, host),
        );
        for (const work of this._waiting.splice(0)) work();
      },
      (error) => this.report(`widgets cannot load: ${error.message}`),
    );
    return this._loading;
  }

  /** Run `work` with the manager: now, or once its chunk is in. */
  _withManager(work) {
    if (this.manager) {
      work();
      return;
    }
    if (!this._waiting.includes(work)) this._waiting.push(work);
    this.load();
  }

  /** Resolves once every model being opened is registered: html-manager's widget
   * output renderer looks a model up once, so outputs render after this. */
  async settled() {
    if (this._waiting.length) await this._loading;
    await Promise.allSettled([...this._opening]);
  }

  /** The model for a comm id, once it is open (for views and tests). */
  async model(commId) {
    await this.settled();
    const entry = this.open.get(commId);
    if (!entry) throw new Error(`no widget ${commId}`);
    return entry.model;
  }

  /** Open, update and close models to match the doc's comms map. */
  syncFromDoc(doc) {
    if (!this.commsTrusted) return;
    if (!this.manager) {
      if (docComms(doc).length) this._withManager(this._resync);
      return;
    }
    const live = new Set();
    for (const comm of docComms(doc)) {
      live.add(comm.comm_id);
      const stateJson = JSON.stringify(comm.state);
      const known = this.open.get(comm.comm_id);
      if (!known) {
        this._openFromDoc(comm, stateJson);
      } else if (known.docState !== stateJson) {
        known.docState = stateJson;
        // Our own changes in flight win: the doc may still hold the value before them.
        if (known.comm.sent.length === 0) this._updateFromDoc(known, comm.state);
      }
    }
    for (const [commId, entry] of [...this.open]) {
      if (!live.has(commId) && entry.docState !== null) this._close(commId);
    }
  }

  _openFromDoc(comm, stateJson) {
    const entry = this._register(comm.comm_id, comm.target_name);
    entry.docState = stateJson;
    if (!stateJson.includes('"$blob"')) {
      entry.model = this._createModel(entry, comm.state, [], []); // registered right now
      return;
    }
    const opening = resolveBlobs(comm.state, this.fetchBlob).then(({ state, paths, buffers }) =>
      this._createModel(entry, state, paths, buffers),
    );
    entry.model = opening;
    this._opening.add(opening);
    opening.finally(() => this._opening.delete(opening));
  }

  _updateFromDoc(entry, rawState) {
    resolveBlobs(rawState, this.fetchBlob).then(({ state, paths, buffers }) =>
      entry.comm.deliver({ method: "update", state, buffer_paths: paths }, buffers),
    );
  }

  _register(commId, targetName) {
    const entry = { comm: new DaemonComm(this, commId, targetName), model: null, docState: null };
    this.open.set(commId, entry);
    return entry;
  }

  _createModel(entry, state, bufferPaths, buffers) {
    const msg = {
      content: {
        comm_id: entry.comm.comm_id,
        target_name: entry.comm.target_name,
        data: { state, buffer_paths: bufferPaths },
      },
      metadata: { version: this._lib.PROTOCOL_VERSION },
      buffers,
    };
    return this.manager.handle_comm_open(entry.comm, msg);
  }

  _onBroadcast(message) {
    if (message.event === "comm_sync" && this.commsTrusted) {
      if (this.manager || message.comms.length) {
        this._withManager(() => this._applyCommSync(message.comms));
      }
    } else if (message.event === "comm") {
      this._withManager(() => this._applyComm(message));
    }
  }

  /** The legacy full view: open what we lack, refresh what we have, close the rest. */
  _applyCommSync(snapshots) {
    const live = new Set(snapshots.map((snapshot) => snapshot.comm_id));
    for (const snapshot of [...snapshots].sort((a, b) => a.seq - b.seq)) {
      const buffers = snapshot.buffers.map(fromBase64);
      const known = this.open.get(snapshot.comm_id);
      if (!known) {
        const entry = this._register(snapshot.comm_id, snapshot.target_name);
        entry.model = Promise.resolve(
          this._createModel(entry, snapshot.state, snapshot.buffer_paths, buffers),
        );
      } else if (known.comm.sent.length === 0) {
        known.comm.deliver(
          { method: "update", state: snapshot.state, buffer_paths: snapshot.buffer_paths },
          buffers,
        );
      }
    }
    for (const commId of [...this.open.keys()]) if (!live.has(commId)) this._close(commId);
  }

  _applyComm({ msg_type: msgType, content, buffers }) {
    const commId = content?.comm_id;
    const decoded = (buffers ?? []).map(fromBase64);
    if (msgType === "comm_open") {
      if (content.target_name !== WIDGET_TARGET || this.open.has(commId)) return;
      const entry = this._register(commId, content.target_name);
      const data = content.data ?? {};
      entry.model = Promise.resolve(
        this._createModel(entry, data.state ?? {}, data.buffer_paths ?? [], decoded),
      );
    } else if (msgType === "comm_msg") {
      this.open.get(commId)?.comm.deliver(content.data ?? {}, decoded);
    } else if (msgType === "comm_close") {
      this._close(commId);
    }
  }

  _close(commId) {
    const entry = this.open.get(commId);
    if (!entry) return;
    this._remember();
    this.open.delete(commId);
    entry.comm.closedByKernel();
    this.generation += 1;
    this.onClose();
  }

  /** Keep the state of every model still open (the manager reads its list right now). */
  _remember() {
    const before = this._saved;
    const now = this.manager.get_state({ drop_defaults: false });
    this._saved = Promise.all([before, now])
      .then(([old, current]) => ({ ...current, state: { ...old?.state, ...current.state } }))
      .catch(() => before);
  }

  /** Show a closed model's last state in `host`, read only; false when none was seen. */
  async savedView(modelId, host) {
    const saved = await this._saved;
    if (!saved?.state?.[modelId]) return false;
    if (this._frozen?.saved !== saved) {
      const manager = new this._lib.HTMLManager();
      this._frozen = { saved, manager, ready: manager.set_state(saved) };
    }
    const { manager, ready } = this._frozen;
    await ready;
    const view = await manager.create_view(await manager.get_model(modelId));
    Widget.attach(view.luminoWidget, host);
    return true;
  }
}

/** Link the widgets' styles (dist/widgets.css); resolves once they apply, or failed. */
function linkStyles() {
  return new Promise((resolve) => {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/static/widgets.css";
    link.onload = link.onerror = resolve;
    document.head.append(link);
  });
}

/**
 * The doc's widget state with every {"$blob": hash} fetched: JSON values back in place,
 * binary values moved out to buffers the way Jupyter's comm messages carry them.
 */
async function resolveBlobs(state, fetchBlob) {
  const paths = [];
  const buffers = [];
  async function walk(value, path) {
    if (isBlobRef(value)) {
      const blob = await fetchBlob(value.$blob);
      if (blob.json) return blob.value;
      paths.push(path);
      buffers.push(new DataView(blob.bytes.buffer));
      return undefined;
    }
    if (Array.isArray(value)) {
      const items = await Promise.all(value.map((item, i) => walk(item, [...path, i])));
      return items.map((item) => (item === undefined ? null : item));
    }
    if (value !== null && typeof value === "object") {
      const entries = await Promise.all(
        Object.entries(value).map(async ([key, item]) => [key, await walk(item, [...path, key])]),
      );
      return Object.fromEntries(entries.filter(([, item]) => item !== undefined));
    }
    return value;
  }
  return { state: await walk(state, []), paths, buffers };
}

function isBlobRef(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    Object.keys(value).length === 1 &&
    typeof value.$blob === "string"
  );
}

function bytesOf(buffer) {
  if (buffer instanceof Uint8Array) return buffer;
  if (ArrayBuffer.isView(buffer)) {
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  return new Uint8Array(buffer);
}
