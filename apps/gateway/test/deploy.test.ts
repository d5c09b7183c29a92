import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { GATEWAY_ENV, GatewayConfigManager, SERVICE_ENV, serviceEnvName } from '@mcp-gateway/config';
import { GatewayMetrics } from '@mcp-gateway/metrics';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from '../../api/test/harness';

/**
 * Deployment files checked offline (no Docker engine here): the compose file with Debian's
 * docker-compose when installed (CI installs it) and structurally always; Kubernetes manifests
 * through `kubectl kustomize` when kubectl is there, else from the files the kustomization lists.
 * Commands, ports, probe paths and environment names must match the real ones.
 */
const root = path.resolve(__dirname, '../../..');
const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

/** Every variable the gateway reads, for the services named in MCP_SERVICES. */
function knownEnv(services: string[]): Set<string> {
  const names = new Set(GATEWAY_ENV.map((k) => k.name));
  for (const n of ['MCP_ENVIRONMENT', 'MCP_SERVICES', 'MCP_GATEWAY_CONFIG', 'MCP_HEALTH_URL']) names.add(n);
  for (const s of services) for (const k of SERVICE_ENV) names.add(`MCP_SERVICE_${serviceEnvName(s)}_${k.name}`);
  return names;
}

/** `node apps/x/dist/y.js` must be a built entry point whose source exists. */
function assertEntry(command: string[]): void {
  expect(command[0]).toBe('node');
  const src = command[1]!.replace('/dist/', '/src/').replace(/\.js$/, '.ts');
  expect([command[1], existsSync(path.join(root, src))]).toEqual([command[1], true]);
}

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const stages = text.split(/^FROM /m).slice(1);

  it('is multi-stage on node 20, installs only production deps in the final stage, runs as non-root with a health check', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s).toMatch(/^node:20-/);
    const final = stages.at(-1)!;
    expect(final).toMatch(/npm ci --omit=dev/);
    expect(final).toMatch(/^USER (?!root)\w+/m);
    expect(final).toMatch(/^HEALTHCHECK .*deploy\/healthcheck\.js/m);
    expect(final).toMatch(/^EXPOSE 8080/m);
    assertEntry(JSON.parse(final.match(/^CMD (.*)$/m)![1]!) as string[]);
    expect(existsSync(path.join(root, 'deploy/healthcheck.js'))).toBe(true);
    const ignore = read('.dockerignore');
    for (const entry of ['**/node_modules', '**/dist', '.git', '.env']) expect(ignore).toContain(entry);
  });
});

describe('docker-compose.yml', () => {
  const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as {
    services: Record<
      string,
      {
        command?: string[];
        environment?: Record<string, string>;
        ports?: string[];
        depends_on?: Record<string, { condition: string }>;
        healthcheck?: unknown;
        profiles?: string[];
        container_name?: string;
        image?: string;
        volumes?: string[];
      }
    >;
  };
  const s = compose.services;

  it('is valid for docker-compose (Debian) when installed', () => {
    if (!has('docker-compose')) {
      // Without the binary (a developer machine) the structural checks below still run; CI must have it.
      expect(process.env.CI).not.toBe('true');
      return;
    }
    const out = spawnSync('docker-compose', ['-f', path.join(root, 'docker-compose.yml'), '--profile', 'monitoring', 'config', '-q'], {
      encoding: 'utf8',
    });
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
  });

  it('has redis (noeviction, AOF, a volume), api, a scalable worker, the demo backend and an optional Prometheus and Grafana', () => {
    expect(Object.keys(s).sort()).toEqual(['api', 'demo-backend', 'grafana', 'prometheus', 'redis', 'worker']);
    expect(s.redis!.image).toMatch(/^redis:7/);
    expect(s.redis!.command!.join(' ')).toMatch(/--appendonly yes/);
    expect(s.redis!.command!.join(' ')).toMatch(/--maxmemory-policy noeviction/);
    expect(s.redis!.volumes![0]).toMatch(/:\/data$/);
    // --scale worker=3 needs no fixed name and no host port.
    expect(s.worker!.container_name).toBeUndefined();
    expect(s.worker!.ports).toBeUndefined();
    expect(s.prometheus!.profiles).toEqual(['monitoring']);
    expect(s.grafana!.profiles).toEqual(['monitoring']);
    // Grafana is provisioned from the repository's files: its data source and the dashboard.
    for (const volume of s.grafana!.volumes!) expect([volume, existsSync(path.join(root, volume.split(':')[0]!))]).toEqual([volume, true]);
    for (const name of ['api', 'worker']) {
      expect(s[name]!.depends_on!.redis).toEqual({ condition: 'service_healthy' });
    }
    for (const name of ['redis', 'api', 'worker', 'demo-backend'])
      expect([name, s[name]!.healthcheck !== undefined || name !== 'redis']).toEqual([name, true]);
  });

  it('runs the real entry points with real variable names and ports', () => {
    for (const name of ['api', 'worker', 'demo-backend']) assertEntry(s[name]!.command!);
    expect(s.api!.command![1]).toBe('apps/api/dist/main.js');
    expect(s.worker!.command![1]).toBe('apps/worker/dist/main.js');
    const services = (s.api!.environment!.MCP_SERVICES ?? '').split(',');
    const known = knownEnv(services);
    for (const name of ['api', 'worker'])
      for (const v of Object.keys(s[name]!.environment!)) expect([name, v, known.has(v)]).toEqual([name, v, true]);
    expect(s.api!.ports).toEqual([`${s.api!.environment!.PORT}:${s.api!.environment!.PORT}`]);
    const prom = parseYaml(read('deploy/prometheus.yml')) as {
      scrape_configs: { static_configs?: { targets: string[] }[]; dns_sd_configs?: { names: string[]; port: number }[] }[];
    };
    expect(prom.scrape_configs[0]!.static_configs![0]!.targets).toEqual([`api:${s.api!.environment!.PORT}`]);
    expect(prom.scrape_configs[1]!.dns_sd_configs![0]).toMatchObject({
      names: ['worker'],
      port: Number(s.worker!.environment!.WORKER_METRICS_PORT),
    });
  });
});

describe('the Grafana dashboard (deploy/grafana)', () => {
  interface Panel {
    type: string;
    title: string;
    datasource?: { uid: string };
    targets?: { expr: string; datasource?: { uid: string } }[];
  }
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/mcp-gateway.json')) as { uid: string; panels: Panel[] };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  /** Every series name /metrics can show: the registry's metrics, with a histogram's _bucket, _sum and _count. */
  async function exported(): Promise<Set<string>> {
    const names = new Set<string>();
    for (const m of await new GatewayMetrics().registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(m.name + suffix);
    }
    return names;
  }

  it('queries only metrics the gateway exports, through the provisioned data source', async () => {
    const names = await exported();
    const used = new Set(exprs.flatMap((e) => e.match(/\bmcp_gateway_\w+/g) ?? []));
    expect(used.size).toBeGreaterThan(10);
    for (const metric of used) expect([metric, names.has(metric)]).toEqual([metric, true]);
    const source = parseYaml(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: { uid: string; url: string }[];
    };
    const uid = source.datasources[0]!.uid;
    expect(source.datasources[0]!.url).toBe('http://prometheus:9090');
    for (const p of panels)
      expect([p.title, p.datasource?.uid, ...(p.targets ?? []).map((t) => t.datasource?.uid)]).toEqual([
        p.title,
        uid,
        ...(p.targets ?? []).map(() => uid),
      ]);
    // Balanced brackets: a query cut short is not valid PromQL.
    for (const e of exprs)
      for (const [open, close] of ['()', '{}', '[]']) expect([e, e.split(open!).length]).toEqual([e, e.split(close!).length]);
  });

  it('covers traffic, errors by code, latency percentiles, queue depth and wait, circuits, retries, tokens, workers and agents', () => {
    const all = exprs.join('\n');
    for (const metric of [
      'mcp_gateway_requests_total',
      'mcp_gateway_api_errors_total',
      'mcp_gateway_request_duration_seconds_bucket',
      'mcp_gateway_backend_duration_seconds_bucket',
      'mcp_gateway_queue_jobs',
      'mcp_gateway_queue_wait_seconds_bucket',
      'mcp_gateway_circuit_state',
      'mcp_gateway_retries_total',
      'mcp_gateway_rate_limiter_tokens',
      'mcp_gateway_workers',
      'mcp_gateway_agent_requests_total',
    ])
      expect([metric, all.includes(metric)]).toEqual([metric, true]);
    expect(all).toMatch(/histogram_quantile\(0\.95/);
    expect(all).toMatch(/outcome!="success"/);
    // Panel ids are unique (Grafana keys panels by id).
    const ids = dashboard.panels.map((p) => (p as unknown as { id: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('Kubernetes manifests (deploy/k8s)', () => {
  type Obj = {
    apiVersion: string;
    kind: string;
    metadata: { name: string; labels?: Record<string, string> };
    spec?: any;
    data?: Record<string, string>;
    stringData?: Record<string, string>;
  };
  let objects: Obj[];
  let backend: TestBackend;
  let gw: Running;

  beforeAll(async () => {
    const dir = path.join(root, 'deploy/k8s');
    const text = has('kubectl')
      ? execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })
      : (parseYaml(read('deploy/k8s/kustomization.yaml')) as { resources: string[] }).resources
          .map((f) => read(`deploy/k8s/${f}`))
          .join('\n---\n');
    objects = parseAllDocuments(text)
      .map((d) => d.toJS() as Obj)
      .filter(Boolean);
    backend = await startBackend();
    gw = await startGateway({ services: { demo: { endpoint: backend.url } } }, []);
  });
  afterAll(async () => {
    await gw.close();
    await backend.close();
  });

  const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)!;

  it('has the expected kinds', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'ConfigMap/mcp-gateway-config',
        'Deployment/mcp-gateway-api',
        'Deployment/mcp-gateway-worker',
        'HorizontalPodAutoscaler/mcp-gateway-api',
        'PodDisruptionBudget/mcp-gateway-api',
        'PodDisruptionBudget/mcp-gateway-worker',
        'ScaledObject/mcp-gateway-worker',
        'Secret/mcp-gateway-keda',
        'Secret/mcp-gateway-secrets',
        'Service/mcp-gateway-api',
        'TriggerAuthentication/mcp-gateway-keda',
      ].sort(),
    );
  });

  it('selectors match pod labels; the Service and probes hit real ports and paths', async () => {
    for (const name of ['mcp-gateway-api', 'mcp-gateway-worker']) {
      const d = find('Deployment', name);
      expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
      const pdb = find('PodDisruptionBudget', name);
      expect(pdb.spec.selector.matchLabels).toEqual(d.spec.selector.matchLabels);
      assertEntry(d.spec.template.spec.containers[0].command);
      // The pod must outlive the gateway's own grace period.
      const grace = Number(find('ConfigMap', 'mcp-gateway-config').data!.SHUTDOWN_GRACE_MS);
      expect(d.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(grace);
    }
    const api = find('Deployment', 'mcp-gateway-api').spec.template.spec.containers[0];
    const svc = find('Service', 'mcp-gateway-api');
    expect(find('Deployment', 'mcp-gateway-api').spec.template.metadata.labels).toMatchObject(svc.spec.selector);
    expect(api.ports.map((p: { name: string }) => p.name)).toContain(svc.spec.ports[0].targetPort);
    expect(String(api.ports[0].containerPort)).toBe(api.env.find((e: { name: string }) => e.name === 'PORT').value);
    // The probe paths answer as documented on a running API: live 200, ready 200 while Redis is up.
    for (const probe of [api.livenessProbe, api.readinessProbe]) expect((await gw.http.get(probe.httpGet.path)).status).toBe(200);
    expect(api.livenessProbe.httpGet.path).not.toBe(api.readinessProbe.httpGet.path);
    const worker = find('Deployment', 'mcp-gateway-worker').spec.template.spec.containers[0];
    expect(String(worker.ports[0].containerPort)).toBe(worker.env.find((e: { name: string }) => e.name === 'WORKER_METRICS_PORT').value);
    expect(worker.livenessProbe.httpGet.path).toBe('/health');
    expect(find('HorizontalPodAutoscaler', 'mcp-gateway-api').spec.scaleTargetRef.name).toBe('mcp-gateway-api');
    expect(find('ScaledObject', 'mcp-gateway-worker').spec.scaleTargetRef.name).toBe('mcp-gateway-worker');
  });

  it('KEDA reads the queue depth with a key the gateway takes: 401 without it, queue.waiting with it', async () => {
    const scaled = find('ScaledObject', 'mcp-gateway-worker').spec.triggers[0];
    const auth = find('TriggerAuthentication', scaled.authenticationRef.name).spec.secretTargetRef[0];
    expect([scaled.metadata.authMode, auth.parameter]).toEqual(['bearer', 'token']);
    const token = find('Secret', auth.name).stringData![auth.key]!;
    const apiKeys = find('Secret', 'mcp-gateway-secrets').stringData!.MCP_GATEWAY_API_KEYS!;
    // A gateway configured with the Secret's keys, asked what KEDA asks.
    const keyed = await startGateway(
      { services: { demo: { endpoint: backend.url } }, security: GatewayConfigManager.fromEnv({ MCP_GATEWAY_API_KEYS: apiKeys }).security },
      [],
    );
    try {
      const { pathname } = new URL(scaled.metadata.url);
      expect((await keyed.http.get(pathname)).status).toBe(401);
      const res = await keyed.http.get(pathname).set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(200);
      const value = String(scaled.metadata.valueLocation)
        .split('.')
        .reduce((o: any, k) => o?.[k], res.body);
      expect(typeof value).toBe('number');
    } finally {
      await keyed.close();
    }
  });

  it('ConfigMap and Secret hold only real variable names, split as in .env.example', () => {
    const cm = find('ConfigMap', 'mcp-gateway-config').data!;
    const secret = find('Secret', 'mcp-gateway-secrets').stringData!;
    const known = knownEnv(cm.MCP_SERVICES!.split(','));
    for (const v of [...Object.keys(cm), ...Object.keys(secret)]) expect([v, known.has(v)]).toEqual([v, true]);
    for (const d of ['mcp-gateway-api', 'mcp-gateway-worker']) {
      for (const e of find('Deployment', d).spec.template.spec.containers[0].env as { name: string }[])
        expect([e.name, known.has(e.name)]).toEqual([e.name, true]);
    }
    // Credentials never sit in the ConfigMap.
    for (const v of ['MCP_GATEWAY_API_KEYS', 'MCP_ADMIN_TOKEN', 'MCP_JWT_SECRET']) expect(cm[v]).toBeUndefined();
    expect(Object.keys(secret)).toEqual(expect.arrayContaining(['MCP_GATEWAY_API_KEYS', 'MCP_ADMIN_TOKEN']));
    const example = read('.env.example');
    for (const v of Object.keys(cm).filter((k) => !k.startsWith('MCP_SERVICE_') && k !== 'MCP_SERVICES'))
      expect(example).toContain(`${v}=`);
  });
});
