/*
 * /docs in a real browser (Debian's chromium through playwright-core):
 * Swagger UI renders every operation of openapi.yaml under the page's
 * Content-Security-Policy, with no violation, no script error and no
 * request leaving the origin.  Prints "ok - ..." / "not ok - ..." lines.
 *
 * Usage: BASE=http://127.0.0.1:PORT node docs-page.mjs OPENAPI.yaml
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = process.env.CHAT_NODE_DIR || here;
let require;
try {
	require = createRequire(path.join(nodeDir, 'package.json'));
	require.resolve('playwright-core');
} catch {
	console.log('Bail out! node modules missing: run npm ci in tests/web');
	process.exit(99);
}
const { chromium } = require('playwright-core');
const YAML = require('yaml');

const base = process.env.BASE;
const doc = YAML.parse(readFileSync(process.argv[2], 'utf8'));
const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
const operations = Object.values(doc.paths).reduce(
	(n, item) => n + methods.filter((m) => item[m]).length, 0);

let failed = 0;
const check = (ok, desc, why) => {
	console.log(`${ok ? 'ok' : 'not ok'} - ${desc}`);
	if (!ok) {
		failed++;
		if (why) console.log(`#   ${why}`);
	}
};

const browser = await chromium.launch({
	executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
	args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
		'--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
	const page = await browser.newPage();
	const problems = [];
	const foreign = [];
	page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
	page.on('pageerror', (e) => problems.push(String(e)));
	page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) foreign.push(r.url()); });
	const resp = await page.goto(`${base}/docs`, { waitUntil: 'networkidle' });
	check(resp.status() === 200, `/docs answers 200 (${resp.status()})`);
	await page.waitForSelector('.opblock', { timeout: 15000 }).catch(() => {});
	const shown = await page.locator('.opblock').count();
	check(shown === operations, `Swagger UI shows every operation of openapi.yaml (${shown} of ${operations})`);
	const title = (await page.locator('.info .title').first().textContent().catch(() => '')) || '';
	check(title.includes(doc.info.title), `... under the document's title "${doc.info.title}"`, title);
	const schemes = await page.locator('.auth-wrapper .authorize').count();
	check(schemes === 1, '... with its Authorize button (the security schemes)');
	check(problems.length === 0, 'no CSP violation and no script error on the page', problems.join(' | ').slice(0, 500));
	check(foreign.length === 0, 'nothing loaded from another origin', foreign.join(' '));
	if (process.env.SCREENSHOT_DIR)
		await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'docs.png') });
} finally {
	await browser.close();
}
process.exit(failed ? 1 : 0);
