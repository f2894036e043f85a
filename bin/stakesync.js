#!/usr/bin/env node
// `npx stakesync <command>`: loads the TypeScript CLI through tsx (a dependency).
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
