// Route table: pending approvals for the host (list, live SSE feed, reply).
import { ApiError } from "../errors.ts";
import { HANDLED, json, type RouteDef } from "../http/route.ts";
import { openSse } from "../http/sse.ts";

export const routes: RouteDef[] = [
  {
    method: "GET",
    path: "/approvals",
    auth: "host",
    handler: async (rc) => json({ items: rc.server.approvals.list() }),
  },
  {
    method: "GET",
    path: "/approvals/events",
    auth: "host",
    handler: async (rc): Promise<typeof HANDLED> => {
      const stream = openSse(rc);
      // A fresh subscriber first learns what is already waiting, then every change.
      for (const item of rc.server.approvals.list()) stream.send({ event: "approval.requested", data: item });
      const unsubscribe = rc.server.approvals.subscribe((event) => {
        if (event.type === "approval.requested") stream.send({ event: event.type, data: event.item });
        else stream.send({ event: event.type, data: { id: event.id, result: event.result } });
      });
      stream.onClose(unsubscribe);
      return HANDLED;
    },
  },
  {
    // Not `write: true`: answering an approval writes nothing by itself (allow-listed in the
    // structural test); the write it releases runs through the gate and the audit log.
    method: "POST",
    path: "/approvals/:id",
    auth: "host",
    handler: async (rc) => {
      const body = await rc.readJson();
      // Anything other than exactly "allow" denies.
      const allow = body.reply === "allow";
      if (!rc.server.approvals.reply(rc.params.id!, allow)) {
        throw new ApiError("approval_not_found", "Approval not found or already resolved");
      }
      return json({ ok: true, allowed: allow });
    },
  },
];
