// The Jupyter keyboard model: command mode (a cell is selected) and edit mode (its
// editor has the focus). One table drives both the key handling and the help overlay.
import { element } from "./dom.js";

const run = (how) => (page) => page.runActive(how);

/** Keys in both modes ([key, label, action(page)]); CodeMirror gets these in edit mode. */
export const RUN_KEYS = [
  ["Shift-Enter", "run the cell and select the next (a new one at the end)", run("advance")],
  ["Mod-Enter", "run the cell in place", run("stay")],
  ["Alt-Enter", "run the cell and insert a cell below", run("insert")],
  ["Mod-s", "save the notebook", (page) => page.save()],
];

/** Command mode only. "d d" is D pressed twice. */
export const COMMAND_KEYS = [
  ["Enter", "edit the selected cell", (page) => page.enterEdit()],
  ["Escape", null, (page) => page.enterCommand()],
  ["a", "insert a code cell above", (page) => page.insert(0)],
  ["b", "insert a code cell below", (page) => page.insert(1)],
  ["d d", "delete the cell", (page) => page.deleteActive()],
  ["z", "undo the last delete", (page) => page.undoDelete()],
  ["m", "make it a markdown cell", (page) => page.setType("markdown")],
  ["y", "make it a code cell", (page) => page.setType("code")],
  ["r", "make it a raw cell", (page) => page.setType("raw")],
  ["ArrowUp", "select the cell above (also k)", (page) => page.select(-1)],
  ["k", null, (page) => page.select(-1)],
  ["ArrowDown", "select the cell below (also j)", (page) => page.select(1)],
  ["j", null, (page) => page.select(1)],
  ["Shift-ArrowUp", "move the cell up", (page) => page.move(-1)],
  ["Shift-ArrowDown", "move the cell down", (page) => page.move(1)],
  ["h", "show or hide this help", (page) => page.help.toggle()],
];

export const EDIT_ONLY_KEYS = [
  ["Escape", "leave the editor (command mode)"],
  ["ArrowUp", "on the first line: edit the cell above"],
  ["ArrowDown", "on the last line: edit the cell below"],
];

const isMac = /Mac|iPhone|iPad/.test(globalThis.navigator?.platform ?? "");

/** "Shift-Enter", "Mod-s", "d": the CodeMirror-style name of a key event. */
export function keyName(event) {
  let name = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (event.shiftKey && name.length > 1) name = `Shift-${name}`;
  if (event.altKey) name = `Alt-${name}`;
  if (isMac ? event.metaKey : event.ctrlKey) name = `Mod-${name}`;
  return name;
}

/** Command-mode keys for the page; handles "d d" with a short memory of the last key. */
export class CommandKeys {
  constructor(page) {
    this.page = page;
    this.table = new Map([...RUN_KEYS, ...COMMAND_KEYS].map(([key, , action]) => [key, action]));
    this._last = { name: null, at: 0 };
  }

  /** Returns true when the event was a command key (the caller prevents its default). */
  handle(event) {
    const name = keyName(event);
    const now = event.timeStamp;
    const previous = this._last;
    this._last = { name, at: now };
    if (name === "d") {
      if (previous.name === "d" && now - previous.at < 1000) {
        this._last = { name: null, at: 0 };
        return this._do("d d");
      }
      return true;
    }
    return this._do(name);
  }

  _do(name) {
    const action = this.table.get(name);
    if (!action) return false;
    action(this.page);
    return true;
  }
}

/** The overlay that H shows: every binding of both modes. */
export class HelpOverlay {
  constructor() {
    const rows = (keys) =>
      keys
        .filter(([, label]) => label)
        .map(([key, label]) =>
          element("tr", {}, element("td", {}, element("kbd", {}, shown(key))), element("td", {}, label)),
        );
    this.node = element(
      "div",
      { id: "help", class: "help", hidden: "", role: "dialog", "aria-label": "Keyboard shortcuts" },
      element(
        "div",
        { class: "help-box" },
        element("h2", {}, "Keyboard shortcuts"),
        element("h3", {}, "Both modes"),
        element("table", {}, ...rows(RUN_KEYS)),
        element("h3", {}, "Command mode (a cell is selected; Esc)"),
        element("table", {}, ...rows(COMMAND_KEYS)),
        element("h3", {}, "Edit mode (Enter or click into a cell)"),
        element("table", {}, ...rows(EDIT_ONLY_KEYS)),
        element("p", {}, "Esc or H closes this."),
      ),
    );
    this.node.addEventListener("click", () => this.toggle(false));
    document.body.append(this.node);
  }

  get open() {
    return !this.node.hidden;
  }

  toggle(show = !this.open) {
    this.node.hidden = !show;
  }
}

function shown(key) {
  return key
    .replace("Mod-", isMac ? "Cmd-" : "Ctrl-")
    .replace("d d", "D D")
    .replace(/^([a-z])$/, (letter) => letter.toUpperCase())
    .replace("Arrow", "");
}
