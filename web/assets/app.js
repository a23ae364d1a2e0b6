// chat-fcgi web client: views, polling and sending.  No framework, no build
// step; user data only ever reaches the page as text (textContent), never as
// markup.  docs/CLIENT.md describes the behaviour and the polling budget.

import * as api from './api.js';

// ---- polling budget (docs/CLIENT.md, "Polling budget") ---------------------
// The read class allows 60 requests per minute per user.  One poll of
// GET /chat/updates every 3 s covers every conversation: 20 per minute,
// plus at most one read of the open conversation per poll that reports it
// changed (40 at worst); nothing while the tab is hidden; three times
// slower while the server says fewer than SLOW_BELOW reads are left (other
// tabs of the same user share the budget).
export const POLL_UPDATES_MS = 3000;
// Read marks are in the chat class (5/minute by default, shared with
// sends): at most one every MARK_GAP_MS, and only while at least
// CHAT_RESERVE chat requests are left, so that a mark never makes a send wait.
const MARK_GAP_MS = 12000;
const CHAT_RESERVE = 3;
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
	convs: new Map(), // id -> conversation (as GET /chat/updates reports it)
	cursor: 0, // the since= of the next GET /chat/updates
	loaded: false, // the first poll (since=0) answered
	listShown: LIST_PAGE, // how many conversations the list shows
	seenUpTo: new Map(), // id -> the newest message id shown in this tab
	conv: null, // the open conversation, see openConversation()
	marking: false, // a read mark in flight
	lastMark: 0, // when the last one left
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

const updatesPoller = new Poller(POLL_UPDATES_MS, pollUpdates);

document.addEventListener('visibilitychange', () => {
	if (document.hidden) updatesPoller.pause();
	else updatesPoller.resume();
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
	await pollUpdates().catch(() => {});
	if (signal.aborted) return;
	updatesPoller.start();
	routeFromHash();
}

// Back to the login form: everything of the session is stopped and dropped.
function endSession(message) {
	if (state.ctl) state.ctl.abort();
	updatesPoller.stop();
	api.clearSession();
	api.resetGates(['chat', 'read']);
	state.session = null;
	state.me = null;
	state.ctl = null;
	state.convs.clear();
	state.cursor = 0;
	state.loaded = false;
	state.listShown = LIST_PAGE;
	state.seenUpTo.clear();
	state.marking = false;
	state.lastMark = 0;
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
	updatesPoller.stop();
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

// Unread as this tab shows it: the server's count, or none once the tab has
// shown the conversation's newest message (the read mark may follow later,
// see maybeMarkRead) and for the open conversation.
function unreadOf(c) {
	if (state.conv && state.conv.id === c.id) return 0;
	const seen = state.seenUpTo.get(c.id) || 0;
	if (c.last_message_id !== null && seen >= c.last_message_id) return 0;
	return c.unread || 0;
}

function renderList() {
	const ul = $('conv-list');
	const all = [...state.convs.values()].sort((a, b) => {
		const x = activityOf(a), y = activityOf(b);
		return x < y ? 1 : x > y ? -1 : b.id - a.id;
	});
	const items = all.slice(0, state.listShown);
	const open = state.conv && state.conv.id;
	const sig = JSON.stringify([open, all.length, items.map((c) => [c.id, c.title, c.last_message_at, unreadOf(c)])]);
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
		const unread = unreadOf(c);
		if (unread > 0) {
			b.classList.add('unread');
			const badge = el('span', 'badge', unread > 99 ? '99+' : String(unread));
			badge.setAttribute('aria-hidden', 'true');
			b.append(badge, el('span', 'visually-hidden', ` (${unread} unread)`));
		}
		if (c.id === open) b.setAttribute('aria-current', 'true');
		b.addEventListener('click', () => navigate(c.id));
		li.append(b);
		return li;
	}));
	show($('conv-empty'), state.loaded && all.length === 0);
	show($('conv-more'), all.length > items.length);
	if (focused) {
		const b = ul.querySelector(`button[data-id="${focused}"]`);
		if (b) b.focus();
	}
}

// "Load more conversations": the first poll brought them all (since=0);
// the list shows them a page at a time.
$('conv-more').addEventListener('click', () => {
	state.listShown += LIST_PAGE;
	renderList();
});

// The conversation is gone for this user (left, or removed by its owner):
// out of the list, closed if open, its queued sends dropped, and said so.
function dropConversation(id, why) {
	const c = state.convs.get(id);
	const isOpen = state.conv && state.conv.id === id;
	if (!c && !isOpen) return; // not known here (an old removal in the first poll)
	const title = c ? c.title : $('conv-title-text').textContent;
	state.convs.delete(id);
	state.seenUpTo.delete(id);
	state.queue = state.queue.filter((q) => q.convId !== id);
	if (isOpen) {
		history.replaceState(null, '', location.pathname + location.search);
		closeConversation();
	} else {
		renderList();
	}
	notify(why === 'left' ? `You left “${title}”.` : `You are no longer a member of “${title}”: the owner removed you.`);
}

// One poll for every conversation (docs/CLIENT.md, "Polling budget"):
// apply the changed conversations as state, drop the removed ones, and read
// the open conversation only when it was reported.
async function pollUpdates() {
	if (!state.session) return;
	const ctl = state.ctl;
	const r = await authed('GET', `/chat/updates?since=${state.cursor}`);
	if (state.ctl !== ctl) return;
	state.cursor = r.cursor;
	const conv = state.conv;
	let reported = false;
	for (const id of r.removed) dropConversation(id, 'removed');
	for (const c of r.items) {
		state.convs.set(c.id, c);
		if (conv && c.id === conv.id) reported = true;
	}
	state.loaded = true;
	renderList();
	if (!conv || state.conv !== conv) return;
	if (!conv.detail) {
		if (!conv.loading) await openFailedRetry(conv);
		return;
	}
	if (reported || conv.more) {
		try {
			await refreshOpen(conv);
		} catch (e) {
			if (e.status === 404 && state.conv === conv) dropConversation(conv.id, 'removed');
			else throw e;
		}
	}
	maybeMarkRead();
}

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
		if (!state.convs.has(c.id)) state.convs.set(c.id, { last_message_id: null, last_read_id: 0, unread: 0, ...c });
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
	const old = state.conv;
	if (old) {
		old.ctl.abort();
		markOnLeave(old);
	}
	state.conv = null;
	$('messages').replaceChildren();
	$('pending').replaceChildren();
	show($('conv-open'), false);
	show($('conv-placeholder'), true);
	document.title = 'chat-fcgi';
	renderList();
}

async function openConversation(id) {
	if (state.conv && state.conv.id === id) return;
	if (state.conv) {
		state.conv.ctl.abort();
		markOnLeave(state.conv);
	}
	const ctl = new AbortController();
	state.ctl.signal.addEventListener('abort', () => ctl.abort(), { once: true });
	const conv = {
		id,
		ctl,
		detail: null,
		loading: false,
		ids: [], // message ids shown, ascending
		msgs: new Map(), // id -> message as last read
		// The read cursor: the highest id received from a read of the message
		// list (not from our own sends: another member's message committed
		// just before ours has a smaller id and must still be fetched).
		cursor: 0,
		more: false, // the last after= read was a full page: read on
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
	show($('leave-conv'), false);
	show($('load-older'), false);
	show($('history-start'), false);
	clearErrors($('send-form'));
	show($('conv-placeholder'), false);
	show($('conv-open'), true);
	renderList();
	if (await tryLoad(conv)) $('send-body').focus();
}

// Load the open conversation; false when it failed (a 404 closes it, other
// failures are tried again by the next poll of updates).
async function tryLoad(conv) {
	conv.loading = true;
	try {
		await loadConversation(conv);
	} catch (e) {
		if (api.isAbort(e) || state.conv !== conv) return false;
		if (e.status === 404) {
			notify('That conversation does not exist, or you are not a member of it.');
			state.convs.delete(conv.id);
			history.replaceState(null, '', location.pathname + location.search);
			closeConversation();
		} else {
			notify(describe(e));
		}
		return false;
	} finally {
		conv.loading = false;
	}
	if (state.conv !== conv) return false;
	maybeMarkRead();
	return true;
}

async function openFailedRetry(conv) {
	await tryLoad(conv);
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
	const owner = state.me && d.owner_id === state.me.id;
	$('conv-title-text').textContent = d.title;
	const list = $('conv-members');
	list.replaceChildren(el('span', null, 'Members: '));
	d.members.forEach((m, i) => {
		if (i) list.append(', ');
		const item = el('span', 'member-item');
		item.dataset.userId = String(m.id);
		item.append(el('bdi', 'member', m.display_name));
		if (m.role === 'owner') item.append(el('span', 'muted', ' (owner)'));
		if (owner && m.id !== state.me.id) {
			const b = el('button', 'secondary small member-remove');
			b.type = 'button';
			confirmable(b, 'Remove', 'Remove?', `Remove ${m.display_name} from the conversation`,
				() => removeMember(conv, m));
			item.append(' ', b);
		}
		list.append(item);
	});
	show($('add-member-form'), owner);
	show($('leave-conv'), true);
	document.title = `${d.title} · chat-fcgi`;
}

// A button that acts on a second click (no confirm() dialog): the first
// click arms it for a few seconds and says what the next one does.
function confirmable(b, label, armedLabel, ariaLabel, action) {
	let timer = null;
	const disarm = () => {
		clearTimeout(timer);
		delete b.dataset.armed;
		b.textContent = label;
		b.setAttribute('aria-label', ariaLabel);
	};
	disarm();
	b.addEventListener('click', async () => {
		if (b.dataset.armed !== 'true') {
			b.dataset.armed = 'true';
			b.textContent = armedLabel;
			b.setAttribute('aria-label', `${ariaLabel}: click again to confirm`);
			timer = setTimeout(disarm, 5000);
			return;
		}
		disarm();
		b.disabled = true;
		try {
			await action();
		} finally {
			b.disabled = false;
		}
	});
}

async function removeMember(conv, m) {
	try {
		await authed('DELETE', `/chat/conversations/${conv.id}/members/${m.id}`, { signal: conv.ctl.signal });
	} catch (e) {
		if (api.isAbort(e)) return;
		if (e.status !== 404) return notify(describe(e)); // 404: not a member any more
	}
	if (state.conv !== conv || !conv.detail) return;
	conv.detail.members = conv.detail.members.filter((x) => x.id !== m.id);
	renderHeader();
	notify(`${m.display_name} was removed from the conversation.`);
}

confirmable($('leave-conv'), 'Leave conversation', 'Leave? Click again', 'Leave this conversation', async () => {
	const conv = state.conv;
	if (!conv || !state.me) return;
	try {
		await authed('DELETE', `/chat/conversations/${conv.id}/members/${state.me.id}`, { signal: conv.ctl.signal });
	} catch (e) {
		if (api.isAbort(e)) return;
		if (e.status !== 404) return notify(describe(e));
	}
	dropConversation(conv.id, 'left');
});

function renderHistoryTop() {
	const conv = state.conv;
	show($('load-older'), conv.hasOlder);
	show($('history-start'), !conv.hasOlder);
}

function messageElement(m) {
	const li = el('li', 'msg');
	li.dataset.id = String(m.id);
	const own = state.me && m.sender_id === state.me.id;
	if (own) li.classList.add('own');
	const meta = el('div', 'msg-meta');
	meta.append(el('bdi', 'msg-sender', m.sender_name), ' ', timeElement(m.created_at));
	if (own && !m.deleted) {
		const b = el('button', 'secondary small msg-delete');
		b.type = 'button';
		confirmable(b, 'Delete', 'Delete?', 'Delete this message', () => deleteMessage(m));
		meta.append(' ', b);
	}
	// A tombstone (the sender deleted it): a fixed note, never the text.
	const body = m.deleted ? el('p', 'msg-body msg-deleted', 'Message deleted') : el('p', 'msg-body', m.body);
	if (m.deleted) li.classList.add('deleted');
	li.append(meta, body);
	return li;
}

// Show a message again as it now is (a tombstone).
function replaceMessage(m) {
	const conv = state.conv;
	const old = $('messages').querySelector(`li[data-id="${m.id}"]`);
	if (!conv || !old) return;
	conv.msgs.set(m.id, m);
	old.replaceWith(messageElement(m));
}

async function deleteMessage(m) {
	const conv = state.conv;
	if (!conv) return;
	try {
		await authed('DELETE', `/chat/conversations/${conv.id}/messages/${m.id}`, { signal: conv.ctl.signal });
	} catch (e) {
		if (!api.isAbort(e)) notify(describe(e));
		return;
	}
	if (state.conv === conv) replaceMessage({ ...m, body: null, deleted: true });
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
		conv.msgs.set(m.id, m);
	}
	conv.oldest = conv.ids[0];
	const newest = conv.ids[conv.ids.length - 1];
	if (newest > (state.seenUpTo.get(conv.id) || 0)) state.seenUpTo.set(conv.id, newest);
	if (how === 'older') s.scrollTop += s.scrollHeight - before;
	else if (stick) scrollToBottom();
	return fresh.length;
}

// The open conversation was reported by the updates (or the last read was
// a full page).  A newer message than the read cursor: read the new ones
// (after=).  Otherwise the report is a deletion, a read mark or a repeat:
// read the latest page again and show its tombstones.
async function refreshOpen(conv) {
	const c = state.convs.get(conv.id);
	if (conv.more || (c && c.last_message_id !== null && c.last_message_id > conv.cursor)) {
		const r = await authed('GET', `/chat/conversations/${conv.id}/messages?after=${conv.cursor}&limit=${PAGE}`,
			{ signal: conv.ctl.signal });
		if (state.conv !== conv) return;
		if (r.items.length) conv.cursor = Math.max(conv.cursor, r.items[r.items.length - 1].id);
		conv.more = r.items.length === PAGE;
		addMessages(r.items, 'new');
		applyTombstones(r.items);
		renderList();
		return;
	}
	const r = await authed('GET', `/chat/conversations/${conv.id}/messages?limit=${PAGE}`, { signal: conv.ctl.signal });
	if (state.conv !== conv) return;
	applyTombstones(r.items);
}

function applyTombstones(items) {
	const conv = state.conv;
	for (const m of items) {
		const shown = conv.msgs.get(m.id);
		if (m.deleted && shown && !shown.deleted) replaceMessage(m);
	}
}

// Mark the open conversation read up to its newest message shown, when
// that moves the marker, within the chat budget (see MARK_GAP_MS).
function maybeMarkRead() {
	const conv = state.conv;
	if (!conv || !conv.detail || document.hidden) return;
	if (Date.now() - state.lastMark < MARK_GAP_MS) return; // the next poll tries again
	markRead(conv.id, conv.ids.length ? conv.ids[conv.ids.length - 1] : 0);
}

// Leaving a conversation (another one opened, or none): mark what was shown,
// without waiting for MARK_GAP_MS, if the chat budget allows.
function markOnLeave(conv) {
	if (conv.detail && conv.ids.length) markRead(conv.id, conv.ids[conv.ids.length - 1]);
}

async function markRead(id, upto) {
	const c = state.convs.get(id);
	if (!c || !upto || upto <= c.last_read_id || state.marking || !state.session) return;
	if (state.queue.length || api.gateUntil('chat')) return; // sends first
	const left = api.remainingNow('chat');
	if (left !== null && left < CHAT_RESERVE) return;
	state.marking = true;
	state.lastMark = Date.now();
	try {
		const r = await authed('POST', `/chat/conversations/${id}/read`, { json: { message_id: upto }, noRetry: true });
		const now = state.convs.get(id);
		if (now && r && r.last_read_id >= now.last_read_id) {
			now.last_read_id = r.last_read_id;
			now.unread = r.unread;
			renderList();
		}
	} catch (e) {
		// A 429 closed the chat gate (the next mark waits for it); a 404 is
		// reported by the next poll as a removal.
	} finally {
		state.marking = false;
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
				// The send moved our read marker to it (the server's fan-out).
				const c = m && state.convs.get(q.convId);
				if (c) {
					if (c.last_message_id === null || m.id > c.last_message_id) {
						c.last_message_id = m.id;
						c.last_message_at = m.created_at;
					}
					c.last_read_id = Math.max(c.last_read_id, m.id);
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
