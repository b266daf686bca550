// What @jupyterlab/rendermime and @jupyterlab/outputarea take from
// @jupyterlab/translation (js/build.mjs points their imports here): its index would
// bring the translation server's client, and with it @jupyterlab/services.
export { nullTranslator } from "@jupyterlab/translation/lib/base.js";
