import { startDemoBackend } from './demo-backend';

/** The demo backend alone (docker compose `demo-backend`). */
startDemoBackend(Number(process.env.PORT ?? 8090), process.env.HOST ?? '0.0.0.0')
  .then(({ url }) => process.stdout.write(`${JSON.stringify({ level: 30, msg: 'demo backend ready', url })}\n`))
  .catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
