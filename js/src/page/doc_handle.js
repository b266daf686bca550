// The DocHandle @automerge/automerge-codemirror expects, over a RuntimedClient: made
// at page start, before the editor chunk (editor.js) has loaded.

/** The DocHandle the plugin expects, over a RuntimedClient. */
export function docHandle(client) {
  const wrapped = new Map();
  return {
    isReady: () => true,
    doc: () => client.doc,
    change: (callback) => {
      try {
        client.change(callback);
      } catch (error) {
        // The cell went away under the keystroke (another peer deleted it): the edit
        // has nowhere to go, and the page drops this editor at its next render.
        console.warn("runtimed: an edit to a cell that no longer exists", error);
      }
    },
    on: (_event, callback) => {
      wrapped.set(callback, client.on("doc", () => callback()));
    },
    off: (_event, callback) => {
      wrapped.get(callback)?.();
      wrapped.delete(callback);
    },
  };
}
