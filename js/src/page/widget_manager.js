// The widget half of the bundle (html-manager, the controls, jQuery, Backbone): its own
// chunk, fetched by widgets.js when a notebook first has a widget (a comm in the doc or
// a broadcast, or a widget view among the outputs). A page without widgets never loads
// it.
//
// lib/htmlmanager, not the package index: the index pulls in the AMD embed loader,
// which needs webpack globals, and the page loads no third-party widget modules.
import { HTMLManager } from "@jupyter-widgets/html-manager/lib/htmlmanager.js";
import { WIDGET_MIMETYPE, WidgetRenderer } from "@jupyter-widgets/html-manager/lib/output_renderers.js";

export { PROTOCOL_VERSION } from "@jupyter-widgets/base";
export { HTMLManager };

/**
 * A manager whose Output widgets render with the page's `rendermime`, which gets the
 * widget-view renderer that never says "Error creating widget": a widget whose model
 * is gone (the kernel restarted or is not running) shows its last state, read only,
 * when the page saw it (`savedView`), and a plain placeholder otherwise.
 */
export function pageManager(rendermime, savedView) {
  const manager = new HTMLManager();
  manager.renderMime = rendermime;
  rendermime.addFactory(
    {
      safe: false,
      mimeTypes: [WIDGET_MIMETYPE],
      createRenderer: (options) => new LiveOrSavedWidget(options, manager, savedView),
    },
    0, // html-manager's own rank for it: before text/plain
  );
  return manager;
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
