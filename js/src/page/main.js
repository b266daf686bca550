// The page the daemon serves at `/`: a notebook (notebook_page.js), or without one the
// landing page (open rooms, notebooks on disk, New notebook).
//
// Open http://HOST:PORT/?token=...&notebook=ID (`runtimed serve --ws` prints the
// address); the token leaves the address at once (token.js).
// JupyterLab's variables (fonts, colours) and Lumino's widget basics; the widgets' own
// styles come with their chunk (widgets.css).
import "@jupyter-widgets/controls/css/labvariables.css";
import "@lumino/widgets/style/widget.css";
import "@jupyterlab/rendermime/style/base.css";
import "@jupyterlab/outputarea/style/base.css";
import * as Automerge from "@automerge/automerge";
import { RuntimedClient } from "../client.js";
import { report } from "./dom.js";
import { isPathId, showLanding } from "./landing.js";
import { NotebookPage } from "./notebook_page.js";
import { preloadRenderers } from "./rendering.js";
import { takeToken } from "./token.js";

const token = takeToken();
const query = new URLSearchParams(location.search);
const notebookId = query.get("notebook");
const createNotebook = query.get("create") === "1";
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

function pageHref(id, create = false) {
  const params = new URLSearchParams();
  if (id) params.set("notebook", id);
  if (create) params.set("create", "1");
  return `/?${params}`;
}

// Milliseconds since navigation at each step of opening (tests and `make bench` report
// them): the core bundle running, the wasm compiled, the room joined (SNAPSHOT loaded,
// the first SYNC in), the cells in the DOM, and the first paint (NotebookPage.firstPaint:
// the cells on screen with their outputs and markdown rendered).
const timings = { scriptStart: performance.now() };

async function main() {
  if (notebookId && token) preloadRenderers();
  await Automerge.initializeWasm(new URL("/static/automerge.wasm", location.href));
  timings.wasmReady = performance.now();
  if (!token) {
    report("This page needs the token: open the URL that `runtimed serve --ws` printed.");
    return;
  }
  if (!notebookId) {
    await showLanding({ wsUrl, token, pageHref });
    window.runtimed = { ready: true };
    return;
  }
  const client = await RuntimedClient.connect({
    url: wsUrl,
    token,
    notebookId,
    path: isPathId(notebookId) ? notebookId : null,
    create: createNotebook,
    name: "runtimed-page",
  });
  timings.joined = performance.now();
  const page = new NotebookPage(client, { token });
  page.start();
  timings.rendered = performance.now();
  page.firstPaint().then(() => {
    timings.firstPaint = performance.now();
  });
  await client.waitSynced();
  window.runtimed = { client, page, widgets: page.widgets, ready: true, timings };
}

main().catch((error) => {
  report(`Cannot open the notebook: ${error.detail ?? error.message}`);
  window.runtimed = { error: String(error.message), ready: false };
});
