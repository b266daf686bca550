// The page without a notebook: the open rooms, the notebooks in the daemon's working
// directory (GET /files), and New notebook.
import { RuntimedClient } from "../client.js";
import { $, element } from "./dom.js";

/** An id that is an absolute .ipynb path is a file room: show it as a path. */
export function isPathId(id) {
  return typeof id === "string" && id.startsWith("/") && id.endsWith(".ipynb");
}

export async function showLanding({ wsUrl, token, pageHref }) {
  document.title = "runtimed";
  $("#title").textContent = "Open a notebook";
  const control = await RuntimedClient.connect({ url: wsUrl, token, name: "runtimed-page" });
  const [{ rooms }, listing] = await Promise.all([
    control.request("list_rooms").finally(() => control.close()),
    fetch("/files", { headers: { Authorization: `Bearer ${token}` } }).then((r) =>
      r.ok ? r.json() : null,
    ),
  ]);

  const roomList = element("ul", { class: "rooms", id: "rooms" });
  for (const room of rooms) {
    const id = room.notebook_id;
    const label = isPathId(id) ? element("code", {}, id) : id;
    const link = element("a", { href: pageHref(id), title: isPathId(id) ? "file" : "untitled" }, label);
    const kernel = room.kernel_name ? `${room.kernel_name} (${room.kernel_status})` : "no kernel";
    roomList.append(element("li", {}, link, ` — ${room.cells} cells, ${kernel}`));
  }

  const fileList = element("ul", { class: "files", id: "files" });
  for (const file of listing?.files ?? []) {
    const link = element("a", { href: pageHref(file.path), title: file.path }, element("code", {}, file.name));
    const when = new Date(file.mtime * 1000).toLocaleString();
    fileList.append(element("li", {}, link, ` — ${formatSize(file.size)}, ${when}`));
  }

  const input = element("input", {
    name: "notebook",
    id: "open-id",
    placeholder: "/path/to/notebook.ipynb or an id",
    required: "",
  });
  const form = element(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        location.href = pageHref(input.value, event.submitter?.value === "new");
      },
    },
    input,
    element("button", { type: "submit", value: "open" }, "Open"),
    element("button", { type: "submit", value: "new", id: "new" }, "New notebook"),
  );
  const root = listing ? element("code", {}, listing.root) : "the daemon's folder";
  $("#cells").append(
    element("h2", {}, "Open rooms"),
    rooms.length ? roomList : element("p", {}, "No open rooms."),
    element("h2", {}, "Notebooks in ", root),
    listing?.files.length ? fileList : element("p", {}, "No .ipynb files here."),
    listing?.truncated ? element("p", {}, "(only the first files are listed)") : "",
    element("h2", {}, "Open by path or id, or start a new notebook"),
    form,
    element(
      "p",
      { class: "hint" },
      "A notebook's id is its absolute .ipynb path; any other id is an untitled notebook " +
        "that lives in the daemon until it is saved to a path.",
    ),
  );
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
