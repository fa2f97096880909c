// Offline checks of the container image recipe (Dockerfile) and the Kubernetes manifests
// (deploy/kubernetes), run by CTest: no cluster and no Docker daemon here, so each object is
// checked against the Kubernetes API's OpenAPI schema (kubernetes-models) and its TypeScript
// types with excess-property checks (kubernetes-types + tsc: a misspelt field fails), the
// references between objects are followed, and every flag and environment variable the
// manifests give mlaas is one the binary (MLAAS_BINARY) or its sources know.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const manifests = path.join(root, 'deploy/kubernetes');
const binary = process.env.MLAAS_BINARY;

// The PyTorchJob (a Kubeflow custom resource, applied on its own) is checked apart.
const kPyTorchJob = 'pytorchjob.yaml';

function loadObjects(only) {
  const objects = [];
  for (const file of fs.readdirSync(manifests).filter((f) => f.endsWith('.yaml')).sort()) {
    if (file === 'kustomization.yaml' || (only ? file !== only : file === kPyTorchJob)) continue;
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(manifests, file), 'utf8'))) {
      assert.equal(doc.errors.length, 0, `${file}: ${doc.errors.join('; ')}`);
      const value = doc.toJS();
      if (value !== null) objects.push({ file, value });
    }
  }
  return objects;
}
const objects = loadObjects();
const job = loadObjects(kPyTorchJob)[0]?.value;
const kustomization = YAML.parse(fs.readFileSync(path.join(manifests, 'kustomization.yaml'), 'utf8'));
const byKind = (kind) => objects.filter((o) => o.value.kind === kind).map((o) => o.value);
const named = (kind, name) => byKind(kind).find((o) => o.metadata.name === name);
const containersOf = (d) => d.spec.template.spec.containers;

// "apps/v1" -> ["apps", "v1"], "v1" -> ["core", "v1"]
function groupVersion(apiVersion) {
  const parts = apiVersion.split('/');
  return parts.length === 1 ? ['core', parts[0]] : parts;
}

test('every object passes the Kubernetes OpenAPI schema', async () => {
  assert.ok(objects.length >= 7, `only ${objects.length} objects`);
  for (const { file, value } of objects) {
    const [group, version] = groupVersion(value.apiVersion);
    const module = await import(group === 'core' ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`);
    const Kind = module[value.kind];
    assert.ok(Kind, `${file}: no ${value.kind} in ${value.apiVersion}`);
    assert.doesNotThrow(() => new Kind(value).validate(), `${file}: ${value.kind} ${value.metadata?.name}`);
  }
});

// Type-checks the objects as TypeScript literals of kubernetes-types' interfaces: an unknown or
// misspelt field, or a value of the wrong type, is a compile error naming it.
function typeCheck(list) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlaas-k8s-'));
  try {
    let source = '';
    list.forEach(({ value }, i) => {
      const [group, version] = groupVersion(value.apiVersion);
      source += `import type { ${value.kind} as T${i} } from "kubernetes-types/${group}/${version}";\n`;
      source += `export const o${i}: T${i} = ${JSON.stringify(value, null, 1)};\n`;
    });
    fs.writeFileSync(path.join(dir, 'objects.ts'), source);
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, types: [], module: 'esnext', moduleResolution: 'bundler', skipLibCheck: true,
        paths: { 'kubernetes-types/*': [path.join(here, 'node_modules/kubernetes-types/*')] },
      },
      files: ['objects.ts'],
    }));
    const r = spawnSync(path.join(here, 'node_modules/.bin/tsc'), ['-p', dir], { encoding: 'utf8' });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('no object holds a field Kubernetes does not know, or a value of the wrong type', () => {
  const r = typeCheck(objects);
  assert.ok(r.ok, r.output);
  // The check can fail: a misspelt field is caught.
  const api = structuredClone(named('Deployment', 'mlaas-api'));
  containersOf(api)[0].readinesProbe = containersOf(api)[0].readinessProbe;
  const bad = typeCheck([{ value: api }]);
  assert.ok(!bad.ok && bad.output.includes('readinesProbe'), bad.output);
});

test('the kustomization lists every manifest and every image the pods use', () => {
  const files = fs.readdirSync(manifests)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== kPyTorchJob).sort();
  assert.deepEqual([...kustomization.resources].sort(), files);
  const images = new Set(kustomization.images.map((i) => i.name));
  for (const d of byKind('Deployment')) {
    for (const c of containersOf(d)) assert.ok(images.has(c.image), `${d.metadata.name}: image ${c.image}`);
  }
});

test('the objects refer to each other correctly', () => {
  const deployments = byKind('Deployment');
  assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ['mlaas-api', 'mlaas-worker-cpu', 'mlaas-worker-gpu']);
  for (const d of deployments) {
    const labels = d.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) assert.equal(labels[k], v, `${d.metadata.name} selector`);
    for (const c of containersOf(d)) {
      for (const from of c.envFrom ?? []) {
        if (from.configMapRef) assert.ok(named('ConfigMap', from.configMapRef.name), from.configMapRef.name);
        if (from.secretRef) assert.ok(named('Secret', from.secretRef.name), from.secretRef.name);
      }
      for (const kind of ['requests', 'limits']) {
        for (const r of ['cpu', 'memory']) assert.ok(c.resources?.[kind]?.[r], `${d.metadata.name}: resources.${kind}.${r}`);
      }
      const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
      for (const [probe, pathWanted] of [['readinessProbe', '/readyz'], ['livenessProbe', '/healthz']]) {
        const get = c[probe]?.httpGet;
        assert.ok(get, `${d.metadata.name}: ${probe}`);
        assert.equal(get.path, pathWanted, `${d.metadata.name}: ${probe}`);
        assert.ok(ports.has(get.port), `${d.metadata.name}: ${probe} port ${get.port}`);
      }
      // The port the probes use is the one mlaas listens on.
      const flag = c.args[0] === 'serve' ? '--port' : '--health-port';
      const at = c.args.indexOf(flag);
      assert.ok(at > 0, `${d.metadata.name}: ${flag}`);
      assert.ok([...ports.values()].includes(Number(c.args[at + 1])), `${d.metadata.name}: ${flag} ${c.args[at + 1]}`);
      assert.equal(d.spec.template.spec.securityContext.runAsNonRoot, true);
    }
  }
  const api = named('Deployment', 'mlaas-api');
  assert.deepEqual(containersOf(api)[0].args.slice(0, 1), ['serve']);
  assert.ok(containersOf(api)[0].args.join(' ').includes('--workers 0'), 'API servers run no tasks');
  const service = named('Service', 'mlaas-api');
  for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(api.spec.template.metadata.labels[k], v);
  const portNames = containersOf(api)[0].ports.map((p) => p.name);
  for (const p of service.spec.ports) assert.ok(portNames.includes(p.targetPort), `service targetPort ${p.targetPort}`);
  // Each API pod is reachable by the others at its own IP, on the port it listens on.
  const env = Object.fromEntries((containersOf(api)[0].env ?? []).map((e) => [e.name, e]));
  assert.equal(env.POD_IP?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');
  const listen = containersOf(api)[0].args[containersOf(api)[0].args.indexOf('--port') + 1];
  assert.equal(env.MLAAS_ADVERTISE_URL?.value, `http://$(POD_IP):${listen}`);
  const hpa = byKind('HorizontalPodAutoscaler')[0];
  assert.equal(hpa.spec.scaleTargetRef.kind, 'Deployment');
  assert.equal(hpa.spec.scaleTargetRef.name, 'mlaas-api');
  assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas >= hpa.spec.minReplicas);
  for (const name of ['mlaas-worker-cpu', 'mlaas-worker-gpu']) {
    const w = named('Deployment', name);
    assert.equal(containersOf(w)[0].args[0], 'worker');
    assert.ok(w.spec.template.spec.nodeSelector, `${name}: nodeSelector`);
    // Time to checkpoint and hand the task back after SIGTERM.
    assert.ok(w.spec.template.spec.terminationGracePeriodSeconds >= 60, `${name}: grace period`);
  }
  const gpu = containersOf(named('Deployment', 'mlaas-worker-gpu'))[0];
  assert.equal(gpu.resources.limits['nvidia.com/gpu'], '1');
  assert.equal(gpu.resources.requests['nvidia.com/gpu'], '1');
  assert.equal(containersOf(named('Deployment', 'mlaas-worker-cpu'))[0].resources.limits['nvidia.com/gpu'], undefined);
});

// The sources' string literals: where mlaas reads an environment variable that is no CLI flag's
// (AWS_REGION, MLAAS_ADMIN_TOKEN, ...).
function sourceLiterals() {
  const found = new Set();
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (/\.(cpp|h)$/.test(entry.name)) for (const m of fs.readFileSync(p, 'utf8').matchAll(/"([A-Z][A-Z0-9_]+)"/g)) found.add(m[1]);
    }
  };
  walk(path.join(root, 'src'));
  return found;
}

test('the PyTorchJob runs a data-parallel group of mlaas workers', async () => {
  assert.ok(job, kPyTorchJob);
  assert.equal(job.apiVersion, 'kubeflow.org/v1');
  assert.equal(job.kind, 'PyTorchJob');
  const specs = job.spec.pytorchReplicaSpecs;
  assert.deepEqual(Object.keys(specs).sort(), ['Master', 'Worker']);
  assert.equal(specs.Master.replicas, 1, 'one rank 0');
  assert.ok(specs.Worker.replicas >= 1);
  const { PodTemplateSpec } = await import('kubernetes-models/v1');
  const templates = [];  // as PodTemplates, the core type that holds a template
  for (const [role, spec] of Object.entries(specs)) {
    assert.ok(['OnFailure', 'Always', 'ExitCode'].includes(spec.restartPolicy), `${role}: restartPolicy`);
    assert.doesNotThrow(() => new PodTemplateSpec(spec.template).validate(), role);
    templates.push({ value: { apiVersion: 'v1', kind: 'PodTemplate', metadata: { name: role }, template: spec.template } });
    const c = spec.template.spec.containers[0];
    assert.equal(c.name, 'pytorch', `${role}: the operator sets the environment of the container named pytorch`);
    assert.equal(c.args[0], 'worker');
    assert.ok(kustomization.images.some((i) => i.name === c.image), `${role}: image ${c.image}`);
  }
  const r = typeCheck(templates);
  assert.ok(r.ok, r.output);
  const master = specs.Master.template.spec.containers[0];
  assert.ok(master.ports.some((p) => p.name === 'pytorchjob-port'), 'the Master names the rendezvous port');
});

test('every flag and environment variable given to mlaas is one it takes', { skip: !binary && 'MLAAS_BINARY is not set' }, () => {
  const help = {};
  for (const command of ['serve', 'worker']) {
    const r = spawnSync(binary, [command, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    help[command] = r.stdout;
  }
  const literals = sourceLiterals();
  const knows = (command, key) => help[command].includes(`(Env:${key})`) || literals.has(key);
  const pods = byKind('Deployment').map((d) => ({ name: d.metadata.name, spec: d.spec.template.spec }));
  for (const [role, spec] of Object.entries(job.spec.pytorchReplicaSpecs)) pods.push({ name: `PyTorchJob ${role}`, spec: spec.template.spec });
  for (const d of pods) {
    const c = d.spec.containers[0];
    const command = c.args[0];
    for (const arg of c.args.filter((a) => a.startsWith('--'))) {
      assert.match(help[command], new RegExp(`\\s${arg}\\b`), `${d.name}: mlaas ${command} has no ${arg}`);
    }
    // Variables that only feed others' values ($(POD_IP)) are Kubernetes', not mlaas's.
    const feeders = new Set((c.env ?? []).flatMap((e) => [...(e.value ?? '').matchAll(/\$\(([A-Z0-9_]+)\)/g)].map((m) => m[1])));
    const keys = [...(c.env ?? []).map((e) => e.name).filter((k) => !feeders.has(k))];
    for (const from of c.envFrom ?? []) {
      const source = from.configMapRef ? named('ConfigMap', from.configMapRef.name).data
                                       : named('Secret', from.secretRef.name).stringData;
      keys.push(...Object.keys(source));
    }
    for (const key of keys) assert.ok(knows(command, key), `${d.name}: mlaas ${command} does not read ${key}`);
  }
  assert.ok(!knows('serve', 'MLAAS_NO_SUCH_SETTING'), 'the check can fail');
});

test('the Dockerfile builds with the README install script and runs unprivileged from Debian 12 slim', () => {
  const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => ({ image: m[1], name: m[2] }));
  assert.deepEqual(stages.map((s) => s.name), ['build', 'runtime']);
  assert.match(dockerfile, /^ARG DEBIAN_IMAGE=debian:12$/m);
  assert.equal(stages[1].image, '${DEBIAN_IMAGE}-slim');
  assert.match(dockerfile, /\.\/scripts\/install-deps\.sh/);
  assert.match(dockerfile, /\.\/scripts\/build\.sh release/);
  assert.match(dockerfile, /scripts\/runtime-packages\.sh/);
  for (const m of dockerfile.matchAll(/^COPY\s+(?!--from)(\S+)\s+\S+$/gm)) {
    assert.ok(fs.existsSync(path.join(root, m[1])), `COPY ${m[1]}`);
  }
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('FROM '));
  assert.match(runtime, /^USER 10001/m);
  assert.match(runtime, /^ENTRYPOINT \["mlaas"\]$/m);
  assert.match(runtime, /^CMD \["serve", "--host", "0\.0\.0\.0", "--port", "8080"\]$/m);
  const ignore = fs.readFileSync(path.join(root, '.dockerignore'), 'utf8').split('\n');
  for (const entry of ['build/', '**/node_modules/']) assert.ok(ignore.includes(entry), `.dockerignore: ${entry}`);
});

test('the runtime stage gets the packages holding every library mlaas links', { skip: !binary && 'MLAAS_BINARY is not set' }, () => {
  const r = spawnSync(path.join(root, 'scripts/runtime-packages.sh'), [binary], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const packages = r.stdout.trim().split('\n');
  for (const wanted of [/^libtorch/, /^libpq5$/, /^libcurl4$/, /^libc6$/, /^libopenblas0-openmp$/]) {
    assert.ok(packages.some((p) => wanted.test(p)), `${wanted} in ${packages.join(' ')}`);
  }
  for (const p of packages) assert.doesNotMatch(p, /-dev$/, 'a runtime image needs no -dev package');
});
