#!/usr/bin/env node
// The published entry point: runs the compiled CLI (dist/ is built by `npm run build` / prepack).
import "../dist/cli.js";
