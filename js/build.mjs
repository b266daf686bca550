// Bundles the notebook page (src/page/main.js) into runtimed/web/dist/, which the
// daemon serves at /static/. `node build.mjs` (make web) is all it takes.
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

// @automerge/automerge's "browser" entry imports its .wasm the webpack way; the
// base64 "fullfat" entry carries the wasm inside the bundle and needs no loader.
const automergeInlineWasm = {
  name: "automerge-inline-wasm",
  setup(build) {
    build.onResolve({ filter: /^@automerge\/automerge$/ }, () => ({
      path: here("./node_modules/@automerge/automerge/dist/mjs/entrypoints/fullfat_base64.js"),
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
  target: "es2022",
  minify: true,
  sourcemap: true,
  loader: fonts,
  assetNames: "[name]-[hash]",
  define: { "process.env.NODE_ENV": '"production"' },
  plugins: [automergeInlineWasm],
  logLevel: "warning",
});
