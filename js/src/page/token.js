// The token leaves the address bar at once: the page keeps it in memory (and in this
// tab's sessionStorage, so a reload still works) and replaces the URL in the history
// with the same one minus `token`. It then never shows in a screenshot, a bookmark,
// a shared link or a Referer. A cookie was not used: cookies are shared by every port
// of a host, so any other server on 127.0.0.1 the browser visits would receive it.
const KEY = "runtimed-token";

export function takeToken() {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given === null) return sessionStorage.getItem(KEY) ?? "";
  sessionStorage.setItem(KEY, given);
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  return given;
}
