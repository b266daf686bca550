// A runtimed client for JavaScript: the wire protocol (docs/protocol.md) over a
// WebSocket, with a local Automerge doc kept in sync.
//
//   const client = await RuntimedClient.connect({ url, token, notebookId });
//   await client.request("launch_kernel");
//   const cellId = client.change((d) => appendCell(d, { source: "1 + 1" }));
//   await client.waitSynced();
//   await client.request("execute_cell", { cell_id: cellId });
//
// Over a WebSocket every frame is one binary message: no preamble, no length prefix.
// The first message each way is the JSON handshake; every later one starts with a
// type byte. Works in browsers (the global WebSocket) and in node (pass `ws`).
import * as A from "@automerge/automerge";

export const PROTOCOL_VERSION = 2;
/** The frame cap (docs/protocol.md): a WebSocket message over it is refused. */
export const MAX_FRAME_SIZE = 16 * 1024 * 1024;
export const FrameType = Object.freeze({
  SYNC: 0,
  REQUEST: 1,
  RESPONSE: 2,
  BROADCAST: 3,
  PRESENCE: 4,
  SNAPSHOT: 5,
  SWITCH: 6,
});

// Base64 bytes of changes per SWITCH frame: the 16 MiB frame cap, less room for the JSON.
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A refusal or failure from the daemon; `code` is the spec's snake_case code. */
export class RuntimedError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
    this.detail = message;
  }
}

export class RuntimedClient {
  /**
   * Open a WebSocket, greet the daemon and join a notebook room (or the control
   * channel when `notebookId` is null). Resolves once the handshake succeeded and, in a
   * room, the SNAPSHOT and the daemon's first SYNC are in: `doc` is the room's doc.
   */
  static async connect({
    url,
    token,
    notebookId = null,
    path = null,
    create = false,
    name = "runtimed-js",
    WebSocket: Socket = globalThis.WebSocket,
    timeout = 15000,
  }) {
    const client = new RuntimedClient({ notebookId, timeout });
    const address = new URL(url);
    if (token) address.searchParams.set("token", token);
    await client._open(new Socket(address.href), { path, name, create });
    return client;
  }

  constructor({ notebookId, timeout }) {
    this.notebookId = notebookId;
    this.timeout = timeout;
    this.doc = A.init();
    this.syncState = A.initSyncState();
    this.epoch = null; // the room's epoch this client is in (compaction)
    this._compaction = null; // a compaction notice whose SNAPSHOT comes next
    this.switching = null; // the epoch we sent SWITCH for, until the daemon says `switched`
    this.maxFrameSize = MAX_FRAME_SIZE;
    this.kernelStatus = null;
    this.saveState = null; // the last save_state broadcast (rooms with a file)
    this.trust = null; // the last `trust` broadcast
    this.commSync = null; // the last comm_sync broadcast's comms (the legacy widget view)
    this.handshake = null;
    this.closed = false;
    this._ws = null;
    this._nextId = 1;
    this._pending = new Map();
    this._listeners = new Map();
    this._waiters = new Set();
  }

  // --- events -------------------------------------------------------------------

  /** Subscribe: "doc" (the doc changed), "sync" (a sync round left it as it was),
   * "broadcast" ({event, ...}), "presence", "error" (a RuntimedError of this client's
   * own, e.g. late edits too large for a SWITCH), "close". */
  on(event, callback) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(callback);
    return () => this._listeners.get(event).delete(callback);
  }

  _emit(event, value) {
    for (const callback of this._listeners.get(event) ?? []) {
      try {
        callback(value);
      } catch (error) {
        console.error(`runtimed: a "${event}" listener failed`, error);
      }
    }
    for (const waiter of [...this._waiters]) waiter();
  }

  /** Resolve once `predicate(client)` holds, re-checked after every event. */
  waitFor(predicate, { timeout = this.timeout, what = "condition" } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        let value;
        try {
          value = predicate(this);
        } catch (error) {
          finish();
          reject(error);
          return;
        }
        if (value) {
          finish();
          resolve(value);
        } else if (this.closed) {
          finish();
          reject(new RuntimedError("closed", `connection closed while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new RuntimedError("timeout", `timed out after ${timeout} ms waiting for ${what}`));
      }, timeout);
      const finish = () => {
        clearTimeout(timer);
        this._waiters.delete(check);
      };
      this._waiters.add(check);
      check();
    });
  }

  /** Resolve once the daemon and we have the same heads: each holds the other's changes.
   * Not during a compaction's switch: our late changes are in the daemon's doc only once
   * it has answered our SWITCH. */
  waitSynced(options = {}) {
    return this.waitFor(
      (c) =>
        c._compaction === null &&
        c.switching === null &&
        sameHeads(c.syncState.sharedHeads, A.getHeads(c.doc)),
      { what: "sync", ...options },
    );
  }

  // --- requests and edits ---------------------------------------------------------

  /** Send a request; resolves with its result, rejects with a RuntimedError. */
  request(action, params = {}) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new RuntimedError("closed", "the connection is closed"));
        return;
      }
      this._pending.set(id, { resolve, reject });
      this._sendJson(FrameType.REQUEST, { ...params, id, action });
    });
  }

  /** Edit the local doc (`fn` gets the mutable doc) and push the change; returns fn's value. */
  change(fn) {
    let result;
    this.doc = A.change(this.doc, (d) => {
      result = fn(d);
    });
    this._pushSync();
    this._emit("doc", this.doc);
    return result;
  }

  /** Tell the room's other peers something transient (a cursor): a PRESENCE frame. */
  sendPresence(value) {
    this._sendJson(FrameType.PRESENCE, value);
  }

  close() {
    this._ws?.close();
  }

  // --- the connection ---------------------------------------------------------------

  _open(ws, { path, name, create }) {
    this._ws = ws;
    ws.binaryType = "arraybuffer";
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => fail(new RuntimedError("timeout", "no handshake reply from the daemon")),
        this.timeout,
      );
      const fail = (error) => {
        clearTimeout(timer);
        reject(error);
        ws.close();
      };
      ws.onopen = () => {
        const hello =
          this.notebookId === null
            ? { channel: "control", protocol: PROTOCOL_VERSION, client: { name } }
            : {
                channel: "notebook",
                notebook_id: this.notebookId,
                snapshot: true,
                protocol: PROTOCOL_VERSION,
                client: { name },
                ...(path ? { path } : {}),
                ...(create ? { create: true } : {}),
              };
        ws.send(encoder.encode(JSON.stringify(hello)));
      };
      ws.onerror = (event) => {
        if (this.handshake === null) {
          const reason = event?.message ?? "is the daemon running with --ws, and the token right?";
          fail(new RuntimedError("no_daemon", `cannot open the WebSocket: ${reason}`));
        }
      };
      ws.onclose = () => {
        this.closed = true;
        for (const { reject: rejectRequest } of this._pending.values()) {
          rejectRequest(new RuntimedError("closed", "the connection closed"));
        }
        this._pending.clear();
        if (this.handshake === null) {
          fail(new RuntimedError("closed", "the daemon closed the connection during the handshake"));
        }
        this._emit("close", null);
      };
      ws.onmessage = (event) => {
        const frame = new Uint8Array(event.data);
        if (this.handshake === null) {
          const reply = JSON.parse(decoder.decode(frame));
          if (!reply.ok) {
            fail(new RuntimedError(reply.error.code, reply.error.message));
            return;
          }
          this.handshake = reply;
          this.epoch = reply.epoch ?? null;
          if (this.notebookId === null) joined();
          return;
        }
        this._receive(frame);
        if (frame[0] === FrameType.SYNC) joined();
      };
      const joined = () => {
        clearTimeout(timer);
        resolve(this);
      };
    });
  }

  _receive(frame) {
    const type = frame[0];
    const body = frame.subarray(1);
    switch (type) {
      case FrameType.SNAPSHOT: {
        if (this._compaction) {
          this._switchEpoch(A.load(body));
          return;
        }
        // On join, before the first SYNC: start from the daemon's saved doc. Later (this
        // peer fell too far behind for one sync message): merge it, keeping our unsent
        // changes, and start sync over.
        const snapshot = A.load(body);
        this.doc = A.getHeads(this.doc).length ? A.merge(this.doc, snapshot) : snapshot;
        this.syncState = A.initSyncState();
        this._emit("doc", this.doc);
        return;
      }
      case FrameType.SYNC: {
        const before = A.getHeads(this.doc);
        [this.doc, this.syncState] = A.receiveSyncMessage(this.doc, this.syncState, body);
        this._pushSync();
        if (!sameHeads(before, A.getHeads(this.doc))) this._emit("doc", this.doc);
        else this._emit("sync", null);
        return;
      }
      case FrameType.RESPONSE:
        this._settle(JSON.parse(decoder.decode(body)));
        return;
      case FrameType.BROADCAST:
        this._broadcast(JSON.parse(decoder.decode(body)));
        return;
      case FrameType.PRESENCE:
        this._emit("presence", JSON.parse(decoder.decode(body)));
        return;
      default:
        console.warn(`runtimed: ignoring a frame of unknown type ${type}`);
    }
  }

  _settle(response) {
    const pending = this._pending.get(response.id);
    if (!pending) return;
    this._pending.delete(response.id);
    if (response.ok) pending.resolve(response.result);
    else pending.reject(new RuntimedError(response.error.code, response.error.message));
  }

  /**
   * Move to the compacted doc (docs/protocol.md, Compaction), in one step: our late
   * changes go out in SWITCH before any frame of the new epoch, then the new doc
   * replaces ours (never merged: it shares no history). The daemon carries the late
   * changes and syncs them back; its `switched` broadcast ends the switch.
   */
  _switchEpoch(snapshot) {
    const notice = this._compaction;
    this._compaction = null;
    const known = notice.heads.filter((head) => A.hasHeads(this.doc, [head]));
    let frames;
    try {
      frames = switchFrames(notice.epoch, A.getChangesSince(this.doc, known), this.maxFrameSize);
    } catch (error) {
      // Our edits cannot reach the new epoch: say so and leave, never switch without them.
      this._emit("error", error);
      this.close();
      return;
    }
    for (const body of frames) this._send(FrameType.SWITCH, body);
    this.doc = snapshot;
    this.syncState = A.initSyncState();
    this.epoch = notice.epoch;
    this.switching = notice.epoch;
    this._emit("doc", this.doc);
  }

  _broadcast(message) {
    if (message.event === "compaction") this._compaction = message;
    if (message.event === "switched" && message.epoch === this.switching) this.switching = null;
    if (message.event === "kernel_status") this.kernelStatus = message.status;
    if (message.event === "save_state") this.saveState = message;
    if (message.event === "comm_sync") this.commSync = message.comms;
    if (message.event === "trust") this.trust = message;
    this._emit("broadcast", message);
  }

  /** Send our next sync message, if we have anything to say. */
  _pushSync() {
    const [syncState, message] = A.generateSyncMessage(this.doc, this.syncState);
    this.syncState = syncState;
    if (message !== null) this._send(FrameType.SYNC, message);
  }

  _sendJson(type, value) {
    this._send(type, encoder.encode(JSON.stringify(value)));
  }

  _send(type, payload) {
    if (this.closed) return;
    const frame = new Uint8Array(payload.length + 1);
    frame[0] = type;
    frame.set(payload, 1);
    this._ws.send(frame);
  }
}

function sameHeads(a, b) {
  if (a.length !== b.length) return false;
  const sorted = [...b].sort();
  return [...a].sort().every((head, i) => head === sorted[i]);
}

/**
 * The SWITCH frames' JSON bodies for `changes` (raw Automerge changes): whole changes
 * each, every frame under `maxFrameSize`, `"more": true` on all but the last. A change
 * too large for any frame cannot be sent: that is an error, never a silent drop.
 */
export function switchFrames(epoch, changes, maxFrameSize = MAX_FRAME_SIZE) {
  const frame = (encoded, more) =>
    encoder.encode(JSON.stringify({ epoch, changes: encoded, ...(more ? { more } : {}) }));
  const room = maxFrameSize - frame([], true).length - 1; // the type byte
  const batches = [[]];
  let size = 0;
  for (const change of changes) {
    const encoded = toBase64(change);
    const cost = encoded.length + 3; // quotes and a comma
    if (cost > room) {
      throw new RuntimedError(
        "frame_too_large",
        `a late change of ${change.length} bytes does not fit in a SWITCH frame`,
      );
    }
    if (size + cost > room) {
      batches.push([]);
      size = 0;
    }
    batches.at(-1).push(encoded);
    size += cost;
  }
  return batches.map((batch, i) => frame(batch, i < batches.length - 1));
}

/** Base64 of bytes (send_comm buffers, SWITCH changes), in browsers and node alike. */
export function toBase64(bytes) {
  const chunks = [];
  for (let i = 0; i < bytes.length; i += 0x8000) {
    chunks.push(String.fromCharCode(...bytes.subarray(i, i + 0x8000)));
  }
  return btoa(chunks.join(""));
}

/** Bytes of a base64 string (comm broadcast buffers). */
export function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
