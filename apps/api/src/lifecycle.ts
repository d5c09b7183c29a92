import type { NextFunction, Request, Response } from 'express';
import { GatewayError } from '@mcp-gateway/protocol';
import { sendError } from './http-errors';

/**
 * The API process's shutdown as the app sees it: once stopping, readiness fails and new requests are
 * refused (503, Connection: close); requests in flight are counted so stop() can wait for them; when
 * the grace period ends, every caller still waiting is released and answered 202 with its poll link.
 */
export class Lifecycle {
  stopping = false;
  /** True once the grace period is over and waiting callers were released. */
  released = false;
  private inflight = 0;
  private drained: (() => void)[] = [];

  /**
   * @param releaseAll ends every caller's wait at once (the ResultWaiter's cancelAll): what the
   * release at the end of the grace period does, so a wait costs nothing here for its length.
   */
  constructor(private readonly releaseAll: () => void) {}

  /** A caller's wait for its result (sync POST, long poll); once the callers were released, it ends at once. */
  wait<T>(waiter: { wait(ms: number): Promise<T>; cancel(): void }, ms: number): Promise<T> {
    if (this.released) waiter.cancel();
    return waiter.wait(ms);
  }

  get inFlight(): number {
    return this.inflight;
  }

  /** Counts requests; refuses new ones while stopping (health and readiness still answer). */
  middleware() {
    // A response emits 'close' once, when it was sent or its connection went first. One listener for
    // all of them, not a closure held by every waiting caller.
    const ended = () => {
      this.inflight -= 1;
      if (this.inflight === 0) for (const d of this.drained.splice(0)) d();
    };
    return (req: Request, res: Response, next: NextFunction): void => {
      if (this.stopping && !req.path.startsWith('/mcp/health')) {
        res.setHeader('Connection', 'close');
        return sendError(
          res,
          new GatewayError('UNAVAILABLE', 'This gateway process is shutting down; retry (another replica will answer)', {
            retryAfterMs: 1000,
          }),
        );
      }
      this.inflight += 1;
      res.on('close', ended);
      next();
    };
  }

  /** Resolves when nothing is in flight, or after `ms` (then with false). */
  idle(ms: number): Promise<boolean> {
    if (this.inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      timer.unref();
      this.drained.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** The grace period is over: callers still waiting get their 202. */
  releaseWaiters(): void {
    this.released = true;
    this.releaseAll();
  }
}
