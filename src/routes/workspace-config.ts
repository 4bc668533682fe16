// Route table: issue 3 — workspace configuration API (config, plugins, skills, MCP, commands, audit, export/import, events, engine reload).
import type { RouteDef } from "../http/route.ts";

export const routes: RouteDef[] = [];
