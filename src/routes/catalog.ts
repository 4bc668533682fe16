// Route table: issue 4 — catalog snapshot and catalog events.
import type { RouteDef } from "../http/route.ts";

export const routes: RouteDef[] = [];
