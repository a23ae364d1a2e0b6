// chat-fcgi web client: views, polling and sending.  No framework, no build
// step; user data only ever reaches the page as text (textContent), never as
// markup.  docs/CLIENT.md describes the behaviour and the polling budget.

import * as api from './api.js';

// ---- polling budget (docs/CLIENT.md, "Polling budget") ---------------------
// The read class allows 60 requests per minute per user.  Steady state with
// a conversation open: 60/3 + 60/10 = 26 per minute; nothing while the tab
// is hidden; three times slower while the server says fewer than
// SLOW_BELOW reads are left (other tabs of the same user share the budget).
export const POLL_MESSAGES_MS = 3000;
export const POLL_LIST_MS = 10000;
const SLOW_BELOW = 20; // RateLimit-Remaining of the read class
const FAST_FROM = 40;
const SLOW_FACTOR = 3;
const MAX_BACKOFF_MS = 60000;
const PAGE = 50; // messages per page (the API's default)
const LIST_PAGE = 50;

const $ = (id) => document.getElementById(id);

const state = {
	session: null, // {token, expiresAt}
	me: null, // {id, email, display_name}
	ctl: null, // AbortController of the session (logout aborts everything)
	convs: new Map(), // id -> conversation
	listMore: null, // next_before cursor for "load more conversations"
	seen: new Map(), // id -> last_message_at the user has seen
	conv: null, // the open conversation, see openConversation()
	queue: [], // sends waiting, in order
	sending: false,
	slow: false,
};

// ---- small helpers ---------------------------------------------------------

function el(tag, className, text) {
	const e = document.createElement(tag);
	if (className) e.className = className;
	if (text !== undefined) e.textContent = text;
	return e;
}

function show(elem, on) {
	elem.hidden = !on;
}

function sentence(s) {
	if (!s) return '';
	s = s.charAt(0).toUpperCase() + s.slice(1);
	return /[.!?]$/.test(s) ? s : s + '.';
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

function timeElement(iso) {
	const t = el('time', 'msg-time');
	const d = new Date(iso);
	if (Number.isNaN(d.getTime())) return t;
	t.dateTime = iso;
	const today = new Date();
	t.textContent = d.toDateString() === today.toDateString() ? timeFmt.format(d) : dateTimeFmt.format(d);
	t.title = fullFmt.format(d);
	return t;
}

// A human sentence for an error that is not a field's.
function describe(err) {
	if (err.status === 0) return 'Cannot reach the server. Check the connection and try again.';
	if (err.status === 429) return `Rate limited: try again in ${err.retryAfter} s.`;
	if (err.status === 503)
		return `The service is temporarily unavailable: try again in ${err.retryAfter || 1} s.`;
	if (err.status >= 500) return 'The server failed to answer this request. Try again later.';
	return sentence(err.detail) || `Request failed (HTTP ${err.status}).`;
}

// ---- notices ---------------------------------------------------------------

function notify(text) {
	const n = $('notice');
	n.textContent = text || '';
	show(n, !!text);
}

// The rate-limit line: one entry per class that is waiting, counted down
// every second until its gate opens.
const WHAT = { auth: 'signing in', chat: 'sending', read: 'reading' };
let rlTimer = null;
function renderRateLimit() {
	const parts = [];
	for (const cls of ['chat', 'read', 'auth']) {
		const until = api.gateUntil(cls);
		if (until) parts.push(`Rate limited (${WHAT[cls]}): retrying in ${Math.ceil((until - Date.now()) / 1000)} s.`);
	}
	const n = $('ratelimit');
	n.textContent = parts.join(' ');
	show(n, parts.length > 0);
	clearTimeout(rlTimer);
	rlTimer = parts.length ? setTimeout(renderRateLimit, 1000 - (Date.now() % 1000) + 5) : null;
}
api.on('gate', renderRateLimit);

// ---- forms: field errors ---------------------------------------------------

function clearErrors(form) {
	for (const p of form.querySelectorAll('.field-error, .form-error')) {
		p.textContent = '';
		p.hidden = true;
	}
	for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
}

// Show err next to the input the API named (fields: API field -> input id),
// else as the form's error.
function showError(form, err, fields, formErrorId) {
	const inputId = err.field && fields[err.field];
	if (inputId && (err.status === 422 || err.status === 400 || err.status === 409)) {
		const input = $(inputId);
		const p = $(inputId + '-error');
		const label = form.querySelector(`label[for="${inputId}"]`);
		const name = label ? label.dataset.name || label.firstChild.textContent.trim() : err.field;
		p.textContent = `${name}: ${err.detail || 'invalid value'}`;
		p.hidden = false;
		input.setAttribute('aria-invalid', 'true');
		input.focus();
		return;
	}
	const p = $(formErrorId);
	p.textContent = describe(err);
	p.hidden = false;
}

// Editing a field clears its error.
document.addEventListener('input', (ev) => {
	const t = ev.target;
	if (!(t instanceof HTMLElement) || t.getAttribute('aria-invalid') !== 'true') return;
	t.removeAttribute('aria-invalid');
	const p = document.getElementById(t.id + '-error');
	if (p) {
		p.textContent = '';
		p.hidden = true;
	}
});

function busy(form, on) {
	for (const b of form.querySelectorAll('button, input, textarea')) b.disabled = on;
	form.setAttribute('aria-busy', on ? 'true' : 'false');
}

// ---- pollers ---------------------------------------------------------------

// Reads slow down while the server reports few left (hysteresis).
function slowFactor() {
	const r = api.remaining.read;
	if (r !== null) {
		if (r < SLOW_BELOW) state.slow = true;
		else if (r >= FAST_FROM) state.slow = false;
	}
	return state.slow ? SLOW_FACTOR : 1;
}

class Poller {
	constructor(baseMs, task) {
		this.baseMs = baseMs;
		this.task = task;
		this.timer = null;
		this.active = false;
		this.running = false;
		this.last = 0;
		this.backoff = 0;
	}
	interval() {
		return Math.max(this.backoff, this.baseMs * slowFactor());
	}
	start(delayMs) {
		this.active = true;
		this.backoff = 0;
		this.last = Date.now();
		this.schedule(delayMs === undefined ? this.interval() : delayMs);
	}
	stop() {
		this.active = false;
		clearTimeout(this.timer);
		this.timer = null;
	}
	pause() {
		clearTimeout(this.timer);
		this.timer = null;
	}
	// Tab visible again: run when a full interval has passed since the last run.
	resume() {
		if (!this.active || this.running || this.timer) return;
		this.schedule(this.last + this.interval() - Date.now());
	}
	schedule(ms) {
		clearTimeout(this.timer);
		this.timer = null;
		if (!this.active || document.hidden) return;
		this.timer = setTimeout(() => this.run(), Math.max(0, ms));
	}
	async run() {
		this.timer = null;
		if (!this.active || this.running || document.hidden) return;
		this.running = true;
		this.last = Date.now();
		try {
			await this.task();
			this.backoff = 0;
		} catch (e) {
			if (!api.isAbort(e)) {
				if (e.status === 503 && e.retryAfter) this.backoff = e.retryAfter * 1000;
				else this.backoff = Math.min(MAX_BACKOFF_MS, Math.max(this.backoff * 2, this.baseMs * 2));
			}
		} finally {
			this.running = false;
		}
		this.last = Date.now();
		this.schedule(this.interval());
	}
}

const messagesPoller = new Poller(POLL_MESSAGES_MS, pollMessages);
const listPoller = new Poller(POLL_LIST_MS, () => refreshList(false));

document.addEventListener('visibilitychange', () => {
	for (const p of [messagesPoller, listPoller]) {
		if (document.hidden) p.pause();
		else p.resume();
	}
});

// ---- session ----------------------------------------------------------------

function authed(method, path, opts = {}) {
	return api.request(method, path, {
		...opts,
		token: state.session.token,
		signal: opts.signal || state.ctl.signal,
	});
}

api.on('unauthorized', () => {
	if (state.session) endSession('Your session has ended (signed out elsewhere, or expired). Please sign in again.');
});

function showAuthView() {
	show($('loading'), false);
	show($('chat-view'), false);
	show($('account'), false);
	show($('auth-view'), true);
	document.title = 'Sign in · chat-fcgi';
}

async function startSession(session) {
	state.session = session;
	state.ctl = new AbortController();
	const signal = state.ctl.signal;
	show($('loading'), true);
	show($('auth-view'), false);
	let me;
	for (let delay = 2000; ; delay = Math.min(2 * delay, MAX_BACKOFF_MS)) {
		try {
			me = await authed('GET', '/auth/me');
			break;
		} catch (e) {
			if (api.isAbort(e) || signal.aborted) return;
			if (e.status === 401) return; // endSession() already ran
			// The server is unreachable or busy: keep the token, try again.
			const wait = Math.max(delay, (e.retryAfter || 0) * 1000);
			notify(`${describe(e)} Trying again in ${Math.round(wait / 1000)} s.`);
			try {
				await api.sleep(wait, signal);
			} catch {
				return;
			}
		}
	}
	if (signal.aborted) return;
	notify('');
	state.me = me;
	$('me-name').textContent = me.display_name;
	$('me-email').textContent = `(${me.email})`;
	show($('loading'), false);
	show($('auth-view'), false);
	$('logout').disabled = false;
	show($('account'), true);
	show($('chat-view'), true);
	document.title = 'chat-fcgi';
	await refreshList(true).catch(() => {});
	if (signal.aborted) return;
	listPoller.start();
	routeFromHash();
}

// Back to the login form: everything of the session is stopped and dropped.
function endSession(message) {
	if (state.ctl) state.ctl.abort();
	messagesPoller.stop();
	listPoller.stop();
	api.clearSession();
	api.resetGates(['chat', 'read']);
	state.session = null;
	state.me = null;
	state.ctl = null;
	state.convs.clear();
	state.seen.clear();
	state.listMore = null;
	state.conv = null;
	state.queue = [];
	state.sending = false;
	state.slow = false;
	$('conv-list').replaceChildren();
	renderList.sig = null;
	$('messages').replaceChildren();
	$('pending').replaceChildren();
	show($('conv-open'), false);
	show($('conv-placeholder'), true);
	for (const f of document.querySelectorAll('form')) {
		clearErrors(f);
		busy(f, false);
	}
	if (location.hash) history.replaceState(null, '', location.pathname + location.search);
	renderRateLimit();
	notify(message);
	showAuthView();
	$('login-email').focus();
}

async function logout() {
	const token = state.session && state.session.token;
	if (!token || $('logout').disabled) return;
	$('logout').disabled = true;
	// Stop polling first, then revoke the token on the server.
	state.ctl.abort();
	messagesPoller.stop();
	listPoller.stop();
	let message = 'You have signed out.';
	try {
		await api.request('POST', '/auth/logout', { headers: { Authorization: 'Bearer ' + token } });
	} catch (e) {
		if (e.status !== 401)
			message = 'Signed out in this tab, but the server could not be told (' + describe(e) +
				') The token stays valid until it expires.';
	}
	endSession(message);
}

// ---- login and registration --------------------------------------------------

const LOGIN_FIELDS = { email: 'login-email', username: 'login-email', password: 'login-password' };
const REGISTER_FIELDS = { email: 'register-email', password: 'register-password', display_name: 'register-name' };

async function login(email, password) {
	const r = await api.request('POST', '/auth/login', { json: { email, password } });
	if (!r || typeof r.access_token !== 'string') throw new api.ApiError(500, null, null);
	return api.saveSession(r.access_token, r.expires_in);
}

$('login-form').addEventListener('submit', async (ev) => {
	ev.preventDefault();
	const form = ev.currentTarget;
	clearErrors(form);
	notify('');
	const email = $('login-email').value.trim();
	const password = $('login-password').value;
	busy(form, true);
	try {
		const session = await login(email, password);
		$('login-password').value = '';
		busy(form, false);
		await startSession(session);
	} catch (e) {
		busy(form, false);
		showError(form, e, LOGIN_FIELDS, 'login-error');
	}
});

$('register-form').addEventListener('submit', async (ev) => {
	ev.preventDefault();
	const form = ev.currentTarget;
	clearErrors(form);
	notify('');
	const email = $('register-email').value.trim();
	const password = $('register-password').value;
	const name = $('register-name').value.trim();
	const body = { email, password };
	if (name) body.display_name = name;
	busy(form, true);
	try {
		await api.request('POST', '/auth/register', { json: body });
	} catch (e) {
		busy(form, false);
		showError(form, e, REGISTER_FIELDS, 'register-error');
		return;
	}
	try {
		const session = await login(email, password);
		form.reset();
		busy(form, false);
		await startSession(session);
	} catch (e) {
		busy(form, false);
		const p = $('register-error');
		p.textContent = 'The account was created, but signing in failed: ' + describe(e) +
			' Use the sign-in form.';
		p.hidden = false;
	}
});

$('logout').addEventListener('click', logout);

// ---- the conversation list -----------------------------------------------------

function activityOf(c) {
	return c.last_message_at || c.created_at || '';
}

function renderList() {
	const ul = $('conv-list');
	const items = [...state.convs.values()].sort((a, b) => {
		const x = activityOf(a), y = activityOf(b);
		return x < y ? 1 : x > y ? -1 : b.id - a.id;
	});
	const open = state.conv && state.conv.id;
	const sig = JSON.stringify([open, state.listMore, items.map((c) =>
		[c.id, c.title, c.last_message_at, state.seen.get(c.id)])]);
	if (sig === renderList.sig && ul.childElementCount === items.length) return;
	renderList.sig = sig;
	const focused = ul.contains(document.activeElement) ? document.activeElement.dataset.id : null;
	ul.replaceChildren(...items.map((c) => {
		const li = el('li', 'conv');
		const b = el('button', 'conv-item');
		b.type = 'button';
		b.dataset.id = String(c.id);
		const title = el('bdi', 'conv-title', c.title);
		const meta = el('span', 'conv-meta');
		if (c.last_message_at) meta.append(timeElement(c.last_message_at));
		else meta.textContent = 'no messages yet';
		b.append(title, meta);
		const seen = state.seen.get(c.id);
		if (c.id !== open && c.last_message_at && seen !== c.last_message_at) {
			b.classList.add('unread');
			b.append(el('span', 'visually-hidden', ' (new messages)'));
		}
		if (c.id === open) b.setAttribute('aria-current', 'true');
		b.addEventListener('click', () => navigate(c.id));
		li.append(b);
		return li;
	}));
	show($('conv-empty'), items.length === 0);
	show($('conv-more'), state.listMore !== null);
	if (focused) {
		const b = ul.querySelector(`button[data-id="${focused}"]`);
		if (b) b.focus();
	}
}

// The first page again (a poll), or on first load; keeps pages loaded with
// "load more" (they are merged by id).
async function refreshList(first) {
	if (!state.session) return;
	const r = await authed('GET', `/chat/conversations?limit=${LIST_PAGE}`);
	for (const c of r.items) {
		if (first && !state.seen.has(c.id)) state.seen.set(c.id, c.last_message_at);
		state.convs.set(c.id, c);
	}
	if (first) state.listMore = r.next_before;
	if (state.conv) {
		const c = state.convs.get(state.conv.id);
		if (c) state.seen.set(c.id, c.last_message_at);
	}
	renderList();
}

$('conv-more').addEventListener('click', async () => {
	if (state.listMore === null) return;
	const b = $('conv-more');
	b.disabled = true;
	try {
		const r = await authed('GET', `/chat/conversations?limit=${LIST_PAGE}&before=${state.listMore}`);
		for (const c of r.items) {
			if (!state.seen.has(c.id)) state.seen.set(c.id, c.last_message_at);
			state.convs.set(c.id, c);
		}
		state.listMore = r.next_before;
		renderList();
	} catch (e) {
		if (!api.isAbort(e)) notify(describe(e));
	} finally {
		b.disabled = false;
	}
});

$('new-conv-form').addEventListener('submit', async (ev) => {
	ev.preventDefault();
	const form = ev.currentTarget;
	clearErrors(form);
	const title = $('new-conv-title').value;
	const members = $('new-conv-members').value.split(/[\s,;]+/).filter(Boolean);
	busy(form, true);
	try {
		const c = await authed('POST', '/chat/conversations', { json: { title, members } });
		form.reset();
		state.convs.set(c.id, c);
		state.seen.set(c.id, c.last_message_at);
		renderList();
		navigate(c.id);
	} catch (e) {
		if (!api.isAbort(e)) showError(form, e, { title: 'new-conv-title', members: 'new-conv-members' }, 'new-conv-error');
	} finally {
		busy(form, false);
	}
});

// ---- routing: #/c/<id> opens a conversation ------------------------------------

function navigate(id) {
	const h = `#/c/${id}`;
	if (location.hash === h) openConversation(id);
	else location.hash = h;
}

function routeFromHash() {
	if (!state.session || !state.me) return;
	const m = /^#\/c\/([1-9][0-9]{0,18})$/.exec(location.hash);
	if (m) openConversation(Number(m[1]));
	else closeConversation();
}
window.addEventListener('hashchange', routeFromHash);

// ---- the open conversation -------------------------------------------------------

function closeConversation() {
	if (state.conv) state.conv.ctl.abort();
	messagesPoller.stop();
	state.conv = null;
	$('messages').replaceChildren();
	$('pending').replaceChildren();
	show($('conv-open'), false);
	show($('conv-placeholder'), true);
	renderList();
}

async function openConversation(id) {
	if (state.conv && state.conv.id === id) return;
	if (state.conv) state.conv.ctl.abort();
	messagesPoller.stop();
	const ctl = new AbortController();
	state.ctl.signal.addEventListener('abort', () => ctl.abort(), { once: true });
	const conv = {
		id,
		ctl,
		detail: null,
		ids: [], // message ids shown, ascending
		// The poll cursor: the highest id received from a read of the message
		// list (not from our own sends: another member's message committed
		// just before ours has a smaller id and must still be fetched).
		cursor: 0,
		oldest: 0,
		hasOlder: false,
		loadingOlder: false,
	};
	state.conv = conv;
	const known = state.convs.get(id);
	$('conv-title-text').textContent = known ? known.title : '…';
	$('conv-members').textContent = '';
	$('messages').replaceChildren();
	renderPending();
	show($('add-member-form'), false);
	show($('load-older'), false);
	show($('history-start'), false);
	clearErrors($('send-form'));
	show($('conv-placeholder'), false);
	show($('conv-open'), true);
	if (known) state.seen.set(id, known.last_message_at);
	renderList();

	try {
		await loadConversation(conv);
	} catch (e) {
		if (api.isAbort(e) || state.conv !== conv) return;
		if (e.status === 404) {
			notify('That conversation does not exist, or you are not a member of it.');
			history.replaceState(null, '', location.pathname + location.search);
			closeConversation();
		} else {
			notify(describe(e));
			// The poller tries again, backing off.
			messagesPoller.start(Math.max(2 * POLL_MESSAGES_MS, (e.retryAfter || 0) * 1000));
		}
		return;
	}
	if (state.conv !== conv) return;
	$('send-body').focus();
	messagesPoller.start();
}

// The conversation's details and its latest page of messages.
async function loadConversation(conv) {
	const log = $('messages-scroll');
	log.setAttribute('aria-busy', 'true'); // no live announcement of a whole page
	try {
		const [detail, page] = await Promise.all([
			authed('GET', `/chat/conversations/${conv.id}`, { signal: conv.ctl.signal }),
			authed('GET', `/chat/conversations/${conv.id}/messages?limit=${PAGE}`, { signal: conv.ctl.signal }),
		]);
		if (state.conv !== conv) return;
		conv.detail = detail;
		renderHeader();
		addMessages(page.items, 'initial');
		if (page.items.length) conv.cursor = Math.max(conv.cursor, page.items[page.items.length - 1].id);
		conv.hasOlder = page.items.length === PAGE;
		renderHistoryTop();
		scrollToBottom();
		notify('');
	} finally {
		log.setAttribute('aria-busy', 'false');
	}
}

function renderHeader() {
	const conv = state.conv;
	const d = conv.detail;
	$('conv-title-text').textContent = d.title;
	const list = $('conv-members');
	list.replaceChildren(el('span', null, 'Members: '));
	d.members.forEach((m, i) => {
		if (i) list.append(', ');
		list.append(el('bdi', 'member', m.display_name));
		if (m.role === 'owner') list.append(el('span', 'muted', ' (owner)'));
	});
	show($('add-member-form'), state.me && d.owner_id === state.me.id);
	document.title = `${d.title} · chat-fcgi`;
}

function renderHistoryTop() {
	const conv = state.conv;
	show($('load-older'), conv.hasOlder);
	show($('history-start'), !conv.hasOlder);
}

function messageElement(m) {
	const li = el('li', 'msg');
	li.dataset.id = String(m.id);
	if (state.me && m.sender_id === state.me.id) li.classList.add('own');
	const meta = el('div', 'msg-meta');
	meta.append(el('bdi', 'msg-sender', m.sender_name), ' ', timeElement(m.created_at));
	// A tombstone (the sender deleted it): a fixed note, never the text.
	const body = m.deleted ? el('p', 'msg-body msg-deleted', 'Message deleted') : el('p', 'msg-body', m.body);
	li.append(meta, body);
	return li;
}

function nearBottom() {
	const s = $('messages-scroll');
	return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

// Keep the list pinned to the newest message while the reader is there,
// also when the pane changes size (a notice appears above it, the window or
// the text box is resized).
let pinned = true;
$('messages-scroll').addEventListener('scroll', () => {
	pinned = nearBottom();
});
new ResizeObserver(() => {
	if (pinned) scrollToBottom();
}).observe($('messages-scroll'));

function scrollToBottom() {
	const s = $('messages-scroll');
	s.scrollTop = s.scrollHeight;
}

// Insert messages (any order) that are not shown yet, keeping id order.
function addMessages(items, how) {
	const conv = state.conv;
	const ol = $('messages');
	const fresh = items.filter((m) => m.conversation_id === conv.id && !conv.ids.includes(m.id))
		.sort((a, b) => a.id - b.id);
	if (!fresh.length) return 0;
	const stick = how === 'new' && nearBottom();
	const s = $('messages-scroll');
	const before = s.scrollHeight;
	for (const m of fresh) {
		const li = messageElement(m);
		// Find the first shown id greater than m.id (usually none: append).
		let i = conv.ids.length;
		while (i > 0 && conv.ids[i - 1] > m.id) i--;
		if (i === conv.ids.length) ol.append(li);
		else ol.insertBefore(li, ol.querySelector(`li[data-id="${conv.ids[i]}"]`));
		conv.ids.splice(i, 0, m.id);
	}
	conv.oldest = conv.ids[0];
	if (how === 'older') s.scrollTop += s.scrollHeight - before;
	else if (stick) scrollToBottom();
	return fresh.length;
}

async function pollMessages() {
	const conv = state.conv;
	if (!conv || !state.session) return;
	if (!conv.detail) return loadConversation(conv); // the first load failed
	const r = await authed('GET', `/chat/conversations/${conv.id}/messages?after=${conv.cursor}&limit=${PAGE}`,
		{ signal: conv.ctl.signal });
	if (state.conv !== conv) return;
	if (r.items.length) conv.cursor = Math.max(conv.cursor, r.items[r.items.length - 1].id);
	if (addMessages(r.items, 'new')) {
		const last = r.items[r.items.length - 1];
		const c = state.convs.get(conv.id);
		if (c && last) {
			c.last_message_at = last.created_at;
			state.seen.set(c.id, c.last_message_at);
			renderList();
		}
	}
}

$('load-older').addEventListener('click', async () => {
	const conv = state.conv;
	if (!conv || conv.loadingOlder || !conv.hasOlder) return;
	conv.loadingOlder = true;
	const b = $('load-older');
	b.disabled = true;
	b.textContent = 'Loading…';
	$('messages-scroll').setAttribute('aria-busy', 'true');
	try {
		const r = await authed('GET', `/chat/conversations/${conv.id}/messages?before=${conv.oldest}&limit=${PAGE}`,
			{ signal: conv.ctl.signal });
		if (state.conv !== conv) return;
		addMessages(r.items, 'older');
		conv.hasOlder = r.items.length === PAGE;
		renderHistoryTop();
	} catch (e) {
		if (!api.isAbort(e)) notify(describe(e));
	} finally {
		$('messages-scroll').setAttribute('aria-busy', 'false');
		conv.loadingOlder = false;
		b.disabled = false;
		b.textContent = 'Load older messages';
	}
});

$('add-member-form').addEventListener('submit', async (ev) => {
	ev.preventDefault();
	const form = ev.currentTarget;
	const conv = state.conv;
	clearErrors(form);
	const email = $('add-member-email').value.trim();
	busy(form, true);
	try {
		const m = await authed('POST', `/chat/conversations/${conv.id}/members`, { json: { email } });
		if (state.conv === conv && conv.detail) {
			if (!conv.detail.members.some((x) => x.id === m.id)) conv.detail.members.push(m);
			renderHeader();
		}
		form.reset();
		const p = $('add-member-email-error');
		p.textContent = `${m.display_name} is a member.`;
		p.hidden = false;
	} catch (e) {
		if (!api.isAbort(e)) showError(form, e, { email: 'add-member-email' }, 'add-member-email-error');
	} finally {
		busy(form, false);
	}
});

// ---- sending ---------------------------------------------------------------------
//
// Sends go out one at a time, in order.  Each has its own Idempotency-Key,
// kept across retries (a 429 retried after Retry-After, a "Retry" after a
// network error), so a retry never stores the message twice.

function renderPending() {
	const ol = $('pending');
	const conv = state.conv;
	ol.replaceChildren(...state.queue.filter((q) => conv && q.convId === conv.id).map((q) => {
		const li = el('li', 'msg own pending');
		li.dataset.key = q.key;
		const meta = el('div', 'msg-meta');
		meta.append(el('bdi', 'msg-sender', state.me ? state.me.display_name : ''), ' ',
			el('span', 'msg-state', q.status));
		li.append(meta, el('p', 'msg-body', q.body));
		if (q.failed) {
			li.classList.add('failed');
			const retry = el('button', 'secondary small', 'Retry');
			retry.type = 'button';
			retry.addEventListener('click', () => {
				q.failed = false;
				q.status = 'sending…';
				renderPending();
				pump();
			});
			const drop = el('button', 'secondary small', 'Discard');
			drop.type = 'button';
			drop.addEventListener('click', () => {
				state.queue = state.queue.filter((x) => x !== q);
				renderPending();
			});
			li.append(retry, ' ', drop);
		}
		return li;
	}));
	if (pinned) scrollToBottom();
}

async function pump() {
	if (state.sending || !state.session) return;
	state.sending = true;
	const ctl = state.ctl;
	try {
		while (state.ctl === ctl) {
			const q = state.queue.find((x) => !x.failed);
			if (!q) break;
			try {
				const m = await authed('POST', `/chat/conversations/${q.convId}/messages`, {
					json: { body: q.body },
					headers: { 'Idempotency-Key': q.key },
					onWait: (s) => {
						q.status = `waiting: rate limited for ${s} s`;
						renderPending();
					},
				});
				state.queue = state.queue.filter((x) => x !== q);
				renderPending();
				if (state.conv && state.conv.id === q.convId && m) {
					addMessages([m], 'new');
					scrollToBottom();
				}
				const c = m && state.convs.get(q.convId);
				if (c) {
					c.last_message_at = m.created_at;
					if (state.conv && state.conv.id === c.id) state.seen.set(c.id, c.last_message_at);
					renderList();
				}
			} catch (e) {
				if (api.isAbort(e) || ctl.signal.aborted) break;
				if (e.status === 422 || e.status === 400 || e.status === 413 || e.status === 404) {
					// Will never succeed as it is: back into the input.
					state.queue = state.queue.filter((x) => x !== q);
					renderPending();
					if (state.conv && state.conv.id === q.convId) {
						const box = $('send-body');
						if (!box.value) box.value = q.body;
						const p = $('send-body-error');
						p.textContent = e.status === 404 ? 'This conversation is no longer available.'
							: `Message: ${e.detail || describe(e)}`;
						p.hidden = false;
					}
				} else {
					q.failed = true;
					q.status = 'not sent: ' + describe(e);
					renderPending();
				}
			}
		}
	} finally {
		if (state.ctl === ctl) state.sending = false;
	}
}

function send() {
	const box = $('send-body');
	const body = box.value;
	clearErrors($('send-form'));
	if (!state.conv || !body.trim()) return;
	state.queue.push({ key: api.newIdempotencyKey(), convId: state.conv.id, body, status: 'sending…', failed: false });
	box.value = '';
	renderPending();
	scrollToBottom();
	pump();
}

$('send-form').addEventListener('submit', (ev) => {
	ev.preventDefault();
	send();
});
$('send-body').addEventListener('keydown', (ev) => {
	if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
		ev.preventDefault();
		send();
	}
});

// ---- start -------------------------------------------------------------------------

function boot() {
	const s = api.loadSession();
	if (s && s.token) {
		startSession(s);
		return;
	}
	showAuthView();
	if (s && s.expired) notify('Your session has expired. Please sign in again.');
}

boot();
