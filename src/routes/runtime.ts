// Route table: runtime versions and upgrade through the orchestrator's control endpoint.
import { ApiError } from "../errors.ts";
import { json, type RouteDef } from "../http/route.ts";
import { plan } from "../types.ts";
import { callControl, runtimeVersions, upgradeBody } from "../runtime.ts";

export const routes: RouteDef[] = [
  { method: "GET", path: "/runtime/versions", auth: "client", handler: async (rc) => json(await runtimeVersions(rc.server.config, rc.actor?.scope === "viewer")) },
  {
    // The host's own action: read-only-gated (the reference does not gate it) and audited in the
    // mounted — else the active — workspace's log. The orchestrator restarts us after its 202.
    method: "POST",
    path: "/runtime/upgrade",
    auth: "host",
    gate: "audit",
    handler: async (rc) => {
      const body = upgradeBody(await rc.readJson());
      if (!rc.server.config.control) throw new ApiError("runtime_upgrade_unavailable", "Worker runtime control is not configured on this host");
      const ws = rc.mount ?? rc.server.workspaces.active();
      return plan({
        workspaceId: ws?.id ?? null,
        action: "runtime.upgrade",
        summary: `Upgrade the worker runtime${Array.isArray(body.services) ? `: ${body.services.join(", ")}` : ""}`,
        paths: [],
        change: body,
        target: "runtime",
        apply: async () => ({ status: 202, body: await callControl(rc.server.config, "POST", "/runtime/upgrade", body) }),
      });
    },
  },
];
