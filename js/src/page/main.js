// The notebook page the daemon serves: cells, outputs, kernel status and live widgets.
//
// Open http://HOST:PORT/?token=...&notebook=ID (`runtimed serve --ws` prints the
// address). Without `notebook` the page lists the daemon's open rooms.
import "@jupyter-widgets/controls/css/widgets-base.css";
import "@jupyterlab/rendermime/style/base.css";
import "@jupyterlab/outputarea/style/base.css";
import { RuntimedClient } from "../client.js";
import { appendCell, cells as docCells, setSource } from "../notebook.js";
import { BlobCache, CellOutputs } from "./outputs.js";
import { WidgetBridge } from "./widgets.js";

const query = new URLSearchParams(location.search);
const token = query.get("token") ?? "";
const notebookId = query.get("notebook");
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function report(message) {
  const line = element("div", { class: "message" }, message);
  $("#messages").append(line);
  setTimeout(() => line.remove(), 10000);
}

function pageHref(id) {
  const params = new URLSearchParams({ token });
  if (id) params.set("notebook", id);
  return `/?${params}`;
}

// --- the room list (no notebook chosen) --------------------------------------------

async function showRooms() {
  document.title = "runtimed";
  $("#title").textContent = "Open a notebook";
  const control = await RuntimedClient.connect({ url: wsUrl, token, name: "runtimed-page" });
  const { rooms } = await control.request("list_rooms");
  control.close();
  const list = element("ul", { class: "rooms" });
  for (const room of rooms) {
    const link = element("a", { href: pageHref(room.notebook_id) }, room.notebook_id);
    const kernel = room.kernel_name ? `${room.kernel_name} (${room.kernel_status})` : "no kernel";
    list.append(element("li", {}, link, ` — ${room.cells} cells, ${kernel}`));
  }
  const input = element("input", { name: "notebook", placeholder: "notebook id", required: "" });
  const form = element(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        location.href = pageHref(input.value);
      },
    },
    input,
    element("button", { type: "submit" }, "Open"),
  );
  $("#cells").append(rooms.length ? list : element("p", {}, "No open rooms."), form);
}

// --- one notebook ------------------------------------------------------------------

class NotebookPage {
  constructor(client) {
    this.client = client;
    this.blobs = new BlobCache(token);
    this.widgets = new WidgetBridge(client, {
      fetchBlob: (hash) => this.blobs.get(hash),
      report,
    });
    this.views = new Map(); // cell_id -> {node, source, prompt, outputs}
    this._renderPending = false;
    client.on("doc", () => this.scheduleRender());
    client.on("broadcast", (message) => this.onBroadcast(message));
    client.on("error", (error) => report(error.detail ?? error.message));
    client.on("close", () => {
      this.setStatus("disconnected");
      report("The connection to the daemon closed: reload the page to reconnect.");
    });
  }

  start() {
    $("#title").textContent = this.client.notebookId;
    document.title = `${this.client.notebookId} — runtimed`;
    $("#toolbar").append(
      element("button", { id: "launch", onclick: () => this.act("launch_kernel") }, "Start kernel"),
      element("button", { id: "interrupt", onclick: () => this.act("interrupt_kernel") }, "Interrupt"),
      element("button", { id: "restart", onclick: () => this.act("restart_kernel") }, "Restart"),
      element("button", { id: "add-cell", onclick: () => this.addCell() }, "+ Code cell"),
    );
    this.setStatus(this.client.kernelStatus ?? "none");
    this.render();
  }

  async act(action, params = {}) {
    try {
      return await this.client.request(action, params);
    } catch (error) {
      report(`${action}: ${error.detail ?? error.message}`);
      return null;
    }
  }

  onBroadcast(message) {
    if (message.event === "kernel_status") this.setStatus(message.status);
    if (message.event === "error") report(`${message.code}: ${message.message}`);
  }

  setStatus(status) {
    const badge = $("#kernel-status");
    badge.textContent = status;
    badge.dataset.status = status;
  }

  addCell() {
    const cellId = this.client.change((d) => appendCell(d));
    this.render();
    this.views.get(cellId)?.source.focus();
  }

  async run(cellId) {
    const idle = ["none", "dead", "shutdown"];
    if (idle.includes(this.client.kernelStatus ?? "none")) {
      if ((await this.act("launch_kernel")) === null) return;
    }
    await this.client.waitSynced(); // the daemon runs the source its doc holds
    await this.act("execute_cell", { cell_id: cellId });
  }

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
    const wanted = docCells(doc);
    const ids = new Set(wanted.map((cell) => cell.id));
    for (const [cellId, view] of this.views) {
      if (!ids.has(cellId)) {
        view.outputs.dispose();
        view.node.remove();
        this.views.delete(cellId);
      }
    }
    let previous = null;
    for (const cell of wanted) {
      const view = this.views.get(cell.id) ?? this.createCell(cell);
      if (view.source !== document.activeElement && view.source.value !== cell.source) {
        view.source.value = cell.source;
      }
      const count = cell.execution_count;
      view.prompt.textContent = cell.cell_type === "code" ? `[${count ?? " "}]:` : "";
      const expected = previous ? previous.nextSibling : container.firstChild;
      if (expected !== view.node) container.insertBefore(view.node, expected);
      previous = view.node;
      view.outputs.show(cell.outputs);
    }
  }

  createCell(cell) {
    const source = element("textarea", { class: "source", spellcheck: "false", rows: "3" });
    source.addEventListener("input", () => {
      this.client.change((d) => setSource(d, cell.id, source.value));
    });
    source.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.shiftKey) {
        event.preventDefault();
        this.run(cell.id);
      }
    });
    const prompt = element("div", { class: "prompt" });
    const outputsHost = element("div", { class: "outputs" });
    const runButton = element("button", { class: "run", onclick: () => this.run(cell.id) }, "Run");
    const node = element(
      "section",
      { class: `cell ${cell.cell_type}`, "data-cell-id": cell.id },
      element("div", { class: "input" }, prompt, source, cell.cell_type === "code" ? runButton : ""),
      outputsHost,
    );
    const outputs = new CellOutputs(outputsHost, {
      rendermime: this.widgets.manager.renderMime,
      blobs: this.blobs,
      widgets: this.widgets,
    });
    const view = { node, source, prompt, outputs };
    this.views.set(cell.id, view);
    return view;
  }
}

async function main() {
  if (!token) {
    report("This page needs the token: open the URL that `runtimed serve --ws` printed.");
    return;
  }
  if (!notebookId) {
    await showRooms();
    return;
  }
  const client = await RuntimedClient.connect({
    url: wsUrl,
    token,
    notebookId,
    name: "runtimed-page",
  });
  const page = new NotebookPage(client);
  page.start();
  await client.waitSynced();
  window.runtimed = { client, page, widgets: page.widgets, ready: true };
}

main().catch((error) => {
  report(`Cannot open the notebook: ${error.detail ?? error.message}`);
  window.runtimed = { error: String(error.message), ready: false };
});
