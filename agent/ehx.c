/*
 * ehx.c — the command line that people and agency systems use against
 * their agency's ehx-agent. It checks what it can before anything is sent
 * (NHS numbers, categories, levels, dates), sends one request over the
 * agent's Unix-domain socket, and prints the verified answer as a table or,
 * with --json, as JSON.
 *
 * Exit status: 0 done; 1 refused (by the broker or the agent, with a typed
 * error); 2 bad usage or invalid input, nothing sent; 3 the agent or the
 * broker could not be reached or did not answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "ehx/auditverify.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/validate.h"

#define DEFAULT_SOCKET "/run/ehx/agent.sock"
#define REPLY_WAIT_MS (320 * 1000)   /* beyond the agent's longest timeout */
#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define MAX_LIST 32

static const char *prog = "ehx";

static struct {
	const char *agent;
	int as_role;
	bool json;
} g;

static const char main_help[] =
"usage: ehx [--agent PATH] [--as ROLE] [--json] COMMAND [ARGS]\n"
"\n"
"Early Help Exchange: share early help flags about a child with the other\n"
"agencies of the partnership, record consent, and see a child's whole\n"
"picture — through this agency's ehx-agent.\n"
"\n"
"Commands:\n"
"  publish NHS_NUMBER ...      open or change this agency's flag on a child\n"
"  close NHS_NUMBER --ref REF  close one of this agency's flags\n"
"  consent grant NHS_NUMBER ...    record consent (or another lawful basis)\n"
"  consent withdraw NHS_NUMBER --id ID --reason TEXT\n"
"  consent show NHS_NUMBER     consent this agency recorded or is named in\n"
"  consent history NHS_NUMBER  every state change of those consent records\n"
"  picture NHS_NUMBER [--break-glass REASON]\n"
"                              the whole picture of a child (needs consent)\n"
"  audit [FILTERS]             the audit log (IG officers; see ehx help audit)\n"
"  audit alerts|review|disclosures|export|checkpoint\n"
"                              break-glass review, disclosures, export, and\n"
"                              this agent's check of the audit log\n"
"  sar NHS_NUMBER              subject access: all that is held on a child\n"
"  help [COMMAND]              help for a command\n"
"\n"
"Options (before or after the command):\n"
"  --agent PATH   the agent's socket (default $EHX_AGENT, else\n"
"                 " DEFAULT_SOCKET ")\n"
"  --as ROLE      act in another of the roles the agent's users file grants\n"
"                 you: system, practitioner, information_officer,\n"
"                 ig_officer, admin (default: the first one listed)\n"
"  --json         print JSON instead of tables\n"
"  -h, --help     help\n"
"\n"
"NHS numbers are 10 digits with a modulus-11 check digit; \"943 476 5919\"\n"
"and \"943-476-5919\" are accepted too.\n"
"\n"
"Exit status: 0 done; 1 refused (the reason is printed, with its code);\n"
"2 bad usage or invalid input, nothing was sent; 3 the agent or the broker\n"
"could not be reached or did not answer in time.\n";

static const char publish_help[] =
"usage: ehx publish NHS_NUMBER --category CATEGORY --level 1-4\n"
"                   --practitioner NAME [--job TITLE] [--contact CONTACT]\n"
"                   [--lead] [--note TEXT] [--ref REF] [--withhold]\n"
"\n"
"Open a flag saying this agency is involved with the child, or change an\n"
"open flag with the same --ref (a step up or down, a new practitioner).\n"
"Publishing a closed flag's ref again reopens it.\n"
"\n"
"  --category C       what the involvement is about: %s\n"
"  --level N          level of need: 1 universal, 2 additional, 3 complex,\n"
"                     4 acute (statutory)\n"
"  --practitioner N   the practitioner's name (required)\n"
"  --job TITLE        the practitioner's job title (\"school nurse\")\n"
"  --contact C        how other agencies reach the practitioner\n"
"  --lead             the practitioner is the lead practitioner\n"
"  --note TEXT        a short note, at most 280 bytes; share only what is\n"
"                     needed\n"
"  --ref REF          this agency's own reference for the involvement\n"
"                     (1-64 of A-Z a-z 0-9 . _ : / -); made up if omitted and\n"
"                     printed, so it can be closed later\n"
"  --withhold         leave this flag out of subject access exports:\n"
"                     disclosing it to a parent would not be in the\n"
"                     child's interests (it still shows in pictures)\n";

static const char close_help[] =
"usage: ehx close NHS_NUMBER --ref REF [--reason TEXT]\n"
"\n"
"Close one of this agency's flags on the child. The flag stays in the\n"
"child's history with its dates.\n"
"\n"
"  --ref REF       the reference the flag was published with\n"
"  --reason TEXT   why it closed, at most 280 bytes\n";

static const char consent_help[] =
"usage: ehx consent grant NHS_NUMBER --given-by NAME --relation RELATION\n"
"                         (--types T,... | --agencies A,...) --expires DATE\n"
"                         [--purposes P,...] [--basis BASIS] [--starts DATE]\n"
"       ehx consent withdraw NHS_NUMBER --id CONSENT_ID --reason TEXT\n"
"                         [--by NAME]\n"
"       ehx consent show NHS_NUMBER\n"
"       ehx consent history NHS_NUMBER\n"
"\n"
"grant: record the consent of the young person, a parent or a carer, or\n"
"another lawful basis for sharing, scoped to agencies and purposes.\n"
"  --given-by NAME     who gave it\n"
"  --relation R        young_person, parent or carer\n"
"  --types T,...       agency types it covers: police, health, school,\n"
"                      housing, local_authority, voluntary\n"
"  --agencies A,...    agency ids it covers\n"
"  --purposes P,...    whole_picture, notifications, assessment\n"
"                      (default: whole_picture)\n"
"  --basis B           consent (default), public_task, legal_obligation,\n"
"                      vital_interests\n"
"  --starts DATE       when it starts (default: now)\n"
"  --expires DATE      when it ends (at most three years on)\n"
"  DATE is YYYY-MM-DD, YYYY-MM-DDTHH:MMZ (UTC) or +Nd / +Nh from now.\n"
"\n"
"withdraw: record that a consent is withdrawn; it is kept, marked so.\n"
"  --id ID        the consent's id (c-...)\n"
"  --reason TEXT  why, at most 280 bytes (required)\n"
"  --by NAME      who asked for the withdrawal\n"
"\n"
"show: the consent records of the child that this agency recorded or that\n"
"name this agency or its type, with their state.\n"
"\n"
"history: the same records with every change of state, oldest first:\n"
"recorded, withdrawn (when, by whom, why) and expired. Nothing in a\n"
"consent's history is ever rewritten or deleted.\n";

static const char picture_help[] =
"usage: ehx picture NHS_NUMBER [--break-glass REASON]\n"
"\n"
"The whole picture of a child: which agencies and practitioners are\n"
"involved, the categories and levels of need, open and closed, the lead\n"
"practitioner and the highest open level of need.\n"
"\n"
"The broker answers only when an active consent of the child covers this\n"
"agency (or its type) for the whole_picture purpose, or the partnership's\n"
"sharing policy names another lawful basis for this agency's type.\n"
"Otherwise it answers no_consent and reveals nothing, not even whether\n"
"any flag exists. Other agencies' flags are shown as the sharing policy\n"
"lets this agency's type see them: some categories, levels, contacts or\n"
"notes may be left out; this agency's own flags are shown in full.\n"
"\n"
"  --break-glass REASON\n"
"        for a child at risk of significant harm, when consent cannot wait:\n"
"        the picture is answered without consent (still within the sharing\n"
"        policy), audited as break-glass, and raised to the information\n"
"        governance officers, who review every one. Only the practitioner\n"
"        and information_officer roles may; REASON must say why, in at\n"
"        least 20 characters and three words.\n";

static const char audit_help[] =
"usage: ehx audit [--child NHS_NUMBER] [--agency ID] [--user USER_ID]\n"
"                 [--from DATE] [--to DATE] [--decision allow|deny]\n"
"                 [--break-glass] [--limit N] [--csv | --json]\n"
"       ehx audit alerts [--all]\n"
"       ehx audit review ALERT --outcome justified|unjustified --note TEXT\n"
"       ehx audit disclosures\n"
"       ehx audit export FILE [--force]\n"
"       ehx audit checkpoint\n"
"\n"
"Information governance over the broker's tamper-evident audit log. All but\n"
"checkpoint are for information governance officers only: the ig_officer\n"
"role (use --as ig_officer). Every one of these queries is itself audited.\n"
"\n"
"audit: the records matching every filter given, oldest first: who (agency,\n"
"person, role) did what about which child (its pseudonym; children are\n"
"never named in the audit), allowed or denied, on what basis.\n"
"  --child NHS_NUMBER  one child (the broker turns it into the pseudonym)\n"
"  --agency ID         the acting agency\n"
"  --user USER_ID      the acting person, by the id their agency gave them\n"
"  --from DATE         at or after DATE\n"
"  --to DATE           before DATE (DATE as for consent: YYYY-MM-DD,\n"
"                      YYYY-MM-DDTHH:MMZ in UTC, or -Nd / -Nh ago)\n"
"  --decision D        allow or deny\n"
"  --break-glass       only break-glass answers\n"
"  --limit N           at most N records (default: all, page by page)\n"
"  --csv               CSV (RFC 4180) with a header row\n"
"  --json              one JSON object per line\n"
"  CSV and JSON carry: seq, time (ISO 8601, UTC), agency, user_id, person,\n"
"  role, action, child (hex pseudonym), decision, error, basis, consent_id,\n"
"  break_glass, message_id and envelope_hash (hex).\n"
"\n"
"alerts: the break-glass answers not yet reviewed (--all: reviewed ones\n"
"too): the alert number, when, which agency and person, the child's\n"
"pseudonym, the reason given and, once reviewed, the outcome, the reviewer\n"
"and the note. --json: one object per line.\n"
"\n"
"review: record the review of alert ALERT (the number alerts shows) with\n"
"--outcome justified or unjustified and --note TEXT (1-280 bytes, what the\n"
"review found). An alert is reviewed once.\n"
"\n"
"disclosures: every answer that showed this agency's flags to another\n"
"agency: when, to which agency and person, about which child (pseudonym),\n"
"on what basis, and how many flags. --json: one object per line.\n"
"\n"
"export: write the whole log with the broker's signed checkpoints, the\n"
"agencies' cosignatures, the signed envelopes kept as evidence and the\n"
"certificates to FILE, created with mode 0600 and put in place only when\n"
"complete. An existing FILE is kept unless --force. Check it offline with:\n"
"  ehx-auditverify FILE --ca CA_CERT\n"
"\n"
"checkpoint: the newest checkpoint of the broker's log this agent checked\n"
"(size, root, when signed, when checked) and whether the log has stayed\n"
"consistent with every checkpoint the agent has seen; exit status 1 if not.\n"
"Any role; the agent answers itself, without the broker.\n";

static const char sar_help[] =
"usage: ehx sar NHS_NUMBER\n"
"\n"
"A subject access export, as JSON, of everything the broker holds about a\n"
"child: every agency's flags, the consent records and their history, and\n"
"every whole-picture answer about the child (who saw it, when, on what\n"
"basis). Flags an agency marked --withhold are left out and counted. For\n"
"the ig_officer role; audited.\n";

static void die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ehx help' for more.\n");
	exit(EXIT_USAGE);
}

/* The options every command accepts as well as its own. */
#define COMMON_OPTS \
	{ "agent", required_argument, NULL, 'A' }, \
	{ "as", required_argument, NULL, 'R' }, \
	{ "json", no_argument, NULL, 'J' }, \
	{ "help", no_argument, NULL, 'h' }

/* Handle a common option; returns 1 if it was one. */
static int
common_opt(int c, const char *help)
{
	switch (c) {
	case 'A':
		g.agent = optarg;
		return 1;
	case 'R':
		if ((g.as_role = ehx_role_parse(optarg)) < 0)
			die_usage("unknown role \"%s\" (system, practitioner, "
			    "information_officer, ig_officer, admin)", optarg);
		return 1;
	case 'J':
		g.json = true;
		return 1;
	case 'h':
		if (help == publish_help)
			printf(publish_help, ehx_category_list());
		else
			fputs(help, stdout);
		exit(0);
	default:
		return 0;
	}
}

static void
nhs_arg(const char *in, char out[EHX_NHS_LEN + 1])
{
	if (ehx_nhs_normalise(in, out) != 0)
		die_usage("\"%s\" is not a valid NHS number (10 digits with a "
		    "modulus-11 check digit)", in);
}

/* Split a comma list into at most max items (pointers into s). */
static size_t
split(char *s, char **items, size_t max, const char *what)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(s, ",", &save); t != NULL;
	    t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		if (*t == '\0')
			continue;
		if (n == max)
			die_usage("too many %s", what);
		items[n++] = t;
	}
	return n;
}

/* ---- talking to the agent ---------------------------------------------- */

static int exchange2(const Ehx__Body *req, bool state, Ehx__LocalReply **out);

static int
exchange(const Ehx__Body *req, Ehx__LocalReply **out)
{
	return exchange2(req, false, out);
}

/* Send req (or, with state, ask the agent about itself); the reply in
 * *out. Any warning the agent gives is printed first. */
static int
exchange2(const Ehx__Body *req, bool state, Ehx__LocalReply **out)
{
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
	struct sockaddr_un sa;
	unsigned char *buf = NULL;
	size_t n;
	ssize_t got;
	struct pollfd pfd;
	int fd = -1, r = EXIT_UNREACHABLE, rc;
	const char *path = g.agent;

	*out = NULL;
	if (path == NULL && (path = getenv("EHX_AGENT")) == NULL)
		path = DEFAULT_SOCKET;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		die_usage("agent socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	lr.body = (Ehx__Body *)req;
	lr.agent_state = state;
	lr.as_role = (Ehx__Role)(g.as_role > 0 ? g.as_role : 0);
	n = ehx__local_request__get_packed_size(&lr);
	if ((buf = malloc(n > EHX_MAX_MESSAGE + 1024 ? n : EHX_MAX_MESSAGE +
	    1024)) == NULL)
		goto out;
	ehx__local_request__pack(&lr, buf);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "%s: cannot reach the agent at %s: %s\n", prog,
		    path, strerror(errno));
		if (errno == EACCES)
			fprintf(stderr, "%s: the socket's permissions do not "
			    "let this account use the agent\n", prog);
		goto out;
	}
	if (send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
		fprintf(stderr, "%s: sending to the agent failed: %s\n", prog,
		    strerror(errno));
		goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while ((rc = poll(&pfd, 1, REPLY_WAIT_MS)) < 0 && errno == EINTR)
		;
	if (rc <= 0) {
		fprintf(stderr, "%s: the agent did not answer\n", prog);
		goto out;
	}
	got = recv(fd, buf, EHX_MAX_MESSAGE + 1024, MSG_TRUNC);
	if (got <= 0 || got > EHX_MAX_MESSAGE + 1024 ||
	    (*out = ehx__local_reply__unpack(NULL, (size_t)got, buf)) == NULL ||
	    ((*out)->reply == NULL && (!state || (*out)->state == NULL))) {
		fprintf(stderr, "%s: the agent closed the connection without a "
		    "valid answer\n", prog);
		if (*out != NULL)
			ehx__local_reply__free_unpacked(*out, NULL);
		*out = NULL;
		goto out;
	}
	if ((*out)->warning[0] != '\0')
		fprintf(stderr, "%s: %s\n", prog, render_safe((*out)->warning));
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/*
 * Send req; on success call done() with the reply, else print the error.
 * Returns the exit status.
 */
static int
run(const Ehx__Body *req, const char *nhs,
    void (*done)(const Ehx__Body *, const void *), const void *arg)
{
	Ehx__LocalReply *lr = NULL;
	const Ehx__Body *b;
	int r;

	if ((r = exchange(req, &lr)) != 0)
		return r;
	b = lr->reply;
	if (b->payload_case == EHX__BODY__PAYLOAD_ERROR && b->error != NULL) {
		int code = ehx_err_from_wire(b->error->code);

		render_error(b->error, lr->from_agent, g.json);
		r = code == EHX_ERR_UNAVAILABLE || code == EHX_ERR_TIMEOUT ||
		    code == EHX_ERR_INTERNAL ? EXIT_UNREACHABLE : EXIT_REFUSED;
	} else if (done != NULL && b->payload_case == EHX__BODY__PAYLOAD_ACK &&
	    !g.json) {
		done(b, arg);
	} else
		render_reply(stdout, b, g.json, nhs);
	ehx__local_reply__free_unpacked(lr, NULL);
	return r;
}

/* Check locally with the broker's own rules, so nothing invalid is sent. */
static void
precheck(const Ehx__Body *req)
{
	char why[256];
	int r;

	if ((r = ehx_validate_request(req, ehx_now_ms(), why, sizeof(why))) != 0)
		die_usage("%s", why);
}

/* ---- commands ------------------------------------------------------------ */

static void
said(const Ehx__Body *b, const void *arg)
{
	printf("%s %s.\n", (const char *)arg, render_safe(b->ack->id));
}

static int
cmd_publish(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "category", required_argument, NULL, 'c' },
		{ "level", required_argument, NULL, 'l' },
		{ "practitioner", required_argument, NULL, 'p' },
		{ "job", required_argument, NULL, 'j' },
		{ "contact", required_argument, NULL, 'k' },
		{ "lead", no_argument, NULL, 'L' },
		{ "note", required_argument, NULL, 'n' },
		{ "ref", required_argument, NULL, 'r' },
		{ "withhold", no_argument, NULL, 'W' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__PublishFlag m = EHX__PUBLISH_FLAG__INIT;
	Ehx__Practitioner p = EHX__PRACTITIONER__INIT;
	char nhs[EHX_NHS_LEN + 1], ref[EHX_MAX_REF + 1] = "";
	unsigned char rnd[6];
	int c, cat = 0;
	long lvl = 0;
	char *end;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, publish_help))
			continue;
		switch (c) {
		case 'c':
			if ((cat = ehx_category_parse(optarg)) < 0)
				die_usage("unknown category \"%s\" (see ehx "
				    "publish --help)", optarg);
			break;
		case 'l':
			lvl = strtol(optarg, &end, 10);
			if (*end != '\0' || lvl < 1 || lvl > 4)
				die_usage("--level must be 1, 2, 3 or 4, not "
				    "\"%s\"", optarg);
			break;
		case 'p': p.name = optarg; break;
		case 'j': p.role = optarg; break;
		case 'k': p.contact = optarg; break;
		case 'L': m.lead = true; break;
		case 'W': m.withhold = true; break;
		case 'n': m.note = optarg; break;
		case 'r': snprintf(ref, sizeof(ref), "%s", optarg);
			if (strlen(optarg) > EHX_MAX_REF || !ehx_ref_ok(optarg))
				die_usage("--ref \"%s\" must be 1-64 of A-Z a-z "
				    "0-9 . _ : / -", optarg);
			break;
		default:
			exit(EXIT_USAGE);
		}
	}
	if (optind + 1 != argc)
		die_usage("%s", "publish needs exactly one NHS number");
	if (cat == 0 || lvl == 0 || p.name == protobuf_c_empty_string)
		die_usage("%s", "publish needs --category, --level and "
		    "--practitioner");
	nhs_arg(argv[optind], nhs);
	if (ref[0] == '\0') {
		char hex[13];

		if (ehx_random(rnd, sizeof(rnd)) != 0)
			return EXIT_UNREACHABLE;
		snprintf(ref, sizeof(ref), "ehx-%s", ehx_hex(hex, rnd, sizeof(rnd)));
	}
	m.nhs_number = nhs;
	m.ref = ref;
	m.category = (Ehx__Category)cat;
	m.level = (uint32_t)lvl;
	m.practitioner = &p;
	b.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	b.publish_flag = &m;
	precheck(&b);
	return run(&b, nhs, said, "Published flag");
}

static int
cmd_close(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ref", required_argument, NULL, 'r' },
		{ "reason", required_argument, NULL, 'w' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__CloseFlag m = EHX__CLOSE_FLAG__INIT;
	char nhs[EHX_NHS_LEN + 1];
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, close_help))
			continue;
		switch (c) {
		case 'r': m.ref = optarg; break;
		case 'w': m.reason = optarg; break;
		default: exit(EXIT_USAGE);
		}
	}
	if (optind + 1 != argc || m.ref == protobuf_c_empty_string)
		die_usage("%s", "close needs one NHS number and --ref");
	nhs_arg(argv[optind], nhs);
	m.nhs_number = nhs;
	b.payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
	b.close_flag = &m;
	precheck(&b);
	return run(&b, nhs, said, "Closed flag");
}

static int
consent_grant(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "given-by", required_argument, NULL, 'g' },
		{ "relation", required_argument, NULL, 'r' },
		{ "types", required_argument, NULL, 't' },
		{ "agencies", required_argument, NULL, 'a' },
		{ "purposes", required_argument, NULL, 'p' },
		{ "basis", required_argument, NULL, 'b' },
		{ "starts", required_argument, NULL, 's' },
		{ "expires", required_argument, NULL, 'e' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__RecordConsent m = EHX__RECORD_CONSENT__INIT;
	Ehx__GivenBy gb = EHX__GIVEN_BY__INIT;
	Ehx__ConsentScope sc = EHX__CONSENT_SCOPE__INIT;
	char nhs[EHX_NHS_LEN + 1], *items[MAX_LIST];
	Ehx__AgencyType types[MAX_LIST];
	Ehx__Purpose purposes[MAX_LIST];
	char *agencies[MAX_LIST];
	int64_t now = ehx_now_ms();
	size_t n;
	int c, v;
	bool have_expiry = false;

	m.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	purposes[0] = EHX__PURPOSE__PURPOSE_WHOLE_PICTURE;
	sc.purposes = purposes;
	sc.n_purposes = 1;
	sc.agencies = agencies;
	sc.agency_types = types;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, consent_help))
			continue;
		switch (c) {
		case 'g': gb.name = optarg; break;
		case 'r':
			if ((v = ehx_relation_parse(optarg)) < 0)
				die_usage("--relation must be young_person, "
				    "parent or carer, not \"%s\"", optarg);
			gb.relation = (Ehx__Relation)v;
			break;
		case 't':
			n = split(optarg, items, MAX_LIST, "agency types");
			for (size_t i = 0; i < n; i++) {
				if ((v = ehx_agency_type_parse(items[i])) < 0)
					die_usage("unknown agency type \"%s\"",
					    items[i]);
				if (sc.n_agency_types == MAX_LIST)
					die_usage("%s", "too many agency types");
				types[sc.n_agency_types++] = (Ehx__AgencyType)v;
			}
			break;
		case 'a':
			n = split(optarg, items, MAX_LIST, "agencies");
			for (size_t i = 0; i < n; i++) {
				if (sc.n_agencies == MAX_LIST)
					die_usage("%s", "too many agencies");
				agencies[sc.n_agencies++] = items[i];
			}
			break;
		case 'p':
			n = split(optarg, items, MAX_LIST, "purposes");
			sc.n_purposes = 0;
			for (size_t i = 0; i < n; i++) {
				if ((v = ehx_purpose_parse(items[i])) < 0)
					die_usage("unknown purpose \"%s\" "
					    "(whole_picture, notifications, "
					    "assessment)", items[i]);
				purposes[sc.n_purposes++] = (Ehx__Purpose)v;
			}
			break;
		case 'b':
			if ((v = ehx_basis_parse(optarg)) < 0)
				die_usage("unknown lawful basis \"%s\" (consent, "
				    "public_task, legal_obligation, "
				    "vital_interests)", optarg);
			m.basis = (Ehx__LawfulBasis)v;
			break;
		case 's':
			if (ehx_parse_time(optarg, now, &m.starts_at) != 0)
				die_usage("--starts \"%s\" is not a date", optarg);
			break;
		case 'e':
			if (ehx_parse_time(optarg, now, &m.expires_at) != 0)
				die_usage("--expires \"%s\" is not a date", optarg);
			have_expiry = true;
			break;
		default: exit(EXIT_USAGE);
		}
	}
	if (optind + 1 != argc)
		die_usage("%s", "consent grant needs exactly one NHS number");
	if (gb.name == protobuf_c_empty_string || gb.relation == 0 ||
	    !have_expiry)
		die_usage("%s", "consent grant needs --given-by, --relation and "
		    "--expires");
	nhs_arg(argv[optind], nhs);
	m.nhs_number = nhs;
	m.given_by = &gb;
	m.scope = &sc;
	b.payload_case = EHX__BODY__PAYLOAD_RECORD_CONSENT;
	b.record_consent = &m;
	precheck(&b);
	return run(&b, nhs, said, "Recorded consent");
}

static int
consent_withdraw(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "reason", required_argument, NULL, 'w' },
		{ "by", required_argument, NULL, 'b' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__WithdrawConsent m = EHX__WITHDRAW_CONSENT__INIT;
	char nhs[EHX_NHS_LEN + 1];
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, consent_help))
			continue;
		switch (c) {
		case 'i': m.consent_id = optarg; break;
		case 'w': m.reason = optarg; break;
		case 'b': m.withdrawn_by = optarg; break;
		default: exit(EXIT_USAGE);
		}
	}
	if (optind + 1 != argc || m.consent_id == protobuf_c_empty_string ||
	    m.reason == protobuf_c_empty_string)
		die_usage("%s", "consent withdraw needs one NHS number, --id "
		    "and --reason");
	nhs_arg(argv[optind], nhs);
	m.nhs_number = nhs;
	b.payload_case = EHX__BODY__PAYLOAD_WITHDRAW_CONSENT;
	b.withdraw_consent = &m;
	precheck(&b);
	return run(&b, nhs, said, "Withdrew consent");
}

/* picture, consent show and consent history: one NHS number. */
static int
cmd_query(int argc, char **argv, const char *help, bool picture, bool history)
{
	static const struct option opts[] = {
		{ "break-glass", required_argument, NULL, 'B' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QueryPicture qp = EHX__QUERY_PICTURE__INIT;
	Ehx__QueryConsent qc = EHX__QUERY_CONSENT__INIT;
	char nhs[EHX_NHS_LEN + 1];
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, help))
			continue;
		if (c == 'B' && picture)
			qp.break_glass_reason = optarg;
		else {
			if (c == 'B')
				fprintf(stderr, "%s: --break-glass is for ehx "
				    "picture\n", prog);
			exit(EXIT_USAGE);
		}
	}
	if (optind + 1 != argc)
		die_usage("%s", "give exactly one NHS number");
	nhs_arg(argv[optind], nhs);
	if (picture) {
		qp.nhs_number = nhs;
		b.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
		b.query_picture = &qp;
	} else {
		qc.nhs_number = nhs;
		qc.history = history;
		b.payload_case = EHX__BODY__PAYLOAD_QUERY_CONSENT;
		b.query_consent = &qc;
	}
	precheck(&b);
	return run(&b, nhs, NULL, NULL);
}

static int
cmd_consent(int argc, char **argv)
{
	if (argc < 2) {
		fputs(consent_help, stderr);
		return EXIT_USAGE;
	}
	optind = 0;
	if (strcmp(argv[1], "grant") == 0)
		return consent_grant(argc - 1, argv + 1);
	if (strcmp(argv[1], "withdraw") == 0)
		return consent_withdraw(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return cmd_query(argc - 1, argv + 1, consent_help, false, false);
	if (strcmp(argv[1], "history") == 0)
		return cmd_query(argc - 1, argv + 1, consent_help, false, true);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(consent_help, stdout);
		return 0;
	}
	die_usage("unknown consent command \"%s\" (grant, withdraw, show, "
	    "history)",
	    argv[1]);
	return EXIT_USAGE;
}

/* ---- information governance ------------------------------------------------ */

/*
 * Send req and hand back the reply if it is the payload wanted; otherwise
 * print the refusal and return the exit status (with *out NULL).
 */
static int
ask_for(const Ehx__Body *req, int want, Ehx__LocalReply **out)
{
	const Ehx__Body *b;
	int r;

	if ((r = exchange(req, out)) != 0)
		return r;
	b = (*out)->reply;
	if (b->payload_case == (Ehx__Body__PayloadCase)want)
		return 0;
	if (b->payload_case == EHX__BODY__PAYLOAD_ERROR && b->error != NULL) {
		int code = ehx_err_from_wire(b->error->code);

		render_error(b->error, (*out)->from_agent, g.json);
		r = code == EHX_ERR_UNAVAILABLE || code == EHX_ERR_TIMEOUT ||
		    code == EHX_ERR_INTERNAL ? EXIT_UNREACHABLE : EXIT_REFUSED;
	} else {
		fprintf(stderr, "%s: the broker answered with %d\n", prog,
		    b->payload_case);
		r = EXIT_UNREACHABLE;
	}
	ehx__local_reply__free_unpacked(*out, NULL);
	*out = NULL;
	return r;
}

/*
 * Move a paging query on to next (0: no more). A page must move forward:
 * a faulty broker repeating one would otherwise keep us asking forever.
 * Returns 0, or the exit status after saying why.
 */
static int
next_page(uint64_t *after_seq, uint64_t next)
{
	if (next != 0 && next <= *after_seq) {
		fprintf(stderr, "%s: the broker's answer did not move on from "
		    "record %llu\n", prog, (unsigned long long)*after_seq);
		return EXIT_UNREACHABLE;
	}
	*after_seq = next;
	return 0;
}

/* s as a positive whole number, or 0 if it is not one. */
static uint64_t
positive_arg(const char *s)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    s[0] == '+' || s[0] == ' ')
		return 0;
	return v;
}

/* audit's filters, each checked before anything is sent. */
static void
audit_filter(int c, Ehx__QueryAudit *q, char nhs[EHX_NHS_LEN + 1],
    int64_t now)
{
	switch (c) {
	case 'c':
		nhs_arg(optarg, nhs);
		q->nhs_number = nhs;
		break;
	case 'a':
		if (!ehx_id_ok(optarg))
			die_usage("--agency \"%s\" is not an agency id", optarg);
		q->agency = optarg;
		break;
	case 'u':
		if (!ehx_text_ok(optarg, 1, EHX_MAX_USER_ID))
			die_usage("--user must be 1-%d bytes of printable text",
			    EHX_MAX_USER_ID);
		q->user_id = optarg;
		break;
	case 'f':
	case 't':
		if (ehx_parse_time(optarg, now, c == 'f' ? &q->from_time :
		    &q->to_time) != 0 || (c == 'f' ? q->from_time :
		    q->to_time) <= 0)
			die_usage("--%s \"%s\" is not a date (YYYY-MM-DD, "
			    "YYYY-MM-DDTHH:MMZ, -Nd or -Nh)", c == 'f' ? "from" :
			    "to", optarg);
		break;
	case 'd':
		if (strcmp(optarg, "allow") == 0)
			q->decision = EHX__DECISION__DECISION_ALLOW;
		else if (strcmp(optarg, "deny") == 0)
			q->decision = EHX__DECISION__DECISION_DENY;
		else
			die_usage("--decision must be allow or deny, not \"%s\"",
			    optarg);
		break;
	case 'B':
		q->break_glass = true;
		break;
	default:
		exit(EXIT_USAGE);
	}
}

/*
 * Print one audit page, no more than left records when left > 0 (a broker
 * that sends more than asked for is cut short). The header goes before the
 * first record, or first of all for CSV; *headed says it has been printed.
 * Returns how many records were printed.
 */
static size_t
audit_print(const Ehx__AuditResult *res, enum render_format fmt,
    bool *headed, uint64_t left)
{
	Ehx__AuditResult page = *res;

	if (left > 0 && page.n_records > left)
		page.n_records = (size_t)left;
	if (page.n_records > 0 || (fmt == RENDER_CSV && !*headed)) {
		render_audit_page(stdout, &page, fmt, !*headed);
		*headed = true;
	}
	return page.n_records;
}

static int
audit_query(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "child", required_argument, NULL, 'c' },
		{ "agency", required_argument, NULL, 'a' },
		{ "user", required_argument, NULL, 'u' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "decision", required_argument, NULL, 'd' },
		{ "break-glass", no_argument, NULL, 'B' },
		{ "limit", required_argument, NULL, 'l' },
		{ "csv", no_argument, NULL, 'C' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QueryAudit q = EHX__QUERY_AUDIT__INIT;
	Ehx__LocalReply *lr;
	char nhs[EHX_NHS_LEN + 1];
	int64_t now = ehx_now_ms();
	uint64_t limit = 0, printed = 0;
	enum render_format fmt;
	bool csv = false, headed = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, audit_help))
			continue;
		switch (c) {
		case 'l':
			if ((limit = positive_arg(optarg)) == 0)
				die_usage("--limit needs a positive whole number, "
				    "not \"%s\"", optarg);
			break;
		case 'C': csv = true; break;
		default: audit_filter(c, &q, nhs, now);
		}
	}
	if (optind != argc)
		die_usage("unexpected \"%s\": audit takes options only, or one of "
		    "alerts, review, disclosures, export, checkpoint first",
		    argv[optind]);
	if (csv && g.json)
		die_usage("%s", "choose --csv or --json, not both");
	if (q.from_time != 0 && q.to_time != 0 && q.to_time <= q.from_time)
		die_usage("%s", "--to must be later than --from");
	fmt = csv ? RENDER_CSV : g.json ? RENDER_JSON : RENDER_TABLE;
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_AUDIT;
	b.query_audit = &q;
	precheck(&b);
	do {
		if (limit > 0 && limit - printed < EHX_MAX_AUDIT_PAGE)
			q.limit = (uint32_t)(limit - printed);
		if ((r = ask_for(&b, EHX__BODY__PAYLOAD_AUDIT, &lr)) != 0)
			return r;
		printed += audit_print(lr->reply->audit, fmt, &headed,
		    limit > 0 ? limit - printed : 0);
		r = next_page(&q.after_seq, lr->reply->audit->next_seq);
		ehx__local_reply__free_unpacked(lr, NULL);
		if (r != 0)
			return r;
	} while (q.after_seq != 0 && (limit == 0 || printed < limit));
	if (printed == 0 && fmt == RENDER_TABLE)
		printf("No audit records match.\n");
	return 0;
}

static int
audit_alerts(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QueryAlerts q = EHX__QUERY_ALERTS__INIT;
	Ehx__LocalReply *lr;
	size_t shown = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, audit_help))
			continue;
		if (c != 'a')
			exit(EXIT_USAGE);
		q.all = true;
	}
	if (optind != argc)
		die_usage("%s", "audit alerts takes no arguments");
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_ALERTS;
	b.query_alerts = &q;
	precheck(&b);
	do {
		const Ehx__AlertResult *res;

		if ((r = ask_for(&b, EHX__BODY__PAYLOAD_ALERTS, &lr)) != 0)
			return r;
		res = lr->reply->alerts;
		if (res->n_alerts > 0)
			render_alerts_page(stdout, res, g.json, shown == 0);
		shown += res->n_alerts;
		r = next_page(&q.after_seq, res->next_seq);
		ehx__local_reply__free_unpacked(lr, NULL);
		if (r != 0)
			return r;
	} while (q.after_seq != 0);
	if (shown == 0 && !g.json)
		printf("No %sbreak-glass alerts.\n", q.all ? "" : "unreviewed ");
	return 0;
}

static void
reviewed(const Ehx__Body *b, const void *arg)
{
	(void)b;
	printf("%s\n", (const char *)arg);
}

static int
audit_review(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "outcome", required_argument, NULL, 'o' },
		{ "note", required_argument, NULL, 'n' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__ReviewAlert m = EHX__REVIEW_ALERT__INIT;
	const char *outcome = NULL;
	char done[96];
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, audit_help))
			continue;
		switch (c) {
		case 'o':
			outcome = optarg;
			if (strcmp(optarg, "justified") == 0)
				m.outcome = EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_JUSTIFIED;
			else if (strcmp(optarg, "unjustified") == 0)
				m.outcome =
				    EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_UNJUSTIFIED;
			else
				die_usage("--outcome must be justified or "
				    "unjustified, not \"%s\"", optarg);
			break;
		case 'n': m.note = optarg; break;
		default: exit(EXIT_USAGE);
		}
	}
	if (optind + 1 != argc)
		die_usage("%s", "audit review needs one ALERT number (see ehx "
		    "audit alerts)");
	if ((m.alert = positive_arg(argv[optind])) == 0)
		die_usage("\"%s\" is not an alert number (the ALERT column of "
		    "ehx audit alerts)", argv[optind]);
	if (m.outcome == 0)
		die_usage("%s", "audit review needs --outcome justified or "
		    "--outcome unjustified");
	if (m.note[0] == '\0')
		die_usage("%s", "audit review needs --note saying what the review "
		    "found");
	b.payload_case = EHX__BODY__PAYLOAD_REVIEW_ALERT;
	b.review_alert = &m;
	precheck(&b);
	snprintf(done, sizeof(done), "Reviewed alert %llu: %s.",
	    (unsigned long long)m.alert, outcome);
	return run(&b, NULL, reviewed, done);
}

static int
audit_disclosures(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QueryDisclosures q = EHX__QUERY_DISCLOSURES__INIT;
	Ehx__LocalReply *lr;
	size_t shown = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		if (!common_opt(c, audit_help))
			exit(EXIT_USAGE);
	if (optind != argc)
		die_usage("%s", "audit disclosures takes no arguments");
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_DISCLOSURES;
	b.query_disclosures = &q;
	precheck(&b);
	do {
		const Ehx__DisclosureResult *res;

		if ((r = ask_for(&b, EHX__BODY__PAYLOAD_DISCLOSURES, &lr)) != 0)
			return r;
		res = lr->reply->disclosures;
		if (res->n_disclosures > 0)
			render_disclosures_page(stdout, res, g.json, shown == 0);
		shown += res->n_disclosures;
		r = next_page(&q.after_seq, res->next_seq);
		ehx__local_reply__free_unpacked(lr, NULL);
		if (r != 0)
			return r;
	} while (q.after_seq != 0);
	if (shown == 0 && !g.json)
		printf("No other agency has been shown this agency's flags.\n");
	return 0;
}

/* Write all of buf to fd; 0 or -1 with errno set. */
static int
write_all(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Append one export page to fd: its length, 4 bytes big-endian, then the
 * page re-packed by protobuf-c (the bytes the agent received; what is
 * signed is inside, for ehx-auditverify). Returns 0 or -1 with errno.
 */
static int
export_page(int fd, const Ehx__ExportResult *page)
{
	size_t n = ehx__export_result__get_packed_size(page);
	unsigned char *buf, hdr[4];
	int r;

	if (n > EHX_MAX_MESSAGE) {
		errno = EFBIG;
		return -1;
	}
	if ((buf = malloc(n > 0 ? n : 1)) == NULL)
		return -1;
	ehx__export_result__pack(page, buf);
	hdr[0] = (unsigned char)(n >> 24);
	hdr[1] = (unsigned char)(n >> 16);
	hdr[2] = (unsigned char)(n >> 8);
	hdr[3] = (unsigned char)n;
	r = write_all(fd, hdr, sizeof(hdr)) != 0 || write_all(fd, buf, n) != 0;
	free(buf);
	return r ? -1 : 0;
}

/* fsync the directory that holds path, so a rename into it lasts. */
static void
sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * Put the finished tmp in place as path: never over an existing file
 * unless force (RENAME_NOREPLACE, so a file that appeared meanwhile is not
 * lost either). Returns 0 or -1 with errno.
 */
static int
export_place(const char *tmp, const char *path, bool force)
{
	if (force)
		return rename(tmp, path);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* A file system without RENAME_NOREPLACE: check, then rename. */
	if (access(path, F_OK) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(tmp, path);
}

/*
 * Ask for every export page and write them to fd. Counts into *records
 * and *checkpoints. Returns 0, the exit status of a refusal, or -1 with
 * errno after a write failed.
 */
static int
export_pages(int fd, unsigned long long *records,
    unsigned long long *checkpoints)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__ExportAudit q = EHX__EXPORT_AUDIT__INIT;
	Ehx__LocalReply *lr;
	int r;

	b.payload_case = EHX__BODY__PAYLOAD_EXPORT_AUDIT;
	b.export_audit = &q;
	precheck(&b);
	do {
		const Ehx__ExportResult *page;

		if ((r = ask_for(&b, EHX__BODY__PAYLOAD_EXPORT, &lr)) != 0)
			return r;
		page = lr->reply->export;
		if (export_page(fd, page) != 0) {
			int e = errno;

			ehx__local_reply__free_unpacked(lr, NULL);
			errno = e;
			return -1;
		}
		*records += page->n_records;
		*checkpoints += page->n_checkpoints;
		r = next_page(&q.after_seq, page->next_seq);
		ehx__local_reply__free_unpacked(lr, NULL);
		if (r != 0)
			return r;
	} while (q.after_seq != 0);
	return 0;
}

static int
audit_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'F' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	unsigned long long records = 0, checkpoints = 0;
	char tmp[PATH_MAX];
	const char *path, *doing = "writing";
	bool force = false;
	int c, r = 0, fd;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, audit_help))
			continue;
		if (c != 'F')
			exit(EXIT_USAGE);
		force = true;
	}
	if (optind + 1 != argc)
		die_usage("%s", "audit export needs one FILE");
	path = argv[optind];
	if (strcmp(path, "-") == 0 || path[0] == '\0')
		die_usage("%s", "the export is binary: give a FILE, not -");
	if (!force && access(path, F_OK) == 0)
		die_usage("%s exists; use --force to replace it", path);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		die_usage("%s", "FILE's name is too long");
	if (force)
		(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) < 0) {
		fprintf(stderr, "%s: cannot create %s: %s%s\n", prog, tmp,
		    strerror(errno), errno == EEXIST ? " (left by an export "
		    "that stopped? remove it, or use --force)" : "");
		return EXIT_USAGE;
	}
	if (fchmod(fd, 0600) != 0 ||
	    write_all(fd, EHX_EXPORT_MAGIC, strlen(EHX_EXPORT_MAGIC)) != 0 ||
	    (r = export_pages(fd, &records, &checkpoints)) < 0 ||
	    (r == 0 && fsync(fd) != 0))
		goto ioerr;
	if (r != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto ioerr;
	}
	fd = -1;
	doing = "placing";
	if (export_place(tmp, path, force) != 0)
		goto ioerr;
	sync_dir(path);
	printf("Exported %llu audit records, %llu checkpoints to %s; check it "
	    "with: ehx-auditverify %s --ca CA_CERT\n", records, checkpoints,
	    path, path);
	return 0;
ioerr:
	fprintf(stderr, "%s: %s %s: %s\n", prog, doing, path, strerror(errno));
	r = EXIT_UNREACHABLE;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

static int
audit_checkpoint(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__LocalReply *lr;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		if (!common_opt(c, audit_help))
			exit(EXIT_USAGE);
	if (optind != argc)
		die_usage("%s", "audit checkpoint takes no arguments");
	if ((r = exchange2(NULL, true, &lr)) != 0)
		return r;
	if (lr->state == NULL) {
		if (lr->reply != NULL && lr->reply->payload_case ==
		    EHX__BODY__PAYLOAD_ERROR && lr->reply->error != NULL)
			render_error(lr->reply->error, true, g.json);
		else
			fprintf(stderr, "%s: the agent did not say what it "
			    "checked (is it older than this command?)\n", prog);
		ehx__local_reply__free_unpacked(lr, NULL);
		return EXIT_REFUSED;
	}
	render_agent_state(stdout, lr->state, g.json);
	r = lr->state->consistent ? 0 : EXIT_REFUSED;
	ehx__local_reply__free_unpacked(lr, NULL);
	return r;
}

static int
cmd_audit(int argc, char **argv)
{
	optind = 0;
	if (argc >= 2 && argv[1][0] != '-') {
		if (strcmp(argv[1], "alerts") == 0)
			return audit_alerts(argc - 1, argv + 1);
		if (strcmp(argv[1], "review") == 0)
			return audit_review(argc - 1, argv + 1);
		if (strcmp(argv[1], "disclosures") == 0)
			return audit_disclosures(argc - 1, argv + 1);
		if (strcmp(argv[1], "export") == 0)
			return audit_export(argc - 1, argv + 1);
		if (strcmp(argv[1], "checkpoint") == 0)
			return audit_checkpoint(argc - 1, argv + 1);
		die_usage("unknown audit command \"%s\" (alerts, review, "
		    "disclosures, export, checkpoint)", argv[1]);
	}
	return audit_query(argc, argv);
}

static int
cmd_sar(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QuerySar q = EHX__QUERY_SAR__INIT;
	Ehx__LocalReply *lr;
	char nhs[EHX_NHS_LEN + 1];
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		if (!common_opt(c, sar_help))
			exit(EXIT_USAGE);
	if (optind + 1 != argc)
		die_usage("%s", "sar needs exactly one NHS number");
	nhs_arg(argv[optind], nhs);
	q.nhs_number = nhs;
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_SAR;
	b.query_sar = &q;
	precheck(&b);
	if ((r = ask_for(&b, EHX__BODY__PAYLOAD_SAR, &lr)) != 0)
		return r;
	render_sar(stdout, lr->reply->sar);
	ehx__local_reply__free_unpacked(lr, NULL);
	return 0;
}

static int
cmd_help(const char *topic)
{
	if (topic == NULL)
		fputs(main_help, stdout);
	else if (strcmp(topic, "publish") == 0)
		printf(publish_help, ehx_category_list());
	else if (strcmp(topic, "close") == 0)
		fputs(close_help, stdout);
	else if (strcmp(topic, "consent") == 0)
		fputs(consent_help, stdout);
	else if (strcmp(topic, "picture") == 0)
		fputs(picture_help, stdout);
	else if (strcmp(topic, "audit") == 0)
		fputs(audit_help, stdout);
	else if (strcmp(topic, "sar") == 0)
		fputs(sar_help, stdout);
	else
		die_usage("no help on \"%s\"", topic);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd;
	int c;

	/* Global options stop at the command ("+"). */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'V') {
			printf("ehx 0.1 (protocol 1)\n");
			return 0;
		}
		if (!common_opt(c, main_help))
			return EXIT_USAGE;
	}
	if (optind >= argc) {
		fputs(main_help, stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 0;	/* glibc: start afresh, permuting options again */
	if (strcmp(cmd, "publish") == 0)
		return cmd_publish(argc, argv);
	if (strcmp(cmd, "close") == 0)
		return cmd_close(argc, argv);
	if (strcmp(cmd, "consent") == 0)
		return cmd_consent(argc, argv);
	if (strcmp(cmd, "picture") == 0)
		return cmd_query(argc, argv, picture_help, true, false);
	if (strcmp(cmd, "audit") == 0)
		return cmd_audit(argc, argv);
	if (strcmp(cmd, "sar") == 0)
		return cmd_sar(argc, argv);
	if (strcmp(cmd, "help") == 0)
		return cmd_help(argc > 1 ? argv[1] : NULL);
	die_usage("unknown command \"%s\"", cmd);
	return EXIT_USAGE;
}
