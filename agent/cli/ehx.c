/*
 * ehx.c — the command line that people and agency systems use against
 * their agency's ehx-agent. It checks what it can before anything is sent
 * (NHS numbers, categories, levels, dates), sends one request over the
 * agent's Unix-domain socket, and prints the verified answer as a table or,
 * with --json, as JSON.
 *
 * A change (publish, close, consent, import) goes into the agent's durable
 * outbox: the agent answers "queued" at once, or, when asked to wait, with
 * the broker's decision; status, inbox and an import's progress are the
 * agent's own answers.
 *
 * Exit status: 0 done (a change queued, or acknowledged when waited for);
 * 1 refused (by the broker or the agent, with a typed error); 2 bad usage
 * or invalid input, nothing sent; 3 the agent or the broker could not be
 * reached or did not answer; 4 waited, and the change is still queued.
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
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "import.h"
#include "render.h"
#include "ehx/auditverify.h"
#include "ehx/err.h"
#include "ehx/identity.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/validate.h"

#define DEFAULT_SOCKET "/run/ehx/agent.sock"
#define REPLY_WAIT_MS (320 * 1000)   /* beyond the agent's longest timeout */
#define LOCAL_MAX (EHX_MAX_MESSAGE + 1024)   /* one datagram either way */
#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_QUEUED 4           /* waited; the change is still queued */
#define MAX_LIST 32

static const char *prog = "ehx";

static struct {
	const char *agent;
	int as_role;
	bool json;
} g;

#define EXIT_TEXT \
"Exit status: 0 done (a change: queued, or acknowledged when waited for);\n" \
"1 refused (the reason is printed, with its code); 2 bad usage or invalid\n" \
"input, nothing was sent; 3 the agent or the broker could not be reached or\n" \
"did not answer in time; 4 waited for the broker, which had not answered\n" \
"when the wait ended: the change is still queued and the agent will\n" \
"deliver it.\n"

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
"  import FILE                 publish or close many flags from a CSV or\n"
"                              JSON-lines extract of the case system\n"
"  involvement KIND ...        record that this agency serves a child: on\n"
"                              its roll, registered, on a caseload, a tenancy\n"
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
"  list LIST --locality L      a right early help list (information officers)\n"
"  inbox [show SEQ | ack SEQ]  notifications from other agencies\n"
"  status                      the agent: its connection to the broker, its\n"
"                              outbox and inbox, the hook\n"
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
"A change (publish, close, consent grant and withdraw, import) is committed\n"
"to the agent's durable outbox and delivered by the agent, in order, once\n"
"the broker can be reached: publish and close return as soon as it is\n"
"queued (--wait: when the broker has answered); consent waits by default.\n"
"\n"
EXIT_TEXT;

#define CHILD_HELP \
"The child is named by the NHS number, or as this agency knows them\n" \
"(PROTOCOL.md §10.3): any of these, which must name a child on their own\n" \
"(a UPN, this agency's own id, or a family name and a date of birth); an\n" \
"NHS number given as well goes with them. The broker works out which\n" \
"child that is, and says nothing of it in its answer.\n" \
"  --upn UPN          the unique pupil number (\"a801 2000 05001\" is fine)\n" \
"  --local-id ID      this agency's own id for the child (1-64 of A-Z a-z\n" \
"                     0-9 . _ : / -)\n" \
"  --given NAME       given names            --family NAME  family name\n" \
"  --other-name NAME  another family name the child is or was known by\n" \
"                     (up to 4 times)\n" \
"  --dob YYYY-MM-DD   date of birth          --sex female|male|indeterminate\n" \
"  --postcode PC      home postcode          --uprn N  the address's UPRN\n"

static const char publish_help[] =
"usage: ehx publish [NHS_NUMBER] [CHILD OPTIONS] --category CATEGORY\n"
"                   --level 1-4 --practitioner NAME [--job TITLE]\n"
"                   [--contact CONTACT] [--lead] [--note TEXT] [--ref REF]\n"
"                   [--withhold] [--locality L] [--wait [--timeout SECONDS]]\n"
"\n"
"Open a flag saying this agency is involved with the child, or change an\n"
"open flag with the same --ref (a step up or down, a new practitioner).\n"
"Publishing a closed flag's ref again reopens it. Publishing a flag exactly\n"
"as it stands changes nothing and is answered \"unchanged\".\n"
"\n"
"The change is committed to the agent's outbox and the command returns:\n"
"  Queued flag REF (outbox N); the agent delivers it.\n"
"The agent delivers it, in order, as soon as the broker can be reached;\n"
"ehx status shows what is still queued. With --wait the command waits for\n"
"the broker's answer instead: \"Published flag REF.\", with \" (unchanged)\"\n"
"when the flag already stood exactly so; or the broker's refusal. Whom\n"
"the broker notified is not told to the publisher (the governance review\n"
"sees it in the disclosures). --json prints {\"queued\": true, \"still_queued\": false,\n"
"\"outbox\": N, \"message_id\": \"...\"}, or the acknowledgement {\"ok\": true,\n"
"\"id\", \"basis\", \"unchanged\", \"outbox\", \"message_id\"}.\n"
"\n"
CHILD_HELP
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
"                     child's interests (it still shows in pictures)\n"
"  --locality L       the child's locality (Local Area Team) as this agency\n"
"                     knows it, one of the sharing policy's: files the\n"
"                     child there for the right early help lists\n"
"  --wait             wait for the broker's answer\n"
"  --timeout SECONDS  with --wait: wait at most this long, 1-3600 (default:\n"
"                     the agent's timeout_seconds); if the broker has not\n"
"                     answered by then the change stays queued, the agent\n"
"                     delivers it later, and the exit status is 4\n"
"\n"
EXIT_TEXT;

static const char list_help[] =
"usage: ehx list known_to_several|troubled_families --locality L\n"
"                [--page N] [--json]\n"
"\n"
"A right early help list of one locality, for an Information Officer\n"
"(--as information_officer): known_to_several, the children with open\n"
"flags from two or more agencies; troubled_families, the children whose\n"
"open flags meet two or more of the six Troubled Families headline\n"
"criteria (crime or anti-social behaviour, school attendance, children\n"
"who need help: a flag at level 4, worklessness, domestic abuse, health).\n"
"Each row: the NHS number, the agencies with an open flag, the highest\n"
"open level and the criteria met.\n"
"\n"
"A list rests on the lawful basis the sharing policy names for it, never\n"
"on consent, and only agency types the policy names may ask. The broker\n"
"audits the question and every child it names (action\n"
"early_help_list_entry). A users file's locality = line limits a person\n"
"to that locality.\n"
"\n"
"  --locality L   the locality (one of the sharing policy's)\n"
"  --page N       ask for N children at a time, 1-256 (default 256); the\n"
"                 whole list is printed either way\n"
"  --json         one JSON object per child: {\"nhs_number\", \"agencies\",\n"
"                 \"highest_open_level\", \"criteria\", \"basis\"}\n"
"\n"
EXIT_TEXT;

static const char involvement_help[] =
"usage: ehx involvement enrolled|registered|caseload|tenancy [NHS_NUMBER]\n"
"                       [CHILD OPTIONS] --from YYYY-MM-DD [--until YYYY-MM-DD]\n"
"                       [--wait [--timeout SECONDS]]\n"
"\n"
"Record that this agency serves the child: a school that has the child on\n"
"its roll (enrolled), a GP practice that registers them (registered), a\n"
"health visitor's or school nurse's caseload (caseload), a tenancy with\n"
"housing (tenancy). These universal involvements are what bring the\n"
"agency notifications about the child when another agency raises a\n"
"concern (Operation Encompass: the school where the child is enrolled is\n"
"told of the police's domestic abuse flag), within the sharing policy.\n"
"A school records enrolled, health registered or caseload, housing\n"
"tenancy. Recording it again as it stands changes nothing (\"unchanged\");\n"
"--until ends it. Queued in the agent's outbox like a publish.\n"
"\n"
CHILD_HELP
"\n"
"  --from DATE        when it began (YYYY-MM-DD, not in the future)\n"
"  --until DATE       when it ended, or ends (YYYY-MM-DD); none: ongoing\n"
"  --wait             wait for the broker's answer\n"
"  --timeout SECONDS  with --wait: wait at most this long, 1-3600\n"
"\n"
"A school's whole roll is loaded with ehx import --roll FILE.\n";

static const char close_help[] =
"usage: ehx close [NHS_NUMBER] [CHILD OPTIONS] --ref REF [--reason TEXT]\n"
"                 [--wait [--timeout SECONDS]]\n"
"\n"
"Close one of this agency's flags on the child. The flag stays in the\n"
"child's history with its dates.\n"
"\n"
"As with publish, the change is queued in the agent's outbox and the\n"
"command returns (\"Queued flag REF (outbox N); the agent delivers it.\");\n"
"with --wait it waits for the broker's answer (\"Closed flag REF.\", or the\n"
"refusal: not_found for a ref this agency never published).\n"
"\n"
CHILD_HELP
"\n"
"  --ref REF          the reference the flag was published with\n"
"  --reason TEXT      why it closed, at most 280 bytes\n"
"  --wait             wait for the broker's answer\n"
"  --timeout SECONDS  with --wait: wait at most this long, 1-3600; then\n"
"                     exit status 4, the change still queued\n"
"\n"
EXIT_TEXT;

static const char consent_help[] =
"usage: ehx consent grant NHS_NUMBER --given-by NAME --relation RELATION\n"
"                         (--agencies A,... | --types T,...) --expires DATE\n"
"                         --evidence REF\n"
"                         [--purposes P,...] [--basis BASIS] [--starts DATE]\n"
"                         [--no-wait | --timeout SECONDS]\n"
"       ehx consent withdraw NHS_NUMBER --id CONSENT_ID --reason TEXT\n"
"                         [--by NAME] [--no-wait | --timeout SECONDS]\n"
"       ehx consent show NHS_NUMBER\n"
"       ehx consent history NHS_NUMBER\n"
"\n"
"grant: record the consent of the young person, a parent or a carer, or\n"
"another lawful basis for sharing, scoped to agencies and purposes.\n"
"  --given-by NAME     who gave it\n"
"  --relation R        young_person, parent or carer\n"
"  --agencies A,...    the agencies it covers, by id: the usual way\n"
"  --types T,...       agency types it covers (police, health, school,\n"
"                      housing, local_authority, voluntary): only those\n"
"                      agencies of them already involved with the child\n"
"                      (with an open flag on it), never every one\n"
"  --purposes P,...    whole_picture, notifications, assessment\n"
"                      (default: whole_picture)\n"
"  --basis B           consent (default), public_task, legal_obligation,\n"
"                      vital_interests\n"
"  --starts DATE       when it starts (default: now)\n"
"  --expires DATE      when it ends (at most three years on)\n"
"  --evidence REF      the signed consent form's (or case record's)\n"
"                      reference, 1-64 bytes: what the consent rests on.\n"
"                      A consent its recorder then uses within a day\n"
"                      raises an alert for IG review, as break-glass does\n"
"  DATE is YYYY-MM-DD, YYYY-MM-DDTHH:MMZ (UTC) or +Nd / +Nh from now.\n"
"\n"
"withdraw: record that a consent is withdrawn; it is kept, marked so.\n"
"  --id ID        the consent's id (c-...)\n"
"  --reason TEXT  why, at most 280 bytes (required)\n"
"  --by NAME      who asked for the withdrawal\n"
"\n"
"show: the consent records of the child that this agency recorded or that\n"
"name it (or its type, while it is involved with the child), with their\n"
"state. Only the agency that recorded a consent, or one it names by id,\n"
"may withdraw it.\n"
"\n"
"history: the same records with every change of state, oldest first:\n"
"recorded, withdrawn (when, by whom, why) and expired. Nothing in a\n"
"consent's history is ever rewritten or deleted.\n"
"\n"
"grant and withdraw go through the agent's outbox like every change, but\n"
"wait for the broker's answer by default, since the consent's id is the\n"
"answer (\"Recorded consent c-....\", \"Withdrew consent c-....\"):\n"
"  --no-wait          return as soon as the agent has queued it (\"Queued\n"
"                     ... (outbox N); the agent delivers it.\"); ehx consent\n"
"                     show gives the id once it is delivered\n"
"  --timeout SECONDS  wait at most this long, 1-3600 (default: the agent's\n"
"                     timeout_seconds); then exit status 4, still queued\n"
"\n"
EXIT_TEXT;

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
"Information governance over the broker's tamper-evident audit log, for\n"
"information governance officers: the ig_officer role (use --as\n"
"ig_officer; checkpoint also admin). Every one of these queries is itself\n"
"audited.\n"
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
"alerts: what awaits review (--all: reviewed ones too): break-glass\n"
"answers; pictures on a consent their own recorder had just recorded (own\n"
"consent); an agency's first flag on a child others hold sensitive flags\n"
"on (first flag). For each: the alert number, when, which agency and\n"
"person, the child's pseudonym, the reason and, once reviewed, the\n"
"outcome, the reviewer and the note. --json: one object per line, with\n"
"its kind (break_glass, self_consent, first_flag).\n"
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
"complete. An existing FILE is kept unless --force. Check it offline, and\n"
"against what this agency's agent has seen (its checkpoint, its decisions):\n"
"  ehx-auditverify FILE --ca CA_CERT --state AGENT_STATE_FILE\n"
"\n"
"checkpoint: the newest checkpoint of the broker's log this agent checked\n"
"(size, root, when signed, when checked) and whether the log has stayed\n"
"consistent with every checkpoint the agent has seen; exit status 1 if not.\n"
"Also the newest checkpoint other agencies' cosignatures agreed with (and\n"
"whose), how many of this agency's decisions wait to be checked in the\n"
"log, and a warning in force (WITHHELD: the broker signs no checkpoint over\n"
"this agency's decisions; NOT CONFIRMED: too few other agencies were shown\n"
"the same log). SIZE:ROOT is what ehx-auditverify --expect takes.\n"
"For ig_officer and admin (the log's size says how much happens); the agent\n"
"answers itself, without the broker.\n";

static const char import_help[] =
"usage: ehx import FILE [--roll] [--format csv|jsonl] [--dry-run] [--no-wait]\n"
"                  [--timeout SECONDS]\n"
"\n"
"Publish or close many of this agency's flags, or record the children it\n"
"serves, from an extract of its case system (a school: its roll, with\n"
"--roll): CSV with a header row, or JSON lines. Every row is checked first,\n"
"field by field and then by the broker's own rules; if any is wrong, every\n"
"error is printed (the first 100, then how many more) as\n"
"  FILE: row N (line L): reason\n"
"and nothing is sent (exit status 2). Rows are numbered from 1 after the\n"
"header; L is the line the row starts on. Otherwise the rows are queued in\n"
"the agent's outbox, in file order, in batches of up to 256, and the\n"
"command waits until the broker has decided every one. On a terminal a\n"
"progress bar on standard error shows rows done, the rate and the time\n"
"left; at the end one line sums it up:\n"
"  FILE: N rows: D delivered (U unchanged), R refused, in T s\n"
"followed by \"row N: reason (code)\" for each row the broker refused.\n"
"\n"
"A flag is this agency's (agency, ref): a row changes the flag with its ref,\n"
"so importing the same file again adds nothing, and each row the broker\n"
"already holds exactly so is counted unchanged. Two rows with the same\n"
"action and ref in one file are an error; so are two involvement rows of\n"
"one kind for one child.\n"
"\n"
"  --roll             a school's roll: each row a child enrolled here (an\n"
"                     involvement of kind enrolled, from today unless the\n"
"                     row says from), named as the school knows them; run\n"
"                     it nightly: a pupil recorded as before is unchanged\n"
"  --format F         csv or jsonl (default: from the name: .csv; .jsonl or\n"
"                     .ndjson)\n"
"  --dry-run          check only, print \"FILE: N rows valid\"\n"
"  --no-wait          return once every row is queued; the agent delivers\n"
"                     them (ehx status shows how far it has got)\n"
"  --timeout SECONDS  how long to wait for the broker's decisions once the\n"
"                     rows are queued, 1-86400 (default 600); rows still\n"
"                     queued then are delivered later, exit status 4\n"
"  --json             print one JSON object: {\"file\", \"rows\", \"waited\",\n"
"                     \"first_outbox\", \"last_outbox\", \"delivered\",\n"
"                     \"unchanged\", \"refused\", \"pending\", \"timed_out\",\n"
"                     \"seconds\", \"refusals\": [{\"row\", \"line\", \"outbox\",\n"
"                     \"error\", \"message\", \"what\"}], \"more_refusals\"}; with\n"
"                     errors {\"file\", \"valid\": false, \"errors\": [{\"row\",\n"
"                     \"line\", \"reason\"}], \"more\"}\n"
"\n"
"The columns (CSV; a header names them, in any order and any case; empty\n"
"cells are absent) and keys (JSON lines: one object a line, the same names):\n"
"  action        publish (the default; with --roll, involvement), close or\n"
"                involvement\n"
"  nhs_number    the child, 10 digits (spaces or hyphens 3-3-4 allowed);\n"
"                or, instead or as well, the child as this agency knows\n"
"                them (PROTOCOL.md §10.3), on any row:\n"
"  upn           the unique pupil number (spaces allowed)\n"
"  local_id      this agency's own id for the child\n"
"  given_name, family_name, date_of_birth (YYYY-MM-DD), sex (female,\n"
"                male, indeterminate, f, m), postcode, uprn\n"
"  ref           publish, close: this agency's reference for the\n"
"                involvement (required)\n"
"  kind          involvement: enrolled, registered, caseload or tenancy\n"
"                (required but with --roll: enrolled)\n"
"  from, until   involvement: when it began (required but with --roll:\n"
"                today) and ended (YYYY-MM-DD)\n"
"  category      publish: what the involvement is about (the categories\n"
"                ehx help publish lists)\n"
"  level         publish: level of need 1-4 (JSON: a number)\n"
"  practitioner  publish: the practitioner's name (required)\n"
"  job           publish: the practitioner's job title\n"
"  contact       publish: how other agencies reach the practitioner\n"
"  lead          publish: true/false, yes/no, 1/0 (JSON: a boolean)\n"
"  note          publish: at most 280 bytes\n"
"  withhold      publish: leave out of subject access (as lead)\n"
"  locality      publish: the child's locality (see ehx help publish)\n"
"  reason        close: why it closed, at most 280 bytes\n"
"Text is UTF-8 (a byte order mark is skipped; lines may end CRLF), trimmed\n"
"of spaces; a line break or tab inside a quoted note or reason becomes one\n"
"space. Refused: an unknown or repeated column or key, a missing required\n"
"field, a field for the other action, bad UTF-8 or a control character,\n"
"a field over its length, an unknown category, a level outside 1-4. Blank\n"
"lines, and CSV rows whose every cell is empty, are skipped. At most\n"
"256 MiB and 1,000,000 rows a file.\n"
"\n"
"Exit status: 0 every row delivered (or, --no-wait, queued; --dry-run,\n"
"valid); 1 the broker refused a row (the others are delivered), or the\n"
"agent refused a batch; 2 bad usage or an invalid row, nothing sent; 3\n"
"the agent could not be reached; 4 the wait ended with rows still queued\n"
"(the agent delivers them).\n";

static const char status_help[] =
"usage: ehx status\n"
"\n"
"What this agency's agent is doing, from the agent itself (any role):\n"
"  broker       connected (an answer from the broker within the last\n"
"               minute) or not, and when it last answered\n"
"  outbox       changes queued and not yet decided by the broker, how many\n"
"               are in flight, and the age of the oldest queued one; the\n"
"               last delivery problem\n"
"  delivered    changes the broker has decided since the agent's store was\n"
"               made: acknowledged and refused, and the latest refusals\n"
"               with their outbox number, what they were and why\n"
"  inbox        notifications not yet acknowledged (ehx inbox), and in all\n"
"  hook         notifications waiting for the hook, since when, and the\n"
"               hook's last failure\n"
"  stream       the outbox's stream id and the next outbox number\n"
"--json prints one object: {\"connected\", \"last_contact\", \"outbox\",\n"
"\"in_flight\", \"oldest_queued\", \"oldest_queued_age_s\", \"last_error\",\n"
"\"delivered\", \"refused\", \"recent_refusals\": [{\"outbox\", \"message_id\",\n"
"\"what\", \"error\", \"message\", \"at\"}], \"inbox_new\", \"notifications\",\n"
"\"hook_pending\", \"oldest_hook_pending\", \"hook_error\", \"stream\",\n"
"\"next_number\"} (times in ISO 8601, UTC; null when there is none).\n"
"\n"
"Exit status: 0 answered; 1 the agent refused (the account is not in its\n"
"users file); 3 the agent could not be reached.\n";

static const char inbox_help[] =
"usage: ehx inbox [--all]\n"
"       ehx inbox show SEQ\n"
"       ehx inbox ack SEQ\n"
"\n"
"Notifications from other agencies: when a flag on a child this agency is\n"
"involved with is published, reopened or changes its level of need, and\n"
"the sharing policy tells this agency's type (with the child's consent or\n"
"the lawful basis the policy names). The agent keeps them in its inbox,\n"
"in the broker's order, numbered SEQ (the agent's own numbers: 1, 2, 3 ...),\n"
"and hands each to the case system's hook or spool if it has one.\n"
"Notifications name children: only the roles system, practitioner and\n"
"information_officer may use ehx inbox (--as ROLE), and the agent logs\n"
"each use.\n"
"\n"
"inbox: the new ones (not yet acknowledged), oldest first, at most 100:\n"
"SEQ, when received, from which agency, the category, the event (new,\n"
"level changed, reopened), the level of need if this agency may see it,\n"
"the child's NHS number, and whether it was acknowledged and taken by the\n"
"hook. --all lists acknowledged ones too. --json: {\"total_new\", \"items\":\n"
"[the document below, with \"acked_at\", \"hooked_at\", \"spooled_at\",\n"
"\"hook_attempts\"]}.\n"
"\n"
"show: one notification in full: whom to contact (if the policy shows it),\n"
"the lawful basis, the consent or agreement, when the flag was raised and\n"
"the broker's message id. --json prints the document the hook receives:\n"
"{\"seq\", \"broker_seq\", \"message_id\", \"nhs_number\", \"agency\", \"agency_type\",\n"
"\"category\", \"event\", \"level\", \"previous_level\", \"contact\": {\"name\",\n"
"\"job\", \"contact\"}, \"lead\", \"basis\", \"consent_id\", \"agreement\",\n"
"\"flagged_at\", \"received_at\"} (null for what is not shown).\n"
"\n"
"ack: mark notification SEQ as dealt with; it leaves the list of new ones\n"
"and is kept.\n"
"\n"
"Exit status: 0 done; 1 refused (not_found: no such SEQ); 2 bad usage; 3\n"
"the agent could not be reached.\n";

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

/* Long options without a short form. */
enum {
	OPT_WAIT = 0x100, OPT_NO_WAIT, OPT_TIMEOUT, OPT_FORMAT, OPT_DRY_RUN,
	OPT_ALL, OPT_UPN, OPT_LOCAL_ID, OPT_GIVEN, OPT_FAMILY, OPT_OTHER_NAME,
	OPT_DOB, OPT_SEX, OPT_POSTCODE, OPT_UPRN, OPT_ROLL,
};

/* The options that name a child as this agency knows them (PROTOCOL
 * §10.3), for publish and close. */
#define CHILD_OPTS \
	{ "upn", required_argument, NULL, OPT_UPN }, \
	{ "local-id", required_argument, NULL, OPT_LOCAL_ID }, \
	{ "given", required_argument, NULL, OPT_GIVEN }, \
	{ "family", required_argument, NULL, OPT_FAMILY }, \
	{ "other-name", required_argument, NULL, OPT_OTHER_NAME }, \
	{ "dob", required_argument, NULL, OPT_DOB }, \
	{ "sex", required_argument, NULL, OPT_SEX }, \
	{ "postcode", required_argument, NULL, OPT_POSTCODE }, \
	{ "uprn", required_argument, NULL, OPT_UPRN }

struct child_opts {
	Ehx__ChildIdentity id;
	char upn[EHX_UPN_LEN + 1];
	char postcode[EHX_POSTCODE_LEN + 1];
	char *others[EHX_MAX_OTHER_NAMES];
	bool any;
};

/* One of CHILD_OPTS into co; false for another option. */
static bool
child_opt(int c, struct child_opts *co)
{
	switch (c) {
	case OPT_UPN:
		if (ehx_upn_normalise(optarg, co->upn) != 0)
			die_usage("--upn \"%s\" is not a unique pupil number "
			    "(a check letter and 12 characters)", optarg);
		co->id.upn = co->upn;
		break;
	case OPT_LOCAL_ID:
		if (!ehx_ref_ok(optarg))
			die_usage("--local-id \"%s\" must be 1-64 of A-Z a-z "
			    "0-9 . _ : / -", optarg);
		co->id.local_id = optarg;
		break;
	case OPT_GIVEN: co->id.given_name = optarg; break;
	case OPT_FAMILY: co->id.family_name = optarg; break;
	case OPT_OTHER_NAME:
		if (co->id.n_other_names == EHX_MAX_OTHER_NAMES)
			die_usage("--other-name at most %d times",
			    EHX_MAX_OTHER_NAMES);
		co->others[co->id.n_other_names++] = optarg;
		co->id.other_names = co->others;
		break;
	case OPT_DOB: co->id.date_of_birth = optarg; break;
	case OPT_SEX:
		if (strcmp(optarg, "female") == 0)
			co->id.sex = EHX__SEX__SEX_FEMALE;
		else if (strcmp(optarg, "male") == 0)
			co->id.sex = EHX__SEX__SEX_MALE;
		else if (strcmp(optarg, "indeterminate") == 0)
			co->id.sex = EHX__SEX__SEX_INDETERMINATE;
		else
			die_usage("--sex is female, male or indeterminate, not "
			    "\"%s\"", optarg);
		break;
	case OPT_POSTCODE:
		if (ehx_postcode_normalise(optarg, co->postcode) != 0)
			die_usage("--postcode \"%s\" is not a UK postcode",
			    optarg);
		co->id.postcode = co->postcode;
		break;
	case OPT_UPRN: co->id.uprn = optarg; break;
	default:
		return false;
	}
	co->any = true;
	return true;
}

/* The options of a change: how it waits for the broker. */
#define WAIT_OPTS \
	{ "wait", no_argument, NULL, OPT_WAIT }, \
	{ "no-wait", no_argument, NULL, OPT_NO_WAIT }, \
	{ "timeout", required_argument, NULL, OPT_TIMEOUT }

/* publish's help names the categories. */
static void
print_help(const char *help)
{
	if (help == publish_help)
		printf(publish_help, ehx_category_list());
	else
		fputs(help, stdout);
}

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
		print_help(help);
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

/* The answer holds something this command line can act on. */
static bool
answered(const Ehx__LocalReply *lr)
{
	return lr->reply != NULL || lr->state != NULL || lr->queued != NULL ||
	    lr->report != NULL || lr->status != NULL || lr->inbox != NULL;
}

/*
 * Send lr (as_role is filled in here) over the agent's socket and wait up
 * to wait_ms (0: REPLY_WAIT_MS) for its answer in *out, which holds at
 * least one of reply, state, queued, report, status or inbox; which one
 * the caller wanted is the caller's to check. Any warning the agent gives
 * is printed first. Returns 0, or EXIT_UNREACHABLE after saying why
 * (unless quiet) with *out NULL.
 */
static int
exchange_lr(Ehx__LocalRequest *lr, int wait_ms, bool quiet,
    Ehx__LocalReply **out)
{
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
	lr->as_role = (Ehx__Role)(g.as_role > 0 ? g.as_role : 0);
	n = ehx__local_request__get_packed_size(lr);
	if ((buf = malloc(n > LOCAL_MAX ? n : LOCAL_MAX)) == NULL)
		goto out;
	ehx__local_request__pack(lr, buf);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (!quiet) {
			fprintf(stderr, "%s: cannot reach the agent at %s: %s\n",
			    prog, path, strerror(errno));
			if (errno == EACCES)
				fprintf(stderr, "%s: the socket's permissions do "
				    "not let this account use the agent\n", prog);
		}
		goto out;
	}
	if (send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
		if (!quiet)
			fprintf(stderr, "%s: sending to the agent failed: %s\n",
			    prog, strerror(errno));
		goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while ((rc = poll(&pfd, 1, wait_ms > 0 ? wait_ms : REPLY_WAIT_MS)) < 0 &&
	    errno == EINTR)
		;
	if (rc <= 0) {
		if (!quiet)
			fprintf(stderr, "%s: the agent did not answer\n", prog);
		goto out;
	}
	got = recv(fd, buf, LOCAL_MAX, MSG_TRUNC);
	if (got <= 0 || got > LOCAL_MAX ||
	    (*out = ehx__local_reply__unpack(NULL, (size_t)got, buf)) == NULL ||
	    !answered(*out)) {
		if (!quiet)
			fprintf(stderr, "%s: the agent closed the connection "
			    "without a valid answer\n", prog);
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

/* Send req (or, with state, ask the agent about itself); the reply in
 * *out. */
static int
exchange2(const Ehx__Body *req, bool state, Ehx__LocalReply **out)
{
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;

	lr.body = (Ehx__Body *)req;
	lr.agent_state = state;
	return exchange_lr(&lr, 0, false, out);
}

/* A query: answered live by the broker, with a reply Body. */
static int
exchange(const Ehx__Body *req, Ehx__LocalReply **out)
{
	int r;

	if ((r = exchange2(req, false, out)) != 0)
		return r;
	if ((*out)->reply == NULL) {
		fprintf(stderr, "%s: the agent's answer carries no reply (is it "
		    "older or newer than this command?)\n", prog);
		ehx__local_reply__free_unpacked(*out, NULL);
		*out = NULL;
		return EXIT_UNREACHABLE;
	}
	return 0;
}

/* The exit status for an error reply: the broker or agent could not be
 * reached in time, or it refused. */
static int
error_status(const Ehx__Error *e)
{
	int code = ehx_err_from_wire(e->code);

	return code == EHX_ERR_UNAVAILABLE || code == EHX_ERR_TIMEOUT ||
	    code == EHX_ERR_INTERNAL ? EXIT_UNREACHABLE : EXIT_REFUSED;
}

/*
 * If lr's reply is an error, print it and return its exit status; else 0.
 * For the agent's own answers (status, inbox, outbox), which come as an
 * error reply when refused.
 */
static int
refused(const Ehx__LocalReply *lr)
{
	const Ehx__Body *b = lr->reply;

	if (b == NULL || b->payload_case != EHX__BODY__PAYLOAD_ERROR ||
	    b->error == NULL)
		return 0;
	render_error(b->error, lr->from_agent, g.json);
	return error_status(b->error);
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
	if ((r = refused(lr)) == 0) {
		if (done != NULL && b->payload_case == EHX__BODY__PAYLOAD_ACK &&
		    !g.json)
			done(b, arg);
		else
			render_reply(stdout, b, g.json, nhs);
	}
	ehx__local_reply__free_unpacked(lr, NULL);
	return r;
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

/* Check locally with the broker's own rules, so nothing invalid is sent. */
static void
precheck(const Ehx__Body *req)
{
	char why[256];
	int r;

	if ((r = ehx_validate_request(req, ehx_now_ms(), why, sizeof(why))) != 0)
		die_usage("%s", why);
}

/* ---- changes, through the agent's outbox -------------------------------- */

/* How a change waits for the broker: --wait, --no-wait, --timeout. */
struct waiting {
	bool wait;
	bool said_no_wait;
	unsigned timeout_s;             /* 0: the agent's timeout_seconds */
};

/* SECONDS of a --timeout: 1..max, or a usage error. */
static unsigned
seconds_arg(const char *s, unsigned max)
{
	uint64_t v = positive_arg(s);

	if (v == 0 || v > max)
		die_usage("--timeout needs a whole number of seconds, 1-%u, not "
		    "\"%s\"", max, s);
	return (unsigned)v;
}

/* Handle --wait, --no-wait or --timeout; returns 1 if c was one. */
static int
wait_opt(int c, struct waiting *w, unsigned max)
{
	switch (c) {
	case OPT_WAIT:
		w->wait = true;
		return 1;
	case OPT_NO_WAIT:
		w->wait = false;
		w->said_no_wait = true;
		return 1;
	case OPT_TIMEOUT:
		w->timeout_s = seconds_arg(optarg, max);
		return 1;
	default:
		return 0;
	}
}

static void
wait_check(const struct waiting *w, const char *cmd)
{
	if (w->timeout_s > 0 && !w->wait)
		die_usage("--timeout is how long %s waits for the broker: it "
		    "goes with %s", cmd, w->said_no_wait ? "waiting, not "
		    "--no-wait" : "--wait");
}

/*
 * Send a change through the agent's outbox and say where it stands: the
 * broker's acknowledgement ("DONE ID.") when the agent waited for it;
 * "Queued WHAT (outbox N); the agent delivers it." when it did not; or,
 * when the wait ended first, that WHAT is still queued (EXIT_QUEUED). A
 * refusal, by the agent or the broker, is printed with its code. Returns
 * the exit status.
 */
static int
send_change(const Ehx__Body *req, const struct waiting *w, const char *done,
    const char *what)
{
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__Queued *q;
	const Ehx__Body *b;
	int r, wait_ms = 0;

	lr.body = (Ehx__Body *)req;
	lr.wait = w->wait;
	lr.timeout_ms = w->timeout_s * 1000u;
	if (w->wait && w->timeout_s > 0)
		wait_ms = (int)w->timeout_s * 1000 + 30 * 1000;
	if ((r = exchange_lr(&lr, wait_ms, false, &rep)) != 0)
		return r;
	q = rep->queued;
	b = rep->reply;
	if ((r = refused(rep)) != 0)
		;
	else if (b != NULL && b->payload_case == EHX__BODY__PAYLOAD_ACK &&
	    b->ack != NULL)
		render_ack(stdout, b->ack, q, g.json, done);
	else if (b == NULL && q != NULL && q->first > 0) {
		if (g.json)
			render_queued_json(stdout, q);
		else if (q->still_queued)
			printf("Still queued: %s (outbox %llu). The broker had not "
			    "answered when the wait ended; the agent will deliver "
			    "it (ehx status shows its outbox).\n", what,
			    (unsigned long long)q->first);
		else
			printf("Queued %s (outbox %llu); the agent delivers it.\n",
			    what, (unsigned long long)q->first);
		r = q->still_queued ? EXIT_QUEUED : 0;
	} else {
		fprintf(stderr, "%s: the agent's answer is not one this command "
		    "understands (is it older or newer than this command?)\n",
		    prog);
		r = EXIT_UNREACHABLE;
	}
	ehx__local_reply__free_unpacked(rep, NULL);
	return r;
}

/* ---- commands ------------------------------------------------------------ */

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
		{ "locality", required_argument, NULL, 'o' },
		CHILD_OPTS, WAIT_OPTS, COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	struct child_opts co;
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__PublishFlag m = EHX__PUBLISH_FLAG__INIT;
	Ehx__Practitioner p = EHX__PRACTITIONER__INIT;
	struct waiting w = { false, false, 0 };
	char nhs[EHX_NHS_LEN + 1], ref[EHX_MAX_REF + 1] = "", what[96];
	unsigned char rnd[6];
	int c, cat = 0;
	long lvl = 0;
	char *end;

	memset(&co, 0, sizeof(co));
	ehx__child_identity__init(&co.id);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, publish_help) || wait_opt(c, &w, 3600) ||
		    child_opt(c, &co))
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
		case 'o':
			if (!ehx_id_ok(optarg))
				die_usage("--locality \"%s\" must be 1-32 of a-z "
				    "0-9 _ -", optarg);
			m.locality = optarg;
			break;
		case 'r': snprintf(ref, sizeof(ref), "%s", optarg);
			if (strlen(optarg) > EHX_MAX_REF || !ehx_ref_ok(optarg))
				die_usage("--ref \"%s\" must be 1-64 of A-Z a-z "
				    "0-9 . _ : / -", optarg);
			break;
		default:
			exit(EXIT_USAGE);
		}
	}
	if (optind + 1 < argc || (optind == argc && !co.any))
		die_usage("%s", "publish needs the child: one NHS number, or "
		    "--upn, --local-id or names (ehx publish --help)");
	if (cat == 0 || lvl == 0 || p.name == protobuf_c_empty_string)
		die_usage("%s", "publish needs --category, --level and "
		    "--practitioner");
	wait_check(&w, "publish");
	nhs[0] = '\0';
	if (optind < argc)
		nhs_arg(argv[optind], nhs);
	if (ref[0] == '\0') {
		char hex[13];

		if (ehx_random(rnd, sizeof(rnd)) != 0)
			return EXIT_UNREACHABLE;
		snprintf(ref, sizeof(ref), "ehx-%s", ehx_hex(hex, rnd, sizeof(rnd)));
	}
	if (co.any) {
		co.id.nhs_number = nhs;
		m.child = &co.id;
	} else
		m.nhs_number = nhs;
	m.ref = ref;
	m.category = (Ehx__Category)cat;
	m.level = (uint32_t)lvl;
	m.practitioner = &p;
	b.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	b.publish_flag = &m;
	precheck(&b);
	snprintf(what, sizeof(what), "flag %s", ref);
	return send_change(&b, &w, "Published flag", what);
}

static int
cmd_close(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ref", required_argument, NULL, 'r' },
		{ "reason", required_argument, NULL, 'w' },
		CHILD_OPTS, WAIT_OPTS, COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	struct child_opts co;
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__CloseFlag m = EHX__CLOSE_FLAG__INIT;
	struct waiting w = { false, false, 0 };
	char nhs[EHX_NHS_LEN + 1], what[96];
	int c;

	memset(&co, 0, sizeof(co));
	ehx__child_identity__init(&co.id);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, close_help) || wait_opt(c, &w, 3600) ||
		    child_opt(c, &co))
			continue;
		switch (c) {
		case 'r': m.ref = optarg; break;
		case 'w': m.reason = optarg; break;
		default: exit(EXIT_USAGE);
		}
	}
	if (optind + 1 < argc || (optind == argc && !co.any) ||
	    m.ref == protobuf_c_empty_string)
		die_usage("%s", "close needs the child (one NHS number, or as "
		    "this agency knows them) and --ref");
	wait_check(&w, "close");
	nhs[0] = '\0';
	if (optind < argc)
		nhs_arg(argv[optind], nhs);
	if (co.any) {
		co.id.nhs_number = nhs;
		m.child = &co.id;
	} else
		m.nhs_number = nhs;
	b.payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
	b.close_flag = &m;
	precheck(&b);
	snprintf(what, sizeof(what), "flag %s", render_safe(m.ref));
	return send_change(&b, &w, "Closed flag", what);
}

static int
cmd_involvement(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "until", required_argument, NULL, 'u' },
		CHILD_OPTS, WAIT_OPTS, COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	struct child_opts co;
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__RecordInvolvement m = EHX__RECORD_INVOLVEMENT__INIT;
	struct waiting w = { false, false, 0 };
	char nhs[EHX_NHS_LEN + 1] = "", what[64];
	int c, kind;

	memset(&co, 0, sizeof(co));
	ehx__child_identity__init(&co.id);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, involvement_help) || wait_opt(c, &w, 3600) ||
		    child_opt(c, &co))
			continue;
		switch (c) {
		case 'f': m.starts_on = optarg; break;
		case 'u': m.ends_on = optarg; break;
		default: exit(EXIT_USAGE);
		}
	}
	if (optind >= argc ||
	    (kind = ehx_involvement_kind_parse(argv[optind])) < 1)
		die_usage("%s", "involvement needs its kind first: enrolled, "
		    "registered, caseload or tenancy");
	optind++;
	if (optind + 1 < argc || (optind == argc && !co.any))
		die_usage("%s", "involvement needs the child: an NHS number, or "
		    "as this agency knows them (ehx involvement --help)");
	if (m.starts_on == protobuf_c_empty_string)
		die_usage("%s", "involvement needs --from DATE");
	wait_check(&w, "involvement");
	if (optind < argc)
		nhs_arg(argv[optind], nhs);
	co.id.nhs_number = nhs;
	m.child = &co.id;
	m.kind = (Ehx__InvolvementKind)kind;
	b.payload_case = EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT;
	b.record_involvement = &m;
	precheck(&b);
	snprintf(what, sizeof(what), "involvement %s",
	    ehx_involvement_kind_name(kind));
	return send_change(&b, &w, "Recorded", what);
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
		{ "evidence", required_argument, NULL, 'E' },
		WAIT_OPTS, COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	struct waiting w = { true, false, 0 };
	char what[96], pretty[13];
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
		if (common_opt(c, consent_help) || wait_opt(c, &w, 3600))
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
		case 'E':
			m.evidence_ref = optarg;
			break;
		default: exit(EXIT_USAGE);
		}
	}
	if (optind + 1 != argc)
		die_usage("%s", "consent grant needs exactly one NHS number");
	if (gb.name == protobuf_c_empty_string || gb.relation == 0 ||
	    !have_expiry || m.evidence_ref == protobuf_c_empty_string)
		die_usage("%s", "consent grant needs --given-by, --relation, "
		    "--expires and --evidence");
	wait_check(&w, "consent grant");
	nhs_arg(argv[optind], nhs);
	m.nhs_number = nhs;
	m.given_by = &gb;
	m.scope = &sc;
	b.payload_case = EHX__BODY__PAYLOAD_RECORD_CONSENT;
	b.record_consent = &m;
	precheck(&b);
	snprintf(what, sizeof(what), "consent for child %s",
	    ehx_nhs_format(pretty, nhs));
	return send_change(&b, &w, "Recorded consent", what);
}

static int
consent_withdraw(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "reason", required_argument, NULL, 'w' },
		{ "by", required_argument, NULL, 'b' },
		WAIT_OPTS, COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__WithdrawConsent m = EHX__WITHDRAW_CONSENT__INIT;
	struct waiting w = { true, false, 0 };
	char nhs[EHX_NHS_LEN + 1], what[160];
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, consent_help) || wait_opt(c, &w, 3600))
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
	wait_check(&w, "consent withdraw");
	nhs_arg(argv[optind], nhs);
	m.nhs_number = nhs;
	b.payload_case = EHX__BODY__PAYLOAD_WITHDRAW_CONSENT;
	b.withdraw_consent = &m;
	precheck(&b);
	snprintf(what, sizeof(what), "the withdrawal of consent %s",
	    render_safe(m.consent_id));
	return send_change(&b, &w, "Withdrew consent", what);
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
	if ((r = refused(*out)) == 0) {
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
	    "with: ehx-auditverify %s --ca CA_CERT --state AGENT_STATE_FILE\n",
	    records, checkpoints, path, path);
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

/* ---- the agent's own answers: status and inbox ---------------------------- */

static int ask_agent(Ehx__LocalRequest *lr, int want, Ehx__LocalReply **out);

/*
 * Ask the agent itself (status, inbox, outbox); *out has the answer, with
 * at least what want says is there: 's' status, 'i' inbox, 'o' report.
 * Returns 0, or the exit status after printing why not (*out NULL).
 */
static int
ask_agent(Ehx__LocalRequest *lr, int want, Ehx__LocalReply **out)
{
	int r;
	bool ok;

	if ((r = exchange_lr(lr, 0, false, out)) != 0)
		return r;
	if ((r = refused(*out)) != 0) {
		ehx__local_reply__free_unpacked(*out, NULL);
		*out = NULL;
		return r;
	}
	ok = want == 's' ? (*out)->status != NULL : want == 'i' ?
	    (*out)->inbox != NULL : (*out)->report != NULL;
	if (!ok) {
		fprintf(stderr, "%s: the agent's answer is not one this command "
		    "understands (is it older than this command?)\n", prog);
		ehx__local_reply__free_unpacked(*out, NULL);
		*out = NULL;
		return EXIT_UNREACHABLE;
	}
	return 0;
}

static int
cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
	Ehx__LocalReply *rep;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		if (!common_opt(c, status_help))
			exit(EXIT_USAGE);
	if (optind != argc)
		die_usage("%s", "status takes no arguments");
	lr.status = true;
	if ((r = ask_agent(&lr, 's', &rep)) != 0)
		return r;
	render_status(stdout, rep->status, ehx_now_ms(), g.json);
	ehx__local_reply__free_unpacked(rep, NULL);
	return 0;
}

static int
cmd_inbox(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, OPT_ALL },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
	Ehx__InboxRequest q = EHX__INBOX_REQUEST__INIT;
	Ehx__LocalReply *rep;
	const Ehx__InboxItem *it;
	const char *op = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, inbox_help))
			continue;
		if (c != OPT_ALL)
			exit(EXIT_USAGE);
		q.all = true;
	}
	if (optind < argc) {
		op = argv[optind];
		if (strcmp(op, "show") == 0)
			q.op = EHX__INBOX_REQUEST__OP__OP_SHOW;
		else if (strcmp(op, "ack") == 0)
			q.op = EHX__INBOX_REQUEST__OP__OP_ACK;
		else
			die_usage("unknown inbox command \"%s\" (show SEQ, ack "
			    "SEQ, or nothing to list)", op);
		if (optind + 2 != argc)
			die_usage("inbox %s needs one SEQ (the number ehx inbox "
			    "lists)", op);
		if ((q.seq = positive_arg(argv[optind + 1])) == 0)
			die_usage("\"%s\" is not a notification's SEQ (the "
			    "number ehx inbox lists)", argv[optind + 1]);
		if (q.all)
			die_usage("--all is for listing, not inbox %s", op);
	}
	lr.inbox = &q;
	if ((r = ask_agent(&lr, 'i', &rep)) != 0)
		return r;
	if (op == NULL)
		render_inbox_list(stdout, rep->inbox, q.all, g.json);
	else if (rep->inbox->n_items != 1 ||
	    (it = rep->inbox->items[0])->notification == NULL) {
		fprintf(stderr, "%s: the agent did not return notification "
		    "%llu\n", prog, (unsigned long long)q.seq);
		r = EXIT_UNREACHABLE;
	} else if (q.op == EHX__INBOX_REQUEST__OP__OP_SHOW)
		render_inbox_item(stdout, it, g.json);
	else if (g.json) {
		json_object *o = json_object_new_object();
		char t[40];

		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "seq", json_object_new_uint64(it->seq));
		json_object_object_add(o, "acked_at", it->acked_at > 0 ?
		    json_object_new_string(ehx_fmt_iso(t, sizeof(t),
		    it->acked_at)) : NULL);
		printf("%s\n", json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else
		printf("Acknowledged notification %llu.\n",
		    (unsigned long long)it->seq);
	ehx__local_reply__free_unpacked(rep, NULL);
	return r;
}

/* ---- import ------------------------------------------------------------- */

#define IMPORT_POLL_MS 200
#define IMPORT_TIMEOUT_S 600
#define IMPORT_MAX_TIMEOUT_S 86400
#define IMPORT_QUERIES 16       /* outbox queries in one poll, at most */
#define IMPORT_LOST_MS 15000    /* the agent silent this long: give up */

/* One batch the agent queued: outbox numbers first..last are rows row0 … */
struct batch {
	uint64_t first, last;
	size_t row0;
	bool done;                      /* nothing of it pending */
	uint64_t delivered, unchanged, refused;
};

struct importer {
	const char *file;
	const struct import_rows *rows;
	struct batch *b;
	size_t nb, lo;                  /* lo: the first batch not done */
	struct import_refusal ref[IMPORT_MAX_ERRORS];
	size_t nref;
	bool tty;
	int64_t t0;                     /* the command started */
	int64_t t_queued;               /* the first batch was queued */
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Redraw the progress line on a terminal (text NULL: clear it). */
static void
import_draw(const struct importer *im, const char *text)
{
	if (!im->tty)
		return;
	if (text == NULL)
		fputs("\r\033[K", stderr);
	else
		fprintf(stderr, "\r%s\033[K", text);
	fflush(stderr);
}

/* Queue the rows, batch by batch. Returns 0 or the exit status (after
 * saying which rows are queued and which are not). */
static int
import_queue(struct importer *im)
{
	const struct import_rows *rows = im->rows;
	struct import_msg *msgs = NULL;
	Ehx__Body **bodies = NULL;
	size_t start = 0, cap = 0;
	int r = 0;

	if ((msgs = calloc(IMPORT_BATCH, sizeof(*msgs))) == NULL ||
	    (bodies = calloc(IMPORT_BATCH, sizeof(*bodies))) == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		r = EXIT_UNREACHABLE;
		goto out;
	}
	while (start < rows->n) {
		Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
		Ehx__LocalReply *rep = NULL;
		const Ehx__Queued *q;
		size_t end = import_batch_end(rows, start, IMPORT_BATCH_BYTES);
		char line[96];

		if (im->nb == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct batch *nb = realloc(im->b, ncap * sizeof(*nb));

			if (nb == NULL) {
				fprintf(stderr, "%s: out of memory\n", prog);
				r = EXIT_UNREACHABLE;
				goto out;
			}
			memset(nb + cap, 0, (ncap - cap) * sizeof(*nb));
			im->b = nb;
			cap = ncap;
		}
		for (size_t i = start; i < end; i++) {
			import_body(rows, i, &msgs[i - start]);
			bodies[i - start] = &msgs[i - start].body;
		}
		lr.batch = bodies;
		lr.n_batch = end - start;
		if ((r = exchange_lr(&lr, 0, false, &rep)) == 0 &&
		    (r = refused(rep)) == 0) {
			q = rep->queued;
			if (q == NULL || q->first == 0 || q->last < q->first ||
			    q->last - q->first + 1 != end - start) {
				fprintf(stderr, "%s: the agent did not say where it "
				    "queued the rows (is it older than this "
				    "command?)\n", prog);
				r = EXIT_UNREACHABLE;
			} else {
				struct batch *b = &im->b[im->nb++];

				b->first = q->first;
				b->last = q->last;
				b->row0 = start;
				if (im->t_queued == 0)
					im->t_queued = ehx_now_ms();
			}
		}
		if (rep != NULL)
			ehx__local_reply__free_unpacked(rep, NULL);
		if (r != 0) {
			import_draw(im, NULL);
			fprintf(stderr, "%s: rows %u to %u were not queued",
			    render_safe(im->file), rows->row[start].row,
			    rows->row[rows->n - 1].row);
			if (start > 0)
				fprintf(stderr, "; rows 1 to %u are queued and the "
				    "agent delivers them. Importing the file again "
				    "is safe: the rows delivered already are counted "
				    "unchanged", rows->row[start - 1].row);
			fputs(".\n", stderr);
			goto out;
		}
		start = end;
		snprintf(line, sizeof(line), "queueing: %zu/%zu rows", start,
		    rows->n);
		import_draw(im, line);
	}
out:
	free(msgs);
	free(bodies);
	return r;
}

/* Note the refusals of a batch's numbers first..last, in order, while
 * there is room. */
static void
import_take_refusals(struct importer *im, const struct batch *b,
    Ehx__Refusal **rf, size_t n)
{
	for (size_t i = 0; i < n && im->nref < IMPORT_MAX_ERRORS; i++) {
		struct import_refusal *o = &im->ref[im->nref];
		const struct import_row *row;
		size_t idx;

		if (rf[i]->number < b->first || rf[i]->number > b->last)
			continue;
		idx = b->row0 + (size_t)(rf[i]->number - b->first);
		if (idx >= im->rows->n)
			continue;
		row = &im->rows->row[idx];
		memset(o, 0, sizeof(*o));
		o->row = row->row;
		o->line = row->line;
		o->number = rf[i]->number;
		o->code = rf[i]->error != NULL ?
		    ehx_err_from_wire(rf[i]->error->code) : EHX_ERR_INTERNAL;
		snprintf(o->message, sizeof(o->message), "%s",
		    rf[i]->error != NULL ? rf[i]->error->message : "");
		snprintf(o->what, sizeof(o->what), "%s", rf[i]->what);
		im->nref++;
	}
}

/* The report on outbox numbers first..last: 0 and *out, or -1 (quietly:
 * the caller decides when the agent has been silent too long). */
static int
import_report(uint64_t first, uint64_t last, Ehx__LocalReply **out)
{
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
	Ehx__OutboxQuery q = EHX__OUTBOX_QUERY__INIT;

	q.first = first;
	q.last = last;
	lr.outbox = &q;
	if (exchange_lr(&lr, 10 * 1000, true, out) != 0)
		return -1;
	if ((*out)->report == NULL) {
		ehx__local_reply__free_unpacked(*out, NULL);
		*out = NULL;
		return -1;
	}
	return 0;
}

/*
 * A batch is done: list its refusals. One report lists at most 100, so a
 * batch with more is asked for again 100 numbers at a time, as far as the
 * list has room. Returns 0 or -1 (no answer).
 */
static int
import_batch_refusals(struct importer *im, const struct batch *b,
    const Ehx__OutboxReport *rep)
{
	if (rep->n_refusals >= b->refused || rep->n_refusals >= IMPORT_MAX_ERRORS -
	    im->nref) {
		import_take_refusals(im, b, rep->refusals, rep->n_refusals);
		return 0;
	}
	for (uint64_t f = b->first; f <= b->last && im->nref < IMPORT_MAX_ERRORS;
	    f += 100) {
		Ehx__LocalReply *lr;
		uint64_t l = b->last - f < 99 ? b->last : f + 99;

		if (import_report(f, l, &lr) != 0)
			return -1;
		import_take_refusals(im, b, lr->report->refusals,
		    lr->report->n_refusals);
		ehx__local_reply__free_unpacked(lr, NULL);
	}
	return 0;
}

/*
 * Ask how far the batches not yet done have got, from the first, up to
 * IMPORT_QUERIES of them, stopping at one where nothing is decided yet
 * (the outbox delivers in order, so nothing later is either). Returns 0,
 * or -1 when the agent did not answer.
 */
static int
import_poll(struct importer *im)
{
	size_t asked = 0;

	for (size_t k = im->lo; k < im->nb && asked < IMPORT_QUERIES; k++) {
		struct batch *b = &im->b[k];
		Ehx__LocalReply *lr;
		const Ehx__OutboxReport *rep;
		bool moved;

		if (b->done)
			continue;
		if (import_report(b->first, b->last, &lr) != 0)
			return -1;
		asked++;
		rep = lr->report;
		b->delivered = rep->delivered;
		b->unchanged = rep->unchanged;
		b->refused = rep->refused;
		moved = rep->delivered + rep->refused > 0;
		if (rep->pending == 0) {
			b->done = true;
			if (b->refused > 0 && im->nref < IMPORT_MAX_ERRORS &&
			    import_batch_refusals(im, b, rep) != 0) {
				b->done = false;
				ehx__local_reply__free_unpacked(lr, NULL);
				return -1;
			}
		}
		ehx__local_reply__free_unpacked(lr, NULL);
		if (!moved)
			break;
	}
	while (im->lo < im->nb && im->b[im->lo].done)
		im->lo++;
	return 0;
}

static void
import_sum(const struct importer *im, struct import_result *res)
{
	res->delivered = res->unchanged = res->refused = 0;
	for (size_t k = 0; k < im->nb; k++) {
		res->delivered += im->b[k].delivered;
		res->unchanged += im->b[k].unchanged;
		res->refused += im->b[k].refused;
	}
	res->pending = res->rows - res->delivered - res->refused;
	if (res->delivered + res->refused > res->rows)
		res->pending = 0;
}

/* Wait until every batch is decided or timeout_s passes. Returns 0, or
 * EXIT_UNREACHABLE when the agent stopped answering. */
static int
import_wait(struct importer *im, unsigned timeout_s, struct import_result *res)
{
	int64_t start = ehx_now_ms(), silent = 0;
	char line[160];

	for (;;) {
		int64_t now;

		if (import_poll(im) != 0) {
			if (silent == 0)
				silent = ehx_now_ms();
			else if (ehx_now_ms() - silent > IMPORT_LOST_MS) {
				import_draw(im, NULL);
				import_sum(im, res);
				fprintf(stderr, "%s: the agent stopped answering; "
				    "the %llu rows not yet decided are safe in its "
				    "outbox and it delivers them when it is back "
				    "(ehx status)\n", render_safe(im->file),
				    (unsigned long long)res->pending);
				return EXIT_UNREACHABLE;
			}
		} else
			silent = 0;
		import_sum(im, res);
		now = ehx_now_ms();
		if (im->lo == im->nb)
			break;
		if (now - start >= (int64_t)timeout_s * 1000) {
			res->timed_out = true;
			break;
		}
		import_progress_line(line, sizeof(line), res->delivered +
		    res->refused, res->rows, now - im->t_queued);
		import_draw(im, line);
		sleep_ms(IMPORT_POLL_MS);
	}
	import_draw(im, NULL);
	return 0;
}

static int
cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "roll", no_argument, NULL, OPT_ROLL },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	struct import_rows rows;
	struct import_errors *errs = NULL;
	struct import_result res;
	struct importer im;
	enum import_format fmt = IMPORT_UNKNOWN;
	unsigned char *data = NULL;
	size_t len = 0;
	unsigned timeout_s = 0;
	bool dry = false, no_wait = false;
	int c, r;

	memset(&rows, 0, sizeof(rows));
	memset(&res, 0, sizeof(res));
	memset(&im, 0, sizeof(im));
	im.t0 = ehx_now_ms();
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, import_help))
			continue;
		switch (c) {
		case OPT_FORMAT:
			if (strcmp(optarg, "csv") == 0)
				fmt = IMPORT_CSV;
			else if (strcmp(optarg, "jsonl") == 0 ||
			    strcmp(optarg, "ndjson") == 0)
				fmt = IMPORT_JSONL;
			else
				die_usage("--format must be csv or jsonl, not "
				    "\"%s\"", optarg);
			break;
		case OPT_DRY_RUN: dry = true; break;
		case OPT_ROLL: rows.roll = true; break;
		case OPT_NO_WAIT: no_wait = true; break;
		case OPT_TIMEOUT:
			timeout_s = seconds_arg(optarg, IMPORT_MAX_TIMEOUT_S);
			break;
		default: exit(EXIT_USAGE);
		}
	}
	if (optind + 1 != argc)
		die_usage("%s", "import needs one FILE");
	im.file = argv[optind];
	if (fmt == IMPORT_UNKNOWN &&
	    (fmt = import_format_of(im.file)) == IMPORT_UNKNOWN)
		die_usage("cannot tell the format of %s from its name (.csv, "
		    ".jsonl, .ndjson): give --format csv or --format jsonl",
		    render_safe(im.file));
	if (timeout_s > 0 && no_wait)
		die_usage("%s", "--timeout is how long import waits for the "
		    "broker: not with --no-wait");
	if (timeout_s == 0)
		timeout_s = IMPORT_TIMEOUT_S;
	if ((r = ehx_file_read(im.file, false, IMPORT_MAX_FILE, &data,
	    &len)) != 0) {
		if (r == EHX_ERR_TOO_LARGE)
			fprintf(stderr, "%s: %s is larger than 256 MiB: split "
			    "it\n", prog, render_safe(im.file));
		else
			fprintf(stderr, "%s: cannot read %s: %s\n", prog,
			    render_safe(im.file), r == EHX_ERR_SYSTEM ? errno ==
			    EINVAL ? "not a regular file" : strerror(errno) :
			    ehx_strerror(r));
		return EXIT_USAGE;
	}
	if ((errs = malloc(sizeof(*errs))) == NULL) {
		r = EXIT_UNREACHABLE;
		goto out;
	}
	r = import_parse((const char *)data, len, fmt, &rows, errs);
	if (r == EHX_ERR_NOMEM) {
		fprintf(stderr, "%s: out of memory reading %s\n", prog,
		    render_safe(im.file));
		r = EXIT_UNREACHABLE;
		goto out;
	}
	if (r != 0) {
		import_print_errors(g.json ? stdout : stderr, im.file, errs,
		    g.json);
		r = EXIT_USAGE;
		goto out;
	}
	free(data);
	data = NULL;
	if (dry) {
		if (g.json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "file",
			    json_object_new_string(render_safe(im.file)));
			json_object_object_add(o, "valid",
			    json_object_new_boolean(1));
			json_object_object_add(o, "rows",
			    json_object_new_uint64(rows.n));
			printf("%s\n", json_object_to_json_string_ext(o,
			    JSON_C_TO_STRING_SPACED |
			    JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(o);
		} else
			printf("%s: %zu row%s valid\n", render_safe(im.file),
			    rows.n, rows.n == 1 ? "" : "s");
		r = 0;
		goto out;
	}
	im.rows = &rows;
	im.tty = isatty(STDERR_FILENO) == 1;
	res.rows = rows.n;
	if ((r = import_queue(&im)) != 0)
		goto out;
	if (im.nb > 0) {
		res.first = im.b[0].first;
		res.last = im.b[im.nb - 1].last;
	}
	res.pending = rows.n;
	if (!no_wait && rows.n > 0) {
		res.waited = true;
		if ((r = import_wait(&im, timeout_s, &res)) != 0)
			goto out;
	}
	import_draw(&im, NULL);
	res.elapsed_ms = ehx_now_ms() - im.t0;
	res.refusals = im.ref;
	res.n_refusals = im.nref;
	import_print_summary(stdout, im.file, &res, g.json);
	r = res.timed_out ? EXIT_QUEUED : res.refused > 0 ? EXIT_REFUSED : 0;
out:
	free(data);
	free(errs);
	free(im.b);
	import_rows_free(&rows);
	return r;
}

/* ehx list: every page of a right early help list. */
static int
cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "locality", required_argument, NULL, 'o' },
		{ "page", required_argument, NULL, 'P' },
		COMMON_OPTS, { NULL, 0, NULL, 0 },
	};
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QueryEarlyHelpList q = EHX__QUERY_EARLY_HELP_LIST__INIT;
	Ehx__LocalReply *lr;
	unsigned char after[EHX_PSEUDONYM_LEN];
	size_t shown = 0;
	int c, r, list;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_opt(c, list_help))
			continue;
		if (c == 'P') {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*end != '\0' || n < 1 || n > EHX_MAX_AUDIT_PAGE)
				die_usage("--page must be 1..%d",
				    EHX_MAX_AUDIT_PAGE);
			q.limit = (uint32_t)n;
			continue;
		}
		if (c != 'o')
			exit(EXIT_USAGE);
		if (!ehx_id_ok(optarg))
			die_usage("--locality \"%s\" must be 1-32 of a-z 0-9 _ -",
			    optarg);
		q.locality = optarg;
	}
	if (optind + 1 != argc || (list = ehx_list_parse(argv[optind])) < 1)
		die_usage("%s", "list needs known_to_several or "
		    "troubled_families");
	if (q.locality[0] == '\0')
		die_usage("%s", "list needs --locality");
	q.list = (Ehx__EarlyHelpList)list;
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST;
	b.query_early_help_list = &q;
	precheck(&b);
	do {
		const Ehx__EarlyHelpListResult *res;

		if ((r = ask_for(&b, EHX__BODY__PAYLOAD_EARLY_HELP_LIST,
		    &lr)) != 0)
			return r;
		res = lr->reply->early_help_list;
		render_list_page(stdout, res, g.json, shown == 0);
		shown += res->n_children;
		if (res->next.len == EHX_PSEUDONYM_LEN &&
		    (q.after.len == 0 || memcmp(res->next.data, after,
		    EHX_PSEUDONYM_LEN) > 0)) {
			memcpy(after, res->next.data, EHX_PSEUDONYM_LEN);
			q.after.data = after;
			q.after.len = EHX_PSEUDONYM_LEN;
		} else if (res->next.len != 0) {
			fprintf(stderr, "%s: the broker's answer did not move "
			    "on\n", prog);
			ehx__local_reply__free_unpacked(lr, NULL);
			return EXIT_UNREACHABLE;
		} else
			q.after.len = 0;
		ehx__local_reply__free_unpacked(lr, NULL);
	} while (q.after.len != 0);
	if (shown == 0 && !g.json)
		printf("No child in %s is on this list.\n", q.locality);
	return 0;
}

static int
cmd_help(const char *topic)
{
	if (topic == NULL)
		fputs(main_help, stdout);
	else if (strcmp(topic, "publish") == 0)
		print_help(publish_help);
	else if (strcmp(topic, "import") == 0)
		print_help(import_help);
	else if (strcmp(topic, "status") == 0)
		fputs(status_help, stdout);
	else if (strcmp(topic, "inbox") == 0)
		fputs(inbox_help, stdout);
	else if (strcmp(topic, "close") == 0)
		fputs(close_help, stdout);
	else if (strcmp(topic, "involvement") == 0)
		fputs(involvement_help, stdout);
	else if (strcmp(topic, "consent") == 0)
		fputs(consent_help, stdout);
	else if (strcmp(topic, "picture") == 0)
		fputs(picture_help, stdout);
	else if (strcmp(topic, "audit") == 0)
		fputs(audit_help, stdout);
	else if (strcmp(topic, "sar") == 0)
		fputs(sar_help, stdout);
	else if (strcmp(topic, "list") == 0)
		fputs(list_help, stdout);
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
	if (strcmp(cmd, "involvement") == 0)
		return cmd_involvement(argc, argv);
	if (strcmp(cmd, "consent") == 0)
		return cmd_consent(argc, argv);
	if (strcmp(cmd, "picture") == 0)
		return cmd_query(argc, argv, picture_help, true, false);
	if (strcmp(cmd, "audit") == 0)
		return cmd_audit(argc, argv);
	if (strcmp(cmd, "sar") == 0)
		return cmd_sar(argc, argv);
	if (strcmp(cmd, "list") == 0)
		return cmd_list(argc, argv);
	if (strcmp(cmd, "import") == 0)
		return cmd_import(argc, argv);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(cmd, "inbox") == 0)
		return cmd_inbox(argc, argv);
	if (strcmp(cmd, "help") == 0)
		return cmd_help(argc > 1 ? argv[1] : NULL);
	die_usage("unknown command \"%s\"", cmd);
	return EXIT_USAGE;
}
