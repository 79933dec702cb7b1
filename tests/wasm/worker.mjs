// Runs every scenario for one PHP version in one runtime mode and prints one
// `RESULT {json}` line per scenario. runner.mjs starts one worker process per
// (mode, PHP version): a runtime that dies inside WebAssembly ("unreachable")
// or hangs in synchronous code can then be killed without losing the rest of
// the matrix.
//
// Usage: node worker.mjs '<json job>'  (see runner.mjs for the fields)

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const job = JSON.parse(process.argv[2]);

// Each mode imports its own copy of @php-wasm (the Asyncify column needs the
// last release that still runs on Node 20), so the modules are loaded by path.
const universal = await import(pathToFileURL(path.join(job.universalDir, 'index.js')).href);
const nodePkg = await import(pathToFileURL(path.join(job.nodeDir, 'index.js')).href);
const { PHP, setPhpIniEntries } = universal;
const { loadNodeRuntime, createNodeFsMountHandler, getPHPLoaderModule } = nodePkg;

const CLIENT_MOUNT = '/phpsessd/php-client';
const PAGES_MOUNT = '/srv/pages';

// Emscripten's file-lock bookkeeping needs a distinct id per runtime in one
// process; the values only have to be unique here.
let nextProcessId = 100 + (process.pid % 1000) * 10;

function emit(result) {
  process.stdout.write('RESULT ' + JSON.stringify(result) + '\n');
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

async function boot(address, withClient = true) {
  const php = new PHP(
    await loadNodeRuntime(job.php, { emscriptenOptions: { processId: nextProcessId++ } })
  );
  if (!withClient) {
    await setPhpIniEntries(php, { display_errors: '0', log_errors: '1' });
    php.mkdir(PAGES_MOUNT);
    await php.mount(PAGES_MOUNT, createNodeFsMountHandler(job.pagesDir));
    return php;
  }
  const prepend = job.mode === 'prefetch' ? 'wasm-prefetch.php' : 'bootstrap.php';
  await setPhpIniEntries(php, {
    // The same two settings a php.ini of a real deployment carries.
    'phpsessd.address': address,
    'phpsessd.token': job.token,
    auto_prepend_file: `${CLIENT_MOUNT}/${prepend}`,
    // Warnings go to stderr (collected per request) instead of being mixed
    // into the JSON the pages print.
    display_errors: '0',
    log_errors: '1',
    error_reporting: String(32767),
  });
  php.mkdir(CLIENT_MOUNT);
  await php.mount(CLIENT_MOUNT, createNodeFsMountHandler(job.clientDir));
  php.mkdir(PAGES_MOUNT);
  await php.mount(PAGES_MOUNT, createNodeFsMountHandler(job.pagesDir));
  return php;
}

// php -l needs the CLI entry point, and a CLI run ends its runtime, so every
// run gets a fresh one. Booting from the .wasm file compiles 20 MB of
// WebAssembly each time (~0.4 s); compiling it once and instantiating that
// module per run brings a lint run to ~0.15 s. Without the loader's file
// name (another @php-wasm layout) it falls back to the ordinary, slower boot.
let lintModule;
async function lintRuntime() {
  if (lintModule === undefined) {
    const loader = typeof getPHPLoaderModule === 'function' ? await getPHPLoaderModule(job.php) : null;
    const file = loader && loader.dependencyFilename;
    lintModule = file && fs.existsSync(file) ? await WebAssembly.compile(fs.readFileSync(file)) : null;
  }
  const options = { processId: nextProcessId++ };
  let instantiateFailed = null;
  if (lintModule) {
    const module = lintModule;
    // Emscripten waits for the callback forever; a failed instantiation
    // has to reach the caller some other way.
    instantiateFailed = new Promise((_, reject) => {
      options.instantiateWasm = (imports, receive) => {
        WebAssembly.instantiate(module, imports).then((instance) => receive(instance, module), reject);
        return {};
      };
    });
  }
  const boot = loadNodeRuntime(job.php, { emscriptenOptions: options });
  const php = new PHP(await (instantiateFailed ? Promise.race([boot, instantiateFailed]) : boot));
  php.mkdir(CLIENT_MOUNT);
  await php.mount(CLIENT_MOUNT, createNodeFsMountHandler(job.clientDir));
  return php;
}

function phpFilesUnder(dir, rel = '') {
  const out = [];
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const name = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...phpFilesUnder(dir, name));
    else if (entry.isFile() && entry.name.endsWith('.php')) out.push(name);
  }
  return out.sort();
}

// Until PHP 8.3, php -l lints only its first file and takes the rest as
// the script's arguments.
function lintTakesManyFiles(version) {
  const [major, minor] = version.split('.').map(Number);
  return major > 8 || (major === 8 && minor >= 3);
}

const DIAGNOSTIC = /^(?:PHP )?(Parse error|Fatal error|Recoverable fatal error|Warning|Notice|Deprecated|Strict Standards):\s+(.*) in (\S+) on line (\d+)$/;

async function lintBatch(files) {
  const php = await withTimeout(lintRuntime(), job.bootTimeoutMs, 'boot for php -l');
  const response = await withTimeout(
    (async () => {
      const r = await php.cli(['php', '-l', ...files]);
      return { stdout: await r.stdoutText, stderr: await r.stderrText, exitCode: await r.exitCode };
    })(),
    job.requestTimeoutMs,
    `php -l ${files.length === 1 ? files[0] : files.length + ' files'}`
  );
  try {
    php.exit();
  } catch {
    // The CLI run already shut this runtime down.
  }
  return response;
}

function sessionCookie(headers) {
  for (const line of headers['set-cookie'] || []) {
    const m = /^PHPSESSID=([^;]*)/.exec(line);
    if (m) return m[1];
  }
  return null;
}

// One HTTP-like request: the page prints one JSON document on success.
async function request(php, page, { cookie = null, query = {}, env = {} } = {}) {
  const qs = new URLSearchParams(query).toString();
  const headers = cookie ? { cookie: `PHPSESSID=${cookie}` } : {};
  let response;
  try {
    response = await withTimeout(
      php.run({
        scriptPath: `${PAGES_MOUNT}/${page}`,
        relativeUri: `/${page}${qs ? '?' + qs : ''}`,
        method: 'GET',
        headers,
        env,
      }),
      job.requestTimeoutMs,
      page
    );
  } catch (err) {
    throw new Error(`${page}: ${firstLines(String(err && err.message ? err.message : err), 6)}`);
  }
  const text = response.text;
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${page}: not JSON: ${firstLines(text, 4)} | stderr: ${firstLines(response.errors, 4)}`);
  }
  return { json, cookie: sessionCookie(response.headers), stderr: response.errors || '' };
}

// php.run() errors wrap stdout and stderr in banners; keep the content.
function firstLines(s, n) {
  return String(s || '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^=== (Stdout|Stderr) ===$/.test(l) && !l.startsWith('Stack trace') && !/^#\d+ /.test(l))
    .slice(0, n)
    .join(' / ');
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

// The pages' error handler only sees what happens while the page runs;
// stderr also has what the prepended client and the shutdown flush said.
function noWarnings(r, page) {
  check(r.json.warnings.length === 0, `${page}: warnings: ${r.json.warnings.join(' / ')}`);
  const logged = r.stderr.split('\n').filter((l) => /PHP (Warning|Notice|Deprecated|Fatal error|Parse error)/.test(l));
  check(logged.length === 0, `${page}: stderr: ${firstLines(logged.join('\n'), 3)}`);
}

// Releases every parallel request of a round together once all of them
// reached the barrier (see pages/_lib.php).
async function barrierServer(expected) {
  const waiting = [];
  const server = net.createServer((socket) => {
    socket.once('data', () => {
      waiting.push(socket);
      if (waiting.length === expected) {
        for (const s of waiting) s.end('go\n');
      }
    });
    socket.on('error', () => {});
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, reached: () => waiting.length, close: () => server.close() };
}

async function newSession(php, user) {
  const r = await request(php, 'start.php', { query: { user } });
  check(r.json.ok === true, `start.php: session_start() returned ${JSON.stringify(r.json.ok)}; stderr: ${firstLines(r.stderr, 3)}`);
  noWarnings(r, 'start.php');
  check(r.cookie, 'start.php: no PHPSESSID cookie sent');
  check(r.cookie === r.json.id, `start.php: cookie ${r.cookie} is not session_id() ${r.json.id}`);
  return r.cookie;
}

async function readSession(php, cookie) {
  const r = await request(php, 'read.php', { cookie });
  check(r.json.ok === true, `read.php: session_start() returned ${JSON.stringify(r.json.ok)}; stderr: ${firstLines(r.stderr, 3)}`);
  noWarnings(r, 'read.php');
  return r;
}

const scenarios = {
  // Raw RESP PING from PHP, in a runtime without php-client: the runtime
  // boots and reaches the daemon, whatever state the shim is in.
  async tcp() {
    const bare = await boot(job.address, false);
    let r;
    try {
      r = await request(bare, 'ping.php', { query: { address: job.address } });
    } finally {
      bare.exit();
    }
    check(r.json.reply === '+PONG\r\n', `PING over TCP: got ${JSON.stringify(r.json.reply)} (${r.json.error || 'no error'})`);
    return `PHP ${r.json.php}`;
  },

  async cookie(ctx) {
    const user = `alice-${job.php}-${Date.now()}`;
    const id = await newSession(ctx.php, user);
    const r = await readSession(ctx.php, id);
    check(r.json.id === id, `second request got id ${r.json.id}, sent ${id}`);
    check(r.json.session && r.json.session.user === user, `second request read ${JSON.stringify(r.json.session)}`);
    check(r.cookie === null || r.cookie === id, `second request changed the cookie to ${r.cookie}`);
    return 'set, read back';
  },

  async counter(ctx) {
    const id = await newSession(ctx.php, 'counter');
    const rounds = 3;
    for (let i = 1; i <= rounds; i++) {
      const r = await request(ctx.php, 'incr.php', { cookie: id });
      check(r.json.ok === true, `incr.php #${i}: session_start() returned ${JSON.stringify(r.json.ok)}`);
      noWarnings(r, 'incr.php');
      check(r.json.n === i, `incr.php #${i}: n = ${JSON.stringify(r.json.n)}, want ${i}`);
    }
    const r = await readSession(ctx.php, id);
    check(r.json.session.n === rounds, `after ${rounds} requests n = ${JSON.stringify(r.json.session.n)}`);
    return `n = ${rounds}`;
  },

  // The lockless INCR of Phpsessd\Session from parallel requests: every
  // increment counts, each request sees its own new value, and the final
  // writes of those requests (which carry the mirrored value) keep them all.
  async incr(ctx) {
    const id = await newSession(ctx.php, 'incr');
    const barrier = await barrierServer(ctx.peers.length);
    let results;
    try {
      results = await Promise.all(
        ctx.peers.map((php, i) => request(php, 'incr_api.php', { cookie: id, query: { tag: `i${i}`, barrier: String(barrier.port) } }))
      );
    } finally {
      barrier.close();
    }
    results.forEach((r, i) => {
      check(r.json.ok === true, `incr_api.php #${i}: session_start() returned ${JSON.stringify(r.json.ok)}`);
      check(r.json.error === null, `incr_api.php #${i}: Session::incr() threw ${r.json.error}`);
      check(r.json.barrier === true, `incr_api.php #${i}: not all requests were in flight together`);
      noWarnings(r, `incr_api.php #${i}`);
    });
    const values = results.map((r) => r.json.value).sort();
    const want = ctx.peers.map((_, i) => i + 1);
    check(JSON.stringify(values) === JSON.stringify(want), `Session::incr() returned ${JSON.stringify(values)}, want ${JSON.stringify(want)}`);
    const r = await readSession(ctx.php, id);
    check(r.json.session.hits === ctx.peers.length, `${ctx.peers.length} parallel Session::incr() returned ${JSON.stringify(values)} but the stored session keeps hits = ${JSON.stringify(r.json.session.hits)}`);
    return `hits = ${ctx.peers.length}`;
  },

  async parallel(ctx) {
    const id = await newSession(ctx.php, 'parallel');
    const peers = ctx.peers;
    const barrier = await barrierServer(peers.length);
    let results;
    try {
      results = await Promise.all(
        peers.map((php, i) =>
          request(php, 'append.php', { cookie: id, query: { tag: `w${i}`, barrier: String(barrier.port) } })
        )
      );
    } finally {
      barrier.close();
    }
    results.forEach((r, i) => {
      check(r.json.ok === true, `instance ${i}: session_start() returned ${JSON.stringify(r.json.ok)}`);
      check(r.json.barrier === true, `instance ${i}: not all ${peers.length} requests were in flight together (${barrier.reached()} reached the barrier)`);
      noWarnings(r, `append.php #${i}`);
    });
    const r = await readSession(ctx.php, id);
    const log = (r.json.session.log || []).slice().sort();
    const want = peers.map((_, i) => `w${i}`);
    check(JSON.stringify(log) === JSON.stringify(want), `kept ${JSON.stringify(r.json.session.log)}, want all of ${JSON.stringify(want)}`);
    return `${peers.length} instances, ${log.length} appends kept`;
  },

  // phpsessd's locked mode (PHPSESSD_MODE, the variable form of
  // phpsessd.mode): parallel read-modify-write requests queue for the lock
  // and none of their increments is lost.
  async locked(ctx) {
    const id = await newSession(ctx.php, 'locked');
    const results = await Promise.all(
      ctx.peers.map((php) => request(php, 'locked.php', { cookie: id, env: { PHPSESSD_MODE: 'locked' } }))
    );
    results.forEach((r, i) => {
      check(r.json.ok === true, `locked.php #${i}: session_start() returned ${JSON.stringify(r.json.ok)}; stderr: ${firstLines(r.stderr, 3)}`);
      noWarnings(r, `locked.php #${i}`);
    });
    const seen = results.map((r) => r.json.seen).sort();
    const r = await readSession(ctx.php, id);
    check(r.json.session.n === ctx.peers.length, `${ctx.peers.length} locked requests saw ${JSON.stringify(seen)} and left n = ${JSON.stringify(r.json.session.n)}`);
    check(JSON.stringify(seen) === JSON.stringify(ctx.peers.map((_, i) => i)), `locked requests overlapped: they saw n = ${JSON.stringify(seen)}`);
    return `n = ${ctx.peers.length}, each saw the one before`;
  },

  async regenerate(ctx) {
    const user = `regen-${Date.now()}`;
    const id = await newSession(ctx.php, user);
    const g = await request(ctx.php, 'regenerate.php', { cookie: id });
    check(g.json.ok === true && g.json.regenerated === true, `regenerate.php: ${JSON.stringify(g.json)}; stderr: ${firstLines(g.stderr, 3)}`);
    noWarnings(g, 'regenerate.php');
    check(g.json.old === id, `regenerate.php started on ${g.json.old}, not ${id}`);
    check(g.json.new && g.json.new !== id, `regenerate.php: new id ${g.json.new} is not new`);
    check(g.cookie === g.json.new, `regenerate.php: cookie ${g.cookie}, new id ${g.json.new}`);
    const r = await readSession(ctx.php, g.cookie);
    check(r.json.id === g.cookie, `new id: request got id ${r.json.id}`);
    check(r.json.session.user === user && r.json.session.regenerated === true, `new id reads ${JSON.stringify(r.json.session)}`);
    return 'new id carries the data';
  },

  async destroy(ctx) {
    const id = await newSession(ctx.php, `destroy-${Date.now()}`);
    const d = await request(ctx.php, 'destroy.php', { cookie: id });
    check(d.json.ok === true && d.json.destroyed === true, `destroy.php: ${JSON.stringify(d.json)}; stderr: ${firstLines(d.stderr, 3)}`);
    noWarnings(d, 'destroy.php');
    const r = await readSession(ctx.php, id);
    check(!('user' in (r.json.session || {})), `after destroy the old cookie still reads ${JSON.stringify(r.json.session)}`);
    return 'gone';
  },

  // Every file of php-client/src through this version's own compiler
  // (php -l compiles without running anything, so the Laravel and Symfony
  // adapters need no framework). A host usually has one PHP, so this is
  // the check that holds the 7.4+ promise for files no scenario loads.
  // Compile-time deprecations fail it, as warnings fail the other scenarios.
  async lint() {
    const srcDir = path.join(job.clientDir, 'src');
    const files = phpFilesUnder(srcDir).map((f) => `${CLIENT_MOUNT}/src/${f}`);
    check(files.length > 0, `no .php files under ${srcDir}`);
    const batches = lintTakesManyFiles(job.php) ? [files] : files.map((f) => [f]);
    const shown = (p) => p.replace(CLIENT_MOUNT + '/', 'php-client/');
    const problems = [];
    for (const batch of batches) {
      const r = await lintBatch(batch);
      const said = new Set();
      for (const line of (r.stdout + '\n' + r.stderr).split('\n')) {
        const m = DIAGNOSTIC.exec(line.trim());
        if (!m) continue;
        const message = `${shown(m[3])}:${m[4]}: ${m[1]}: ${m[2]}`;
        if (!said.has(message)) problems.push(message);
        said.add(message);
      }
      const unconfirmed = batch.filter((f) => !r.stdout.includes(`No syntax errors detected in ${f}\n`));
      // A file php -l did not pass without saying why (a crash, an exit
      // from inside the runtime) still fails, with whatever it printed.
      for (const f of unconfirmed) {
        if (![...said].some((m) => m.startsWith(shown(f) + ':'))) {
          problems.push(`${shown(f)}: php -l exited with ${r.exitCode}: ${firstLines(r.stdout + '\n' + r.stderr, 2) || 'no output'}`);
        }
      }
    }
    check(problems.length === 0, problems.join(' / '));
    return `${files.length} files, ${batches.length} php -l run${batches.length === 1 ? '' : 's'}`;
  },

  // Nothing listens on downAddress: session_start() must fail fast and say
  // where it tried to connect.
  async down(ctx) {
    const started = Date.now();
    const r = await request(ctx.down, 'down.php');
    const hostPort = job.downAddress.replace(/^tcp:\/\//, '');
    const said = r.json.warnings.join('\n') + '\n' + r.stderr;
    check(r.json.ok === false, `session_start() returned ${JSON.stringify(r.json.ok)} with the daemon down`);
    check(r.json.warnings.length > 0, 'no warning raised');
    check(said.includes(hostPort), `no warning names ${hostPort}: ${firstLines(said, 3)}`);
    const naming = said.split('\n').find((l) => l.includes(hostPort)) || '';
    return `false after ${Date.now() - started} ms: ${naming.trim().slice(0, 160)}`;
  },
};

const ctx = {};
const bootStart = Date.now();
try {
  ctx.php = await withTimeout(boot(job.address), job.bootTimeoutMs, 'boot');
  ctx.peers = [ctx.php];
  for (let i = 1; i < job.parallel; i++) {
    ctx.peers.push(await withTimeout(boot(job.address), job.bootTimeoutMs, 'boot'));
  }
  ctx.down = await withTimeout(boot(job.downAddress), job.bootTimeoutMs, 'boot');
} catch (err) {
  for (const name of job.scenarios) {
    emit({ scenario: name, ok: false, ms: 0, detail: `PHP ${job.php} did not boot: ${firstLines(err.message, 3)}` });
  }
  process.exit(0);
}
process.stderr.write(`[${job.mode} ${job.php}] booted ${job.parallel + 1} runtimes in ${Date.now() - bootStart} ms\n`);

for (const name of job.scenarios) {
  const t0 = Date.now();
  try {
    const detail = await withTimeout(scenarios[name](ctx), job.scenarioTimeoutMs, name);
    emit({ scenario: name, ok: true, ms: Date.now() - t0, detail });
  } catch (err) {
    emit({ scenario: name, ok: false, ms: Date.now() - t0, detail: firstLines(err.message, 4) });
  }
}
// Pending WebSocket bridges keep the event loop alive; the work is done.
process.exit(0);
