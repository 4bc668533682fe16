/** Reads a whole HTTP response body for the test clients. */
import type { IncomingMessage } from "node:http";

export interface ResponseBody {
  body: Buffer;
  text: string;
  /** The parsed body; undefined when it is empty or not JSON. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Collects `res` to its end; rejects on a response error. */
export function readResponse(res: IncomingMessage): Promise<ResponseBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("error", reject);
    res.on("end", () => {
      const body = Buffer.concat(chunks);
      const text = body.toString("utf8");
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ body, text, json });
    });
  });
}
