/** A small SSE client for tests: collects parsed events from a streaming GET. */
import { request } from "node:http";
import type { IncomingMessage } from "node:http";

export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

export interface SseClient {
  status: number;
  headers: IncomingMessage["headers"];
  events: SseMessage[];
  comments: number;
  closed: boolean;
  close(): void;
}

/** Opens the stream; `onEvent` (optional) sees each event as soon as it is parsed. */
export function openSseClient(url: string, headers: Record<string, string>, onEvent?: (msg: SseMessage) => void): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: "text/event-stream", ...headers }, agent: false }, (res) => {
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events: [],
        comments: 0,
        closed: false,
        close: () => req.destroy(),
      };
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let idx: number;
        while ((idx = buffer.indexOf("\n\n")) !== -1) {
          const block = buffer.slice(0, idx);
          buffer = buffer.slice(idx + 2);
          const msg: SseMessage = { data: "" };
          const data: string[] = [];
          let isComment = true;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            isComment = false;
            const colon = line.indexOf(":");
            const field = colon === -1 ? line : line.slice(0, colon);
            const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "data") data.push(value);
            else if (field === "id") msg.id = value;
            else if (field === "event") msg.event = value;
          }
          if (isComment) client.comments++;
          else {
            msg.data = data.join("\n");
            client.events.push(msg);
            onEvent?.(msg);
          }
        }
      });
      const done = () => {
        client.closed = true;
      };
      res.on("end", done);
      res.on("close", done);
      res.on("error", done);
      resolve(client);
    });
    req.on("error", reject);
    req.end();
  });
}
