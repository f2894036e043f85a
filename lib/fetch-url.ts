/**
 * fetch() for a URL that may carry `user:password@` (a provider's, a receiver's or a proxy's
 * basic auth). fetch refuses such a URL outright ("Request cannot be constructed from a URL that
 * includes credentials"), and its error text carries the password; viem's http(), which Ponder
 * uses for the same RPC_URL, sends them as a Basic authorization header instead. So does this.
 */
export function fetchUrl(url: string, init: RequestInit = {}): Promise<Response> {
  const target = new URL(url);
  if (target.username === "" && target.password === "") return fetch(target, init);
  const credentials = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
  target.username = "";
  target.password = "";
  const headers = new Headers(init.headers);
  headers.set("authorization", `Basic ${Buffer.from(credentials).toString("base64")}`);
  return fetch(target, { ...init, headers });
}

/** A URL as a log line, a page or an alert may show it: without its user:password. */
export function shownUrl(url: string): string {
  const shown = new URL(url);
  shown.username = "";
  shown.password = "";
  return shown.toString().replace(/\/$/, "");
}
