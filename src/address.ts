// Host names and addresses as they go into URLs: one place for the brackets IPv6 needs and for wildcards.

/**
 * The host part of a URL that reaches `host`: a wildcard listen address (0.0.0.0, ::) is reached on
 * loopback, and an IPv6 address gets brackets.
 */
export function connectHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "[::1]";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** http://host:port for a listen address (wildcards reached on loopback). */
export function urlOf(host: string, port: number): string {
  return `http://${connectHost(host)}:${port}`;
}

/**
 * Text with the user info of every URL in it hidden (http://user:secret@host → http://user:[redacted]@host;
 * a lone token before @ is hidden whole), for anything shown: logs, /health, messages, error bodies.
 */
export function redactUrl(text: string): string {
  return text.replace(/\/\/([^/@\s:]*):[^/@\s]*@/g, "//$1:[redacted]@").replace(/\/\/([^/@\s:[\]]+)@/g, "//[redacted]@");
}

/** A list of URLs (e.g. the backends) as shown anywhere: each redacted (redactUrl), comma-separated. */
export function shownUrls(urls: readonly string[]): string {
  return urls.map(redactUrl).join(", ");
}
