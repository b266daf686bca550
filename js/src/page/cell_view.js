// One cell on the page: its prompt, its editor (CodeMirror once it nears the screen,
// plain text until then), a markdown cell's rendering, and its outputs.
import { element, report } from "./dom.js";
import { CellOutputs } from "./outputs.js";
import { renderMarkdownCell } from "./rendering.js";

// A click on one of these keeps its own focus; anywhere else in a cell is command mode.
const CONTROLS =
  ".cm-editor, .source-plain, .rendered-markdown, input, textarea, select, button, .jupyter-widgets";

// CodeMirror is its own chunk, fetched after the first paint (or at the first editor).
let codemirror = null;
export const loadEditor = () => {
  codemirror ??= import("./editor.js").catch((error) => {
    codemirror = null; // a failed fetch is tried again at the next editor
    throw error;
  });
  return codemirror;
};

export class CellView {
  /** `page` is the NotebookPage: the view reports clicks, focus and cursors to it. */
  constructor(page, cell, { revealed }) {
    this.page = page;
    this.revealed = revealed; // outputs and markdown render once the cell nears the screen
    this.latest = null; // what update() last got: {cell, trusted, widgetGeneration}
    this.ready = Promise.resolve(); // the latest rendering, done
    this.cellId = cell.id;
    this.cellType = cell.cell_type;
    this.editor = null; // CodeMirror, once made (ensureEditor)
    this.disposed = false;
    this.editing = false; // markdown: the editor shows instead of the rendering
    this.renderedSource = null;
    this.markdown = null; // the rendermime widget showing a markdown cell
    this.cursorsKey = "[]";
    this.count = null;
    this.status = "";
    this.prompt = element("div", { class: "prompt" });
    this.plain = element("pre", { class: "source-plain" });
    this.editorHost = element("div", { class: "editor" }, this.plain);
    this.rendered = element("div", { class: "rendered-markdown", title: "double-click to edit" });
    const outputsHost = element("div", { class: "outputs" });
    const run = () => page.execute([this.cellId]);
    const runButton =
      cell.cell_type === "code"
        ? element("button", { class: "run", title: "run (Shift+Enter)", onclick: run }, "▶")
        : "";
    this.node = element(
      "section",
      { class: `cell ${cell.cell_type}`, "data-cell-id": cell.id, tabindex: "-1" },
      element("div", { class: "input" }, this.prompt, this.editorHost, this.rendered, runButton),
      outputsHost,
    );
    this.node.addEventListener("mousedown", (event) => {
      page.setActive(this.cellId);
      if (!event.target.closest(CONTROLS)) page.setMode("command"); // as in JupyterLab
    });
    this.rendered.addEventListener("dblclick", () => page.enterEdit(this.cellId));
    this.plain.addEventListener("click", () => page.enterEdit(this.cellId));
    this.outputs = new CellOutputs(outputsHost, {
      rendermime: page.rendermime,
      blobs: page.blobs,
      widgets: page.widgets,
    });
  }

  /** Show the cell as the doc has it; the view must be in the document (Lumino). The
   * editor is never touched: its binding applies the doc's changes itself. Outputs and
   * a markdown rendering wait until the cell is revealed (it neared the screen). */
  update(cell, { active, status, trusted, widgetGeneration }) {
    this.node.dataset.status = status;
    this.node.classList.toggle("active", active);
    if (!this.editor) this.plain.textContent = cell.source;
    this.latest = { cell, trusted, widgetGeneration };
    if (cell.cell_type === "code") {
      this.count = cell.execution_count;
      this.status = status;
      this.showPrompt();
    } else if (cell.cell_type === "markdown") {
      this.node.classList.toggle("editing", this.editing || cell.source === "");
    }
    if (this.revealed) this.ready = this.showRendered();
  }

  /** Render outputs and markdown from now on; `ready` resolves once they are shown. */
  reveal() {
    if (this.revealed || this.disposed) return;
    this.revealed = true;
    if (this.latest) this.ready = this.showRendered();
  }

  /** The outputs, or the markdown rendering, as the last update had them. */
  async showRendered() {
    const { cell, trusted, widgetGeneration } = this.latest;
    try {
      if (cell.cell_type === "code") {
        if (await this.outputs.show(cell.outputs, trusted, widgetGeneration)) this.showPrompt();
      } else if (cell.cell_type === "markdown") {
        const editing = this.editing || cell.source === "";
        if (editing || this.renderedSource === cell.source) return;
        this.renderedSource = cell.source;
        const { rendermime } = this.page;
        this.markdown = await renderMarkdownCell(rendermime, this.rendered, cell.source, this.markdown);
      }
    } catch (error) {
      report(`${cell.cell_type === "code" ? "outputs" : "markdown"}: ${error.message}`);
    }
  }

  /** `[3]:`, `[*]:` while queued or running, and how a failed run ended: the status
   * says so when the doc or the daemon told, else an error among the outputs does. */
  showPrompt() {
    const known = this.status && this.status !== "ok";
    const status = known ? this.status : this.outputs.failed ? "error" : this.status;
    this.prompt.textContent = prompt(this.count, status);
    this.node.dataset.status = status;
  }

  /** The cell's CodeMirror, made once its chunk is in (at once after the first). */
  async ensureEditor() {
    const { createEditor } = await loadEditor();
    if (this.editor || this.disposed) return this.editor;
    const { page, cellId } = this;
    this.plain.remove();
    this.editor = createEditor({
      handle: page.handle,
      cellId,
      cellType: this.cellType,
      parent: this.editorHost,
      keys: page.editorKeys,
      onFocus: () => {
        page.setActive(cellId);
        page.showMode("edit");
      },
      // Focus gone elsewhere (a button, the page): command mode, as in JupyterLab.
      onBlur: () => {
        if (!document.activeElement?.closest?.(".cm-editor")) page.showMode("command");
      },
      onCursor: ({ anchor, head }) => page.sendCursor({ cell_id: cellId, anchor, head }),
    });
    return this.editor;
  }

  /** Draw these peers' carets ([{head, name, color}]) when they changed. */
  showCursors(cursors) {
    const key = JSON.stringify(cursors);
    if (!this.editor || key === this.cursorsKey) return;
    this.cursorsKey = key;
    loadEditor().then(({ showRemoteCursors }) => showRemoteCursors(this.editor, cursors));
  }

  dispose() {
    this.disposed = true;
    this.editor?.destroy();
    this.markdown?.dispose();
    this.outputs.dispose();
    this.node.remove();
  }
}

/** `[3]:` after a run, `[*]:` while queued or running, and how a failed run ended. */
function prompt(count, status) {
  if (status === "queued" || status === "running") return "[*]:";
  const shown = `[${count ?? " "}]:`;
  return status === "aborted" || status === "error" ? `${shown} ${status}` : shown;
}
