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

/**
 * A TCP port free on 127.0.0.1 right now, for a process started next: picked at random below the
 * ephemeral range. A port the kernel hands out for port 0 comes from that range, where every
 * outgoing connection (Ponder's 30 to PostgreSQL, each RPC request) also takes its local port, so
 * one could take it before the process listened; and Ponder, finding its port taken, listens on
 * the next one without failing, where nobody looks for it.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await tryListen(10_000 + Math.floor(Math.random() * (low - 10_000)));
    if (port !== undefined) return port;
  }
  return (await tryListen(0)) as number;
}
