// A JS Automerge peer for the schema interop tests (driven by tests/notebook_doc/test_js_interop.py).
//
//   node automerge_peer.mjs dump <file>           print the doc at <file> as the to_json() view
//   node automerge_peer.mjs write <file>          write a schema v3 notebook the way a JS client would
//   node automerge_peer.mjs write-counter <in> <out>  <in> plus a Counter (Python cannot read one)
//   node automerge_peer.mjs write-variant <name> <file>  a doc written from docs/schema.md
//                                                  alone, one legal variation per name
//   node automerge_peer.mjs sync                  sync over stdio: one JSON request per line
import * as A from "@automerge/automerge";
import { readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";

/** Plain JSON of an Automerge value: ImmutableString -> string, bigint (Uint) -> number. */
function plain(value) {
  if (value instanceof A.ImmutableString) return value.val;
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

const byKey = (key) => (a, b) => {
  for (const k of key) {
    if (a[k] < b[k]) return -1;
    if (a[k] > b[k]) return 1;
  }
  return 0;
};

/** The same view as NotebookDoc.to_json(). */
function view(doc) {
  const cells = Object.values(doc.cells).map((cell) => ({
    id: plain(cell.id),
    cell_type: plain(cell.cell_type),
    position: plain(cell.position),
    source: plain(cell.source),
    execution_count: JSON.parse(plain(cell.execution_count)),
    outputs: plain(cell.outputs),
    metadata: plain(cell.metadata),
    // Optional in the schema: absent reads as null.
    execution_status: cell.execution_status === undefined ? null : plain(cell.execution_status),
  }));
  const comms = Object.entries(doc.comms ?? {}).map(([commId, comm]) => ({
    comm_id: commId,
    target_name: plain(comm.target_name),
    model_module: plain(comm.model_module),
    model_name: plain(comm.model_name),
    state: JSON.parse(plain(comm.state)),
    outputs: plain(comm.outputs ?? []), // OutputModel comms only
    seq: plain(comm.seq),
  }));
  return {
    notebook_id: plain(doc.notebook_id ?? null),
    schema_version: plain(doc.schema_version ?? null),
    metadata: plain(doc.metadata),
    cells: cells.sort(byKey(["position", "id"])),
    comms: comms.sort(byKey(["seq", "comm_id"])),
  };
}

const S = (text) => new A.ImmutableString(text);

function cell(id, cellType, position, source, executionCount, outputs, metadata) {
  return {
    id: S(id),
    cell_type: S(cellType),
    position: S(position),
    source, // a plain JS string is Text in automerge 3.x
    execution_count: S(JSON.stringify(executionCount)),
    outputs: outputs.map((o) => S(typeof o === "string" ? o : JSON.stringify(o))),
    metadata,
  };
}

function jsNotebook() {
  let doc = A.change(A.init(), (d) => {
    d.schema_version = new A.Uint(3);
    d.notebook_id = S("js-notebook");
    d.metadata = {
      kernelspec: { name: "python3", display_name: "Python 3" },
      language_info: { name: "python" },
      numbers: [1, -2, 2.5, null, true],
      immutable: S("scalar string"),
    };
    d.cells = {
      "js-md": cell("js-md", "markdown", "4", "# From JS 😀", null, [], {}),
      "js-code": cell("js-code", "code", "8", "x = 1", 7, [{ output_type: "stream", name: "stdout", text: "1\n" }, "ab".repeat(32)], { tags: ["t"] }),
    };
    d.comms = {
      "w-1": {
        target_name: S("jupyter.widget"),
        model_module: S("@jupyter-widgets/controls"),
        model_name: S("IntSliderModel"),
        state: S(JSON.stringify({ value: 5, description: "ünï" })),
        outputs: [],
      },
    };
    // A Uint nested in an object literal is written as a Map {value}: assign it alone.
    d.comms["w-1"].seq = new A.Uint(0);
  });
  // An edit after creation, as an editor would make it.
  doc = A.change(doc, (d) => A.splice(d, ["cells", "js-code", "source"], 5, 0, " + 41 🎉"));
  return doc;
}

/** Docs a client could write from docs/schema.md alone, each using one freedom it allows. */
const VARIANTS = {
  // Any lowercase hex is a position: keys ending in 0, equal as fractions, tied.
  positions: () =>
    A.change(A.init(), (d) => {
      d.schema_version = new A.Uint(3);
      d.notebook_id = S("js-positions");
      d.metadata = {};
      d.comms = {};
      d.cells = {};
      for (const [id, position] of [["a", "10"], ["b", "8"], ["c", "80"], ["d", "800"], ["e", "80"], ["f", "0"], ["g", "f0"]]) {
        d.cells[id] = cell(id, "code", position, `# ${id}`, null, [], {});
      }
    }),
  // v1: no schema_version (missing = 1), no notebook_id, cells an ordered List.
  "v1-without-id": () =>
    A.change(A.init(), (d) => {
      d.metadata = { kernelspec: { name: "python3", display_name: "Python 3" } };
      d.cells = [
        { id: S("first"), cell_type: S("markdown"), source: "# v1", execution_count: S("null"), outputs: [], metadata: {} },
        { id: S("second"), cell_type: S("code"), source: "1 + 1", execution_count: S("2"), outputs: [S(JSON.stringify({ output_type: "execute_result", execution_count: 2, data: { "text/plain": "2" }, metadata: {} }))], metadata: {} },
      ];
    }),
  // A comm that is not an Output widget has no `outputs`; seq and version as plain Int.
  "comm-without-outputs": () =>
    A.change(A.init(), (d) => {
      d.schema_version = 3;
      d.notebook_id = S("js-comms");
      d.metadata = {};
      d.cells = {};
      d.comms = {
        slider: {
          target_name: S("jupyter.widget"),
          model_module: S("@jupyter-widgets/controls"),
          model_name: S("IntSliderModel"),
          state: S(JSON.stringify({ value: 7 })),
        },
      };
      d.comms.slider.seq = 0;
    }),
};

function respond(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function syncLoop() {
  let doc = A.init();
  let state = A.initSyncState();
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    const request = JSON.parse(line);
    if (request.cmd === "receive") {
      if (request.msg !== null) {
        [doc, state] = A.receiveSyncMessage(doc, state, Buffer.from(request.msg, "base64"));
      }
      let message;
      [state, message] = A.generateSyncMessage(doc, state);
      respond({ msg: message === null ? null : Buffer.from(message).toString("base64") });
    } else if (request.cmd === "edit") {
      doc = A.change(doc, (d) => {
        const id = Object.keys(d.cells)[0];
        A.splice(d, ["cells", id, "source"], 0, 0, "# edited in JS\n");
        d.comms["js-widget"] = {
          target_name: S("jupyter.widget"),
          model_module: S("m"),
          model_name: S("ButtonModel"),
          state: S('{"description":"from js"}'),
          outputs: [],
        };
        d.comms["js-widget"].seq = new A.Uint(99);
      });
      respond({ ok: true });
    } else if (request.cmd === "dump") {
      respond(view(doc));
    }
  });
}

const [command, file, output] = process.argv.slice(2);
if (command === "dump") {
  respond(view(A.load(new Uint8Array(readFileSync(file)))));
} else if (command === "write") {
  writeFileSync(file, A.save(jsNotebook()));
} else if (command === "write-counter") {
  const doc = A.change(A.load(new Uint8Array(readFileSync(file))), (d) => {
    d.metadata.clicks = new A.Counter(1);
  });
  writeFileSync(output, A.save(doc));
} else if (command === "write-variant") {
  writeFileSync(output, A.save(VARIANTS[file]()));
} else if (command === "sync") {
  syncLoop();
} else {
  process.stderr.write(`unknown command ${command}\n`);
  process.exit(2);
}
