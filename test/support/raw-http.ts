// Raw HTTP/1.1 over a socket, for requests fetch() would normalise (header case, duplicates, pacing).

/** Writes raw bytes (optionally one at a time, yielding between them) and reads until the server closes or answers a full head + small body. */
export async function rawExchange(port: number, raw: string, options: { byteByByte?: boolean } = {}): Promise<string> {
  let text = "";
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  const dec = new TextDecoder();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(s, d) {
        text += dec.decode(d, { stream: true });
        // A complete small answer: stop reading without waiting for the server to close.
        const head = text.indexOf("\r\n\r\n");
        if (head >= 0) {
          const len = /content-length: (\d+)/i.exec(text.slice(0, head));
          if ((len && text.length >= head + 4 + Number(len[1])) || text.endsWith("\r\n0\r\n\r\n")) {
            s.end();
            resolve(text);
          }
        }
      },
      close: () => resolve(text),
      error: (_s, e) => reject(e),
    },
  });
  const bytes = new TextEncoder().encode(raw);
  if (options.byteByByte) {
    for (let i = 0; i < bytes.length; i++) {
      socket.write(bytes.subarray(i, i + 1));
      socket.flush();
      await new Promise((r) => setImmediate(r));
    }
  } else {
    socket.write(bytes);
  }
  return promise;
}
