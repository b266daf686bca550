// A cell's editor: CodeMirror 6 bound to the cell's Automerge Text. Its own chunk of
// the bundle (cell_view.js imports it when the first editor is made): a page paints its
// cells as plain text without it.
//
// @automerge/automerge-codemirror turns each CodeMirror transaction into A.splice calls
// on the cell's `source` and each doc change from elsewhere into the matching
// CodeMirror changes (from A.diff of the heads it last reconciled), so two pages typing
// in one cell merge character by character and the editor is never reset from a
// string (no flicker, no lost keystrokes, the cursor stays where it was).
// Remote cursors travel as PRESENCE frames: {cursor: {cell_id, anchor, head}, peer, name}.
import { automergeSyncPlugin } from "@automerge/automerge-codemirror";
import { markdown } from "@codemirror/lang-markdown";
import { python } from "@codemirror/lang-python";
import { indentUnit } from "@codemirror/language";
import { EditorState, Prec, StateEffect, StateField, Transaction } from "@codemirror/state";
import { Decoration, EditorView, keymap, WidgetType } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { minimalSetup } from "codemirror";

/** Undo (Ctrl+Z) takes back this page's own typing only: changes that came from the
 * doc (another page, the daemon) carry no user event and stay out of the history. */
const othersOutOfHistory = EditorState.transactionExtender.of((transaction) =>
  transaction.docChanged && !transaction.annotation(Transaction.userEvent)
    ? { annotations: Transaction.addToHistory.of(false) }
    : null,
);

const setRemoteCursors = StateEffect.define();

class CursorMark extends WidgetType {
  constructor(name, color) {
    super();
    this.name = name;
    this.color = color;
  }

  eq(other) {
    return other.name === this.name && other.color === this.color;
  }

  toDOM() {
    const mark = document.createElement("span");
    mark.className = "remote-cursor";
    mark.style.borderLeftColor = this.color;
    mark.title = this.name;
    mark.dataset.peer = this.name;
    return mark;
  }
}

/** Other peers' cursors in this editor, replaced as a whole by setRemoteCursors. */
const remoteCursors = StateField.define({
  create: () => Decoration.none,
  update(cursors, transaction) {
    let next = cursors.map(transaction.changes);
    for (const effect of transaction.effects) {
      if (!effect.is(setRemoteCursors)) continue;
      const length = transaction.state.doc.length;
      next = Decoration.set(
        effect.value.map(({ head, name, color }) =>
          Decoration.widget({ widget: new CursorMark(name, color), side: 1 }).range(
            Math.min(Math.max(head, 0), length),
          ),
        ),
        true,
      );
    }
    return next;
  },
  provide: (field) => EditorView.decorations.from(field),
});

/**
 * A CodeMirror editor for one cell. `keys` are the page's Jupyter bindings (they win
 * over CodeMirror's own); `onFocus`, `onBlur` and `onCursor` tell the page where the
 * user is.
 */
export function createEditor({ handle, cellId, cellType, parent, keys, onFocus, onBlur, onCursor }) {
  const language = cellType === "markdown" ? markdown() : cellType === "code" ? python() : [];
  return new EditorView({
    doc: String(handle.doc().cells[cellId].source ?? ""),
    parent,
    extensions: [
      Prec.highest(keymap.of(keys)),
      minimalSetup,
      keymap.of([indentWithTab]),
      indentUnit.of("    "),
      language,
      cellType === "code" ? [] : EditorView.lineWrapping,
      remoteCursors,
      othersOutOfHistory,
      automergeSyncPlugin({ handle, path: ["cells", cellId, "source"] }),
      EditorView.updateListener.of((update) => {
        if (update.focusChanged) (update.view.hasFocus ? onFocus : onBlur)();
        if (update.selectionSet && update.view.hasFocus) {
          const { anchor, head } = update.state.selection.main;
          onCursor({ anchor, head });
        }
      }),
    ],
  });
}

/** Show these peers' cursors ([{head, name, color}]) in an editor. */
export function showRemoteCursors(view, cursors) {
  view.dispatch({ effects: setRemoteCursors.of(cursors) });
}
