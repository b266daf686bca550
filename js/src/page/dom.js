// Small DOM helpers the page's modules share.

export const $ = (selector) => document.querySelector(selector);

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** A message at the bottom of the page for ten seconds. */
export function report(message) {
  const line = element("div", { class: "message" }, message);
  $("#messages").append(line);
  setTimeout(() => line.remove(), 10000);
}
