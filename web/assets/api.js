// chat-fcgi web client: HTTP to the API of the same origin.
//
// Every request goes through request(), which
//  - sends JSON and the bearer token, reads the JSON answer or the error
//    envelope {error, detail, field?} into an ApiError;
//  - knows the server's rate-limit class of each route (auth, chat, read:
//    SPEC §3) and keeps one "gate" per class: after a 429 no request of that
//    class leaves before Retry-After has passed, and the first one after the
//    wait goes alone (a probe) so that queued requests do not all fire at once;
//  - retries a 429 itself once the wait is over (a 429 is decided before any
//    database work, so a retry is always safe), at most MAX_429_RETRIES times;
//  - remembers RateLimit-Remaining of the read class for the pollers;
//  - reports a 401 on an authenticated call to the app (session over).
//
// docs/CLIENT.md describes the behaviour as a whole.

const MAX_429_RETRIES = 5;
const MAX_WAIT_S = 3600;

export class ApiError extends Error {
	constructor(status, body, retryAfter) {
		const detail = body && typeof body.detail === 'string' ? body.detail : null;
		super(detail || (status ? `HTTP ${status}` : 'network error'));
		this.status = status; // 0: no answer (network, aborted)
		this.code = body && typeof body.error === 'string' ? body.error : (status ? 'http_' + status : 'network');
		this.detail = detail;
		this.field = body && typeof body.field === 'string' ? body.field : null;
		this.retryAfter = retryAfter; // seconds, for 429 and 503
	}
}

// The rate-limit class of a route, as the router (src/router.c) assigns it.
export function limitClass(method, path) {
	if (method === 'POST' && /^\/auth\/(register|login|password)$/.test(path)) return 'auth';
	if ((method === 'POST' || method === 'DELETE') && path.startsWith('/chat/')) return 'chat';
	if (method === 'GET' && (path.startsWith('/chat/') || path === '/auth/me')) return 'read';
	return null;
}

const gates = { auth: 0, chat: 0, read: 0 }; // Date.now() before which the class waits
const recovering = { auth: false, chat: false, read: false }; // next request is a probe
const probes = { auth: null, chat: null, read: null }; // the probe in flight
export const remaining = { auth: null, chat: null, read: null }; // last RateLimit-Remaining
// The last RateLimit-{Limit,Remaining,Reset} of each class and when they came,
// to estimate what is left now (remainingNow).
const budget = { auth: null, chat: null, read: null };
const listeners = { gate: [], unauthorized: [] };

export function on(event, fn) {
	listeners[event].push(fn);
}
function emit(event, ...args) {
	for (const fn of listeners[event]) fn(...args);
}

// When the class may send again (0 if now), for the UI's countdown.
export function gateUntil(cls) {
	return gates[cls] > Date.now() ? gates[cls] : 0;
}

// Forget the waits of these classes (at logout: chat and read are counted
// per user, so the next user of this tab starts afresh; auth is per address).
export function resetGates(classes = Object.keys(gates)) {
	for (const c of classes) {
		gates[c] = 0;
		recovering[c] = false;
		probes[c] = null;
		remaining[c] = null;
		budget[c] = null;
	}
}

// How many requests of the class the server would admit now, estimated from
// its last headers: the allowance refills evenly, from `remaining` to
// `limit` over `reset` seconds (GCRA, docs/RATELIMIT.md).  null: unknown.
export function remainingNow(cls) {
	const b = budget[cls];
	if (!b) return null;
	if (gates[cls] > Date.now()) return 0;
	if (b.remaining >= b.limit || b.reset <= 0) return b.remaining;
	const per = (b.reset * 1000) / (b.limit - b.remaining); // ms per request regained
	return Math.min(b.limit, b.remaining + Math.floor((Date.now() - b.at) / per));
}

export function sleep(ms, signal) {
	return new Promise((resolve, reject) => {
		if (signal && signal.aborted) return reject(abortError());
		const t = setTimeout(done, Math.max(0, ms));
		function done() {
			if (signal) signal.removeEventListener('abort', onAbort);
			resolve();
		}
		function onAbort() {
			clearTimeout(t);
			reject(abortError());
		}
		if (signal) signal.addEventListener('abort', onAbort, { once: true });
	});
}

function abortError() {
	return new DOMException('aborted', 'AbortError');
}

export function isAbort(e) {
	return e && e.name === 'AbortError';
}

// Seconds from Retry-After (delta-seconds form; the API sends no dates), else
// from the body's retry_after, else 1; bounded.
function retryAfterSeconds(res, body) {
	let s = Number.parseInt(res.headers.get('Retry-After') || '', 10);
	if (!Number.isFinite(s) && body && Number.isInteger(body.retry_after)) s = body.retry_after;
	if (!Number.isFinite(s) || s < 1) s = 1;
	return Math.min(s, MAX_WAIT_S);
}

// Wait until the class's gate is open and no probe is in flight.
async function acquire(cls, signal) {
	for (;;) {
		const wait = gates[cls] - Date.now();
		if (wait > 0) {
			await sleep(wait, signal);
			continue;
		}
		if (probes[cls]) {
			await Promise.race([probes[cls], sleep(MAX_WAIT_S * 1000, signal)]).catch(() => {});
			if (signal && signal.aborted) throw abortError();
			continue;
		}
		return;
	}
}

async function readBody(res) {
	if (res.status === 204) return null;
	const type = res.headers.get('Content-Type') || '';
	if (!type.startsWith('application/json')) return null;
	try {
		return await res.json();
	} catch {
		return null;
	}
}

// request(method, path, {json, token, headers, signal, onWait, noRetry})
//   json: a value sent as the JSON body; token: bearer token (an
//   authenticated call: its 401 is reported through on('unauthorized'));
//   onWait(seconds, until): called when a 429 makes this request wait;
//   noRetry: a 429 rejects at once (the gate still closes), for requests
//   that are better skipped than queued (read marks).
// Resolves to the parsed JSON (null for 204); rejects with ApiError or an
// AbortError.
export async function request(method, path, opts = {}) {
	const cls = limitClass(method, path.split('?')[0]);
	const headers = { Accept: 'application/json' };
	if (opts.json !== undefined) headers['Content-Type'] = 'application/json';
	if (opts.token) headers.Authorization = 'Bearer ' + opts.token;
	Object.assign(headers, opts.headers || {});
	const init = {
		method,
		headers,
		body: opts.json !== undefined ? JSON.stringify(opts.json) : undefined,
		signal: opts.signal,
		cache: 'no-store',
		credentials: 'omit',
		redirect: 'error',
		referrerPolicy: 'no-referrer',
	};

	for (let attempt = 0; ; attempt++) {
		if (cls) await acquire(cls, opts.signal);
		let release = null;
		if (cls && recovering[cls]) probes[cls] = new Promise((r) => (release = r));
		let res, body;
		try {
			try {
				res = await fetch(path, init);
			} catch (e) {
				if (isAbort(e)) throw e;
				throw new ApiError(0, null, null);
			}
			body = await readBody(res);
		} finally {
			if (release) {
				probes[cls] = null;
				release();
			}
		}
		if (cls) {
			const r = Number.parseInt(res.headers.get('RateLimit-Remaining') || '', 10);
			if (Number.isFinite(r)) {
				remaining[cls] = r;
				const l = Number.parseInt(res.headers.get('RateLimit-Limit') || '', 10);
				const z = Number.parseInt(res.headers.get('RateLimit-Reset') || '', 10);
				budget[cls] = Number.isFinite(l) && Number.isFinite(z) ? { remaining: r, limit: l, reset: z, at: Date.now() } : null;
			}
		}
		if (res.ok) {
			if (cls) recovering[cls] = false;
			return body;
		}
		if (res.status === 429 && cls) {
			const s = retryAfterSeconds(res, body);
			gates[cls] = Math.max(gates[cls], Date.now() + s * 1000);
			recovering[cls] = true;
			emit('gate', cls, gates[cls]);
			if (attempt < MAX_429_RETRIES && !opts.noRetry) {
				if (opts.onWait) opts.onWait(s, gates[cls]);
				continue;
			}
			throw new ApiError(429, body, s);
		}
		if (cls) recovering[cls] = false;
		const retryAfter = res.status === 503 ? retryAfterSeconds(res, body) : null;
		const err = new ApiError(res.status, body, retryAfter);
		if (res.status === 401 && opts.token) emit('unauthorized', err);
		throw err;
	}
}

// ---- the session token ----------------------------------------------------
//
// Kept in memory and in sessionStorage (this tab only, survives a reload,
// gone when the tab closes); never in localStorage or a cookie.

const KEY = 'chat-fcgi.session';

export function loadSession() {
	let s;
	try {
		s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
	} catch {
		s = null;
	}
	if (!s || typeof s.token !== 'string' || typeof s.expiresAt !== 'number') return null;
	if (s.expiresAt <= Date.now()) {
		clearSession();
		return { expired: true };
	}
	return s;
}

export function saveSession(token, expiresIn) {
	const s = { token, expiresAt: Date.now() + Math.max(0, Number(expiresIn) || 0) * 1000 };
	try {
		sessionStorage.setItem(KEY, JSON.stringify(s));
	} catch {
		// Storage disabled: the session lives in memory only (lost on reload).
	}
	return s;
}

export function clearSession() {
	try {
		sessionStorage.removeItem(KEY);
	} catch {
		// nothing stored
	}
}

// An Idempotency-Key: 128 random bits in hex (crypto.getRandomValues works
// outside secure contexts too, unlike randomUUID).
export function newIdempotencyKey() {
	const b = new Uint8Array(16);
	crypto.getRandomValues(b);
	return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
