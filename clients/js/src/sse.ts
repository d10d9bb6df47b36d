/**
 * Server-Sent Events from a byte stream. Events, lines and UTF-8 characters may be
 * split anywhere between chunks: bytes are decoded in streaming mode and lines are
 * only read once their blank-line terminator has arrived.
 */
export class SSEParser {
  private decoder = new TextDecoder("utf-8");
  private buffer = "";

  feed(chunk: Uint8Array): unknown[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    const events: unknown[] = [];
    let end: number;
    while ((end = this.buffer.indexOf("\n\n")) !== -1) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""));
      if (data.length) events.push(JSON.parse(data.join("\n")));
    }
    return events;
  }
}
