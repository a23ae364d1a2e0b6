// check-openapi.mjs: openapi.yaml is a valid OpenAPI 3.1 document and says
// what the router's table says.
//
//   node tests/web/check-openapi.mjs [--doc FILE] [--routes FILE]
//
// --routes takes the table as tests/tools/routes prints it (one route a
// line: METHOD PATTERN token|public BODY LIMIT NAME, tab-separated; "-" for
// standard input).  Without it only the document itself is checked.
//
// Output is one "ok - ..." or "not ok - ..." line per check, details on
// "#" lines; exit 0 when all pass, 1 otherwise, 99 when the node modules
// are missing.  tests/e2e/test_openapi.sh runs it, on the real table and
// on doctored copies that must fail.
//
// The helpers it exports (module loading, the document, a strict ajv over
// it) are shared with validate-responses.mjs.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const srcdir = process.env.CHAT_SRCDIR || resolve(here, '../..');

// The packages live in tests/web/node_modules of a checkout, which the
// distribution tarball does not carry: CHAT_NODE_DIR points at one that
// has them (scripts/test.sh sets it for distcheck).
export async function loadModules() {
	const nodeDir = process.env.CHAT_NODE_DIR || join(srcdir, 'tests/web');
	const require = createRequire(join(nodeDir, 'package.json'));
	try {
		const Ajv2020 = require('ajv/dist/2020');
		const addFormats = require('ajv-formats');
		const YAML = require('yaml');
		// ESM only: import it from where require would find it.
		const validatorPath = require.resolve('@seriousme/openapi-schema-validator');
		const { Validator } = await import(pathToFileURL(validatorPath).href);
		return {
			Ajv2020: Ajv2020.default || Ajv2020,
			addFormats: addFormats.default || addFormats,
			YAML,
			Validator,
		};
	} catch (e) {
		console.log('Bail out! node modules missing: run npm ci in tests/web');
		console.log(`# ${nodeDir}: ${e.message.split('\n')[0]}`);
		process.exit(99);
	}
}

export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// A JSON pointer as an ajv schema reference into the document.
export function pointer(...segments) {
	return (
		'#' +
		segments
			.map((s) => '/' + encodeURIComponent(String(s).replace(/~/g, '~0').replace(/\//g, '~1')))
			.join('')
	);
}

// Follow a "$ref" of the document (responses, parameters, headers: the
// objects ajv does not resolve for us).
export function deref(doc, obj) {
	const seen = new Set();
	while (obj && typeof obj === 'object' && typeof obj.$ref === 'string') {
		if (seen.has(obj.$ref) || !obj.$ref.startsWith('#/')) throw new Error(`cannot resolve ${obj.$ref}`);
		seen.add(obj.$ref);
		let target = doc;
		for (const raw of obj.$ref.slice(2).split('/')) {
			const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
			target = target?.[key];
		}
		if (target === undefined) throw new Error(`${obj.$ref} does not exist`);
		obj = target;
	}
	return obj;
}

// One ajv for the whole document: schemas are compiled by their place in
// it, so "#/components/schemas/..." references resolve as the document
// means them.  Strict mode: an unknown keyword (a typo, or OpenAPI 3.0's
// "nullable" and "example") is an error, not an ignored annotation.
export function documentAjv(mods, doc) {
	const ajv = new mods.Ajv2020({ strict: true, allErrors: true, validateSchema: false });
	mods.addFormats(ajv);
	// ajv knows OpenAPI 3.0's "nullable"; 3.1 tools do not (type: [x,
	// "null"] is the 3.1 way), so here it is an unknown keyword like any.
	ajv.removeKeyword('nullable');
	// The document's own top-level fields (openapi, info, paths, ...) are
	// no schema keywords: declared as inert ones, the root compiles and
	// strict mode still applies inside each schema.
	ajv.addVocabulary(Object.keys(doc).filter((k) => !k.startsWith('$')));
	ajv.addSchema(doc, 'openapi');
	return {
		ajv,
		compile(...segments) {
			const ref = 'openapi' + pointer(...segments);
			const v = ajv.getSchema(ref);
			if (!v) throw new Error(`no schema at ${ref}`);
			return v;
		},
	};
}

export function formatAjvErrors(errors) {
	return (errors || [])
		.slice(0, 6)
		.map((e) => `${e.instancePath || '(root)'} ${e.message}${e.params && Object.keys(e.params).length ? ' ' + JSON.stringify(e.params) : ''}`)
		.join('; ');
}

export function loadDocument(mods, file) {
	return mods.YAML.parse(readFileSync(file, 'utf8'));
}

// Every operation of the document: [path, method, operation, pathItem].
export function operations(doc) {
	const out = [];
	for (const [path, item] of Object.entries(doc.paths || {}))
		for (const m of METHODS) if (item[m]) out.push([path, m, item[m], item]);
	return out;
}

// ---------------------------------------------------------------------------

const BODY_TYPES = {
	none: [],
	json: ['application/json'],
	'json-or-form': ['application/json', 'application/x-www-form-urlencoded'],
};
const LIMIT_CLASSES = ['none', 'auth', 'chat', 'read'];

let failed = 0;
function report(ok, what, details = []) {
	console.log(`${ok ? 'ok' : 'not ok'} - ${what}`);
	if (!ok) {
		failed++;
		for (const d of details.slice(0, 40)) console.log(`#   ${d}`);
		if (details.length > 40) console.log(`#   ... and ${details.length - 40} more`);
	}
}

function parseRoutes(text) {
	const routes = [];
	const problems = [];
	for (const [i, line] of text.split('\n').entries()) {
		if (!line.trim()) continue;
		const f = line.split('\t');
		if (f.length < 5 || !['token', 'public'].includes(f[2]) || !(f[3] in BODY_TYPES) || !LIMIT_CLASSES.includes(f[4]))
			problems.push(`line ${i + 1} is not METHOD PATTERN token|public BODY LIMIT [NAME]: ${JSON.stringify(line)}`);
		else routes.push({ method: f[0], pattern: f[1], token: f[2] === 'token', body: f[3], limit: f[4], name: f[5] });
	}
	return { routes, problems };
}

// The statuses worker.c's pipeline can give a route before its handler
// runs, from the table's columns alone: they must all be documented.
function pipelineStatuses(route) {
	const s = ['413', '500'];
	if (route.body !== 'none') s.push('400', '415');
	if (route.token) s.push('401');
	if (route.limit !== 'none') s.push('429');
	if (route.pattern.includes('{')) s.push('404');
	return s;
}

function collectSchemas(doc) {
	// [description, segments...] of every schema the document holds.
	const out = [];
	for (const name of Object.keys(doc.components?.schemas || {})) out.push([`components.schemas.${name}`, 'components', 'schemas', name]);
	for (const [name, p] of Object.entries(doc.components?.parameters || {}))
		if (p.schema) out.push([`components.parameters.${name}`, 'components', 'parameters', name, 'schema']);
	for (const [name, h] of Object.entries(doc.components?.headers || {}))
		if (h.schema) out.push([`components.headers.${name}`, 'components', 'headers', name, 'schema']);
	const content = (where, segs, c) => {
		for (const [type, media] of Object.entries(c || {})) if (media.schema) out.push([`${where} ${type}`, ...segs, 'content', type, 'schema']);
	};
	const headers = (where, segs, h) => {
		for (const [name, hd] of Object.entries(h || {})) if (hd.schema) out.push([`${where} header ${name}`, ...segs, 'headers', name, 'schema']);
	};
	for (const [name, r] of Object.entries(doc.components?.responses || {})) {
		content(`components.responses.${name}`, ['components', 'responses', name], r.content);
		headers(`components.responses.${name}`, ['components', 'responses', name], r.headers);
	}
	for (const [path, m, op] of operations(doc)) {
		const where = `${m.toUpperCase()} ${path}`;
		if (op.requestBody?.content) content(`${where} request`, ['paths', path, m, 'requestBody'], op.requestBody.content);
		for (const [i, p] of (op.parameters || []).entries()) if (p.schema) out.push([`${where} parameter ${p.name}`, 'paths', path, m, 'parameters', i, 'schema']);
		for (const [status, r] of Object.entries(op.responses || {})) {
			content(`${where} ${status}`, ['paths', path, m, 'responses', status], r.content);
			headers(`${where} ${status}`, ['paths', path, m, 'responses', status], r.headers);
		}
	}
	return out;
}

// [description, value, segments of the schema] for every example.
function collectExamples(doc) {
	const out = [];
	const media = (where, segs, c) => {
		for (const [type, mt] of Object.entries(c || {})) {
			if (!mt.schema) continue;
			const s = [...segs, 'content', type, 'schema'];
			if ('example' in mt) out.push([`${where} ${type} example`, mt.example, s]);
			for (const [n, ex] of Object.entries(mt.examples || {})) out.push([`${where} ${type} examples.${n}`, deref(doc, ex).value, s]);
		}
	};
	const withSchema = (where, segs, obj) => {
		if (obj.schema && 'example' in obj) out.push([`${where} example`, obj.example, [...segs, 'schema']]);
	};
	for (const [name, s] of Object.entries(doc.components?.schemas || {}))
		for (const [i, ex] of (s.examples || []).entries()) out.push([`components.schemas.${name} examples[${i}]`, ex, ['components', 'schemas', name]]);
	for (const [name, p] of Object.entries(doc.components?.parameters || {})) withSchema(`components.parameters.${name}`, ['components', 'parameters', name], p);
	for (const [name, h] of Object.entries(doc.components?.headers || {})) withSchema(`components.headers.${name}`, ['components', 'headers', name], h);
	for (const [name, r] of Object.entries(doc.components?.responses || {})) media(`components.responses.${name}`, ['components', 'responses', name], r.content);
	for (const [path, m, op] of operations(doc)) {
		const where = `${m.toUpperCase()} ${path}`;
		if (op.requestBody?.content) media(`${where} request`, ['paths', path, m, 'requestBody'], op.requestBody.content);
		for (const [status, r] of Object.entries(op.responses || {})) media(`${where} ${status}`, ['paths', path, m, 'responses', status], r.content);
	}
	return out;
}

// An example is a value of its schema's type (a parameter's example 7 is
// the number, not the string "7"), so it is checked as it stands.
function checkExample(compiled, value) {
	return compiled(value) ? null : formatAjvErrors(compiled.errors);
}

async function main() {
	const args = process.argv.slice(2);
	const opt = (name) => {
		const i = args.indexOf(name);
		return i >= 0 ? args[i + 1] : undefined;
	};
	const docFile = opt('--doc') || join(srcdir, 'openapi.yaml');
	const routesFile = opt('--routes');
	const mods = await loadModules();

	let doc;
	try {
		doc = loadDocument(mods, docFile);
		// Swagger UI's js-yaml reads YAML 1.1, where an unquoted no, off or
		// 2026-11-28 is no string: the document must mean the same to both.
		const as11 = mods.YAML.parse(readFileSync(docFile, 'utf8'), { version: '1.1' });
		const same = JSON.stringify(as11) === JSON.stringify(doc);
		report(doc && typeof doc === 'object' && same, `${docFile} parses as YAML, the same as YAML 1.2 and 1.1`, same ? [] : ['a value reads differently under YAML 1.1 (quote it)']);
	} catch (e) {
		report(false, `${docFile} parses as YAML`, [e.message.split('\n')[0]]);
		process.exit(1);
	}
	if (!doc || typeof doc !== 'object') process.exit(1);

	// 1. The document against the OpenAPI 3.1 schema (references included).
	const validator = new mods.Validator();
	const res = await validator.validate(doc);
	const schemaProblems = [];
	if (doc.openapi !== '3.1.0') schemaProblems.push(`openapi is ${JSON.stringify(doc.openapi)}, not "3.1.0"`);
	if (!res.valid)
		for (const e of Array.isArray(res.errors) ? res.errors : [res.errors])
			schemaProblems.push(typeof e === 'string' ? e : `${e.instancePath || '(root)'} ${e.message} ${JSON.stringify(e.params)}`);
	report(schemaProblems.length === 0, 'the document is OpenAPI 3.1.0 and valid against the 3.1 schema (@seriousme/openapi-schema-validator)', schemaProblems);

	// 2. Every schema compiles strictly; every example matches its schema.
	const { compile } = documentAjv(mods, doc);
	const schemas = collectSchemas(doc);
	const compileProblems = [];
	for (const [where, ...segs] of schemas) {
		try {
			compile(...segs);
		} catch (e) {
			compileProblems.push(`${where}: ${e.message.split('\n')[0]}`);
		}
	}
	report(compileProblems.length === 0, `all ${schemas.length} schemas compile as JSON Schema 2020-12 in ajv's strict mode`, compileProblems);
	const examples = collectExamples(doc);
	const exampleProblems = [];
	for (const [where, value, segs] of examples) {
		try {
			const why = checkExample(compile(...segs), value);
			if (why) exampleProblems.push(`${where}: ${why}`);
		} catch (e) {
			exampleProblems.push(`${where}: ${e.message.split('\n')[0]}`);
		}
	}
	report(exampleProblems.length === 0 && examples.length > 0, `all ${examples.length} examples match their schemas`, exampleProblems);

	// 3. What every operation must say.
	const ops = operations(doc);
	const shape = [];
	for (const [path, m, op] of ops) {
		const where = `${m.toUpperCase()} ${path}`;
		if (!op.operationId) shape.push(`${where}: no operationId`);
		if (!op.summary || !op.description) shape.push(`${where}: no summary or description`);
		if (!Array.isArray(op.tags) || !op.tags.length) shape.push(`${where}: no tags`);
		if (!Array.isArray(op.security)) shape.push(`${where}: no explicit security (public routes say security: [])`);
		if (!LIMIT_CLASSES.includes(op['x-rate-limit-class'])) shape.push(`${where}: x-rate-limit-class is ${JSON.stringify(op['x-rate-limit-class'])}, not one of ${LIMIT_CLASSES.join('|')}`);
		if (!op.responses?.['500']) shape.push(`${where}: 500 not documented`);
	}
	const unrouted = doc['x-unrouted-responses'] || {};
	if (!unrouted['unknown-path']?.['404']) shape.push('x-unrouted-responses: no 404 for unknown paths');
	if (!unrouted['unknown-method']?.['405']) shape.push('x-unrouted-responses: no 405 for unknown methods');
	else if (!deref(doc, unrouted['unknown-method']['405']).headers?.Allow) shape.push('x-unrouted-responses: the 405 has no Allow header');
	const schemes = doc.components?.securitySchemes || {};
	const bearer = Object.values(schemes).filter((s) => s.type === 'http' && /^bearer$/i.test(s.scheme));
	const password = Object.values(schemes).filter((s) => s.type === 'oauth2' && s.flows?.password);
	if (!bearer.length || bearer.some((s) => s.bearerFormat !== 'JWT')) shape.push('securitySchemes: no HTTP bearer scheme with bearerFormat JWT');
	for (const s of password) {
		const login = doc.paths?.[s.flows.password.tokenUrl]?.post;
		if (!login?.requestBody?.content?.['application/x-www-form-urlencoded'])
			shape.push(`securitySchemes: tokenUrl ${s.flows.password.tokenUrl} is no POST that takes the OAuth2 form`);
		else if (login.security?.length) shape.push(`securitySchemes: tokenUrl ${s.flows.password.tokenUrl} itself needs a token`);
	}
	if (!password.length) shape.push('securitySchemes: no OAuth2 password flow');
	try {
		const ac = readFileSync(join(srcdir, 'configure.ac'), 'utf8').match(/AC_INIT\(\[[^\]]*\],\s*\[([^\]]*)\]/);
		if (ac && doc.info?.version !== ac[1]) shape.push(`info.version is ${doc.info?.version}, configure.ac says ${ac[1]}`);
	} catch {
		// No configure.ac (an installed copy): nothing to compare with.
	}
	report(shape.length === 0, `every operation (${ops.length}) has an operationId, summary, description, tags, explicit security, x-rate-limit-class and its 500; security schemes, unrouted answers and version are sound`, shape);

	if (routesFile === undefined) {
		console.log('# no --routes: the route table was not compared');
		process.exit(failed ? 1 : 0);
	}

	// 4. The route table against the document, both ways.
	const { routes, problems } = parseRoutes(readFileSync(routesFile === '-' ? 0 : routesFile, 'utf8'));
	report(problems.length === 0 && routes.length > 0, `the route table parses (${routes.length} routes)`, problems.length ? problems : ['no route at all']);
	// The router writes every path parameter "{id}"; the document names
	// them ({id}, {user_id}, {message_id}: names must differ in a path).
	const key = (m, p) => `${m.toUpperCase()} ${p.replace(/\{[^}]+\}/g, '{id}')}`;
	const documented = new Map(ops.map(([p, m, op]) => [key(m, p), op]));
	const inTable = new Set(routes.map((r) => key(r.method, r.pattern)));
	report(
		routes.every((r) => documented.has(key(r.method, r.pattern))),
		'every route of the table is documented',
		routes.filter((r) => !documented.has(key(r.method, r.pattern))).map((r) => `${key(r.method, r.pattern)} (${r.name}) is in the router's table but not in the document`),
	);
	report(
		[...documented.keys()].every((k) => inTable.has(k)),
		'every documented operation is a route of the table',
		[...documented.keys()].filter((k) => !inTable.has(k)).map((k) => `${k} is in the document but not in the router's table`),
	);

	const mismatch = { security: [], limit: [], body: [], name: [], statuses: [] };
	for (const r of routes) {
		const op = documented.get(key(r.method, r.pattern));
		if (!op) continue;
		const where = key(r.method, r.pattern);
		const security = op.security ?? doc.security ?? [];
		const needsToken = security.length > 0 && security.every((req) => Object.keys(req).length > 0);
		const optional = security.some((req) => Object.keys(req).length === 0);
		if (needsToken !== r.token || (r.token && optional))
			mismatch.security.push(`${where}: the router says ${r.token ? 'a token is required' : 'public'}, the document's security is ${JSON.stringify(security)}`);
		for (const req of security)
			for (const name of Object.keys(req)) if (!schemes[name]) mismatch.security.push(`${where}: security names an unknown scheme ${name}`);
		if (op['x-rate-limit-class'] !== r.limit)
			mismatch.limit.push(`${where}: the router's class is ${r.limit}, the document says ${op['x-rate-limit-class']}`);
		const want = BODY_TYPES[r.body];
		const got = Object.keys(op.requestBody ? deref(doc, op.requestBody).content || {} : {}).sort();
		if (want.join() !== got.join()) mismatch.body.push(`${where}: the router takes ${r.body} (${want.join(', ') || 'no body'}), the document ${got.join(', ') || 'no body'}`);
		else if (want.length && deref(doc, op.requestBody).required !== true) mismatch.body.push(`${where}: the request body is not marked required`);
		if (r.name && op.operationId !== r.name) mismatch.name.push(`${where}: operationId ${op.operationId}, the route (and metrics label) is ${r.name}`);
		const missing = pipelineStatuses(r).filter((s) => !op.responses?.[s]);
		if (missing.length) mismatch.statuses.push(`${where}: ${missing.join(', ')} not documented`);
	}
	report(mismatch.security.length === 0, 'security matches whether each route needs a token', mismatch.security);
	report(mismatch.limit.length === 0, 'x-rate-limit-class matches each route\'s rate-limit class', mismatch.limit);
	report(mismatch.body.length === 0, 'request body media types match each route\'s body kind', mismatch.body);
	report(mismatch.name.length === 0, 'operationId is each route\'s name (its metrics label)', mismatch.name);
	report(mismatch.statuses.length === 0, 'the statuses the pipeline can give each route (413, 500; 400 and 415 with a body; 401 with a token; 429 when limited; 404 with an id) are documented', mismatch.statuses);

	process.exit(failed ? 1 : 0);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
