// What @jupyterlab/rendermime and @jupyterlab/outputarea take from @jupyterlab/apputils
// (js/build.mjs points their imports here): the page's core bundle then carries these
// two modules, not the whole package and @jupyterlab/services behind it.
export { Sanitizer } from "@jupyterlab/apputils/lib/sanitizer.js";
export { WidgetTracker } from "@jupyterlab/apputils/lib/widgettracker.js";
