// The page's rendermime: JupyterLab's standard factories, with what they need beyond
// them: a markdown parser (`marked`, as JupyterLab's markedparser-extension uses) and a
// LaTeX typesetter (KaTeX: no runtime code generation), so markdown cells and
// text/markdown and text/latex outputs render with their math. Both are chunks of their
// own, fetched while a notebook is being joined (preloadRenderers). The widget-view
// renderer joins when the widget chunk loads (widget_manager.js).
import "katex/dist/katex.min.css";
import { MimeModel, RenderMimeRegistry, standardRendererFactories } from "@jupyterlab/rendermime";
import { Widget } from "@lumino/widgets";

const MATH_DELIMITERS = [
  { left: "$$", right: "$$", display: true },
  { left: "\\[", right: "\\]", display: true },
  { left: "\\begin{equation}", right: "\\end{equation}", display: true },
  { left: "\\begin{align}", right: "\\end{align}", display: true },
  { left: "$", right: "$", display: false },
  { left: "\\(", right: "\\)", display: false },
];

let marked = null;
const loadMarked = () => {
  marked ??= import("marked").then((module) => module.marked);
  return marked;
};

// KaTeX's code (a quarter of a megabyte) is its own chunk too.
let autoRender = null;
const loadAutoRender = () => {
  autoRender ??= import("katex/contrib/auto-render").then((module) => module.default);
  return autoRender;
};

/** Start fetching both while the notebook is being joined: its first paint will
 * likely need them, and the network is idle meanwhile. */
export function preloadRenderers() {
  loadMarked();
  loadAutoRender();
}

const markdownParser = {
  async render(source) {
    return (await loadMarked()).parse(source, { gfm: true, async: false });
  },
};

const latexTypesetter = {
  async typeset(element) {
    (await loadAutoRender())(element, {
      delimiters: MATH_DELIMITERS,
      throwOnError: false,
      ignoredClasses: ["jp-RenderedText"],
    });
  },
};

/** The registry every output, markdown cell and Output widget of the page renders with. */
export function createRenderMime() {
  return new RenderMimeRegistry({
    initialFactories: standardRendererFactories,
    markdownParser,
    latexTypesetter,
  });
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
