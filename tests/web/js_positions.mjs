// js/src/notebook.js's positionBetween for tests/web/test_js_positions.py: reads a JSON
// list of [before, after] pairs (null: an end) on argv, prints the keys as one JSON line.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const notebook = pathToFileURL(join(process.env.RUNTIMED_JS_DIR, "src/notebook.js")).href;
const { positionBetween } = await import(notebook);
const pairs = JSON.parse(process.argv[2]);
console.log(JSON.stringify(pairs.map(([before, after]) => positionBetween(before, after))));
