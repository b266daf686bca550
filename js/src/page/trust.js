// Notebook trust in the page, the way JupyterLab shows an untrusted notebook.
//
// The daemon says which cells' outputs and whether the saved widget state are trusted
// (the `trust` broadcast, docs/protocol.md). Until it has said so, nothing is: the
// first render of a notebook opened from a file never runs its outputs' code. An
// untrusted output is rendered by JupyterLab's rendermime with `trusted: false`: HTML
// and markdown sanitized, no JavaScript renderer, no widget views; its cell carries a
// "Not trusted" mark. Untrusted saved widget state is not turned into live models.
import { RenderedSVG, renderSVG } from "@jupyterlab/rendermime";

const SVG = "image/svg+xml";

export class TrustView {
  constructor() {
    this.state = null; // the last `trust` broadcast; null: not told yet, so nothing trusted
    this.badge = document.createElement("span");
    this.badge.id = "trust";
    this._show();
  }

  update({ trusted, untrusted_cells: untrustedCells, comms_trusted: commsTrusted }) {
    this.state = { trusted, untrustedCells: new Set(untrustedCells), commsTrusted };
    this._show();
  }

  cellTrusted(cellId) {
    return this.state !== null && !this.state.untrustedCells.has(cellId);
  }

  get commsTrusted() {
    return this.state?.commsTrusted === true;
  }

  _show() {
    const trusted = this.state?.trusted === true;
    this.badge.dataset.trusted = String(trusted);
    this.badge.textContent = trusted ? "Trusted" : "Not trusted";
    this.badge.title = trusted
      ? "Every output was produced here or vouched for: it is shown in full."
      : "Outputs from the file are shown without scripts and saved widgets are not " +
        "restored. Run the cells, or `runtimed trust PATH`, to trust them.";
  }
}

/** The mark a cell with untrusted outputs shows above them. */
export function trustMark() {
  const mark = document.createElement("div");
  mark.className = "trust-mark";
  mark.textContent = "Not trusted";
  mark.title = "This output came from the file: shown without scripts.";
  mark.hidden = true;
  return mark;
}

/** An SVG inside an <img> runs no script, so even an untrusted one is shown as an image
 * (JupyterLab shows none): the rendermime factory for SVG, marked safe. */
class SvgAsImage extends RenderedSVG {
  render(model) {
    const metadata = model.metadata[this.mimeType];
    return renderSVG({
      host: this.node,
      source: String(model.data[this.mimeType]),
      trusted: true,
      unconfined: metadata?.unconfined,
    });
  }
}

export function showSvgAsImage(rendermime) {
  rendermime.addFactory(
    { safe: true, mimeTypes: [SVG], createRenderer: (options) => new SvgAsImage(options) },
    rendermime.getRank(SVG),
  );
}
