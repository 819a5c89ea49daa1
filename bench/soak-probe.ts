import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Loaded into the hub by the soak benchmark (`node --import`): answers questions about V8's heap and
 * the hub's event loop on the IPC channel the bench opened, and does nothing else. Neither can be
 * read from /proc.
 */
interface ProbeQuestion {
  type?: string;
  id?: number;
  gc?: boolean;
}

const send = process.send?.bind(process);
if (send) {
  // how late the hub's own timers ran since the last question: a blocked event loop delays every reply
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  process.on('message', (m: ProbeQuestion) => {
    if (m?.type !== 'heap') return;
    // `--expose-gc` gives a full collection on request: heap after GC shows what is really retained
    const gc = (globalThis as { gc?: () => void }).gc;
    if (m.gc && gc) gc();
    const u = process.memoryUsage();
    send({
      type: 'heap',
      id: m.id,
      gc: Boolean(m.gc && gc),
      heapUsed: u.heapUsed,
      heapTotal: u.heapTotal,
      external: u.external,
      arrayBuffers: u.arrayBuffers,
      loopP99Ms: loop.percentile(99) / 1e6,
      loopMaxMs: loop.max / 1e6,
    });
    // the forced GC itself blocks the loop: its late tick is let through before the next interval starts
    if (m.gc && gc) setTimeout(() => loop.reset(), 30);
    else loop.reset();
  });
  // the channel must not keep the hub alive after SIGTERM
  process.channel?.unref();
}
