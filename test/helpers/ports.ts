/** Local TCP ports for tests. */
import { createServer, type AddressInfo } from "node:net";

/** A port on 127.0.0.1 that was free a moment ago (bound, read, released): nothing listens there. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
