// Bundles the notebook page (src/page/main.js) into runtimed/web/dist/, which the
// daemon serves at /static/. `node build.mjs` (make web) is all it takes.
import { copyFile, mkdir, rm } from "node:fs/promises";
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

// rendermime and outputarea (the page's core) take a few things each from apputils,
// services and translation: those imports go to src/shims/, which take just the modules
// holding them, and translation's token module does not bring its server client (it
// only defines things). Whatever imports the packages whole is in the widget chunk.
const coreShims = {
  name: "core-shims",
  setup(build) {
    const fromCore = /@jupyterlab[\\/](rendermime|outputarea)[\\/]/;
    build.onResolve({ filter: /^@jupyterlab\/(apputils|services|translation)$/ }, (args) => {
      if (!fromCore.test(args.importer)) return undefined;
      return { path: here(`./src/shims/${args.path.split("/")[1]}.js`) };
    });
    build.onResolve({ filter: /^\.\/server$/ }, (args) => {
      if (!/@jupyterlab[\\/]translation[\\/]lib[\\/]tokens\.js$/.test(args.importer)) return undefined;
      return { path: `${args.resolveDir}/server.js`, sideEffects: false };
    });
  },
};

// The widget packages import their CSS from JS; esbuild would put it all in app.css,
// lazy chunk or not. Those imports are left out: src/page/widgets.css has the same
// styles as dist/widgets.css, which the page links when it loads the widget chunk.
const widgetCssApart = {
  name: "widget-css-apart",
  setup(build) {
    build.onResolve({ filter: /\.css$/ }, (args) => {
      if (args.kind === "import-rule" || !/@jupyter-widgets[\\/]/.test(args.importer)) return undefined;
      return { path: args.path, namespace: "widget-css-apart" };
    });
    build.onLoad({ filter: /.*/, namespace: "widget-css-apart" }, () => ({ contents: "", loader: "css" }));
  },
};

const fonts = Object.fromEntries(
  [".woff", ".woff2", ".ttf", ".eot", ".svg"].map((ext) => [ext, "file"]),
);

// Chunk names carry their content's hash: a clean folder leaves no stale ones behind.
await rm(here("../runtimed/web/dist"), { recursive: true, force: true });

await esbuild.build({
  entryPoints: { app: here("./src/page/main.js"), widgets: here("./src/page/widgets.css") },
  outdir: here("../runtimed/web/dist"),
  bundle: true,
  format: "esm",
  // What the page imports lazily becomes its own chunk: CodeMirror (editor.js), the
  // widget manager (widget_manager.js), marked and KaTeX. First paint needs none of them.
  splitting: true,
  chunkNames: "chunk-[hash]",
  target: "es2022",
  minify: true,
  sourcemap: true,
  loader: fonts,
  assetNames: "[name]-[hash]",
  define: { "process.env.NODE_ENV": '"production"' },
  plugins: [automergeSlim, coreShims, widgetCssApart],
  logLevel: "warning",
});

await mkdir(here("../runtimed/web/dist"), { recursive: true });
await copyFile(
  here("./node_modules/@automerge/automerge/dist/automerge.wasm"),
  here("../runtimed/web/dist/automerge.wasm"),
);
