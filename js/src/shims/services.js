// What @jupyterlab/rendermime and @jupyterlab/outputarea take from @jupyterlab/services
// (js/build.mjs points their imports here). The package is CommonJS, so its index would
// bring every module of it into the page's core bundle.
export { ServerConnection } from "@jupyterlab/services/lib/serverconnection.js";
export * as KernelMessage from "@jupyterlab/services/lib/kernel/messages.js";
