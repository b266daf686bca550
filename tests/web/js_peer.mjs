// The JS client (js/src/client.js) as a test peer, driven by tests/web/test_js_client.py.
//
//   node js_peer.mjs view URL TOKEN NOTEBOOK            {view, comm_sync, kernel_status}
//   node js_peer.mjs edit URL TOKEN NOTEBOOK CELL TEXT  set CELL's source, append a cell
//   node js_peer.mjs run URL TOKEN NOTEBOOK CELL        execute_cell, wait for execution_done
//   node js_peer.mjs compact URL TOKEN NOTEBOOK CELL    compact; edit CELL inside the switch
//                                                        and add a cell after it
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
  compact: async (cellId) => {
    const events = [];
    client.on("broadcast", (message) => {
      events.push(message.event);
      // Still in the old epoch: this edit goes out as a late SYNC and is carried.
      if (message.event === "compaction") {
        client.change((d) => setSource(d, cellId, "edited inside the switch"));
      }
    });
    const { epoch } = await client.request("compact");
    await client.waitFor(() => events.includes("switched"), { what: "switched" });
    const added = client.change((d) => appendCell(d, { source: "added after the switch" }));
    await client.waitFor(
      (c) => view(c.doc).cells.some((cell) => cell.source === "edited inside the switch"),
      { what: "the late edit back from the daemon" },
    );
    await client.waitSynced();
    return { epoch, client_epoch: client.epoch, events, added, view: view(client.doc) };
  },
};

try {
  process.stdout.write(`${JSON.stringify(await commands[command](...args))}\n`);
} finally {
  client.close();
}
