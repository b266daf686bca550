// The JS client (js/src/client.js) as a test peer, driven by tests/web/test_js_client.py.
//
//   node js_peer.mjs view URL TOKEN NOTEBOOK            {view, comm_sync, kernel_status}
//   node js_peer.mjs edit URL TOKEN NOTEBOOK CELL TEXT  set CELL's source, append a cell
//   node js_peer.mjs run URL TOKEN NOTEBOOK CELL        execute_cell, wait for execution_done
//
// Prints one JSON line; exits non-zero with the error on stderr.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const js = (path) => import(pathToFileURL(join(process.env.RUNTIMED_JS_DIR, path)).href);
const { RuntimedClient } = await js("src/client.js");
const { appendCell, setSource, view } = await js("src/notebook.js");
const { default: WebSocket } = await js("node_modules/ws/wrapper.mjs");

const [command, url, token, notebookId, ...args] = process.argv.slice(2);
const client = await RuntimedClient.connect({ url, token, notebookId, WebSocket, name: "js-peer" });
await client.waitSynced();

const commands = {
  view: async () => ({
    view: view(client.doc),
    comm_sync: client.commSync,
    kernel_status: client.kernelStatus,
  }),
  edit: async (cellId, text) => {
    const added = client.change((d) => {
      setSource(d, cellId, text);
      return appendCell(d, { source: `# added by js\n${text}` });
    });
    await client.waitSynced();
    return { added };
  },
  run: async (cellId) => {
    const broadcasts = [];
    client.on("broadcast", (message) => broadcasts.push(message));
    const { msg_id: msgId } = await client.request("execute_cell", { cell_id: cellId });
    await client.waitFor(
      () => broadcasts.some((b) => b.event === "execution_done" && b.msg_id === msgId),
      { what: "execution_done", timeout: 60000 },
    );
    await client.waitFor(
      (c) => view(c.doc).cells.find((cell) => cell.id === cellId).outputs.length > 0,
      { what: "outputs in the doc" },
    );
    const cell = view(client.doc).cells.find((c) => c.id === cellId);
    return { msg_id: msgId, events: broadcasts.map((b) => b.event), outputs: cell.outputs };
  },
};

try {
  process.stdout.write(`${JSON.stringify(await commands[command](...args))}\n`);
} finally {
  client.close();
}
