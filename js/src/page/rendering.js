// What JupyterLab's rendermime needs beyond its standard factories, for the page:
// - a markdown parser (`marked`, as JupyterLab's markedparser-extension uses) and a
//   LaTeX typesetter (KaTeX: no runtime code generation, bundles into app.js), so
//   markdown cells and text/markdown and text/latex outputs render with their math;
// - a widget-view renderer that never says "Error creating widget": a widget whose
//   model is gone (the kernel restarted or is not running) shows its last state, read
//   only, when the page saw it, and a plain placeholder otherwise.
import "katex/dist/katex.min.css";
import { MimeModel } from "@jupyterlab/rendermime";
import { WIDGET_MIMETYPE, WidgetRenderer } from "@jupyter-widgets/html-manager/lib/output_renderers.js";
import { Widget } from "@lumino/widgets";
import { marked } from "marked";

const MATH_DELIMITERS = [
  { left: "$$", right: "$$", display: true },
  { left: "\\[", right: "\\]", display: true },
  { left: "\\begin{equation}", right: "\\end{equation}", display: true },
  { left: "\\begin{align}", right: "\\end{align}", display: true },
  { left: "$", right: "$", display: false },
  { left: "\\(", right: "\\)", display: false },
];

const markdownParser = {
  render: async (source) => marked.parse(source, { gfm: true, async: false }),
};

// KaTeX's code (a quarter of a megabyte) is its own chunk, fetched at the first formula.
let autoRender = null;

const latexTypesetter = {
  async typeset(element) {
    autoRender ??= import("katex/contrib/auto-render").then((module) => module.default);
    (await autoRender)(element, {
      delimiters: MATH_DELIMITERS,
      throwOnError: false,
      ignoredClasses: ["jp-RenderedText"],
    });
  },
};

/** Give the widget manager's rendermime (the one outputs and Output widgets share) a
 * markdown parser, a typesetter, and the widget renderer with a saved-state fallback. */
export function completeRenderMime(rendermime, { manager, savedView }) {
  rendermime.markdownParser = markdownParser;
  rendermime.latexTypesetter = latexTypesetter;
  rendermime.addFactory(
    {
      safe: false,
      mimeTypes: [WIDGET_MIMETYPE],
      createRenderer: (options) => new LiveOrSavedWidget(options, manager, savedView),
    },
    rendermime.getRank(WIDGET_MIMETYPE),
  );
}

/** A markdown cell's source rendered the way JupyterLab renders one: sanitized, math
 * typeset (rendermime typesets only an attached renderer). Replaces `previous`. */
export async function renderMarkdownCell(rendermime, host, source, previous) {
  const model = new MimeModel({ data: { "text/markdown": source }, trusted: false });
  const renderer = rendermime.createRenderer("text/markdown");
  renderer.hide();
  Widget.attach(renderer, host);
  await renderer.renderModel(model);
  previous?.dispose();
  renderer.show();
  return renderer;
}

class LiveOrSavedWidget extends WidgetRenderer {
  constructor(options, manager, savedView) {
    super(options, manager);
    this.savedView = savedView;
  }

  async renderModel(model) {
    const modelId = model.data[this.mimeType]?.model_id;
    if (this._manager.has_model(modelId)) return super.renderModel(model);
    this.addClass("widget-unavailable");
    const shown = await this.savedView(modelId, this.node);
    const note = document.createElement("div");
    note.className = "widget-note";
    note.textContent = shown
      ? "Saved state, read only: the kernel that made this widget is gone. Run the cell again for a live one."
      : "Widget not available: the kernel that made it restarted or is not running. Run the cell again to see it.";
    this.node.prepend(note);
    return undefined;
  }
}
