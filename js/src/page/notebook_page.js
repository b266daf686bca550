// The notebook page: cells with CodeMirror editors on the doc's text, outputs and
// markdown through JupyterLab's rendermime, live widgets, the Jupyter keyboard model,
// and every cell operation as a change to the shared doc.
import {
  clearOutputs,
  deleteCell,
  cells as docCells,
  insertCell,
  moveCell,
  restoreCell,
  setCellType,
} from "../notebook.js";
import { CellView, loadEditor } from "./cell_view.js";
import { $, element, report } from "./dom.js";
import { docHandle } from "./doc_handle.js";
import { CommandKeys, HelpOverlay, RUN_KEYS } from "./keyboard.js";
import { isPathId } from "./landing.js";
import { BlobCache } from "./outputs.js";
import { createRenderMime } from "./rendering.js";
import { showSvgAsImage, TrustView } from "./trust.js";
import { WidgetBridge } from "./widgets.js";

const NO_KERNEL = ["none", "dead", "shutdown"];
// A page repeats its cursor while it edits; a caret not heard of for a while is
// dropped (its page closed or lost its connection without saying so).
const CURSOR_REFRESH_MS = 10000;
const CURSOR_TTL_MS = 30000;

export class NotebookPage {
  constructor(client, { token }) {
    this.client = client;
    this.blobs = new BlobCache(token);
    this.rendermime = createRenderMime();
    showSvgAsImage(this.rendermime);
    this.widgets = new WidgetBridge(client, {
      rendermime: this.rendermime,
      fetchBlob: (hash) => this.blobs.get(hash),
      report,
      onClose: () => this.scheduleRender(),
    });
    this.trust = new TrustView();
    if (client.trust) this.setTrust(client.trust); // told during the join
    this.handle = docHandle(client);
    this.views = new Map(); // cell_id -> CellView
    this.list = []; // the cells in order, as last rendered
    this.active = null; // the selected cell's id
    this.mode = "command";
    this.runs = new Map(); // cell_id -> queued / running / ok / error / aborted, as seen here
    this.deleted = []; // [{index, cell}] for Z
    this.savedPath = isPathId(client.notebookId) ? client.notebookId : null;
    this.peers = new Map(); // peer_id -> {cell_id, head, name, color}
    this.peersSeen = new Map(); // peer_id -> performance.now() of its last cursor
    this.lastCursor = null; // ours, while editing
    this.makingEditor = false; // enterEdit waits for an editor: keys are no commands
    this.keys = new CommandKeys(this);
    this.help = new HelpOverlay();
    this.editorKeys = [
      ...RUN_KEYS.map(([key, , action]) => ({ key, run: () => (action(this), true) })),
      { key: "Escape", run: () => (this.enterCommand(), true) },
      { key: "ArrowUp", run: (view) => this.editNeighbour(view, -1) },
      { key: "ArrowDown", run: (view) => this.editNeighbour(view, 1) },
    ];
    this._renderPending = false;
    this._cursor = null;
    // A cell nearing the screen gets its outputs, its markdown rendering and CodeMirror;
    // until then its source shows as plain text, so a long notebook paints at once. The
    // cells of the first render are revealed by firstPaint (on screen) and then while
    // the browser is idle; cells made later are revealed at once.
    this.opening = true;
    this.nearScreen = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting || this.opening) continue;
          const cellId = entry.target.dataset.cellId;
          this.views.get(cellId)?.reveal();
          this.ensureEditor(cellId);
        }
      },
      { rootMargin: "600px 0px" },
    );
    client.on("doc", () => this.scheduleRender());
    client.on("broadcast", (message) => this.onBroadcast(message));
    client.on("presence", (message) => this.onPresence(message));
    client.on("error", (error) => report(error.detail ?? error.message));
    setInterval(() => this.refreshPresence(), CURSOR_REFRESH_MS);
    addEventListener("pagehide", () => client.sendPresence({ cursor: null }));
    client.on("close", () => {
      this.setStatus("disconnected");
      report("The connection to the daemon closed: reload the page to reconnect.");
    });
  }

  start() {
    const id = this.client.notebookId;
    $("#title").replaceChildren(isPathId(id) ? element("code", { title: "file" }, id) : id);
    document.title = `${id.split("/").at(-1)} — runtimed`;
    const button = (attrs, label, action) => element("button", { ...attrs, onclick: action }, label);
    this.typeSelect = element(
      "select",
      { id: "cell-type", title: "cell type (Y, M, R)" },
      ...["code", "markdown", "raw"].map((type) => element("option", { value: type }, type)),
    );
    this.typeSelect.addEventListener("change", () => this.setType(this.typeSelect.value));
    $("#toolbar").append(
      button({ id: "save", title: "Ctrl+S" }, "Save", () => this.save()),
      element("span", { id: "save-status", class: "save-status" }),
      element("span", { class: "sep" }),
      button({ id: "add-cell", title: "B" }, "+ Code", () => this.insert(1, "code")),
      button({ id: "add-markdown" }, "+ Markdown", () => this.insert(1, "markdown")),
      button({ id: "move-up", title: "Shift+Up" }, "↑", () => this.move(-1)),
      button({ id: "move-down", title: "Shift+Down" }, "↓", () => this.move(1)),
      button({ id: "delete-cell", title: "D D" }, "Delete", () => this.deleteActive()),
      this.typeSelect,
      element("span", { class: "sep" }),
      button({ id: "run-cell", title: "Shift+Enter" }, "▶ Run", () => this.runActive("advance")),
      button({ id: "run-all" }, "Run all", () => this.execute(this.list.map((c) => c.id))),
      button({ id: "run-above" }, "Run above", () => this.execute(this.idsAround(false))),
      button({ id: "run-below" }, "Run below", () => this.execute(this.idsAround(true))),
      button({ id: "clear-outputs" }, "Clear outputs", () => this.clearAllOutputs()),
      element("span", { class: "sep" }),
      button({ id: "launch" }, "Start kernel", () => this.act("launch_kernel")),
      button({ id: "interrupt" }, "Interrupt", () => this.act("interrupt_kernel")),
      button({ id: "restart" }, "Restart", () => this.act("restart_kernel")),
      button({ id: "help-button", title: "H" }, "?", () => this.help.toggle()),
      this.trust.badge,
    );
    document.addEventListener("keydown", (event) => this.onKey(event));
    this.setStatus(this.client.kernelStatus ?? "none");
    this.setSaveState(this.client.saveState);
    $("#cells").classList.add("opening"); // page.css: cells off screen wait
    this.render();
    this.setActive(this.list[0]?.id ?? null);
    this.setMode("command");
  }

  /**
   * The first paint: every cell on screen once the cells are in the DOM (sources as
   * plain text) has its outputs and its markdown, math included, rendered, and the
   * browser has painted them. Then the other cells are revealed, a few per idle moment.
   */
  async firstPaint() {
    const onScreen = [...this.views.values()].filter((view) => {
      const { top, bottom } = view.node.getBoundingClientRect();
      return bottom > 0 && top < innerHeight;
    });
    for (const view of onScreen) view.reveal();
    await Promise.all(onScreen.map((view) => view.ready));
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve)));
    this.opening = false;
    $("#cells").classList.remove("opening");
    loadEditor(); // fetched now, so that Enter finds it
    // Observed again, the cells near the screen now get their editors.
    for (const view of this.views.values()) {
      this.nearScreen.unobserve(view.node);
      if (!view.editor) this.nearScreen.observe(view.node);
    }
    this.revealRest();
  }

  /** Reveal the cells not yet revealed, a few at a time while the browser is idle. */
  async revealRest() {
    for (;;) {
      const batch = [...this.views.values()].filter((view) => !view.revealed).slice(0, 5);
      if (!batch.length) return;
      await whenIdle();
      for (const view of batch) view.reveal();
      await Promise.all(batch.map((view) => view.ready));
    }
  }

  async act(action, params = {}) {
    try {
      return await this.client.request(action, params);
    } catch (error) {
      report(`${action}: ${error.detail ?? error.message}`);
      return null;
    }
  }

  // --- broadcasts and presence -------------------------------------------------------

  onBroadcast(message) {
    const { event } = message;
    if (event === "kernel_status") this.setStatus(message.status);
    if (event === "save_state") this.setSaveState(message);
    if (event === "error") report(`${message.code}: ${message.message}`);
    if (event === "trust") {
      this.setTrust(message);
      this.render();
    }
    if (event === "execution_started" && message.cell_id) this.setRun(message.cell_id, "running");
    if (event === "execution_done" && message.cell_id) {
      this.setRun(message.cell_id, message.status ?? "ok");
    }
  }

  setRun(cellId, status) {
    this.runs.set(cellId, status);
    this.scheduleRender();
  }

  onPresence({ peer_id: peerId, cursor, name }) {
    if (!peerId) return;
    if (cursor?.cell_id) {
      this.peers.set(peerId, { ...cursor, name: name ?? peerId, color: colorOf(peerId) });
      this.peersSeen.set(peerId, performance.now());
    } else {
      this.peers.delete(peerId);
      this.peersSeen.delete(peerId);
    }
    this.showCursors();
  }

  /** Repeat our cursor while editing; forget carets whose page went quiet. */
  refreshPresence() {
    if (this.mode === "edit" && this.lastCursor) {
      this.client.sendPresence({ cursor: this.lastCursor, name: "page" });
    }
    const now = performance.now();
    const quiet = [...this.peersSeen].filter(([, seen]) => now - seen > CURSOR_TTL_MS);
    for (const [peerId] of quiet) {
      this.peers.delete(peerId);
      this.peersSeen.delete(peerId);
    }
    if (quiet.length) this.showCursors();
  }

  showCursors() {
    const peers = [...this.peers.values()];
    for (const [cellId, view] of this.views) {
      view.showCursors(peers.filter((peer) => peer.cell_id === cellId));
    }
  }

  /** Tell the other pages where this one's cursor is, at most once a frame. */
  sendCursor(cursor) {
    this.lastCursor = cursor;
    const pending = this._cursor !== null;
    this._cursor = cursor;
    if (pending) return;
    requestAnimationFrame(() => {
      this.client.sendPresence({ cursor: this._cursor, name: "page" });
      this._cursor = null;
    });
  }

  // --- header ---------------------------------------------------------------------

  setTrust(state) {
    this.trust.update(state);
    this.widgets.commsTrusted = this.trust.commsTrusted;
  }

  setStatus(status) {
    const badge = $("#kernel-status");
    badge.textContent = status;
    badge.dataset.status = status;
    if (status === "restarting" || status === "dead") {
      for (const [cellId, run] of this.runs) {
        if (run === "queued" || run === "running") this.runs.set(cellId, "aborted");
      }
      this.scheduleRender();
    }
  }

  /** saved / modified / saving / failed (with the reason), for a notebook with a file. */
  setSaveState(state) {
    if (!state) return;
    const badge = $("#save-status");
    badge.dataset.state = state.state;
    badge.textContent = state.state === "failed" ? `save failed: ${state.reason}` : state.state;
    badge.title = state.path ?? "";
    if (state.path) this.savedPath = state.path;
  }

  async save() {
    const params = {};
    if (!this.savedPath) {
      const path = prompt("Save as: the path of an .ipynb file", "untitled.ipynb");
      if (!path) return;
      params.path = path;
    }
    this.setSaveState({ state: "saving", path: this.savedPath });
    try {
      const { path } = await this.client.request("save", params);
      this.setSaveState({ state: "saved", path });
    } catch (error) {
      this.setSaveState({ state: "failed", reason: error.detail ?? error.message });
    }
  }

  // --- modes and selection ---------------------------------------------------------

  onKey(event) {
    if (this.help.open && (event.key === "Escape" || event.key === "h")) {
      this.help.toggle(false);
      event.preventDefault();
      return;
    }
    // In an editor CodeMirror's keymap (with the page's run keys) has it; a form field
    // types; anything else is command mode.
    if (event.target.closest?.(".cm-editor, input, textarea, select")) return;
    if (this.makingEditor || this.keys.handle(event)) event.preventDefault();
  }

  showMode(mode) {
    this.mode = mode;
    document.body.dataset.mode = mode;
    $("#mode").textContent = mode === "edit" ? "edit mode" : "command mode";
  }

  setMode(mode) {
    this.showMode(mode);
    if (mode === "command") {
      const view = this.views.get(this.active);
      if (view) view.node.focus({ preventScroll: true });
      else document.activeElement?.blur?.();
      this.lastCursor = null;
      this.client.sendPresence({ cursor: null });
    }
  }

  setActive(cellId) {
    if (this.active !== cellId) this.views.get(this.active)?.node.classList.remove("active");
    this.active = cellId;
    const view = this.views.get(cellId);
    if (!view) return;
    view.node.classList.add("active");
    view.node.scrollIntoView({ block: "nearest" });
    this.typeSelect.value = view.cellType;
  }

  select(by) {
    const index = this.indexOf(this.active);
    const next = this.list[Math.min(Math.max(index + by, 0), this.list.length - 1)];
    if (next) this.setActive(next.id);
    this.setMode("command");
  }

  /** Resolves to the cell's editor, focused (its chunk may have had to load first):
   * edit mode begins then, and keys pressed meanwhile are no commands. */
  async enterEdit(cellId = this.active) {
    const view = this.views.get(cellId);
    if (!view) return null;
    this.setActive(cellId);
    view.editing = true;
    this.render();
    this.makingEditor = true;
    const editor = await this.ensureEditor(cellId);
    this.makingEditor = false;
    if (editor) {
      editor.focus();
      this.setMode("edit");
    } else {
      this.setMode("command"); // the cell went away meanwhile
    }
    return editor;
  }

  /** Up on an editor's first line (down on its last) edits the cell above (below). */
  editNeighbour(editor, by) {
    const { head, empty } = editor.state.selection.main;
    const line = editor.state.doc.lineAt(head);
    const atEdge = by < 0 ? line.number === 1 : line.number === editor.state.doc.lines;
    const next = this.list[this.indexOf(this.active) + by];
    if (!empty || !atEdge || !next) return false;
    this.enterEdit(next.id).then((target) => {
      target?.dispatch({ selection: { anchor: by < 0 ? target.state.doc.length : 0 } });
    });
    return true;
  }

  enterCommand() {
    this.setMode("command");
  }

  indexOf(cellId) {
    return this.list.findIndex((cell) => cell.id === cellId);
  }

  // --- cell operations: every one a change to the doc -------------------------------

  insert(offset, cellType = "code") {
    const active = this.indexOf(this.active);
    const index = active < 0 ? this.list.length : active + offset;
    const cellId = this.client.change((d) => insertCell(d, index, { cellType }));
    this.render();
    this.setActive(cellId);
    return cellId;
  }

  deleteActive() {
    const index = this.indexOf(this.active);
    if (index < 0) return;
    const cell = this.client.change((d) => deleteCell(d, this.active));
    this.deleted.push({ index, cell });
    this.render();
    this.setActive(this.list[Math.min(index, this.list.length - 1)]?.id ?? null);
    this.setMode("command");
  }

  undoDelete() {
    const last = this.deleted.pop();
    if (!last) return;
    const cellId = this.client.change((d) => restoreCell(d, last.index, last.cell));
    this.render();
    this.setActive(cellId);
  }

  move(by) {
    if (!this.active) return;
    this.client.change((d) => moveCell(d, this.active, by));
    this.render();
    this.setActive(this.active);
  }

  setType(cellType) {
    if (!this.active) return;
    this.client.change((d) => setCellType(d, this.active, cellType));
    this.render();
    this.setActive(this.active);
    this.setMode("command");
  }

  clearAllOutputs() {
    this.client.change((d) => {
      for (const cell of docCells(d)) if (cell.cell_type === "code") clearOutputs(d, cell.id);
    });
    for (const cellId of this.runs.keys()) this.runs.delete(cellId);
  }

  /** The cells before the active one, or it and the ones after. */
  idsAround(below) {
    const index = Math.max(this.indexOf(this.active), 0);
    return (below ? this.list.slice(index) : this.list.slice(0, index)).map((cell) => cell.id);
  }

  /** Run the active cell: "advance" (Shift+Enter), "stay" (Ctrl+Enter), "insert" (Alt+Enter). */
  runActive(how) {
    const index = this.indexOf(this.active);
    if (index < 0) return;
    const view = this.views.get(this.active);
    if (view.cellType === "markdown") view.editing = false;
    this.execute([this.active]);
    if (how === "stay") {
      this.render();
      this.setMode("command");
    } else if (how === "insert" || index === this.list.length - 1) {
      this.enterEdit(this.insert(1));
    } else {
      this.render();
      this.setActive(this.list[index + 1].id);
      this.setMode("command");
    }
  }

  /** Run code cells in order: the kernel starts first when there is none. */
  async execute(cellIds) {
    const code = cellIds.filter((cellId) => this.views.get(cellId)?.cellType === "code");
    for (const cellId of cellIds) {
      const view = this.views.get(cellId);
      if (view?.cellType === "markdown" && view.editing) view.editing = false;
    }
    this.scheduleRender();
    if (!code.length) return;
    for (const cellId of code) this.runs.set(cellId, "queued");
    if (NO_KERNEL.includes(this.client.kernelStatus ?? "none")) {
      if ((await this.act("launch_kernel")) === null) {
        for (const cellId of code) this.runs.delete(cellId);
        this.scheduleRender();
        return;
      }
    }
    // No wait for sync: every edit went out as a SYNC frame when it was made, and the
    // daemon handles a connection's frames in order, so it runs the source shown here.
    for (const cellId of code) {
      if ((await this.act("execute_cell", { cell_id: cellId })) === null) this.runs.delete(cellId);
    }
    this.scheduleRender();
  }

  // --- rendering --------------------------------------------------------------------

  scheduleRender() {
    if (this._renderPending) return;
    this._renderPending = true;
    requestAnimationFrame(() => {
      this._renderPending = false;
      this.render();
    });
  }

  /** Make the DOM match the doc: widgets first, so outputs find their models. */
  render() {
    const doc = this.client.doc;
    this.widgets.syncFromDoc(doc);
    const container = $("#cells");
    this.list = docCells(doc);
    const ids = new Set(this.list.map((cell) => cell.id));
    for (const [cellId, view] of this.views) {
      if (!ids.has(cellId)) this.dropView(cellId, view);
    }
    let previous = null;
    for (const cell of this.list) {
      let view = this.views.get(cell.id);
      if (view && view.cellType !== cell.cell_type) {
        this.dropView(cell.id, view);
        view = null;
      }
      if (!view) {
        view = new CellView(this, cell, { revealed: !this.opening });
        this.views.set(cell.id, view);
        this.nearScreen.observe(view.node);
      }
      const expected = previous ? previous.nextSibling : container.firstChild;
      if (expected !== view.node) container.insertBefore(view.node, expected);
      previous = view.node;
      view.update(cell, {
        active: cell.id === this.active,
        status: cell.execution_status ?? this.runs.get(cell.id) ?? "",
        trusted: this.trust.cellTrusted(cell.id),
        widgetGeneration: this.widgets.generation,
      });
    }
    if (this.active !== null && !ids.has(this.active)) this.setActive(this.list[0]?.id ?? null);
    $("#empty").hidden = this.list.length > 0;
  }

  /** The cell's CodeMirror (a promise: the editor chunk may still be loading); null
   * when the cell is gone or the chunk could not load (said so). */
  async ensureEditor(cellId) {
    const view = this.views.get(cellId);
    if (!view) return null;
    if (view.editor) return view.editor;
    this.nearScreen.unobserve(view.node);
    try {
      const editor = await view.ensureEditor();
      this.showCursors();
      return editor;
    } catch (error) {
      report(`The editor cannot load: ${error.message}`); // tried again at the next edit
      return null;
    }
  }

  dropView(cellId, view) {
    this.nearScreen.unobserve(view.node);
    view.dispose();
    this.views.delete(cellId);
  }
}

/** Resolves when the browser is idle (at the latest in 100 ms; Safari has no idle
 * callbacks: a moment later there). */
function whenIdle() {
  return new Promise((resolve) =>
    globalThis.requestIdleCallback
      ? requestIdleCallback(resolve, { timeout: 100 })
      : setTimeout(resolve, 10),
  );
}

function colorOf(peerId) {
  let hash = 0;
  for (const char of String(peerId)) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 70% 45%)`;
}
