// The web client in a real browser (Debian's chromium driven by
// playwright-core), against the stack at $BASE: lighttpd serving web/ with
// its CSP, the FastCGI workers, PostgreSQL.  Run by tests/e2e/test_browser.sh,
// which starts the stack and seeds one user with a long conversation.
//
// Prints "ok - ..." / "not ok - ..." lines (and "# ..." notes); exit status
// 0 when all passed, 1 when one failed, 99 on a bail-out.
//
// Environment:
//   BASE            the stack's URL (required)
//   SEED_EMAIL, SEED_PASSWORD, SEED_TITLE, SEED_COUNT
//                   the seeded user and conversation for "load older"
//   SCREENSHOT_DIR  where the screenshots go (none when unset)
//   CHAT_NODE_DIR   where node_modules lives (default: tests/web of the
//                   source tree, CHAT_SRCDIR)
//   CHROMIUM        the browser (default /usr/bin/chromium)

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const srcdir = process.env.CHAT_SRCDIR || path.resolve(here, '../..');
const nodeDir = process.env.CHAT_NODE_DIR || path.join(srcdir, 'tests/web');
if (!fs.existsSync(path.join(nodeDir, 'node_modules', 'playwright-core', 'package.json'))) {
	console.log('Bail out! node modules missing: run npm ci in tests/web');
	process.exit(99);
}
const { chromium } = createRequire(path.join(nodeDir, 'package.json'))('playwright-core');

const BASE = process.env.BASE;
if (!BASE) {
	console.log('Bail out! BASE is not set');
	process.exit(99);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) {
	console.log(`Bail out! ${CHROMIUM} is missing (scripts/install-deps.sh)`);
	process.exit(99);
}
const SEED = {
	email: process.env.SEED_EMAIL || 'olga@example.test',
	password: process.env.SEED_PASSWORD || 'password-olga',
	title: process.env.SEED_TITLE || 'History',
	count: Number(process.env.SEED_COUNT || 120),
};
const SHOTS = process.env.SCREENSHOT_DIR || '';
const PAGE = 50; // the client's page size (web/assets/app.js)
const POLL_MESSAGES_MS = 3000; // its polling period (GET /chat/updates)
const MARK_GAP_MS = 12000; // at most one read mark in this time
const BUDGET_WORST = 40; // reads/minute at most, a conversation open (docs/CLIENT.md)
const READ_LIMIT = 60; // RATE_LIMIT_READ, per minute (the default)

const T0 = Date.now();
const watchdog = setTimeout(() => {
	console.log('Bail out! the browser test took longer than 180 s');
	process.exit(99);
}, 180000);

let passed = 0;
let failed = 0;
function ok(cond, desc, detail) {
	if (cond) {
		passed++;
		console.log(`ok - ${desc}`);
	} else {
		failed++;
		console.log(`not ok - ${desc}`);
		if (detail) console.log(`#   ${String(detail).replace(/\n/g, '\n#   ')}`);
	}
	return !!cond;
}
function note(s) {
	console.log(`# ${s} (t=${((Date.now() - T0) / 1000).toFixed(1)}s)`);
}
// check(desc, async fn): passes when fn resolves; fn throws to fail.
async function check(desc, fn) {
	try {
		const extra = await fn();
		ok(true, desc + (extra ? ` (${extra})` : ''));
		return true;
	} catch (e) {
		ok(false, desc, e && e.stack ? e.stack.split('\n').slice(0, 3).join('\n') : e);
		return false;
	}
}
function assert(cond, msg) {
	if (!cond) throw new Error(msg);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Resolves when fn() is truthy (checked every 50 ms), rejects after timeout.
async function until(fn, timeout) {
	for (const end = Date.now() + timeout; !fn(); await sleep(50))
		if (Date.now() > end) throw new Error(`condition not met within ${timeout} ms`);
}

// ---- per-page recorder: requests, responses, dialogs, console errors --------

const API_ERROR_STATUSES = new Set([401, 404, 409, 422, 429]);
function watch(page, name) {
	const w = { name, page, requests: [], responses: [], dialogs: [], errors: [], documents: 0 };
	page.on('request', (r) => {
		const u = new URL(r.url());
		if (r.resourceType() === 'document') w.documents++;
		w.requests.push({ t: Date.now(), method: r.method(), path: u.pathname, search: u.search, headers: r.headers(), req: r });
	});
	page.on('response', (r) => {
		const u = new URL(r.url());
		w.responses.push({ t: Date.now(), method: r.request().method(), path: u.pathname, search: u.search,
			status: r.status(), headers: r.headers(), request: r.request() });
	});
	page.on('dialog', (d) => {
		w.dialogs.push(`${d.type()}: ${d.message()}`);
		d.dismiss().catch(() => {});
	});
	page.on('console', (m) => {
		const text = m.text();
		if (m.type() !== 'error' && !/Refused to|Content Security Policy|CSP violation/i.test(text)) return;
		// Chrome logs every 4xx answer to fetch() as "Failed to load resource";
		// the API's 401/404/409/422/429 are expected here, nothing else is.
		const st = /^Failed to load resource: the server responded with a status of (\d+)/.exec(text);
		const loc = m.location() && m.location().url ? new URL(m.location().url, BASE).pathname : '';
		if (st && API_ERROR_STATUSES.has(Number(st[1])) && /^\/(auth|chat)\//.test(loc)) return;
		w.errors.push(`${m.type()}: ${text} (${loc})`);
	});
	page.on('pageerror', (e) => w.errors.push(`pageerror: ${e.message}`));
	return w;
}
const isRead = (r) => r.method === 'GET' && (r.path.startsWith('/chat/') || r.path === '/auth/me');
const reads = (w, from = 0, to = Infinity) => w.requests.filter((r) => isRead(r) && r.t >= from && r.t < to);
// The most reads in any 60 s window.
function maxPerMinute(w) {
	const ts = reads(w).map((r) => r.t);
	let best = 0;
	for (let i = 0, j = 0; j < ts.length; j++) {
		while (ts[j] - ts[i] >= 60000) i++;
		best = Math.max(best, j - i + 1);
	}
	return best;
}

// ---- UI helpers ----------------------------------------------------------------

async function visible(page, sel, timeout = 10000) {
	await page.locator(sel).first().waitFor({ state: 'visible', timeout });
}
async function hiddenEl(page, sel, timeout = 10000) {
	await page.locator(sel).first().waitFor({ state: 'hidden', timeout });
}
async function text(page, sel) {
	return page.locator(sel).first().evaluate((e) => e.textContent);
}
async function register(page, email, password, name) {
	await page.fill('#register-email', email);
	if (name !== undefined) await page.fill('#register-name', name);
	await page.fill('#register-password', password);
	await page.click('#register-submit');
}
async function login(page, email, password) {
	await page.fill('#login-email', email);
	await page.fill('#login-password', password);
	await page.click('#login-submit');
}
async function sendUI(page, body) {
	await page.fill('#send-body', body);
	await page.click('#send-submit');
}
// How many messages of the open conversation have exactly this text.
async function countBody(page, body) {
	return page.evaluate((b) => [...document.querySelectorAll('#messages .msg-body')]
		.filter((e) => e.textContent === b).length, body);
}
async function waitBody(page, body, timeout) {
	await page.waitForFunction((b) => [...document.querySelectorAll('#messages .msg-body')]
		.some((e) => e.textContent === b), body, { timeout });
}
async function openConv(page, title, timeout = 10000) {
	const item = page.locator('#conv-list .conv-item', { has: page.locator('.conv-title', { hasText: title }) });
	await item.first().waitFor({ state: 'visible', timeout });
	await item.first().click();
	await visible(page, '#conv-open');
	await page.waitForFunction((t) => document.getElementById('conv-title-text').textContent === t &&
		document.getElementById('conv-members').textContent !== '', title);
}
async function shot(page, name) {
	if (!SHOTS) return;
	fs.mkdirSync(SHOTS, { recursive: true });
	await page.screenshot({ path: path.join(SHOTS, name) });
}
// Hide or show the tab as the Page Visibility API reports it.
async function setHidden(page, hide) {
	await page.evaluate((h) => {
		if (h) {
			Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
			Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
		} else {
			delete document.hidden;
			delete document.visibilityState;
		}
		document.dispatchEvent(new Event('visibilitychange'));
	}, hide);
}
async function session(page) {
	return page.evaluate(() => sessionStorage.getItem('chat-fcgi.session'));
}
async function tokenOf(w) {
	return JSON.parse(await session(w.page)).token;
}
// The API from node (another client than the browser).
async function apiCall(method, p, token, json) {
	const headers = { Accept: 'application/json' };
	if (token) headers.Authorization = 'Bearer ' + token;
	if (json !== undefined) headers['Content-Type'] = 'application/json';
	const res = await fetch(BASE + p, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
	const t = await res.text();
	let body = null;
	try {
		body = t ? JSON.parse(t) : null;
	} catch {
		body = null;
	}
	return { status: res.status, body };
}
// The unread badge of the conversation titled t: its text, null without
// one, undefined when the conversation is not listed.
async function badgeText(page, t) {
	return page.evaluate((title) => {
		const b = [...document.querySelectorAll('#conv-list .conv-item')].find((e) => e.querySelector('.conv-title').textContent === title);
		if (!b) return undefined;
		const x = b.querySelector('.badge');
		return x ? x.textContent : null;
	}, t);
}

// ---- the test ----------------------------------------------------------------------

const browser = await chromium.launch({
	executablePath: CHROMIUM,
	headless: true,
	args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
		'--disable-background-networking', '--disable-background-timer-throttling',
		'--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
		'--no-first-run', '--no-default-browser-check', '--disable-extensions'],
});
const pages = [];
async function newPage(ctx, name) {
	const page = await ctx.newPage();
	page.setDefaultTimeout(15000);
	// Report CSP violations in the console as well (they also log "Refused to").
	await page.addInitScript(() => {
		document.addEventListener('securitypolicyviolation', (e) =>
			console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
	});
	const w = watch(page, name);
	pages.push(w);
	return w;
}

const ALICE = { email: 'alice@example.test', password: 'password-alice', name: 'Alice' };
// A display name with markup in it: it must show as text too.
const BOB = { email: 'bob@example.test', password: 'password-bob', name: 'Bob <b>the builder</b>' };
const TITLE = 'Plans <img src=x onerror=alert(1)> & "quotes"';
const HOSTILE_A = ['<img src=x onerror=alert(1)><script>alert(2)</script>',
	'javascript:alert(3) <a href="javascript:alert(4)">click me</a> <iframe src="javascript:alert(5)"></iframe> &lt;b&gt;'];
const HOSTILE_B = ['\u202Eevil.exe\u202C and \u202Egnp.exe\u202D, \u2066isolated\u2069, <b>not bold</b>\n  second line\tand a tab',
	'W'.repeat(3900)];

try {
	const ctxA = await browser.newContext({ viewport: { width: 1200, height: 760 } });
	const ctxB = await browser.newContext({ viewport: { width: 1200, height: 760 } });
	const A = await newPage(ctxA, 'alice');
	const B = await newPage(ctxB, 'bob');

	// -- logged out ------------------------------------------------------------------
	await check('GET / serves the client with a strict Content-Security-Policy', async () => {
		const res = await A.page.goto(BASE + '/');
		assert(res.status() === 200, `status ${res.status()}`);
		const csp = res.headers()['content-security-policy'] || '';
		assert(/script-src 'self'/.test(csp) && /default-src 'none'/.test(csp) && !/unsafe-(inline|eval)/.test(csp),
			`CSP: ${csp}`);
	});
	await check('logged out: the login and registration forms are shown', async () => {
		await visible(A.page, '#login-form');
		await visible(A.page, '#register-form');
		assert(await A.page.locator('#chat-view').isHidden(), 'the chat view is visible');
	});
	await shot(A.page, 'login.png');

	// -- 422 and registration -------------------------------------------------------------
	await B.page.goto(BASE + '/');
	await check('422: registering an invalid email shows the envelope\'s detail next to the email input', async () => {
		const resP = B.page.waitForResponse((r) => new URL(r.url()).pathname === '/auth/register');
		await register(B.page, 'bob.example.test', BOB.password, BOB.name);
		const res = await resP;
		const body = await res.json();
		assert(res.status() === 422 && body.field === 'email', `got ${res.status()} ${JSON.stringify(body)}`);
		await visible(B.page, '#register-email-error');
		const shown = await text(B.page, '#register-email-error');
		assert(shown.includes(body.detail), `shown "${shown}", detail "${body.detail}"`);
		assert(await B.page.getAttribute('#register-email', 'aria-invalid') === 'true', 'input not marked invalid');
		assert(await B.page.locator('#auth-view').isVisible(), 'left the form');
	});
	await shot(B.page, 'error-422.png');

	await check('register and sign in (Bob, a display name with markup): the chat view shows the name as text', async () => {
		await register(B.page, BOB.email, BOB.password, BOB.name);
		await visible(B.page, '#chat-view');
		assert(await text(B.page, '#me-name') === BOB.name, `name shown: ${await text(B.page, '#me-name')}`);
		assert(await B.page.locator('#register-email-error').isHidden(), 'the old error is still shown');
		await visible(B.page, '#conv-empty');
	});
	await check('register and sign in (Alice)', async () => {
		await register(A.page, ALICE.email, ALICE.password, ALICE.name);
		await visible(A.page, '#chat-view');
		assert(await text(A.page, '#me-name') === ALICE.name, 'name');
	});
	let tCreated = 0;
	await check('Alice starts a conversation with Bob as member; it opens, title and members as text', async () => {
		await A.page.fill('#new-conv-title', TITLE);
		await A.page.fill('#new-conv-members', BOB.email);
		await A.page.click('#new-conv-submit');
		await visible(A.page, '#conv-open');
		tCreated = Date.now();
		await A.page.waitForFunction(() => document.getElementById('conv-members').textContent.includes('Bob'));
		assert(await text(A.page, '#conv-title-text') === TITLE, 'title');
		const members = await A.page.evaluate(() => {
			const c = document.getElementById('conv-members').cloneNode(true);
			for (const b of c.querySelectorAll('button')) b.remove();
			return c.textContent.replace(/ +,/g, ',').trim();
		});
		assert(members === `Members: ${ALICE.name} (owner), ${BOB.name}`, `members: ${members}`);
		const removable = await A.page.locator('#conv-members .member-remove').count();
		assert(removable === 1, `${removable} remove buttons for the owner (one: Bob)`);
		assert(/^#\/c\/\d+$/.test(await A.page.evaluate(() => location.hash)), 'no #/c/<id> in the URL');
	});
	await check('422 on a form of the chat view: an unknown member email is shown next to the members input', async () => {
		await A.page.fill('#new-conv-title', 'Nobody');
		await A.page.fill('#new-conv-members', 'nobody@example.test');
		const resP = A.page.waitForResponse((r) => new URL(r.url()).pathname === '/chat/conversations' &&
			r.request().method() === 'POST');
		await A.page.click('#new-conv-submit');
		const res = await resP;
		const body = await res.json();
		assert(res.status() === 422 && body.field === 'members', `got ${res.status()}`);
		await visible(A.page, '#new-conv-members-error');
		assert((await text(A.page, '#new-conv-members-error')).includes(body.detail), 'detail not shown');
		await A.page.fill('#new-conv-title', '');
		await A.page.fill('#new-conv-members', '');
	});

	// -- load older (the seeded user, its own browser) -----------------------------------------
	{
		const ctxC = await browser.newContext({ viewport: { width: 1200, height: 760 } });
		const C = await newPage(ctxC, 'olga');
		await C.page.goto(BASE + '/');
		await check(`load older: ${SEED.count} seeded messages, the latest ${PAGE} first, then older pages up to the first`, async () => {
			await login(C.page, SEED.email, SEED.password);
			await visible(C.page, '#chat-view');
			await openConv(C.page, SEED.title);
			const ids = () => C.page.evaluate(() => [...document.querySelectorAll('#messages .msg')].map((e) => Number(e.dataset.id)));
			const bodies = () => C.page.evaluate(() => [...document.querySelectorAll('#messages .msg-body')].map((e) => e.textContent));
			const name = (i) => `seed ${String(i).padStart(3, '0')}`;
			await C.page.waitForFunction((n) => document.querySelectorAll('#messages .msg').length === n, PAGE);
			let b = await bodies();
			assert(b[0] === name(SEED.count - PAGE + 1) && b[PAGE - 1] === name(SEED.count), `first page ${b[0]}..${b[b.length - 1]}`);
			await visible(C.page, '#load-older');
			let clicks = 0;
			while (await C.page.locator('#load-older').isVisible() && clicks < 10) {
				const n = (await ids()).length;
				const resP = C.page.waitForResponse((r) => /\/messages$/.test(new URL(r.url()).pathname) &&
					new URL(r.url()).searchParams.has('before'));
				await C.page.click('#load-older');
				const res = await resP;
				assert(res.status() === 200, `load older: ${res.status()}`);
				await C.page.waitForFunction((x) => document.querySelectorAll('#messages .msg').length > x ||
					!document.getElementById('history-start').hidden, n);
				clicks++;
			}
			const all = await ids();
			b = await bodies();
			assert(all.length === SEED.count, `${all.length} messages shown`);
			assert(all.every((x, i) => i === 0 || all[i - 1] < x), 'not in ascending id order');
			assert(b.every((x, i) => x === name(i + 1)), 'bodies out of order');
			await visible(C.page, '#history-start');
			const beforeParams = C.requests.filter((r) => r.path.endsWith('/messages') && /before=/.test(r.search));
			assert(beforeParams.length === clicks, `${beforeParams.length} requests with before= for ${clicks} clicks`);
			return `${clicks} clicks`;
		});
		await check('the seeded user\'s session made no read beyond its budget and got no 429', async () => {
			assert(!C.responses.some((r) => r.status === 429), '429 seen');
			assert(maxPerMinute(C) <= READ_LIMIT, `${maxPerMinute(C)} reads in a minute`);
		});
		await ctxC.close();
	}

	// -- two users, polling ---------------------------------------------------------------
	await check(`Bob sees the new conversation appear in his list by polling, without a reload (≤ ${POLL_MESSAGES_MS / 1000} s + slack)`, async () => {
		const item = B.page.locator('#conv-list .conv-item', { has: B.page.locator('.conv-title', { hasText: 'Plans' }) });
		await item.first().waitFor({ state: 'visible', timeout: POLL_MESSAGES_MS + 6000 });
		assert(B.documents === 1, `${B.documents} document loads`);
		assert(await item.first().locator('.conv-title').evaluate((e) => e.textContent) === TITLE, 'title text');
		assert(await B.page.locator('#conv-list img').count() === 0, 'an img in the list');
		return `after ${((Date.now() - tCreated) / 1000).toFixed(1)} s`;
	});
	await check('Bob opens it: the same title, members and the add-member form hidden (not the owner)', async () => {
		await openConv(B.page, TITLE);
		assert(await B.page.locator('#add-member-form').isHidden(), 'Bob sees the owner-only form');
		assert(await A.page.locator('#add-member-form').isVisible(), 'Alice does not see the owner-only form');
	});
	const tBoth = Date.now();
	await check('Alice sends; Bob sees her message appear by polling, without a reload', async () => {
		await sendUI(A.page, 'Hello Bob!');
		await waitBody(A.page, 'Hello Bob!', 5000);
		await waitBody(B.page, 'Hello Bob!', POLL_MESSAGES_MS + 5000);
		const sender = await B.page.locator('#messages .msg', { hasText: 'Hello Bob!' }).locator('.msg-sender').textContent();
		assert(sender === ALICE.name, `sender ${sender}`);
		assert(await B.page.locator('#messages .msg', { hasText: 'Hello Bob!' }).locator('time[datetime]').count() === 1, 'no time');
		assert(B.documents === 1, 'reloaded');
	});
	await check('Bob sends; Alice sees his message appear by polling, with his name as text', async () => {
		await sendUI(B.page, 'Hi Alice, see you at 8.');
		await waitBody(A.page, 'Hi Alice, see you at 8.', POLL_MESSAGES_MS + 5000);
		const sender = await A.page.locator('#messages .msg', { hasText: 'see you at 8' }).locator('.msg-sender').textContent();
		assert(sender === BOB.name, `sender ${sender}`);
		assert(A.documents === 1, 'reloaded');
		const polls = A.requests.filter((r) => isRead(r) && r.path.endsWith('/messages') && /after=\d+/.test(r.search));
		assert(polls.length > 0, 'no ?after= poll');
	});

	// -- hostile bodies ------------------------------------------------------------------------
	for (const h of HOSTILE_A) await sendUI(A.page, h);
	await sendUI(B.page, HOSTILE_B[0]);
	// The screenshot of an open conversation, before the long message fills it.
	try {
		await waitBody(A.page, HOSTILE_B[0], POLL_MESSAGES_MS + 5000);
		await shot(A.page, 'conversation.png');
	} catch { /* the checks below report it */ }
	for (const h of HOSTILE_B.slice(1)) await sendUI(B.page, h);
	const hostile = [...HOSTILE_A, ...HOSTILE_B];
	for (const w of [A, B]) {
		await check(`${w.name}: hostile bodies (markup, javascript: links, RTL overrides, 3900 unbroken characters) show exactly as text`, async () => {
			for (const h of hostile) await waitBody(w.page, h, POLL_MESSAGES_MS + 6000);
			for (const h of hostile) assert(await countBody(w.page, h) === 1, `${JSON.stringify(h.slice(0, 40))} not exactly once`);
			const el = await w.page.evaluate(() => ({
				list: document.querySelectorAll('#messages img, #messages script, #messages iframe, #messages a, #messages b').length,
				images: document.images.length,
				iframes: document.querySelectorAll('iframe').length,
				scripts: [...document.scripts].map((s) => s.src.replace(location.origin, '')),
			}));
			assert(el.list === 0 && el.images === 0 && el.iframes === 0, `elements created: ${JSON.stringify(el)}`);
			assert(el.scripts.length === 1 && el.scripts[0] === '/assets/app.js', `scripts: ${el.scripts}`);
		});
		await check(`${w.name}: the long message wraps (no horizontal overflow) and bodies are bidi-isolated`, async () => {
			const r = await w.page.evaluate(() => {
				const s = document.getElementById('messages-scroll');
				const long = [...document.querySelectorAll('#messages .msg-body')].find((e) => e.textContent.length === 3900);
				return { sw: s.scrollWidth, cw: s.clientWidth, right: long.getBoundingClientRect().right,
					boxRight: s.getBoundingClientRect().right, bidi: getComputedStyle(long).unicodeBidi };
			});
			assert(r.sw <= r.cw + 1 && r.right <= r.boxRight + 1, JSON.stringify(r));
			assert(r.bidi === 'isolate', `unicode-bidi: ${r.bidi}`);
		});
	}
	await check('every send carried an Idempotency-Key, a different one per message', async () => {
		// A key comes again only on the retry of a refused (429) send.
		const sends = [A, B].flatMap((w) => w.responses.filter((r) => r.method === 'POST' && r.path.endsWith('/messages')));
		const keys = sends.map((r) => r.request.headers()['idempotency-key']);
		assert(keys.every((k) => /^[0-9a-f]{32}$/.test(k || '')), `keys: ${keys}`);
		assert(new Set(keys).size === 6, `${new Set(keys).size} keys for 6 messages`);
		const admitted = sends.filter((r) => r.status !== 429).map((r) => r.request.headers()['idempotency-key']);
		assert(admitted.length === 6 && new Set(admitted).size === 6, `admitted: ${admitted}`);
		return `${sends.length - 6} retried after a 429`;
	});

	// -- one poll for every conversation, unread, delete, leave ----------------------------------
	// Carol works through the API (node's fetch): three conversations with
	// Alice (one with Bob too), a message in one.  Her 5 chat requests fit
	// the chat limit's burst.
	const CAROL = { email: 'carol@example.test', password: 'password-carol', name: 'Carol' };
	const SIDE_MSG = 'Are you both coming?';
	const tSeveral = Date.now();
	let carol = null, side = 0, sideMsg = 0, errands = 0;
	await check('Carol (through the API) starts Side (with Alice and Bob), Errands and Books (with Alice), and writes in Side', async () => {
		let r = await apiCall('POST', '/auth/register', null, { email: CAROL.email, password: CAROL.password, display_name: CAROL.name });
		assert(r.status === 201, `register: ${r.status}`);
		r = await apiCall('POST', '/auth/login', null, { email: CAROL.email, password: CAROL.password });
		carol = r.body && r.body.access_token;
		assert(carol, `login: ${r.status}`);
		r = await apiCall('POST', '/chat/conversations', carol, { title: 'Side', members: [ALICE.email, BOB.email] });
		assert(r.status === 201, `create: ${r.status}`);
		side = r.body.id;
		for (const title of ['Errands', 'Books']) {
			r = await apiCall('POST', '/chat/conversations', carol, { title, members: [ALICE.email] });
			assert(r.status === 201, `create: ${r.status}`);
			if (title === 'Errands') errands = r.body.id;
		}
		r = await apiCall('POST', `/chat/conversations/${side}/messages`, carol, { body: SIDE_MSG });
		assert(r.status === 201, `send: ${r.status}`);
		sideMsg = r.body.id;
	});
	await check('unread: by polling, Alice and Bob see Side with a badge "1" (Errands and Books without), and read none of its messages', async () => {
		for (const w of [A, B])
			await w.page.waitForFunction((t) => {
				const b = [...document.querySelectorAll('#conv-list .conv-item')].find((e) => e.querySelector('.conv-title').textContent === t);
				return b && b.querySelector('.badge') && b.querySelector('.badge').textContent === '1';
			}, 'Side', { timeout: POLL_MESSAGES_MS + 8000 });
		await A.page.waitForFunction(() => document.querySelectorAll('#conv-list .conv-item').length === 4, null, { timeout: POLL_MESSAGES_MS + 5000 });
		assert(await badgeText(A.page, 'Errands') === null && await badgeText(A.page, 'Books') === null, 'a badge on a conversation without messages');
		for (const w of [A, B]) {
			const n = w.requests.filter((r) => r.path.startsWith(`/chat/conversations/${side}`)).length;
			assert(n === 0, `${w.name} made ${n} requests for Side`);
		}
	});
	await shot(B.page, 'conversations.png');
	let deletedId = 0;
	await check('Alice deletes her own message (two clicks, no dialog): both pages show "Message deleted" (Bob\'s by polling), the text is gone', async () => {
		deletedId = await A.page.evaluate((b) => {
			const e = [...document.querySelectorAll('#messages .msg')].find((li) => li.querySelector('.msg-body').textContent === b);
			return e ? Number(e.dataset.id) : 0;
		}, HOSTILE_A[0]);
		assert(deletedId, 'message not found');
		assert(await B.page.locator(`#messages li[data-id="${deletedId}"] .msg-delete`).count() === 0, 'Bob can delete Alice\'s message');
		const btn = A.page.locator(`#messages li[data-id="${deletedId}"] .msg-delete`);
		await btn.click();
		assert(await btn.textContent() === 'Delete?', 'the first click did not arm the button');
		assert(!A.requests.some((r) => r.method === 'DELETE'), 'the first click deleted');
		const t = Date.now();
		await btn.click();
		// (a 429 is waited out and retried by the client)
		const isDel = (r) => r.method === 'DELETE' && r.t >= t;
		await until(() => A.responses.some((r) => isDel(r) && r.status !== 429), 30000);
		const res = A.responses.find((r) => isDel(r) && r.status !== 429);
		assert(res.status === 204, `DELETE: ${res.status}`);
		for (const w of [A, B])
			await w.page.waitForFunction((i) => {
				const e = document.querySelector(`#messages li[data-id="${i}"] .msg-body`);
				return e && e.textContent === 'Message deleted';
			}, deletedId, { timeout: POLL_MESSAGES_MS + 8000 });
		for (const w of [A, B]) assert(await countBody(w.page, HOSTILE_A[0]) === 0, `${w.name}: the text is still shown`);
		assert(await A.page.locator(`#messages li[data-id="${deletedId}"] .msg-delete`).count() === 0, 'a tombstone can be deleted');
	});
	await check('Bob opens Side: the badge goes, his client marks it read once, and the API\'s list says last_read_id = the message, unread 0', async () => {
		const t = Date.now();
		await openConv(B.page, 'Side');
		await waitBody(B.page, SIDE_MSG, 5000);
		assert(await badgeText(B.page, 'Side') === null, 'the badge is still shown');
		const isMark = (r) => r.method === 'POST' && r.path === `/chat/conversations/${side}/read` && r.t >= t;
		await until(() => B.responses.some((r) => isMark(r) && r.status === 200), MARK_GAP_MS + 20000);
		const mark = B.requests.find(isMark);
		assert(JSON.parse(mark.req.postData()).message_id === sideMsg, `marked ${mark.req.postData()}, the message is ${sideMsg}`);
		const r = await apiCall('GET', '/chat/conversations?limit=50', await tokenOf(B));
		const item = r.body.items.find((c) => c.id === side);
		assert(item && item.last_read_id === sideMsg && item.unread === 0, JSON.stringify(item));
		return `marked ${((mark.t - t) / 1000).toFixed(1)} s after opening`;
	});
	await check('Bob leaves Side (two clicks): it leaves his list, the pane closes and says so; the API answers him 404', async () => {
		await B.page.click('#leave-conv');
		assert(await text(B.page, '#leave-conv') !== 'Leave conversation', 'the first click did not arm the button');
		const t = Date.now();
		await B.page.click('#leave-conv');
		const isDel = (r) => r.method === 'DELETE' && r.t >= t;
		await until(() => B.responses.some((r) => isDel(r) && r.status !== 429), 30000);
		const res = B.responses.find((r) => isDel(r) && r.status !== 429);
		assert(res.status === 204, `DELETE: ${res.status}`);
		await hiddenEl(B.page, '#conv-open');
		await B.page.waitForFunction(() => ![...document.querySelectorAll('#conv-list .conv-title')].some((e) => e.textContent === 'Side'));
		assert(/You left/.test(await text(B.page, '#notice')), `notice: ${await text(B.page, '#notice')}`);
		const r = await apiCall('GET', `/chat/conversations/${side}`, await tokenOf(B));
		assert(r.status === 404, `GET as Bob: ${r.status}`);
		await openConv(B.page, TITLE); // back to Plans for what follows
	});
	await check('several conversations: Carol writes in Errands; Alice (4 conversations, Plans open) gets its badge and reads nothing of it', async () => {
		const r = await apiCall('POST', `/chat/conversations/${errands}/messages`, carol, { body: 'milk, eggs' });
		assert(r.status === 201, `send: ${r.status}`);
		await A.page.waitForFunction(() => [...document.querySelectorAll('#conv-list .conv-item')].some((e) =>
			e.querySelector('.conv-title').textContent === 'Errands' && e.querySelector('.badge')), null, { timeout: POLL_MESSAGES_MS + 8000 });
		const n = A.requests.filter((q) => q.path.startsWith(`/chat/conversations/${errands}`)).length;
		assert(n === 0, `${n} requests for Errands`);
	});
	await check('several conversations: Alice\'s reads are one poll of /chat/updates every 3 s plus a read of the open conversation when it was reported', async () => {
		// A window long enough for a rate (the other checks took part of it).
		await until(() => Date.now() - tSeveral >= 24000, 30000);
		const t1 = Date.now();
		const rs = reads(A, tSeveral, t1);
		const s = (t1 - tSeveral) / 1000;
		const polls = rs.filter((r) => r.path === '/chat/updates').length;
		const other = rs.filter((r) => r.path !== '/chat/updates');
		const rate = (rs.length * 60) / s;
		note(`several: alice ${rs.length} reads (${polls} polls, other: ${other.map((r) => r.path + r.search).join(' ')}) in ${s.toFixed(1)} s = ${rate.toFixed(1)}/minute with 4 conversations`);
		assert(s >= 15, `window too short: ${s} s`);
		assert((polls * 60) / s <= 21, `${polls} polls in ${s.toFixed(1)} s`);
		assert(other.every((r) => r.path.startsWith(`/chat/conversations/${A.page.url().split('/c/')[1]}/messages`)),
			'a read other than the updates and the open conversation\'s messages');
		assert(other.length <= 5, `${other.length} reads of the open conversation`);
		assert(rate <= 30, `${rate.toFixed(1)} reads/minute`);
		return `${rate.toFixed(1)} reads/minute`;
	});

	// -- 429: Bob sends until the chat limit (5/minute) refuses one --------------------------------
	// The first refusal's Retry-After depends on when Bob's earlier sends
	// happened (anything up to 12 s).  The message queued right behind it is
	// refused in turn once the retry used the slot, with a full 12 s: the
	// notice is checked on the first refusal that leaves time to watch it.
	const isSend = (r) => r.method === 'POST' && r.path.endsWith('/messages');
	const refusals = () => B.responses.filter((r) => isSend(r) && r.status === 429);
	let refused = null;
	for (let i = 1; i <= 8 && !refused; i++) {
		const body = `burst ${i}`;
		const resP = B.page.waitForResponse((r) => r.request().method() === 'POST' &&
			new URL(r.url()).pathname.endsWith('/messages'), { timeout: 10000 });
		await sendUI(B.page, body);
		const res = await resP;
		if (res.status() === 429) {
			refused = { body, t: Date.now(), retryAfter: Number(res.headers()['retry-after']),
				key: res.request().headers()['idempotency-key'], json: await res.json() };
		} else {
			await waitBody(B.page, body, 5000);
		}
	}
	const more = 'queued behind the refused one';
	if (ok(refused, 'a quick burst of sends meets the chat limit (a 429)')) {
		await sendUI(B.page, more);
		note(`429 on "${refused.body}", Retry-After ${refused.retryAfter} s`);
		let noticeText = '';
		let watched = null;
		await check('429 is shown plainly: "Rate limited (sending): retrying in N s", N ≤ Retry-After', async () => {
			await until(() => refusals().find((r) => Number(r.headers['retry-after']) >= 4), refused.retryAfter * 1000 + 5000);
			watched = refusals().find((r) => Number(r.headers['retry-after']) >= 4);
			await visible(B.page, '#ratelimit', 2000);
			noticeText = await text(B.page, '#ratelimit');
			const m = /Rate limited \(sending\): retrying in (\d+) s/.exec(noticeText);
			const ra = Number(watched.headers['retry-after']);
			assert(m && Number(m[1]) >= 1 && Number(m[1]) <= ra, `notice: "${noticeText}", Retry-After ${ra}`);
			assert(refused.json.error === 'rate_limited' && refused.json.retry_after === refused.retryAfter, JSON.stringify(refused.json));
			const pending = await text(B.page, '#pending');
			assert(/rate limited/.test(pending), `pending: ${pending}`);
			return noticeText;
		});
		await shot(B.page, 'ratelimit.png');
		await check('the countdown goes down while waiting', async () => {
			await sleep(2100);
			const later = await text(B.page, '#ratelimit');
			const a = Number(/in (\d+) s/.exec(noticeText)[1]), b = Number((/in (\d+) s/.exec(later) || [])[1]);
			assert(b < a, `"${noticeText}" then "${later}"`);
		});
		await check('no chat request before Retry-After; then one retry with the same Idempotency-Key, admitted', async () => {
			const t429 = refusals()[0].t;
			await until(() => B.responses.some((r) => isSend(r) && r.t > t429 && r.status !== 429), refused.retryAfter * 1000 + 5000);
			const next = B.requests.filter((r) => isSend(r) && r.t > t429)[0];
			const gap = next.t - t429;
			assert(gap >= refused.retryAfter * 1000 - 150, `retried after ${gap} ms, Retry-After ${refused.retryAfter} s`);
			assert(next.headers['idempotency-key'] === refused.key, 'another key on the retry');
			const res = B.responses.find((r) => r.request === next.req);
			assert(res && (res.status === 201 || res.status === 200), `retry answered ${res && res.status}`);
			return `retry ${(gap / 1000).toFixed(2)} s after the 429`;
		});
		await check('the refused message appears once on both sides', async () => {
			await waitBody(B.page, refused.body, 5000);
			await waitBody(A.page, refused.body, POLL_MESSAGES_MS + 5000);
			assert(await countBody(B.page, refused.body) === 1 && await countBody(A.page, refused.body) === 1, 'not exactly once');
		});
		await check('the message queued behind it waits its turn: after every 429 the next send waits Retry-After; then the notice goes away', async () => {
			await waitBody(B.page, more, 20000);
			const gaps = [];
			for (const r of refusals()) {
				const next = B.requests.find((q) => isSend(q) && q.t > r.t);
				if (next) gaps.push(next.t - r.t - Number(r.headers['retry-after']) * 1000);
			}
			assert(gaps.every((g) => g >= -150), `a send left before Retry-After: ${gaps}`);
			await hiddenEl(B.page, '#ratelimit', 3000);
			assert(await B.page.locator('#pending .msg').count() === 0, 'a message still pending');
			await waitBody(A.page, more, POLL_MESSAGES_MS + 5000);
			assert(await countBody(A.page, more) === 1, 'not exactly once');
			return `${refusals().length} refusals, each waited out`;
		});
	}
	await check('a chat 429 did not stop reading: Bob kept polling', async () => {
		const during = reads(B, refused ? refused.t : tBoth);
		assert(during.length >= 3, `${during.length} reads`);
	});

	// -- the polling budget ---------------------------------------------------------------------
	const tEnd = Date.now();
	await check(`polling stays within the documented budget (≤ ${BUDGET_WORST}/minute of 60): Alice\'s reads with a busy conversation open`, async () => {
		const n = reads(A, tBoth, tEnd).length;
		const s = (tEnd - tBoth) / 1000;
		const rate = (n * 60) / s;
		const polls = reads(A, tBoth, tEnd).filter((r) => r.path === '/chat/updates').length;
		note(`alice: ${n} reads (${polls} polls of /chat/updates) in ${s.toFixed(1)} s = ${rate.toFixed(1)}/minute; bob: ${reads(B, tBoth, tEnd).length} reads`);
		assert(s >= 20, `window too short: ${s} s`);
		assert(rate <= BUDGET_WORST, `${rate.toFixed(1)} reads/minute`);
		assert(n <= 2 * polls + 2, `${n} reads for ${polls} polls: more than one read per poll`);
		const msgs = reads(A, tBoth, tEnd).filter((r) => r.path === '/chat/updates').map((r) => r.t);
		const gaps = msgs.slice(1).map((t, i) => t - msgs[i]).sort((a, b) => a - b);
		assert(gaps.length && gaps[Math.floor(gaps.length / 2)] >= POLL_MESSAGES_MS - 200, `median gap ${gaps[Math.floor(gaps.length / 2)]} ms`);
		return `${rate.toFixed(1)}/minute`;
	});
	await check('no page got a 429 on a read; no 60 s window had more than 60 reads', async () => {
		for (const w of pages) {
			const r429 = w.responses.filter((r) => r.method === 'GET' && r.status === 429);
			assert(r429.length === 0, `${w.name}: ${r429.length} read 429`);
			assert(maxPerMinute(w) <= READ_LIMIT, `${w.name}: ${maxPerMinute(w)}`);
		}
		return pages.map((w) => `${w.name} max ${maxPerMinute(w)}/60 s`).join(', ');
	});
	await check('a hidden tab stops polling, and polls again at once when shown', async () => {
		await setHidden(A.page, true);
		await sleep(600); // a poll already in flight may finish
		const t = Date.now();
		await sleep(Math.max(POLL_MESSAGES_MS, 6000));
		const n = reads(A, t).length;
		assert(n === 0, `${n} reads while hidden`);
		const t2 = Date.now();
		await setHidden(A.page, false);
		await A.page.waitForRequest((r) => r.method() === 'GET' && new URL(r.url()).pathname.startsWith('/chat/'), { timeout: 2000 });
		return `first read ${Date.now() - t2} ms after shown`;
	});

	// -- the owner removes a member ---------------------------------------------------------------
	await check('the owner removes a member: Alice removes Bob (two clicks); Bob\'s client, with it open, closes it and says so', async () => {
		const btn = A.page.locator('#conv-members .member-remove');
		await btn.click();
		assert(!A.requests.some((r) => r.method === 'DELETE' && /\/members\//.test(r.path)), 'the first click removed');
		const t0 = Date.now();
		await btn.click();
		const isDel = (r) => r.method === 'DELETE' && /\/members\/\d+$/.test(r.path) && r.t >= t0;
		await until(() => A.responses.some((r) => isDel(r) && r.status !== 429), 30000);
		const res = A.responses.find((r) => isDel(r) && r.status !== 429);
		assert(res.status === 204, `DELETE: ${res.status}`);
		await A.page.waitForFunction(() => document.querySelectorAll('#conv-members .member-item').length === 1);
		const t = Date.now();
		await hiddenEl(B.page, '#conv-open', POLL_MESSAGES_MS + 8000);
		assert(/no longer a member/.test(await text(B.page, '#notice')), `notice: ${await text(B.page, '#notice')}`);
		assert(!(await B.page.evaluate(() => [...document.querySelectorAll('#conv-list .conv-title')].map((e) => e.textContent)))
			.includes(TITLE), 'Plans still in Bob\'s list');
		const r = await apiCall('GET', `/chat/conversations?limit=50`, await tokenOf(B));
		assert(r.status === 200 && !r.body.items.some((c) => c.title === TITLE), 'the API still lists Plans for Bob');
		return `Bob's client closed it ${((Date.now() - t) / 1000).toFixed(1)} s after the 204`;
	});

	// -- reload, tabs, logout, 401 --------------------------------------------------------------
	await check('reload keeps the session (sessionStorage) and the open conversation (#/c/<id>)', async () => {
		await A.page.reload();
		await visible(A.page, '#conv-open');
		assert(await A.page.locator('#auth-view').isHidden(), 'login form shown');
		await A.page.waitForFunction((t) => document.getElementById('conv-title-text').textContent === t, TITLE);
		await waitBody(A.page, 'Hello Bob!', 5000);
	});
	const A2 = await newPage(ctxA, 'alice-tab2');
	await check('a new tab of the same browser starts logged out: sessionStorage is per tab', async () => {
		await A2.page.goto(BASE + '/');
		await visible(A2.page, '#login-form');
		assert(await session(A2.page) === null, 'a session in the new tab');
	});
	await check('a duplicated tab (sessionStorage copied, as "Duplicate tab" does) is signed in', async () => {
		const s = await session(A.page);
		assert(s && JSON.parse(s).token, 'no session in the first tab');
		await A2.page.evaluate((v) => sessionStorage.setItem('chat-fcgi.session', v), s);
		await A2.page.goto(BASE + '/' + (await A.page.evaluate(() => location.hash)));
		await A2.page.reload();
		await visible(A2.page, '#conv-open');
		await waitBody(A2.page, 'Hello Bob!', 5000);
	});
	await check('log out: the tab shows the login form, the token is revoked (204) and dropped, polling stops', async () => {
		const resP = A.page.waitForResponse((r) => new URL(r.url()).pathname === '/auth/logout');
		await A.page.click('#logout');
		const res = await resP;
		assert(res.status() === 204, `logout: ${res.status()}`);
		await visible(A.page, '#login-form');
		assert(await A.page.locator('#chat-view').isHidden(), 'chat view still shown');
		assert(/signed out/i.test(await text(A.page, '#notice')), 'no notice');
		assert(await session(A.page) === null, 'session kept in sessionStorage');
		assert(await A.page.locator('#messages .msg').count() === 0, 'messages left in the DOM');
		assert(await A.page.evaluate(() => location.hash) === '', 'hash kept');
	});
	const tLogout = Date.now();
	await check('401 on an authenticated call: the duplicated tab\'s next poll is refused and it shows the login form with a notice', async () => {
		await visible(A2.page, '#login-form', POLL_MESSAGES_MS + 5000);
		const r401 = A2.responses.filter((r) => r.status === 401 && r.t >= tLogout);
		assert(r401.length >= 1, 'no 401 seen');
		assert(/session has ended/i.test(await text(A2.page, '#notice')), `notice: ${await text(A2.page, '#notice')}`);
		assert(await session(A2.page) === null, 'session kept');
		return `after ${((Date.now() - tLogout) / 1000).toFixed(1)} s`;
	});
	await check('after logging out, the first tab makes no more API requests', async () => {
		await sleep(1000);
		const n = A.requests.filter((r) => r.t > tLogout + 200 && /^\/(chat|auth)\//.test(r.path)).length;
		assert(n === 0, `${n} requests`);
	});
	await check('401 on login: a wrong password shows the error and stays on the form', async () => {
		const resP = A2.page.waitForResponse((r) => new URL(r.url()).pathname === '/auth/login');
		await login(A2.page, ALICE.email, 'wrong-password');
		const res = await resP;
		assert(res.status() === 401, `status ${res.status()}`);
		await visible(A2.page, '#login-error');
		const t = await text(A2.page, '#login-error');
		assert(/email or password is wrong/i.test(t), `shown: ${t}`);
		assert(await A2.page.locator('#chat-view').isHidden(), 'signed in');
		assert(await A2.page.inputValue('#login-email') === ALICE.email, 'email cleared');
	});
	await check('signing in again works, and lists the conversation', async () => {
		await A2.page.fill('#login-password', ALICE.password);
		await A2.page.click('#login-submit');
		await visible(A2.page, '#chat-view');
		await A2.page.locator('#conv-list .conv-item').first().waitFor();
		assert(await A2.page.locator('#login-error').isHidden(), 'the old error is still shown');
	});

	// -- over the whole run ----------------------------------------------------------------------
	for (const w of pages) {
		ok(w.dialogs.length === 0, `${w.name}: no dialog was opened (alert/confirm/prompt)`, w.dialogs.join('; '));
		ok(w.errors.length === 0, `${w.name}: no console error, CSP violation or page error`, w.errors.join('\n'));
	}
	if (SHOTS) ok(['login.png', 'conversations.png', 'conversation.png', 'ratelimit.png', 'error-422.png']
		.every((f) => fs.existsSync(path.join(SHOTS, f))), `screenshots written to ${SHOTS}`);
} catch (e) {
	ok(false, 'the browser test ran to the end', e && e.stack);
} finally {
	await browser.close().catch(() => {});
	clearTimeout(watchdog);
}
note(`${passed} passed, ${failed} failed in ${((Date.now() - T0) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
