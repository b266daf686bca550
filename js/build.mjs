// Bundles the notebook page (src/page/main.js) into runtimed/web/dist/, which the
// daemon serves at /static/. `node build.mjs` (make web) is all it takes.
import { copyFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

// The page loads Automerge's wasm as its own file (/static/automerge.wasm, compiled
// while it streams in) instead of as 4.8 MB of base64 inside app.js: the "slim" entry
// leaves the wasm to `initializeWasm`, which the page calls before anything else.
const automergeSlim = {
  name: "automerge-slim",
  setup(build) {
    build.onResolve({ filter: /^@automerge\/automerge$/ }, () => ({
      path: here("./node_modules/@automerge/automerge/dist/mjs/entrypoints/slim.js"),
    }));
  },
};

const fonts = Object.fromEntries(
  [".woff", ".woff2", ".ttf", ".eot", ".svg"].map((ext) => [ext, "file"]),
);

await esbuild.build({
  entryPoints: { app: here("./src/page/main.js") },
  outdir: here("../runtimed/web/dist"),
  bundle: true,
  format: "esm",
  splitting: true, // what the page imports lazily (KaTeX) becomes its own chunk
  chunkNames: "chunk-[hash]",
  target: "es2022",
  minify: true,
  sourcemap: true,
  loader: fonts,
  assetNames: "[name]-[hash]",
  define: { "process.env.NODE_ENV": '"production"' },
  plugins: [automergeSlim],
  logLevel: "warning",
});

await mkdir(here("../runtimed/web/dist"), { recursive: true });
await copyFile(
  here("./node_modules/@automerge/automerge/dist/automerge.wasm"),
  here("../runtimed/web/dist/automerge.wasm"),
);
