import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { answerError, outcomeUnknown, type DeadLetter, type DeadLetterFilter } from '@mcp-gateway/broker';
import {
  AGENT_ID_MAX_LENGTH,
  describeIssues,
  ERROR_CODES,
  GatewayError,
  MAX_TIMEOUT_MS,
  SERVICE_NAME_PATTERN,
  type ErrorBody,
} from '@mcp-gateway/protocol';
import type { ApiDeps } from './deps';
import { createSubmitter } from './submission';

/** A filter of dead letters, from a query string or a body. */
export const FilterSchema = z
  .object({
    service: z.string().regex(SERVICE_NAME_PATTERN).optional(),
    code: z.enum(ERROR_CODES as [string, ...string[]]).optional(),
    agent: z.string().min(1).max(AGENT_ID_MAX_LENGTH).optional(),
    since: z
      .union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true })])
      .optional()
      .describe('Failed at or after: epoch ms or an ISO 8601 time'),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

export const ReplaySchema = z
  .object({ force: z.boolean().default(false).describe('Replay even when its backend may have carried it out (its outcome is unknown)') })
  .strict();
export const BulkReplaySchema = FilterSchema.extend({
  force: z.boolean().default(false).describe('Replay those whose outcome is unknown too'),
  again: z.boolean().default(false).describe('Replay those already replayed too'),
}).strict();

function parsed<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const details = describeIssues(result.error);
  throw new GatewayError('VALIDATION_ERROR', `Invalid ${what}: ${details[0]!.path}: ${details[0]!.message}`, { details });
}

function filterOf(f: z.output<typeof FilterSchema>): DeadLetterFilter {
  const since = f.since === undefined ? undefined : typeof f.since === 'number' ? f.since : Date.parse(f.since);
  return { service: f.service, code: f.code, agentId: f.agent, since };
}

/**
 * The dead letters' admin API (the admin token): list and read them, replay one or a filtered set
 * (each a new request with a new id that records `replayOf`), delete one or purge a filtered set.
 */
export function deadLetterHandlers(deps: ApiDeps) {
  const { deadLetters, registry, broker } = deps;
  const submit = createSubmitter(deps);
  const services = () => registry.names();

  async function find(id: string): Promise<DeadLetter> {
    const letter = await deadLetters.get(services(), id);
    if (!letter) throw new GatewayError('NOT_FOUND', `No dead letter for request ${id}`);
    return letter;
  }

  /** Sends a dead letter's request again as a new request of its agent; records the replay on it. */
  async function replay(letter: DeadLetter, force: boolean): Promise<{ id: string; state: string }> {
    if (outcomeUnknown(letter) && !force) {
      throw new GatewayError(
        'CONFLICT',
        `Request ${letter.id} may have been carried out by its backend (its outcome is unknown, and the operation is not idempotent): send force: true to replay it anyway`,
        { details: { outcome: 'unknown' } },
      );
    }
    const span = deps.tracing.startSpan('replay dead letter', { kind: 'internal', attributes: { 'mcp.service': letter.service } });
    try {
      const outcome = await submit({
        request: {
          service: letter.service,
          operation: letter.operation,
          parameters: letter.parameters,
          // Its agent's request again (held to that agent's quotas, counted in its usage), with its
          // deadline and priority.
          metadata: {
            ...(letter.agentId ? { agentId: letter.agentId } : {}),
            ...(letter.timeoutMs ? { timeout: Math.min(letter.timeoutMs, MAX_TIMEOUT_MS) } : {}),
            ...(letter.priority ? { priority: letter.priority } : {}),
          },
        },
        correlationId: randomUUID(),
        traceparent: span.traceparent,
        waitMs: 0,
        replayOf: letter.id,
      });
      const sent =
        outcome.kind === 'ended' ? { id: outcome.ended.id, state: outcome.ended.state } : { id: outcome.id, state: outcome.state };
      // The replay is sent: a bookkeeping write that fails must not make it look refused (and sent again).
      await deadLetters
        .update({ ...letter, replays: [...letter.replays, { id: sent.id, at: Date.now() }] })
        .catch((err: unknown) =>
          deps.logger.warn({ id: letter.id, replay: sent.id, err: String(err) }, 'the replay was not recorded on its dead letter'),
        );
      return sent;
    } finally {
      span.end();
    }
  }

  /** GET /mcp/dead-letters */
  async function list(req: Request, res: Response): Promise<void> {
    const f = parsed(FilterSchema, req.query, 'filter');
    res.status(200).json(await deadLetters.list(services(), filterOf(f), f.limit));
  }

  /** GET /mcp/dead-letters/:id — with where each of its replays is now. */
  async function read(req: Request, res: Response): Promise<void> {
    const letter = await find(String(req.params.id));
    const replays = await Promise.all(
      letter.replays.map(async (r) => {
        const now = await broker.status(r.id).catch(() => undefined);
        return { ...r, ...(now ? { state: now.state, ...(now.error ? { error: now.error.code } : {}) } : { state: 'expired' }) };
      }),
    );
    res.status(200).json({ ...letter, replays });
  }

  /** POST /mcp/dead-letters/:id/replay */
  async function replayOne(req: Request, res: Response): Promise<void> {
    const { force } = parsed(ReplaySchema, req.body, 'replay');
    const letter = await find(String(req.params.id));
    const sent = await replay(letter, force);
    res
      .status(202)
      .setHeader('Location', `/mcp/requests/${encodeURIComponent(sent.id)}`)
      .json({ id: letter.id, replay: sent });
  }

  /** POST /mcp/dead-letters/replay — every dead letter the filter keeps (at most its limit). */
  async function replayMany(req: Request, res: Response): Promise<void> {
    const f = parsed(BulkReplaySchema, req.body, 'replay');
    const { deadLetters: letters } = await deadLetters.list(services(), filterOf(f), f.limit);
    const replayed: { id: string; replay: { id: string; state: string } }[] = [];
    const refused: { id: string; error: ErrorBody }[] = [];
    // One at a time, oldest first: the order they failed in.
    for (const letter of letters.reverse()) {
      if (letter.replays.length > 0 && !f.again) {
        const last = letter.replays[letter.replays.length - 1]!.id;
        const error = new GatewayError(
          'CONFLICT',
          `Request ${letter.id} was replayed already (as ${last}): send again: true to replay it once more`,
        );
        refused.push({ id: letter.id, error: error.toBody() });
        continue;
      }
      try {
        replayed.push({ id: letter.id, replay: await replay(letter, f.force) });
      } catch (err) {
        refused.push({ id: letter.id, error: answerError(err).toBody() });
      }
    }
    res.status(200).json({ replayed, refused });
  }

  /** DELETE /mcp/dead-letters/:id */
  async function remove(req: Request, res: Response): Promise<void> {
    const letter = await find(String(req.params.id));
    await deadLetters.remove(letter);
    res.status(200).json({ id: letter.id, removed: true });
  }

  /** DELETE /mcp/dead-letters — those the filter keeps; with no filter, `all=true` is required. */
  async function purge(req: Request, res: Response): Promise<void> {
    const { all, ...query } = req.query;
    const f = parsed(FilterSchema.omit({ limit: true }), query, 'filter');
    if (Object.keys(f).length === 0 && all !== 'true')
      throw new GatewayError('VALIDATION_ERROR', 'Purging every dead letter needs all=true (or filter by service, code, agent or since)');
    let removed = 0;
    for (;;) {
      const { deadLetters: letters, truncated } = await deadLetters.list(services(), filterOf({ ...f, limit: 1000 }), 1000);
      for (const letter of letters) if (await deadLetters.remove(letter)) removed += 1;
      if (!truncated) break;
    }
    res.status(200).json({ removed });
  }

  return { list, read, replayOne, replayMany, remove, purge };
}

/**
 * State-changing calls take JSON only: a page of another site can post a form (which a browser
 * signed in to the console by HTTP Basic would send with its credentials), not JSON without CORS.
 */
export function jsonOnly(req: Request, _res: Response, next: NextFunction): void {
  if (req.is('application/json')) return next();
  next(new GatewayError('VALIDATION_ERROR', 'Send the body as JSON (Content-Type: application/json), {} for none'));
}
