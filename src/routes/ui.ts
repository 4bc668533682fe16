// Route table: issue 5 — the built-in UI.
import type { RouteDef } from "../http/route.ts";

export const routes: RouteDef[] = [];
