// The JS client (js/src/client.js) as a test peer, driven by tests/web/test_js_client.py.
//
//   node js_peer.mjs view URL TOKEN NOTEBOOK            {view, comm_sync, kernel_status}
//   node js_peer.mjs edit URL TOKEN NOTEBOOK CELL TEXT  set CELL's source, append a cell
//   node js_peer.mjs run URL TOKEN NOTEBOOK CELL        execute_cell, wait for execution_done
//   node js_peer.mjs compact URL TOKEN NOTEBOOK CELL TEXT [MAX_FRAME]  edit CELL, force a
//        compaction and edit inside its switch (late SYNC, SWITCH only; MAX_FRAME: a
//        smaller frame cap for the client, so its SWITCH splits)
//   node js_peer.mjs oversize URL TOKEN NOTEBOOK CELL  force a compaction holding a late change
//        too large for a SWITCH frame under a tiny client cap: the client's own error
//
// Prints one JSON line; exits non-zero with the error on stderr.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const js = (path) => import(pathToFileURL(join(process.env.RUNTIMED_JS_DIR, path)).href);
const { FrameType, RuntimedClient } = await js("src/client.js");
const { appendCell, setSource, view } = await js("src/notebook.js");
const { default: WebSocket } = await js("node_modules/ws/wrapper.mjs");
// The same module instance as client.js's import under node (a doc is tied to its wasm).
const A = await js("node_modules/@automerge/automerge/dist/mjs/entrypoints/fullfat_node.js");

const [command, url, token, notebookId, ...args] = process.argv.slice(2);
const client = await RuntimedClient.connect({ url, token, notebookId, WebSocket, name: "js-peer" });
await client.waitSynced();

const commands = {
  view: async () => {
    // The welcome's comm_sync and kernel_status follow its SNAPSHOT and SYNC, and an
    // answer to this client's own sync message may be written before them.
    await client.waitFor((c) => c.commSync !== null && c.kernelStatus !== null, {
      what: "the welcome's comm_sync and kernel_status",
    });
    return { view: view(client.doc), comm_sync: client.commSync, kernel_status: client.kernelStatus };
  },
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
  compact: async (cellId, text, maxFrameSize) => {
    if (maxFrameSize) client.maxFrameSize = Number(maxFrameSize);
    let switchFrames = 0;
    const send = client._send.bind(client);
    client._send = (type, payload) => {
      if (type === FrameType.SWITCH) switchFrames += 1;
      send(type, payload);
    };
    client.change((d) => setSource(d, cellId, text));
    await client.waitSynced({ what: "sync of the first edit" });
    const events = [];
    const lateCells = [];
    client.on("broadcast", (message) => {
      events.push(message);
      if (message.event !== "compaction") return;
      // Between the notice and its SNAPSHOT we are still in the old epoch. This edit goes
      // out at once as a SYNC against it (the daemon's late path)...
      client.change((d) => setSource(d, cellId, `${text}  # late (sync)`));
      // ...and these three changes are never synced: only the SWITCH carries them.
      client.doc = A.change(client.doc, (d) => {
        setSource(d, cellId, `${text}  # late (sync)  # late (switch)`);
      });
      for (const n of [1, 2]) {
        client.doc = A.change(client.doc, (d) => {
          lateCells.push(appendCell(d, { source: `# added inside the switch ${n}` }));
        });
      }
    });
    const compacted = await client.request("compact");
    await client.waitFor((c) => c.epoch === compacted.epoch && c.switching === null, {
      what: "the switch",
    });
    const carried = (c) => lateCells.every((id) => view(c.doc).cells.some((cell) => cell.id === id));
    await client.waitFor(carried, { what: "the late edits carried into the new epoch" });
    const after = client.change((d) => appendCell(d, { source: "# added after the switch" }));
    await client.waitSynced({ what: "sync after the switch" });
    return {
      compacted,
      epoch: client.epoch,
      events,
      switch_frames: switchFrames,
      late_cells: lateCells,
      after,
      view: view(client.doc),
    };
  },
  oversize: async (cellId) => {
    client.on("broadcast", (message) => {
      if (message.event !== "compaction") return;
      client.maxFrameSize = 256; // a 2 KB late change cannot fit
      client.doc = A.change(client.doc, (d) => setSource(d, cellId, "x".repeat(2000)));
    });
    const errors = [];
    client.on("error", (error) => errors.push({ code: error.code, message: error.detail }));
    await client.request("compact").catch(() => null); // the answer may be cut off
    await client.waitFor((c) => c.closed, { what: "the client to close" }).catch(() => null);
    return { errors, closed: client.closed, epoch: client.epoch };
  },
};

try {
  process.stdout.write(`${JSON.stringify(await commands[command](...args))}\n`);
} finally {
  client.close();
}
