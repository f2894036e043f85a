import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Listens on `port` (0: any) at 127.0.0.1 and closes again; the port listened on, or undefined if taken. */
function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) =>
      error.code === "EADDRINUSE" || error.code === "EACCES" ? resolve(undefined) : reject(error),
    );
    server.listen(port, "127.0.0.1", () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

/** The first port of the kernel's ephemeral range, where outgoing connections take their local ports. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 20_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const STRIPES = 8;
const handedOut = new Set<number>();
let low: number | undefined; // read once: the range does not change while a process runs

/**
 * A TCP port free on 127.0.0.1 right now, for a process started next. Below the ephemeral range:
 * a port the kernel hands out for port 0 comes from that range, where every outgoing connection
 * (Ponder's 30 to PostgreSQL, each RPC request) also takes its local port, so one could take it
 * before the process listened; and Ponder, finding its port taken, listens on the next one without
 * failing, where nobody looks for it. A port is free only until someone listens, so two callers
 * must not pick the same one meanwhile: this process never hands a port out twice, and each
 * vitest worker (else each process) picks in a stripe of the range of its own.
 */
export async function freePort(): Promise<number> {
  low ??= ephemeralLow();
  const width = Math.floor((low - 10_000) / STRIPES);
  const stripe = Number(process.env.VITEST_POOL_ID ?? process.pid) % STRIPES;
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = 10_000 + stripe * width + Math.floor(Math.random() * width);
    if (handedOut.has(candidate)) continue;
    const port = await tryListen(candidate);
    if (port !== undefined) {
      handedOut.add(port);
      return port;
    }
  }
  return (await tryListen(0)) as number;
}
