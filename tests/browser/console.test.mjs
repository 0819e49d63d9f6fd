// The agent's web console end to end in a real browser (Debian's chromium,
// driven by playwright-core), against the sandbox tests/browser/run brings
// up and fills with the ehx command line. One scenario, in steps that
// build on each other: an Information Officer signs in, searches, is
// refused without consent, records consent and sees the picture, breaks
// the glass for another child, signs out; an IG officer reviews the
// break-glass, searches and downloads the audit, sees the checkpoint and
// the sign-ins; the sign-in page by keyboard; a hostile note shown as text;
// health's Information Officer reads East's right early help lists; and
// axe-core finds no WCAG 2.1 A or AA violation on any kind of page.
// Every assertion is on the page (text, roles, attributes), never pixels;
// a screenshot of each step goes to $EHX_SHOTS.
//
// Run it with tests/browser/run (or make test-browser), which sets:
//   EHX_SANDBOX  the sandbox directory (console.url, console-password)
//   EHX_SHOTS    where the screenshots go
//   EHX_CHILD_A  in the locality east; flags from police (two: domestic_abuse "PC Jones", and
//                exploitation_risk with EHX_HOSTILE_NOTE), health
//                (mental_health, "Alex Patel") and school
//                (school_attendance, "Jo Brown"); no consent
//   EHX_CHILD_B  in east; flags from health (physical_health) and school
//                (send); no consent
//   EHX_BAD_NHS  ten digits with a wrong check digit
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
	const v = process.env[name];
	if (v === undefined || v === '')
		throw new Error(`${name} is not set: run tests/browser/run`);
	return v;
};
const SB = env('EHX_SANDBOX');
const CHILD_A = env('EHX_CHILD_A');
const CHILD_B = env('EHX_CHILD_B');
const BAD_NHS = env('EHX_BAD_NHS');
const HOSTILE = env('EHX_HOSTILE_NOTE');
const POLICE = readFileSync(join(SB, 'agencies/police/console.url'), 'utf8').trim();
const HEALTH = readFileSync(join(SB, 'agencies/health/console.url'), 'utf8').trim();
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = readFileSync(join(SB, 'console-password'), 'utf8').trim();
const SHOTS = process.env.EHX_SHOTS || mkdtempSync(join(tmpdir(), 'ehx-shots-'));
const REASON = 'Child disclosed an injury at school today; risk of significant harm.';
const REVIEW_NOTE = 'Checked with the officer: disclosure recorded, access justified.';

const nhsSpaced = (n) => `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`;
const url = (path) => new URL(path, POLICE).href;

let browser;
const dialogs = [];       // any alert() etc. on any page: must stay empty
const pageErrors = [];    // uncaught script errors on any page
let shotNo = 0;

async function shot(page, name) {
	const file = join(SHOTS, `${String(++shotNo).padStart(2, '0')}-${name}.png`);
	await page.screenshot({ path: file, fullPage: true });
}

async function newPage() {
	const context = await browser.newContext({ acceptDownloads: true });
	context.setDefaultTimeout(8000);
	const page = await context.newPage();
	page.on('dialog', async (d) => {
		dialogs.push(`${d.type()}: ${d.message()} at ${page.url()}`);
		await d.dismiss();
	});
	page.on('pageerror', (e) => pageErrors.push(`${e.message} at ${page.url()}`));
	return page;
}

// Do what makes the page navigate; the response of the page landed on
// (after any redirects).
async function nav(page, action) {
	const [resp] = await Promise.all([page.waitForNavigation(), action()]);
	assert.ok(resp, 'a navigation with a response');
	return resp;
}

const pathOf = (page) => new URL(page.url()).pathname;
const text = async (loc) => (await loc.innerText()).replace(/\s+/g, ' ').trim();

async function h1(page) {
	return text(page.locator('main h1'));
}

// Every cell of a table's body, a row per array.
async function rows(table) {
	return table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) =>
		[...tr.cells].map((c) => c.textContent.replace(/\s+/g, ' ').trim())));
}

// The table after the h3 with this title (the picture's tables).
const tableAfter = (page, title) =>
	page.locator(`xpath=//main//h3[normalize-space()="${title}"]/following-sibling::table[1]`);

async function signIn(page, account, password) {
	await page.getByLabel('Account name').fill(account);
	await page.getByLabel('Password', { exact: true }).fill(password);
	return nav(page, () => page.getByRole('button', { name: 'Sign in' }).click());
}

// RFC 4180, enough for the audit export.
function parseCsv(s) {
	const out = [];
	let row = [], field = '', q = false;
	for (let i = 0; i < s.length; i++) {
		const c = s[i];
		if (q) {
			if (c === '"' && s[i + 1] === '"') { field += '"'; i++; }
			else if (c === '"') q = false;
			else field += c;
		} else if (c === '"') q = true;
		else if (c === ',') { row.push(field); field = ''; }
		else if (c === '\r' && s[i + 1] === '\n') { row.push(field); out.push(row); row = []; field = ''; i++; }
		else if (c === '\n') { row.push(field); out.push(row); row = []; field = ''; }
		else field += c;
	}
	if (field !== '' || row.length > 0) { row.push(field); out.push(row); }
	return out;
}

before(async () => {
	console.log(`# screenshots: ${SHOTS}`);
	browser = await chromium.launch({
		executablePath: process.env.EHX_CHROMIUM || '/usr/bin/chromium',
		headless: true,
		// Chromium's own sandbox cannot start as root.
		args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
	});
});

after(async () => {
	if (browser)
		await browser.close();
	console.log(`# screenshots: ${SHOTS}`);
});

// ---- two faults once found here, kept as tests ------------------------------

// A browser's own form post, with whatever Origin it sends, is answered
// (once, a no-referrer policy made Chromium send "Origin: null", refused).
test('0a. a form posted with the Origin the browser sends is accepted', async () => {
	const page = await newPage();
	await nav(page, () => page.goto(url('/login')));
	const sent = page.waitForRequest((r) => r.method() === 'POST');
	const resp = await signIn(page, 'nobody-here', 'not-a-password');
	const origin = (await sent).headers().origin;
	await shot(page, 'sign-in-as-browser-sends-origin');
	const said = await text(page.locator('main'));
	await page.context().close();
	assert.equal(resp.status(), 401, `the sign-in form (Origin: ${origin}) is answered, not refused: ${said}`);
});

// The sign-in form on screen survives the browser's own favicon fetch
// (once, its redirect to /login replaced the sign-in cookie).
test('0b. the sign-in form on screen still works after the browser fetched its favicon', async () => {
	const page = await newPage();
	await nav(page, () => page.goto(url('/login')));
	await page.waitForTimeout(500);     // the browser's favicon request
	const resp = await signIn(page, 'nobody-here', 'not-a-password');
	await shot(page, 'sign-in-after-favicon');
	const said = await text(page.locator('main'));
	await page.context().close();
	assert.equal(resp.status(), 401, `the sign-in form is answered, not refused: ${said}`);
});

// ---- the Information Officer --------------------------------------------

let io;   // the Information Officer's page, through steps a to f

test('a. sign in: a wrong password, then the right one', async () => {
	io = await newPage();
	let resp = await nav(io, () => io.goto(POLICE));
	assert.equal(pathOf(io), '/login', 'signed out, the console sends you to sign in');
	assert.equal(resp.status(), 200);
	assert.equal(await h1(io), 'Sign in');
	await shot(io, 'login');

	resp = await signIn(io, 'io', `${PASSWORD}-wrong`);
	assert.equal(resp.status(), 401);
	assert.equal(pathOf(io), '/login');
	const err = io.getByRole('alert');
	assert.equal(await text(err), 'The account name or the password is wrong.');
	assert.equal(await io.getByLabel('Account name').inputValue(), 'io', 'the account is kept');
	assert.equal(await io.getByLabel('Account name').getAttribute('aria-describedby'), 'login-error');
	assert.equal(await io.getByLabel('Password', { exact: true }).inputValue(), '', 'the password is not');
	await shot(io, 'login-wrong-password');

	resp = await signIn(io, 'io', PASSWORD);
	assert.equal(resp.status(), 200);
	assert.equal(pathOf(io), '/');
	assert.equal(await h1(io), 'Early help console');
	assert.match(await text(io.locator('main')), /Signed in as Dana Cole\./);
	assert.match(await text(io.locator('header')), /Dana Cole \(io\)/);
	assert.equal(await io.getByRole('button', { name: 'Sign out' }).count(), 1);
	assert.ok(await io.getByRole('link', { name: 'Find a child' }).count() > 0, 'the child search is offered');
	assert.equal(await io.getByRole('link', { name: 'Audit' }).count(), 0,
		'an information officer is not offered the IG pages');
	await shot(io, 'home');
});

test('b. an invalid NHS number: checked as typed, refused by the server', async () => {
	await nav(io, () => io.getByRole('navigation').getByRole('link', { name: 'Find a child' }).click());
	assert.equal(pathOf(io), '/child');
	const field = io.getByLabel('NHS number', { exact: true });
	const msg = io.locator('#nhs-msg');

	await field.pressSequentially('94347');
	assert.equal(await field.getAttribute('aria-invalid'), 'true');
	assert.equal(await text(msg), 'An NHS number has 10 digits.');
	await field.fill('');
	await field.pressSequentially(nhsSpaced(CHILD_A));
	assert.equal(await field.getAttribute('aria-invalid'), 'false', 'a valid number (with spaces) is fine');
	assert.equal(await text(msg), '');
	await field.fill('');
	await field.pressSequentially(BAD_NHS);
	assert.equal(await field.getAttribute('aria-invalid'), 'true');
	assert.equal(await text(msg), 'Not a valid NHS number (check digit).');
	assert.deepEqual((await field.getAttribute('aria-describedby')).split(' ').sort(), ['nhs-hint', 'nhs-msg']);
	await shot(io, 'nhs-invalid-typed');

	const resp = await nav(io, () => io.getByRole('button', { name: 'Search' }).click());
	assert.equal(resp.status(), 400, 'the server refuses it itself');
	assert.equal(pathOf(io), '/child');
	assert.equal(new URL(io.url()).searchParams.get('nhs'), BAD_NHS);
	assert.match(await text(msg), /^That is not a valid NHS number: it has 10 digits, and the last is a check digit/);
	assert.equal(await field.getAttribute('aria-invalid'), 'true', 'the server marks the field too');
	assert.equal(await field.inputValue(), BAD_NHS, 'what was typed is kept');
	assert.equal(await io.locator('main section').count(), 0, 'nothing about any child');
	await shot(io, 'nhs-invalid-server');
});

test('c. a child with flags but no consent: refused, nothing shown', async () => {
	const field = io.getByLabel('NHS number', { exact: true });
	await field.fill(nhsSpaced(CHILD_A));
	const resp = await nav(io, () => io.getByRole('button', { name: 'Search' }).click());
	assert.equal(resp.status(), 200);
	assert.equal(await text(io.getByRole('heading', { level: 2 }).first()), 'No consent covers this agency');
	assert.equal(await io.getByRole('heading', { name: 'Record consent' }).count(), 1);
	assert.equal(await io.getByRole('heading', { name: 'Break glass' }).count(), 1);
	assert.equal(await io.getByRole('button', { name: 'Record consent' }).count(), 1);
	assert.equal(await io.getByRole('button', { name: 'Break glass and show the picture' }).count(), 1);

	const main = await text(io.locator('main'));
	for (const secret of ['PC Jones', 'Alex Patel', 'Jo Brown', 'Domestic abuse',
		'Mental health', 'School attendance', 'Exploitation risk', '01904',
		'onerror', 'Whole picture for', 'Who is involved now', 'History'])
		assert.ok(!main.includes(secret), `the refusal shows nothing of the child: found "${secret}"`);
	assert.equal(await io.locator('main table').count(), 0, 'no table');
	assert.equal(await io.locator('main svg').count(), 0, 'no timeline');
	// Agency names appear only as the consent form's choices.
	const outsideForm = await io.locator('main').evaluate((m) => {
		const c = m.cloneNode(true);
		c.querySelectorAll('form[action="/consent"]').forEach((f) => f.remove());
		return c.textContent;
	});
	for (const agency of ['health', 'school', 'housing', 'Healthy Child', 'Clifton Green'])
		assert.ok(!outsideForm.toLowerCase().includes(agency.toLowerCase()),
			`no agency named outside the consent form: found "${agency}"`);
	await shot(io, 'no-consent');
});

test('d. record consent: the whole picture', async () => {
	const exp = new Date(Date.now() + 183 * 86400000).toISOString().slice(0, 10);
	await io.getByLabel('A parent').check();
	await io.getByLabel('Their name').fill('Kim Smith');
	for (const t of ['police', 'health', 'school'])
		await io.locator(`input[name="agency_type"][value="${t}"]`).check();
	await io.getByLabel('Whole picture (this view)').check();
	await io.getByLabel('Lawful basis').selectOption('consent');
	await io.getByLabel('Expires on').fill(exp);
	assert.equal(await io.getByLabel('Expires on').inputValue(), exp);
	await io.getByLabel('Consent form reference').fill('FORM-2026-0117');
	await shot(io, 'consent-form');

	const resp = await nav(io, () => io.getByRole('button', { name: 'Record consent' }).click());
	assert.equal(resp.status(), 200);
	assert.equal(resp.request().redirectedFrom()?.url(), url('/consent'), 'the form posted, then redirected');
	assert.equal(pathOf(io), '/child');
	assert.equal(new URL(io.url()).searchParams.get('done'), 'consent');
	assert.equal(await text(io.getByRole('status').filter({ hasText: 'Consent' })), 'Consent recorded.');
	assert.equal(await text(io.locator('#pic')), `Whole picture for NHS number ${nhsSpaced(CHILD_A)}`);
	assert.match(await text(io.locator('main section')), /Shared on the basis consent:c-[0-9a-f]+\./);

	const now = await rows(tableAfter(io, 'Who is involved now'));
	assert.equal(now.length, 4, 'four open flags');
	assert.deepEqual([...new Set(now.map((r) => r[0]))].sort(), ['health', 'police', 'school']);
	const practitioners = now.map((r) => r[1]).join(' | ');
	for (const p of ['PC Jones', 'Alex Patel', 'Jo Brown'])
		assert.ok(practitioners.includes(p), `${p} is named`);
	const categories = now.map((r) => r[4]).sort();
	assert.deepEqual(categories, ['Domestic abuse', 'Exploitation risk', 'Mental health', 'School attendance']);

	const history = await rows(tableAfter(io, 'History'));
	assert.equal(history.length, 4);
	const svg = io.locator('main figure.timeline svg[role="img"]');
	assert.equal(await svg.count(), 1, 'the timeline, inline SVG');
	assert.equal(await io.getByRole('img', { name: "Timeline of each agency's involvement and the level of need" })
		.count(), 1, 'the timeline is named for assistive technology');
	assert.equal(await svg.locator('rect').count(), history.length, 'one bar per flag');
	const labels = await svg.locator('text.lab').allTextContents();
	assert.equal(labels.filter((l) => l !== 'Level of need').length, history.length, 'a row per flag');
	const agencies = await svg.locator('text.lab tspan.agency').allTextContents();
	assert.deepEqual(agencies.sort(), ['health', 'police', 'school'], 'each agency named once, on its first row');
	assert.equal(await io.getByRole('heading', { name: 'No consent covers this agency' }).count(), 0);
	await shot(io, 'picture-consent');
});

test('e. break-glass: a short reason refused, then the picture with a warning', async () => {
	await io.getByLabel('NHS number', { exact: true }).fill(CHILD_B);
	await nav(io, () => io.getByRole('button', { name: 'Search' }).click());
	assert.equal(await io.getByRole('heading', { name: 'No consent covers this agency' }).count(), 1);

	// The browser would stop a reason under 20 characters; the server must too.
	const reason = io.getByLabel(/^Reason/);
	assert.equal(await reason.getAttribute('minlength'), '20');
	await io.evaluate(() => document.getElementById('reason').removeAttribute('minlength'));
	await reason.fill('Worried.');
	let resp = await nav(io, () => io.getByRole('button', { name: 'Break glass and show the picture' }).click());
	assert.equal(resp.status(), 400);
	assert.equal(pathOf(io), '/breakglass');
	assert.match(await text(io.getByRole('alert')), /^Give your reason: 20 to 280 characters/);
	assert.equal(await io.locator('#pic').count(), 0, 'no picture');
	assert.equal(await io.locator('main svg, main table').count(), 0, 'nothing about the child');
	const main = await text(io.locator('main'));
	for (const secret of ['Alex Patel', 'Jo Brown', 'Physical health', 'SEND', 'Shown by break-glass'])
		assert.ok(!main.includes(secret), `nothing shown: found "${secret}"`);
	await shot(io, 'breakglass-short-reason');

	await reason.fill(REASON);
	resp = await nav(io, () => io.getByRole('button', { name: 'Break glass and show the picture' }).click());
	assert.equal(resp.status(), 200);
	assert.equal(await text(io.locator('#pic')), `Whole picture for NHS number ${nhsSpaced(CHILD_B)}`);
	const warning = io.locator('main p.warning[role="alert"]');
	assert.match(await text(warning), /^Shown by break-glass, without consent\./);
	assert.match(await text(io.locator('main section')), /Shared on the basis break-glass\./);
	const now = await rows(tableAfter(io, 'Who is involved now'));
	assert.deepEqual(now.map((r) => r[0]).sort(), ['health', 'school']);
	assert.deepEqual(now.map((r) => r[4]).sort(), ['Physical health', 'SEND']);
	assert.equal(await io.locator('main figure.timeline svg rect').count(), 2);
	await shot(io, 'breakglass-picture');
});

test('f. sign out: the console is closed to the old page', async () => {
	let resp = await nav(io, () => io.getByRole('button', { name: 'Sign out' }).click());
	assert.equal(pathOf(io), '/login');
	assert.equal(resp.status(), 200);
	assert.equal(await h1(io), 'Sign in');
	await shot(io, 'signed-out');

	resp = await nav(io, () => io.goto(url(`/child?nhs=${CHILD_A}`)));
	assert.equal(pathOf(io), '/login', 'the child page now sends you to sign in');
	assert.equal(resp.request().redirectedFrom()?.url(), url(`/child?nhs=${CHILD_A}`));
	assert.equal(resp.request().redirectedFrom() && (await resp.request().redirectedFrom().response()).status(), 303);
	assert.ok(!(await text(io.locator('body'))).includes('PC Jones'));
	assert.deepEqual(await io.context().cookies().then((cs) => cs.filter((c) => c.name === 'ehx_session')), [],
		'the session cookie is gone');
	await shot(io, 'child-after-sign-out');
	await io.context().close();
});

// ---- the IG officer -------------------------------------------------------

let ig;

test('g. IG officer: review the break-glass, the audit and its CSV, the checkpoint, sign-ins', async () => {
	ig = await newPage();
	await nav(ig, () => ig.goto(url('/login')));
	let resp = await signIn(ig, 'ig', PASSWORD);
	assert.equal(resp.status(), 200);
	assert.match(await text(ig.locator('main')), /Signed in as Morgan Lee\./);
	assert.equal(await ig.getByRole('link', { name: 'Find a child' }).count(), 0,
		'an IG officer is not offered the child search');

	// The review queue.
	resp = await nav(ig, () => ig.getByRole('navigation').getByRole('link', { name: 'Break-glass reviews' }).click());
	assert.equal(resp.status(), 200);
	assert.equal(pathOf(ig), '/ig/alerts');
	const alert = ig.locator('main article.alert').filter({ hasText: REASON });
	assert.equal(await alert.count(), 1, 'the break-glass is awaiting review, with its reason');
	const heading = await text(alert.getByRole('heading', { level: 2 }));
	const seq = heading.match(/^Break-glass (\d+)$/)?.[1];
	assert.ok(seq, `the alert's heading names its number: ${heading}`);
	const who = await text(alert.locator('xpath=.//dt[.="Who"]/following-sibling::dd[1]'));
	assert.match(who, /^police · Dana Cole police-io, information_officer$/);
	assert.equal(await text(alert.locator('xpath=.//dt[.="Reason"]/following-sibling::dd[1]')), REASON);
	await shot(ig, 'ig-alerts');

	await alert.getByRole('radio', { name: 'Justified', exact: true }).check();
	await alert.getByLabel('Review note').fill(REVIEW_NOTE);
	resp = await nav(ig, () => alert.getByRole('button', { name: 'Record review' }).click());
	assert.equal(resp.status(), 200);
	assert.equal(pathOf(ig), '/ig/alerts');
	assert.equal(new URL(ig.url()).searchParams.get('done'), seq);
	assert.equal(await text(ig.getByRole('status')), 'Review recorded.');
	assert.equal(await ig.locator(`#al${seq}`).count(), 0, 'no longer awaiting review');
	await shot(ig, 'ig-review-recorded');

	resp = await nav(ig, () => ig.getByRole('link', { name: 'All, reviewed too' }).click());
	assert.equal(new URL(ig.url()).searchParams.get('all'), '1');
	const reviewed = ig.locator('main article.alert').filter({ has: ig.locator(`#al${seq}`) });
	assert.equal(await reviewed.count(), 1);
	const outcome = await text(reviewed.locator('xpath=.//dt[.="Reviewed"]/following-sibling::dd[1]'));
	assert.match(outcome, /^justified, .* by police · Morgan Lee police-ig, ig_officer: /);
	assert.ok(outcome.endsWith(REVIEW_NOTE), `the note is shown: ${outcome}`);
	assert.equal(await reviewed.getByRole('button', { name: 'Record review' }).count(), 0);
	await shot(ig, 'ig-alerts-all');

	// The audit: break-glass only.
	await nav(ig, () => ig.getByRole('navigation').getByRole('link', { name: 'Audit' }).click());
	assert.equal(pathOf(ig), '/ig/audit');
	await ig.getByLabel('Break-glass only').check();
	resp = await nav(ig, () => ig.getByRole('button', { name: 'Search' }).click());
	assert.equal(resp.status(), 200);
	assert.equal(new URL(ig.url()).searchParams.get('break_glass'), '1');
	const caption = await text(ig.locator('main table caption'));
	const n = Number(caption.match(/^(\d+) records$/)?.[1]);
	assert.ok(n >= 1, `at least one break-glass record: ${caption}`);
	const audit = await rows(ig.locator('main table'));
	assert.equal(audit.length, n);
	assert.equal(await ig.locator('main table tbody tr:not(.bg)').count(), 0, 'every row is a break-glass');
	assert.ok(audit.some((r) => r[2].startsWith('police · Dana Cole') && r[5].startsWith('allowed')),
		'the break-glass picture, allowed, by the officer');
	assert.ok(await ig.getByLabel('Break-glass only').isChecked(), 'the filter is kept');
	await shot(ig, 'ig-audit');

	const [download] = await Promise.all([
		ig.waitForEvent('download'),
		ig.getByRole('button', { name: 'Download CSV' }).click(),
	]);
	assert.equal(download.suggestedFilename(), 'ehx-audit-police.csv');
	const csv = readFileSync(await download.path(), 'utf8');
	assert.ok(csv.startsWith('seq,time,agency'), `the CSV header first: ${csv.slice(0, 60)}`);
	const table = parseCsv(csv);
	const head = table[0];
	assert.deepEqual(head.slice(0, 4), ['seq', 'time', 'agency', 'user_id']);
	const data = table.slice(1);
	assert.ok(data.length >= 1, 'and rows');
	const bg = head.indexOf('break_glass');
	assert.ok(bg >= 0);
	for (const r of data) {
		assert.equal(r.length, head.length, `a whole row: ${r}`);
		assert.ok(['true', '1', 'yes'].includes(r[bg]), `only break-glass rows: ${r}`);
	}
	assert.ok(data.some((r) => r[head.indexOf('user_id')] === 'police-io'), 'the officer\'s break-glass');
	assert.equal(pathOf(ig), '/ig/audit', 'the download leaves the page as it was');
	await shot(ig, 'ig-audit-csv');

	// The checkpoint: the sandbox signs one every 5 s; the agent checks it
	// when it next hears from the broker.
	const passed = "This agent's consistency checks have passed: every checkpoint it has seen extends the one before.";
	const notYet = "This agent has not yet checked a checkpoint of the broker's audit log.";
	let main = '';
	for (const t0 = Date.now(); Date.now() - t0 < 15000;) {
		resp = await nav(ig, () => ig.goto(url('/ig/checkpoint')));
		assert.equal(resp.status(), 200);
		main = await text(ig.locator('main'));
		if (main.includes(passed))
			break;
		await ig.waitForTimeout(1000);
	}
	assert.ok(!main.includes('FAILED'), `no failed consistency check: ${main}`);
	assert.ok(main.includes(passed) || main.includes(notYet), `the checkpoint page says where it stands: ${main}`);
	if (main.includes(passed)) {
		const size = Number(await text(ig.locator('xpath=//dt[.="Records in the log"]/following-sibling::dd[1]')));
		assert.ok(size > 0, 'the log has records');
		assert.match(await text(ig.locator('xpath=//dt[.="Root hash"]/following-sibling::dd[1]')), /^[0-9a-f]{64}$/);
	} else
		console.log('# note: no checkpoint checked within 15 s');
	await shot(ig, 'ig-checkpoint');

	// The console's sign-in log.
	await nav(ig, () => ig.getByRole('navigation').getByRole('link', { name: 'Sign-ins' }).click());
	const log = await rows(ig.locator('main table'));
	const has = (event, account) => log.some((r) => r[2] === event && r[3] === account && r[4] === '127.0.0.1');
	assert.ok(has('failed-password', 'io'), 'the wrong password is logged');
	assert.ok(has('signed-in', 'io'), 'the sign-in is logged');
	assert.ok(has('signed-out', 'io'), 'the sign-out is logged');
	assert.ok(has('signed-in', 'ig'), 'and this sign-in');
	assert.ok(!log.some((r) => r.join(' ').includes(PASSWORD)), 'no password in the log');
	await shot(ig, 'ig-signins');
	await ig.context().close();
});

// ---- the keyboard, and a hostile value -----------------------------------

let kb;

test('h. keyboard: skip link, account field, Enter signs in', async () => {
	kb = await newPage();
	await nav(kb, () => kb.goto(url('/login')));
	const focused = () => kb.evaluate(() => {
		const e = document.activeElement;
		return { tag: e.tagName.toLowerCase(), id: e.id, cls: e.className, text: e.textContent.trim() };
	});
	await kb.keyboard.press('Tab');
	let f = await focused();
	assert.deepEqual([f.tag, f.cls, f.text], ['a', 'skip', 'Skip to content'], 'Tab first reaches the skip link');
	assert.equal(await kb.evaluate(() => document.activeElement.getAttribute('href')), '#main');
	await shot(kb, 'keyboard-skip-link');
	await kb.keyboard.press('Tab');
	f = await focused();
	assert.deepEqual([f.tag, f.id], ['input', 'account'], 'then the account field');
	await kb.keyboard.type('io');
	await kb.keyboard.press('Tab');
	f = await focused();
	assert.deepEqual([f.tag, f.id], ['input', 'password'], 'then the password');
	await kb.keyboard.type(PASSWORD);
	assert.equal(await kb.evaluate(() => document.activeElement.id), 'password', 'the focus is still there');
	const resp = await nav(kb, () => kb.keyboard.press('Enter'));
	assert.equal(resp.status(), 200);
	assert.equal(pathOf(kb), '/');
	assert.equal(await h1(kb), 'Early help console');
	assert.match(await text(kb.locator('main')), /Signed in as Dana Cole\./);
	await shot(kb, 'keyboard-signed-in');
});

test('i. a hostile note is shown as text, never run', async () => {
	const resp = await nav(kb, () => kb.goto(url(`/child?nhs=${CHILD_A}`)));
	assert.equal(resp.status(), 200);
	assert.equal(await text(kb.locator('#pic')), `Whole picture for NHS number ${nhsSpaced(CHILD_A)}`);
	const notes = await kb.locator('xpath=//main//h3[.="History"]/following-sibling::table[1]/tbody/tr/td[7]')
		.allTextContents();
	assert.ok(notes.includes(HOSTILE), `the note, exactly, as text: ${JSON.stringify(notes)}`);
	assert.equal(await kb.locator('main img').count(), 0, 'no <img> element inside main');
	assert.equal(await kb.locator('img[src="x"], [onerror]').count(), 0, 'and none anywhere');
	const html = await resp.text();
	assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;'), 'the note is escaped in the HTML');
	assert.ok(!html.includes('<img'), 'the page sent has no <img');
	await kb.waitForTimeout(300);     // an onerror would fire by now
	assert.deepEqual(dialogs, [], 'no dialog opened on any page');
	await shot(kb, 'hostile-note');
	await kb.context().close();
});

test('j. right early help lists: health\'s Information Officer, East', async () => {
	const page = await newPage();
	const at = (path) => new URL(path, HEALTH).href;
	await nav(page, () => page.goto(at('/login')));
	await signIn(page, 'io', PASSWORD);
	await nav(page, () => page.getByRole('link', { name: 'Early help lists' }).first().click());
	assert.equal(await h1(page), 'Right early help lists');
	await page.getByLabel('List').selectOption('known_to_several');
	await page.getByLabel('Locality').fill('east');
	let resp = await nav(page, () => page.getByRole('button', { name: 'Show the list' }).click());
	assert.equal(resp.status(), 200);
	const several = await rows(page.locator('main table'));
	assert.deepEqual(several.map((r) => r[0]).sort(), [nhsSpaced(CHILD_A), nhsSpaced(CHILD_B)].sort(),
		'A and B are each known to two or more agencies');
	const a = several.find((r) => r[0] === nhsSpaced(CHILD_A));
	assert.equal(a[1], 'health, police, school', 'the agencies with an open flag');
	assert.equal(a[2], '3', 'the highest open level');
	assert.match(await text(page.locator('main')), /policy:anytown-isa-2026:public_task/, 'the basis it rests on');
	await shot(page, 'list-known-to-several');
	await page.getByLabel('List').selectOption('troubled_families');
	resp = await nav(page, () => page.getByRole('button', { name: 'Show the list' }).click());
	const tf = await rows(page.locator('main table'));
	assert.deepEqual(tf.map((r) => r[0]), [nhsSpaced(CHILD_A)], 'only A meets two criteria');
	assert.equal(tf[0][3], 'Not attending school regularly; Domestic violence and abuse; Health problems');
	await shot(page, 'list-troubled-families');
	await nav(page, () => page.getByRole('link', { name: nhsSpaced(CHILD_A) }).click());
	assert.equal(pathOf(page), '/child', 'a child on the list links to its page');
	await page.context().close();
});

// axe-core's WCAG 2.1 A and AA rules on every kind of page. It is injected
// as a script, so this context lets the page's Content-Security-Policy
// pass it.
test('k. accessibility: no WCAG 2.1 A or AA violation (axe-core)', async () => {
	const context = await browser.newContext({ bypassCSP: true });
	const page = await context.newPage();
	const check = async (what) => {
		await page.addScriptTag({ content: AXE });
		const res = await page.evaluate(() => globalThis.axe.run(document, {
			runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
		}));
		const found = res.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ` +
			v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; '));
		assert.deepEqual(found, [], `${what}: ${found.join('\n')}`);
		return res.passes.length;
	};
	const visit = async (base, path, what) => {
		await page.goto(new URL(path, base).href);
		return check(what);
	};
	let passes = await visit(POLICE, '/login', 'the sign-in page');
	assert.ok(passes > 5, 'axe ran its rules');
	await page.getByLabel('Account name').fill('io');
	await page.getByLabel('Password', { exact: true }).fill('wrong password here');
	await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
	await check('the sign-in page with its error');
	await page.getByLabel('Account name').fill('io');
	await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
	await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
	await check('the home page');
	await visit(POLICE, `/child?nhs=${BAD_NHS}`, 'a refused NHS number');
	await visit(POLICE, `/child?nhs=${CHILD_B}`, 'no consent: the consent and break-glass forms');
	await visit(POLICE, `/child?nhs=${CHILD_A}`, 'the whole picture and its timeline');
	await visit(POLICE, '/list', 'the lists page (refused: police is not given lists)');
	await visit(POLICE, '/nowhere', 'a missing page');
	await context.clearCookies();
	await page.goto(new URL('/login', POLICE).href);
	await page.getByLabel('Account name').fill('ig');
	await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
	await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
	for (const [path, what] of [['/ig/alerts?all=1', 'break-glass reviews'],
		['/ig/audit?searched=1', 'the audit'], ['/ig/disclosures', 'disclosures'],
		['/ig/checkpoint', 'the checkpoint'], ['/ig/signins', 'sign-ins']])
		await visit(POLICE, path, what);
	await page.goto(new URL('/login', HEALTH).href);
	await page.getByLabel('Account name').fill('io');
	await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
	await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
	await visit(HEALTH, '/list?list=troubled_families&locality=east', 'a right early help list');
	await context.close();
});

test('no script errors on any page', () => {
	assert.deepEqual(pageErrors, []);
	assert.deepEqual(dialogs, []);
});
