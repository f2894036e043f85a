#!/usr/bin/env node
// `npx stakesync <command>`: loads the TypeScript CLI through tsx (a dependency), after the
// Node.js check (tsx's loader needs a Node.js that can register module hooks).
await import("../lib/require-node.mjs");
const { register } = await import("tsx/esm/api");
register();
await import("../cli/main.ts");
