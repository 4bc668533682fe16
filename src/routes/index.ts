/** Every route table of the server, in one list. The structural test walks this. */
import type { RouteDef } from "../http/route.ts";
import { routes as statusRoutes } from "./status.ts";
import { routes as workspaceRoutes } from "./workspaces.ts";
import { routes as tokenRoutes } from "./tokens.ts";
import { routes as approvalRoutes } from "./approvals.ts";
import { routes as configRoutes } from "./config.ts";
import { routes as skillRoutes } from "./skills.ts";
import { routes as fileRoutes } from "./files.ts";
import { routes as catalogRoutes } from "./catalog.ts";
import { routes as proxyRoutes } from "./proxy.ts";
import { routes as uiRoutes } from "./ui.ts";
import { routes as hubRoutes } from "./hub.ts";
import { routes as schedulerRoutes } from "./scheduler.ts";
import { routes as bridgeRoutes } from "./router-bridge.ts";
import { routes as runtimeRoutes } from "./runtime.ts";
import { routes as agentlabRoutes } from "./agentlab.ts";

export function allRoutes(): RouteDef[] {
  return [
    ...statusRoutes,
    ...workspaceRoutes,
    ...tokenRoutes,
    ...approvalRoutes,
    ...configRoutes,
    ...skillRoutes,
    ...fileRoutes,
    ...catalogRoutes,
    ...hubRoutes,
    ...schedulerRoutes,
    ...bridgeRoutes,
    ...runtimeRoutes,
    ...agentlabRoutes,
    ...proxyRoutes,
    ...uiRoutes,
  ];
}
