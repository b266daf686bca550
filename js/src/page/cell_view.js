// One cell on the page: its prompt, its editor (CodeMirror once it nears the screen,
// plain text until then), a markdown cell's rendering, and its outputs.
import { element, report } from "./dom.js";
import { createEditor, showRemoteCursors } from "./editor.js";
import { CellOutputs } from "./outputs.js";
import { renderMarkdownCell } from "./rendering.js";

// A click on one of these keeps its own focus; anywhere else in a cell is command mode.
const CONTROLS =
  ".cm-editor, .source-plain, .rendered-markdown, input, textarea, select, button, .jupyter-widgets";

export class CellView {
  /** `page` is the NotebookPage: the view reports clicks, focus and cursors to it. */
  constructor(page, cell) {
    this.page = page;
    this.cellId = cell.id;
    this.cellType = cell.cell_type;
    this.editor = null; // CodeMirror, once made (ensureEditor)
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
   * editor is never touched: its binding applies the doc's changes itself. */
  update(cell, { active, status, trusted, widgetGeneration }) {
    this.node.dataset.status = status;
    this.node.classList.toggle("active", active);
    if (!this.editor) this.plain.textContent = cell.source;
    if (cell.cell_type === "code") {
      this.count = cell.execution_count;
      this.status = status;
      this.showPrompt();
      this.outputs.show(cell.outputs, trusted, widgetGeneration).then((changed) => {
        if (changed) this.showPrompt();
      });
    } else if (cell.cell_type === "markdown") {
      const editing = this.editing || cell.source === "";
      this.node.classList.toggle("editing", editing);
      if (!editing && this.renderedSource !== cell.source) {
        this.renderedSource = cell.source;
        renderMarkdownCell(this.page.rendermime, this.rendered, cell.source, this.markdown)
          .then((renderer) => {
            this.markdown = renderer;
          })
          .catch((error) => report(`markdown: ${error.message}`));
      }
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

  /** The cell's CodeMirror, made now if it has none yet. */
  ensureEditor() {
    if (this.editor) return this.editor;
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
    showRemoteCursors(this.editor, cursors);
  }

  dispose() {
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
