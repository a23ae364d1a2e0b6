// validate-responses.mjs: every answer an end-to-end suite received is one
// that openapi.yaml documents.
//
//   node tests/web/validate-responses.mjs [--doc FILE] RESPONSES.jsonl
//
// RESPONSES.jsonl is what tests/e2e/lib.sh's req() records, one answer a
// line: {"test", "method", "path" (with its query), "status", "headers":
// [[name, value], ...], "body"}.  For each one:
//
//   - the path is matched to a path template of the document (a literal
//     segment beats a parameter; a parameter matches only values of its
//     schema, as the router matches "{id}" only to a canonical positive
//     int64), then the method to an operation;
//   - no template: the answer must be one of x-unrouted-responses'
//     "unknown-path" answers; a template without that method: one of its
//     "unknown-method" answers, whose Allow must list the path's methods;
//   - the status must be documented for the operation: an answer outside
//     the document fails;
//   - every required header of that response must be there, and every
//     documented header present must match its schema;
//   - the body must match the schema of the media type its Content-Type
//     names (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses, with formats);
//     a response documented without content must have no body.
//
// The web server's own answers (x-server-responses: lighttpd's door.lua,
// Apache's ErrorDocuments) may come to any request: a status the matched
// operation (or x-unrouted-responses) does not document is checked against
// x-server-responses; one it documents is checked against the operation's
// answer, and, when that fails, against x-server-responses (a 503 of the
// web server on an operation whose own 503 is database_unavailable).
//
// Prints "ok - N responses conform to openapi.yaml" or "not ok - ..." with
// one "#" line per offending answer on stdout; a summary per operation and
// status (and the documented statuses never seen) on stderr.  Exit 0, 1,
// or 99 when the node modules are missing.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { METHODS, deref, documentAjv, formatAjvErrors, loadDocument, loadModules, srcdir } from './check-openapi.mjs';

const args = process.argv.slice(2);
let docFile = join(srcdir, 'openapi.yaml');
const di = args.indexOf('--doc');
if (di >= 0) {
	docFile = args[di + 1];
	args.splice(di, 2);
}
if (args.length !== 1) {
	console.error('usage: validate-responses.mjs [--doc openapi.yaml] responses.jsonl');
	process.exit(2);
}

const mods = await loadModules();
const doc = loadDocument(mods, docFile);
const { compile } = documentAjv(mods, doc);
const schemaCache = new Map();
function validatorAt(segments) {
	const k = JSON.stringify(segments);
	if (!schemaCache.has(k)) schemaCache.set(k, compile(...segments));
	return schemaCache.get(k);
}

// --- matching ----------------------------------------------------------------

const INT_RANGES = {
	int32: [-(2n ** 31n), 2n ** 31n - 1n],
	int64: [-(2n ** 63n), 2n ** 63n - 1n],
};

// Does a raw path segment, query or header value satisfy an integer
// schema?  Canonical decimal only, compared as BigInt: an id near 2^63 is
// beyond a JavaScript number.
function integerFits(raw, schema) {
	if (!/^-?(0|[1-9][0-9]*)$/.test(raw) || raw === '-0') return false;
	const v = BigInt(raw);
	const [lo, hi] = INT_RANGES[schema.format] || [null, null];
	if (lo !== null && (v < lo || v > hi)) return false;
	if (schema.minimum !== undefined && v < BigInt(schema.minimum)) return false;
	if (schema.maximum !== undefined && v > BigInt(Math.trunc(schema.maximum))) return false;
	return true;
}

// A string on the wire (path segment, header) against the schema at
// `segments`: integers by integerFits and then as numbers, strings as is.
function wireValueProblem(raw, segments) {
	const schema = deref(doc, getAt(segments));
	const validate = validatorAt(segments);
	if (schema.type === 'integer') {
		if (!integerFits(raw, schema)) return `${JSON.stringify(raw)} is not an integer of the schema`;
		return validate(Number(raw)) ? null : formatAjvErrors(validate.errors);
	}
	return validate(raw) ? null : `${JSON.stringify(raw)}: ${formatAjvErrors(validate.errors)}`;
}

function getAt(segments) {
	let o = doc;
	for (const s of segments) o = o?.[s];
	return o;
}

// The path parameter definitions of a template: [name, segments of its
// schema], operation-level ones overriding path-level ones.
function pathParams(template, method) {
	const out = new Map();
	const item = doc.paths[template];
	const add = (list, base) => {
		for (const [i, p] of (list || []).entries()) {
			const param = deref(doc, p);
			if (param.in !== 'path') continue;
			// Keep the schema's place in the document for ajv.
			const segs = p.$ref ? [...p.$ref.slice(2).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')), 'schema'] : [...base, i, 'schema'];
			out.set(param.name, segs);
		}
	};
	add(item.parameters, ['paths', template, 'parameters']);
	if (method && item[method]) add(item[method].parameters, ['paths', template, method, 'parameters']);
	return out;
}

function matchTemplate(pathname) {
	const parts = pathname.split('/');
	let best = null;
	for (const template of Object.keys(doc.paths)) {
		const tparts = template.split('/');
		if (tparts.length !== parts.length) continue;
		const params = pathParams(template);
		let literal = 0;
		let ok = true;
		for (let i = 0; ok && i < parts.length; i++) {
			const m = /^\{(.+)\}$/.exec(tparts[i]);
			if (!m) {
				ok = tparts[i] === parts[i];
				literal++;
			} else {
				const segs = params.get(m[1]);
				ok = segs !== undefined && parts[i] !== '' && wireValueProblem(parts[i], segs) === null;
			}
		}
		if (ok && (!best || literal > best.literal)) best = { template, literal };
	}
	return best?.template;
}

// --- one answer --------------------------------------------------------------

function headerMap(pairs) {
	const h = new Map();
	for (const [name, value] of pairs || []) {
		const k = name.toLowerCase();
		h.set(k, h.has(k) ? `${h.get(k)}, ${value.trim()}` : value.trim());
	}
	return h;
}

function parseMediaType(value) {
	const [essence, ...params] = value.split(';');
	const p = new Map();
	for (const kv of params) {
		const i = kv.indexOf('=');
		if (i > 0) p.set(kv.slice(0, i).trim().toLowerCase(), kv.slice(i + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase());
	}
	return { essence: essence.trim().toLowerCase(), params: p };
}

// The documented media type an answer's Content-Type stands for: same
// type, and every parameter the document names present with its value.
function matchMediaType(content, contentType) {
	const got = parseMediaType(contentType);
	let best = null;
	for (const key of Object.keys(content)) {
		const want = parseMediaType(key);
		if (want.essence !== got.essence && want.essence !== '*/*' && !(want.essence.endsWith('/*') && got.essence.startsWith(want.essence.slice(0, -1)))) continue;
		if (![...want.params].every(([k, v]) => got.params.get(k) === v)) continue;
		if (!best || want.params.size > best.size) best = { key, size: want.params.size };
	}
	return best?.key;
}

// Problems of one answer against the response object at `segments`.
function checkResponse(rec, segments, headers) {
	const problems = [];
	const response = deref(doc, getAt(segments));
	// Keep the schemas' places: a $ref'd response lives elsewhere.
	let base = segments;
	let cur = getAt(segments);
	while (cur?.$ref) {
		base = cur.$ref.slice(2).split('/').map((s) => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~'));
		cur = getAt(base);
	}
	for (const [name, h0] of Object.entries(response.headers || {})) {
		const h = deref(doc, h0);
		let hbase = [...base, 'headers', name];
		let hc = h0;
		while (hc?.$ref) {
			hbase = hc.$ref.slice(2).split('/');
			hc = getAt(hbase);
		}
		const value = headers.get(name.toLowerCase());
		if (value === undefined) {
			if (h.required) problems.push(`required header ${name} is missing`);
			continue;
		}
		if (h.schema) {
			const why = wireValueProblem(value, [...hbase, 'schema']);
			if (why) problems.push(`header ${name}: ${why}`);
		}
	}
	const ct = headers.get('content-type');
	const hasBody = rec.body !== '' && rec.method !== 'HEAD';
	if (!response.content || Object.keys(response.content).length === 0) {
		if (hasBody) problems.push(`documented without a body, got ${ct || 'a body without Content-Type'}: ${rec.body.slice(0, 80)}`);
		return problems;
	}
	if (rec.method === 'HEAD') return problems;
	if (!ct) {
		problems.push(`no Content-Type; documented: ${Object.keys(response.content).join(', ')}`);
		return problems;
	}
	const key = matchMediaType(response.content, ct);
	if (!key) {
		problems.push(`Content-Type ${ct} is not documented (${Object.keys(response.content).join(', ')}): ${rec.body.slice(0, 80)}`);
		return problems;
	}
	if (!response.content[key].schema) return problems;
	const essence = parseMediaType(ct).essence;
	let value = rec.body;
	if (essence === 'application/json' || essence.endsWith('+json')) {
		try {
			value = JSON.parse(rec.body);
		} catch (e) {
			problems.push(`the body is not JSON (${e.message}): ${rec.body.slice(0, 80)}`);
			return problems;
		}
	}
	const validate = validatorAt([...base, 'content', key, 'schema']);
	if (!validate(value)) problems.push(`body: ${formatAjvErrors(validate.errors)}: ${rec.body.slice(0, 160)}`);
	return problems;
}

function checkRecord(rec) {
	if (rec.record_error) return { problems: [`could not be recorded: ${rec.record_error}`] };
	if (!rec.status) return { skipped: 'no answer (connection failed or timed out)' };
	const headers = headerMap(rec.headers);
	const method = rec.method.toLowerCase();
	const [pathname] = rec.path.split('?');
	const template = matchTemplate(pathname);
	const status = String(rec.status);
	const unrouted = doc['x-unrouted-responses'] || {};
	const server = doc['x-server-responses'] || {};
	const serverSegments = server[status] ? ['x-server-responses', status] : null;
	let label, segments;
	const extra = [];
	if (!template) {
		label = '(unknown path)';
		if (!unrouted['unknown-path']?.[status]) {
			if (!serverSegments) return { label, status, problems: [`status ${status} is not documented for an unknown path`] };
			return { label, status, problems: checkResponse(rec, serverSegments, headers) };
		}
		segments = ['x-unrouted-responses', 'unknown-path', status];
	} else if (!METHODS.includes(method) || !doc.paths[template][method]) {
		label = `(other method) ${template}`;
		if (!unrouted['unknown-method']?.[status]) {
			if (!serverSegments) return { label, status, problems: [`status ${status} is not documented for a method ${template} does not have`] };
			return { label, status, problems: checkResponse(rec, serverSegments, headers) };
		}
		segments = ['x-unrouted-responses', 'unknown-method', status];
		if (status === '405') {
			const want = METHODS.filter((m) => doc.paths[template][m]).map((m) => m.toUpperCase()).sort();
			const got = (headers.get('allow') || '').split(',').map((s) => s.trim()).filter(Boolean).sort();
			if (want.join() !== got.join()) extra.push(`Allow is ${JSON.stringify(headers.get('allow'))}, the document has ${want.join(', ')} on ${template}`);
		}
	} else {
		const op = doc.paths[template][method];
		label = op.operationId || `${method.toUpperCase()} ${template}`;
		const responses = op.responses || {};
		const key = [status, `${status[0]}XX`, 'default'].find((k) => responses[k]);
		if (!key) {
			if (!serverSegments) return { label, status, problems: [`status ${status} is not documented (documented: ${Object.keys(responses).join(', ')})`] };
			return { label, status, problems: checkResponse(rec, serverSegments, headers) };
		}
		segments = ['paths', template, method, 'responses', key];
	}
	const problems = [...extra, ...checkResponse(rec, segments, headers)];
	if (problems.length && serverSegments && checkResponse(rec, serverSegments, headers).length === 0) return { label, status, problems: [] };
	return { label, status, problems };
}

// --- all of them -------------------------------------------------------------

const lines = readFileSync(args[0], 'utf8').split('\n').filter((l) => l.trim());
const bad = [];
const seen = new Map(); // label -> Map(status -> count)
const skipped = new Map();
let checked = 0;
for (const [i, line] of lines.entries()) {
	let rec;
	try {
		rec = JSON.parse(line);
	} catch (e) {
		bad.push(`line ${i + 1} of ${args[0]} is not JSON: ${e.message}`);
		continue;
	}
	const r = checkRecord(rec);
	const where = `${rec.test ? rec.test + ': ' : ''}${rec.method} ${rec.path} -> ${rec.status}`;
	if (r.skipped) {
		skipped.set(r.skipped, (skipped.get(r.skipped) || 0) + 1);
		continue;
	}
	checked++;
	if (r.label) {
		if (!seen.has(r.label)) seen.set(r.label, new Map());
		seen.get(r.label).set(r.status, (seen.get(r.label).get(r.status) || 0) + 1);
	}
	if (r.problems.length) bad.push(`${where}: ${r.problems.join('; ')}`);
}

// Informational: what the suite exercised, and what it never saw.
const out = [`# ${checked} answers checked against ${docFile}, by operation and status:`];
for (const [path, item] of Object.entries(doc.paths))
	for (const m of METHODS) {
		const op = item[m];
		if (!op) continue;
		const label = op.operationId || `${m.toUpperCase()} ${path}`;
		const counts = seen.get(label);
		const got = counts ? [...counts].sort().map(([s, n]) => `${s} x${n}`).join(', ') : 'none';
		const never = Object.keys(op.responses || {}).filter((s) => !counts?.has(s));
		out.push(`#   ${label.padEnd(26)} ${got}${never.length ? `  (never seen: ${never.join(', ')})` : ''}`);
	}
for (const [label, counts] of seen)
	if (label.startsWith('(')) out.push(`#   ${label.padEnd(26)} ${[...counts].sort().map(([s, n]) => `${s} x${n}`).join(', ')}`);
for (const [why, n] of skipped) out.push(`#   not checked: ${n} x ${why}`);
console.error(out.join('\n'));

if (bad.length === 0) {
	console.log(`ok - ${checked} responses conform to openapi.yaml`);
	process.exit(0);
}
console.log(`not ok - ${bad.length} of ${checked} responses do not conform to openapi.yaml`);
for (const b of bad) console.log(`#   ${b}`);
process.exit(1);
